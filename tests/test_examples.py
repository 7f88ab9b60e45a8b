"""Every program in examples/ runs as it is, on every chosen engine, and says what it did.

Engines are chosen as for the contract suite (``--engine NAME`` or
``ENGINEKIT_TEST_ENGINES``); each example runs in a subprocess with the
engine on its command line (or in ``ENGINEKIT_ENGINE``), and must leave
nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from enginekit import Capability, Engine

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LABEL = "enginekit.example"


def run_example(args: list[str], *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=EXAMPLES.parent,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def _labelled(engine: Engine) -> tuple[set[str], set[str]]:
    """The ids of the containers and images an example labels, on the engine now."""
    return (
        {c.id for c in engine.containers.list(all=True, labels={LABEL: None})},
        {i.id for i in engine.images.list(labels={LABEL: None})},
    )


_BEFORE: dict[str, tuple[set[str], set[str]]] = {}


@pytest.fixture(autouse=True)
def _what_was_there(engine: Engine) -> None:
    """What an earlier run that was killed may have left is not this example's."""
    _BEFORE[engine.address] = _labelled(engine)


def assert_nothing_left(engine: Engine) -> None:
    containers, images = _labelled(engine)
    before_containers, before_images = _BEFORE[engine.address]
    assert containers - before_containers == set()
    assert images - before_images == set()


def test_build_and_run(engine_name: str, engine: Engine) -> None:
    out = run_example([str(EXAMPLES / "build_and_run.py"), engine_name])
    assert f"engine: {engine.name}" in out
    assert "default command exited with 0" in out
    assert "stdout: ['hello from enginekit', 'user 0:0 in /work', 'args: ']" in out
    assert "stderr: ['a line on stderr']" in out
    assert "own command exited with 3\nstdout: 42\nstate EXITED, exit code 3" in out
    assert_nothing_left(engine)


def test_pause_resume(engine_name: str, engine: Engine) -> None:
    out = run_example([str(EXAMPLES / "pause_resume.py"), engine_name])
    if Capability.PAUSE in engine.capabilities:
        assert "paused (PAUSED)" in out and "resumed (RUNNING)" in out
    else:
        assert f"this engine cannot pause: {engine.unsupported[Capability.PAUSE]}" in out
    assert "stopped: EXITED, exit code 143" in out
    assert_nothing_left(engine)


def test_exec_and_copy(engine_name: str, engine: Engine) -> None:
    out = run_example([str(EXAMPLES / "exec_and_copy.py"), engine_name])
    assert "exec ls -> exit 0: ['a.txt', 'b.txt']" in out
    assert "exec wc -> exit 0, stderr b'done\\n'" in out
    assert "a failing exec -> exit 9" in out
    assert "3 total" in out
    assert "from the stopped container: ['a.txt', 'b.txt']" in out
    assert_nothing_left(engine)


def test_stream_logs(engine_name: str, engine: Engine) -> None:
    out = run_example([str(EXAMPLES / "stream_logs.py"), engine_name])
    lines = out.splitlines()
    assert sum("[stdout] step" in x for x in lines) == 5
    assert sum("[stderr] warn" in x for x in lines) == 5
    assert "6 stdout lines, 5 stderr lines, exit code 0" in out
    assert_nothing_left(engine)


def test_choose_engine_by_environment_and_config(engine_name: str, engine: Engine) -> None:
    out = run_example([str(EXAMPLES / "choose_engine.py"), engine_name])
    assert f"ENGINEKIT_ENGINE={engine_name} -> {engine.name}" in out
    assert "(chosen from the environment)" in out
    assert f"project/enginekit.toml says {engine_name!r} -> {engine.name}" in out
    assert "ran a container there: hi from Linux" in out
    assert_nothing_left(engine)


def test_an_example_takes_the_engine_from_the_environment(engine_name: str, engine: Engine) -> None:
    env = {**os.environ, "ENGINEKIT_ENGINE": engine_name}
    out = run_example([str(EXAMPLES / "build_and_run.py")], env=env)
    assert f"engine: {engine.name}" in out
    assert_nothing_left(engine)


def test_own_project_with_the_plugin(engine_name: str, engine: Engine) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ENGINEKIT_TEST_ENGINES"}
    out = run_example(
        [
            "-m",
            "pytest",
            str(EXAMPLES / "own_project"),
            "-p",
            "enginekit.testing",
            "--engine",
            engine_name,
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        env=env,
    )
    assert "4 passed" in out, out


def test_publish_port(engine_name: str, engine: Engine) -> None:
    from enginekit.testing.helpers import published_address

    out = run_example([str(EXAMPLES / "publish_port.py"), engine_name])
    # On the engine's address: 127.0.0.1 here, the engine host's for a remote engine.
    assert f"container port 8080/tcp is on {published_address(engine)}:" in out
    assert "-> 200: hello over http" in out
    assert_nothing_left(engine)
