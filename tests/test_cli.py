"""The ``enginekit`` command, end to end in a subprocess, on every chosen engine.

Engines are chosen as for the contract suite (``--engine NAME`` or
``ENGINEKIT_TEST_ENGINES``). Everything the commands create carries the run
label, so the suite's plugin removes whatever a failing test leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from enginekit import Engine
from enginekit.cli import EXIT_CODES
from enginekit.testing.session import SuiteRun

CLI = [sys.executable, "-m", "enginekit.cli"]


def run_cli(
    args: Sequence[str],
    *,
    timeout: float = 120,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ek(engine_name: str) -> Cli:
    """``ek(*args, expect=0)``: the command on the engine under test; checks the exit code."""

    def call(*args: str, expect: int | None = 0, timeout: float = 120) -> Any:
        proc = run_cli(["--engine", engine_name, *args], timeout=timeout)
        if expect is not None:
            assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode not in (0, 1):
            assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    return call


@pytest.fixture
def label_args(enginekit_run: SuiteRun) -> list[str]:
    return [arg for k, v in enginekit_run.labels.items() for arg in ("-l", f"{k}={v}")]


def one_line_error(proc: subprocess.CompletedProcess[str], cls: str) -> None:
    """One line on stderr naming the error class, and the class's exit code."""
    import enginekit.errors

    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("enginekit: "), proc.stderr
    shown = lines[0].split(":")[1].strip()
    assert issubclass(getattr(enginekit.errors, shown), getattr(enginekit.errors, cls)), lines
    assert proc.returncode == next(
        EXIT_CODES[c.__name__]
        for c in getattr(enginekit.errors, cls).__mro__
        if c.__name__ in EXIT_CODES
    ), (proc.returncode, proc.stderr)


# -- no engine needed --------------------------------------------------------------
def test_help_is_fast_and_lists_every_command() -> None:
    t0 = time.perf_counter()
    proc = run_cli(["--help"])
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0
    for word in (
        "engines",
        "build",
        "images",
        "image",
        "run",
        "create",
        "start",
        "ps",
        "inspect",
        "logs",
        "exec",
        "pause",
        "unpause",
        "stop",
        "kill",
        "restart",
        "rm",
        "cp",
        "stats",
        "prune",
        "compare",
        "118 Unsupported",
    ):
        assert word in proc.stdout
    assert elapsed < 3, elapsed


def test_import_is_cheap() -> None:
    code = (
        "import sys, enginekit.cli; print(sorted(m for m in sys.modules if m in "
        "('argparse', 'attrs', 'enginekit.engine', 'enginekit.config')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_usage_errors_exit_2() -> None:
    assert run_cli(["no-such-command"]).returncode == 2
    proc = run_cli(["--engine", "docker", "ps", "--filter", "colour=red"])
    assert proc.returncode == 2 and proc.stderr.startswith("enginekit: error: bad filter")
    proc = run_cli(["--engine", "docker", "cp", "/a", "/b"])
    assert proc.returncode == 2


def test_version_flag() -> None:
    proc = run_cli(["--version"])
    assert proc.returncode == 0 and proc.stdout.startswith("enginekit ")


def test_unknown_adapter_is_an_engine_error() -> None:
    proc = run_cli(["--engine", "nosuchengine", "ps"])
    one_line_error(proc, "EngineError")
    assert "nosuchengine" in proc.stderr


@pytest.mark.parametrize("scheme", ["docker", "podman"])
def test_unreachable_engine_says_where_and_how(scheme: str, tmp_path: Path) -> None:
    from enginekit import registry

    assert scheme in registry.adapter_names(), f"enginekit-{scheme} is not installed"
    sock = tmp_path / "nothing.sock"
    proc = run_cli(["--engine", f"{scheme}+unix://{sock}", "ps"])
    one_line_error(proc, "EngineUnavailable")
    assert str(sock) in proc.stderr


def test_engines_table_and_json(enginekit_run: SuiteRun) -> None:
    proc = run_cli(["engines"])
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "REACHABLE", "VERSION"]
    rows = json.loads(run_cli(["engines", "--json"]).stdout)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        assert set(row) >= {"name", "reachable", "address", "version", "reason", "capabilities"}
        assert row["reachable"] or row["reason"]
    for chosen in enginekit_run.engine_names:
        if chosen in by_name:
            assert by_name[chosen]["reachable"], by_name[chosen]
            assert "build" in by_name[chosen]["capabilities"]
            assert chosen in proc.stdout


# -- per engine ----------------------------------------------------------------------
def test_version_command(ek: Cli, engine: Engine) -> None:
    info = json.loads(ek("version", "--json").stdout)
    assert info["engine"]["name"] == engine.name
    assert info["engine"]["version"] == engine.info().version
    assert engine.name in ek("version").stdout


def test_build_images_tag_save_load_rm(
    ek: Cli,
    engine: Engine,
    base_image: str,
    build_context: Any,
    enginekit_run: SuiteRun,
    tmp_path: Path,
) -> None:
    tag = f"ekcli/{enginekit_run.make_name()}:1"
    ctx = build_context(
        f"FROM {base_image}\nARG WHO=nobody\nRUN echo building for $WHO\nLABEL stage=final\n",
        busybox=False,
    )
    run_label = f"enginekit.test.run={enginekit_run.run_id}"
    proc = ek(
        "build",
        "-t",
        tag,
        "--build-arg",
        "WHO=cli",
        "--label",
        run_label,
        "--label",
        "extra=yes",
        str(ctx),
    )
    image_id = proc.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, proc.stdout
    assert "building for cli" in proc.stderr  # progress, streamed to stderr
    # --json, -f and --target
    (ctx / "Other.dockerfile").write_text(
        f"FROM {base_image} AS one\nLABEL which=one\nFROM {base_image} AS two\nLABEL which=two\n"
    )
    built = json.loads(
        ek(
            "build",
            "-q",
            "--json",
            "-f",
            "Other.dockerfile",
            "--target",
            "one",
            "--label",
            run_label,
            str(ctx),
        ).stdout
    )
    assert built["labels"]["which"] == "one" and built["id"].startswith("sha256:")

    listed = json.loads(ek("images", "--json", "--filter", f"label={run_label}").stdout)
    assert tag in [t for img in listed for t in img["tags"]]
    table = ek("images", tag.split(":")[0]).stdout.splitlines()
    assert table[0].split()[:2] == ["REPOSITORY", "TAG"]
    assert any(line.split()[:3] == [tag.split(":")[0], "1", image_id[7:19]] for line in table)
    assert image_id[7:19] in ek("images", "-q", tag).stdout.split()
    assert json.loads(ek("image", "ls", "--json", tag).stdout)[0]["id"] == image_id

    shown = json.loads(ek("image", "inspect", "--json", tag).stdout)[0]
    assert shown["id"] == image_id and shown["labels"]["extra"] == "yes"
    assert "stage" in ek("image", "inspect", tag).stdout

    other = f"{tag.split(':')[0]}:2"
    ek("image", "tag", tag, other)
    assert json.loads(ek("inspect", "--json", "--type", "image", other).stdout)[0]["id"] == image_id

    archive = tmp_path / "image.tar"
    ek("image", "save", "-o", str(archive), other)
    assert archive.stat().st_size > 0
    ek("image", "rm", other)
    loaded = ek("image", "load", "-i", str(archive)).stdout
    assert other in loaded
    ek("rmi", other)
    missing = ek("image", "rm", other, expect=None)
    assert missing.returncode == EXIT_CODES["NotFound"]
    assert missing.stderr.startswith("enginekit: ImageNotFound: ")
    ek("image", "rm", tag)
    assert ek("images", "-q", tag).stdout.strip() == ""


def test_build_failure(ek: Cli, base_image: str, build_context: Any) -> None:
    ctx = build_context(f"FROM {base_image}\nRUN echo about to fail; exit 3\n", busybox=False)
    proc = ek("build", str(ctx), expect=EXIT_CODES["BuildFailed"])
    first = [x for x in proc.stderr.splitlines() if x.startswith("enginekit:")]
    assert len(first) == 1 and first[0].startswith("enginekit: BuildFailed: "), proc.stderr
    assert "exit code: 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = ek("build", str(ctx / "missing"), expect=EXIT_CODES["InvalidSpec"])
    one_line_error(bad, "InvalidSpec")


def test_run_foreground_exit_code_streams_and_rm(
    ek: Cli, base_image: str, label_args: list[str], make_name: Callable[..., str]
) -> None:
    name = make_name("fg")
    proc = ek(
        "run",
        "--rm",
        "--name",
        name,
        *label_args,
        "-e",
        "WHO=cli",
        "-w",
        "/tmp",
        base_image,
        "sh",
        "-c",
        'echo "out $WHO $(pwd)"; echo err >&2; exit 7',
        expect=7,
    )
    assert proc.stdout == "out cli /tmp\n"
    assert proc.stderr == "err\n"
    assert ek("ps", "-a", "-q", "--filter", f"name={name}").stdout.strip() == ""
    # without --rm the container stays, exited, with its code
    name2 = make_name("fg2")
    ek("run", "--name", name2, *label_args, base_image, "sh", "-c", "exit 0")
    got = json.loads(ek("inspect", "--json", name2).stdout)[0]
    assert got["state"] == "exited" and got["exit_code"] == 0
    ek("rm", name2)


def test_run_detached_lifecycle(
    ek: Cli,
    engine: Engine,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
) -> None:
    from enginekit import Capability

    name = make_name("life")
    extra: list[str] = []
    caps = engine.capabilities
    if Capability.MEMORY_LIMIT in caps:
        extra += ["--memory", "64m"]
    if Capability.CPU_LIMIT in caps:
        extra += ["--cpus", "0.5"]
    if Capability.PORTS in caps:
        extra += ["-p", "127.0.0.1::8080"]
    cid = ek(
        "run",
        "-d",
        "--name",
        name,
        *label_args,
        "-l",
        "role=worker",
        "-e",
        "SECRET=s3cr3t",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "--hostname",
        "clihost",
        *extra,
        base_image,
        "sh",
        "-c",
        "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ).stdout.strip()
    assert len(cid) == 64
    table = ek("ps", "--filter", "label=role=worker", "--filter", f"name={name}").stdout
    rows = table.splitlines()
    assert rows[0].split()[:2] == ["CONTAINER", "ID"] and len(rows) == 2
    assert cid[:12] in rows[1] and name in rows[1] and "Up" in rows[1]
    listed = json.loads(ek("ps", "--json", "--filter", f"name={name}").stdout)
    assert [c["id"] for c in listed] == [cid]

    shown = json.loads(ek("inspect", "--json", name).stdout)[0]
    assert shown["state"] == "running" and shown["labels"]["role"] == "worker"
    assert shown["hostname"] == "clihost" and shown["workdir"] == "/tmp"
    assert "s3cr3t" not in ek("inspect", "--json", name).stdout  # env values hidden
    assert "s3cr3t" not in ek("inspect", name).stdout
    assert (
        json.loads(ek("inspect", "--json", "--show-env", name).stdout)[0]["env"]["SECRET"]
        == "s3cr3t"
    )
    if Capability.MEMORY_LIMIT in caps:
        assert shown["resources"]["memory"] == 64 * 1024 * 1024
    if Capability.PORTS in caps:
        assert shown["ports"][0]["container_port"] == 8080 and shown["ports"][0]["host_port"]

    ex = ek(
        "exec",
        "-e",
        "X=1",
        "-w",
        "/",
        name,
        "sh",
        "-c",
        'echo "$X $(id -u) $(pwd)"; echo e >&2; exit 5',
        expect=5,
    )
    assert ex.stdout == "1 1000 /\n" and ex.stderr == "e\n"
    assert ek("exec", "-u", "0", name, "id", "-u").stdout == "0\n"

    if Capability.PAUSE in caps:
        assert ek("pause", name).stdout.strip() == name
        assert "Paused" in ek("ps", "--filter", f"name={name}").stdout
        one_line_error(ek("exec", name, "true", expect=None), "Conflict")
        one_line_error(ek("pause", name, expect=None), "Conflict")
        ek("unpause", name)
        ek("unpause", name)  # idempotent

    if Capability.STATS in caps:
        stats = json.loads(ek("stats", "--json", name).stdout)[0]
        assert stats["id"] == cid and stats["memory_bytes"] > 0
        assert name in ek("stats", "--no-stream", name).stdout

    one_line_error(ek("rm", name, expect=None), "Conflict")
    one_line_error(ek("wait", "--timeout", "0.5", name, expect=None), "EngineTimeout")

    ek("stop", "-t", "5", name)
    assert ek("wait", name).stdout.strip() == "0"
    assert ek("logs", name).stdout == "started\n"
    ek("restart", "-t", "1", name)
    assert json.loads(ek("inspect", "--json", name).stdout)[0]["state"] == "running"
    ek("kill", name)
    assert ek("wait", name).stdout.strip() == "137"
    ek("kill", name)  # idempotent on an exited container
    assert "Exited (137)" in ek("ps", "-a", "--filter", f"name={name}").stdout
    assert ek("ps", "-q", "--filter", f"name={name}").stdout.strip() == ""
    ek("rm", name)
    gone = ek("rm", name, expect=EXIT_CODES["NotFound"])
    assert gone.stderr.startswith("enginekit: ContainerNotFound: ")


def test_create_start_attach_and_logs(
    ek: Cli, base_image: str, label_args: list[str], make_name: Callable[..., str]
) -> None:
    name = make_name("cs")
    cid = ek(
        "create",
        "--name",
        name,
        *label_args,
        base_image,
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1; echo three; exit 2",
    ).stdout.strip()
    assert json.loads(ek("inspect", "--json", cid).stdout)[0]["state"] == "created"
    assert "Created" in ek("ps", "-a", "--filter", f"name={name}").stdout
    assert (
        json.loads(
            ek("ps", "--json", "--filter", "status=created", "--filter", f"name={name}").stdout
        )[0]["id"]
        == cid
    )
    proc = ek("start", "-a", name, expect=2)
    assert proc.stdout == "one\nthree\n" and proc.stderr == "two\n"
    logs = ek("logs", name)
    assert logs.stdout == "one\nthree\n" and logs.stderr == "two\n"
    assert ek("logs", "--tail", "1", name).stdout == "three\n"
    stamped = ek("logs", "-t", name).stdout.splitlines()
    assert stamped[0].endswith("Z one") and stamped[0][:4].isdigit()
    # logs -f ends when the container exits
    ek("start", name)
    t0 = time.monotonic()
    followed = ek("logs", "-f", name, timeout=60)
    assert followed.stdout == "one\nthree\none\nthree\n", followed.stdout
    assert time.monotonic() - t0 < 30
    ek("rm", name)


def test_cp_both_ways(
    ek: Cli,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
    tmp_path: Path,
) -> None:
    name = make_name("cp")
    ek("run", "-d", "--name", name, *label_args, base_image, "sleep", "60")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("hello\n")
    ek("cp", str(src), f"{name}:/tmp/")
    assert ek("exec", name, "cat", "/tmp/in/sub/f.txt").stdout == "hello\n"
    ek("exec", name, "sh", "-c", "echo made > /tmp/made.txt")
    out = tmp_path / "out.txt"
    ek("cp", f"{name}:/tmp/made.txt", str(out))
    assert out.read_text() == "made\n"
    ek("stop", "-t", "1", name)
    back = tmp_path / "back"
    ek("cp", f"{name}:/tmp/in", str(back))  # from a stopped container too
    assert (back / "sub" / "f.txt").read_text() == "hello\n"
    missing = ek("cp", f"{name}:/no/such/file", str(tmp_path / "x"), expect=None)
    assert missing.returncode == EXIT_CODES["NotFound"], missing.stderr
    ek("rm", "-f", name)


def test_prune_only_what_the_filter_names(
    ek: Cli,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
    enginekit_run: SuiteRun,
) -> None:
    done = ek("run", "--name", make_name("p1"), *label_args, "-l", "prune=me", base_image, "true")
    assert done.returncode == 0
    keep = make_name("p2")
    ek("run", "--name", keep, *label_args, base_image, "true")
    removed = json.loads(ek("prune", "--json", "--filter", "label=prune=me").stdout)
    assert len(removed) == 1
    assert ek("ps", "-a", "-q", "--filter", f"name={keep}").stdout.strip()
    text = ek("prune", "-f", "--filter", f"label=enginekit.test.run={enginekit_run.run_id}").stdout
    assert text.startswith("Deleted Containers:")


def test_error_classes_and_exit_codes(
    ek: Cli,
    engine: Engine,
    base_image: str,
    label_args: list[str],
) -> None:
    from enginekit import Capability

    one_line_error(ek("inspect", "ekt-no-such-thing", expect=None), "NotFound")
    assert ek("logs", "ekt-no-such-thing", expect=None).returncode == EXIT_CODES["NotFound"]
    one_line_error(
        ek("run", *label_args, "--name", "bad/name", base_image, "true", expect=None), "InvalidSpec"
    )
    one_line_error(
        ek("run", *label_args, "--memory", "lots", base_image, "true", expect=None), "InvalidSpec"
    )
    assert (
        ek("run", *label_args, "ekcli/no-such-image:1", "true", expect=None).returncode
        == EXIT_CODES["NotFound"]
    )
    if Capability.PULL not in engine.capabilities:
        one_line_error(ek("pull", "busybox:latest", expect=None), "Unsupported")
    if Capability.PUSH not in engine.capabilities:
        one_line_error(ek("push", base_image, expect=None), "Unsupported")


def _interruptible() -> None:
    """In the child: Ctrl-C and SIGTERM at their defaults, as from a terminal. A
    test run started in the background by a non-interactive shell (a CI job)
    has SIGINT ignored, which every child inherits, and Python then installs no
    KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupted(args: Sequence[str], signum: int, timeout: float) -> tuple[int, str]:
    """Run the command until it prints ``ready``, send it ``signum``: its exit code
    and stderr."""
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_run_interrupted_with_rm_removes_the_container(
    signum: int,
    code: int,
    engine_name: str,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
    ek: Cli,
) -> None:
    name = make_name("int")
    command = ["sh", "-c", "echo ready; sleep 60"]
    args = ["--engine", engine_name, "run", "--rm", "--name", name, *label_args, base_image]
    returncode, err = _interrupted([*args, *command], signum, timeout=60)
    assert returncode == code, err
    assert "Traceback" not in err
    assert ek("ps", "-a", "-q", "--filter", f"name={name}").stdout.strip() == ""


def test_logs_follow_ends_on_ctrl_c(
    engine_name: str,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
    ek: Cli,
) -> None:
    name = make_name("lf")
    ek("run", "-d", "--name", name, *label_args, base_image, "sh", "-c", "echo ready; sleep 60")
    args = ["--engine", engine_name, "logs", "-f", name]
    returncode, err = _interrupted(args, signal.SIGINT, timeout=30)
    assert returncode == 130 and "Traceback" not in err
    ek("rm", "-f", name)


def _other_spelling(engine: Engine, engine_name: str) -> str:
    """Another URL of the same engine than ``engine_name``."""
    address = engine.address
    if address.startswith(f"{engine.name}+"):
        url = address
    elif "://" in address:
        url = f"{engine.name}+{address}"
    else:
        url = f"{engine.name}://{address}"
    if url != engine_name:
        return url
    if address.startswith("unix://"):
        # Chosen by its URL already: name the socket by its bare path instead.
        return f"{engine.name}://{address.removeprefix('unix://')}"
    # A remote engine: its default port written out, or left out.
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    transport = parts.scheme.rpartition("+")[2]
    netloc = parts.netloc
    if transport == "ssh" and parts.port is None:
        netloc += ":22"
    elif (transport, parts.port) in (("ssh", 22), ("tcp", 2375), ("tcp", 2376)):
        netloc = netloc.rpartition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


BUSYBOX_IMAGE = (
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
)


def compare(
    engines: Sequence[str], ctx: Path, tag: str, *command: str, options: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``enginekit compare`` of ``command`` in the image built from ``ctx`` on ``engines``."""
    chosen = [arg for name in engines for arg in ("--engine", name)]
    return run_cli(["compare", *options, *chosen, "--build", str(ctx), "--", tag, *command])


def test_compare_on_this_engine(
    engine_name: str, engine: Engine, build_context: Any, enginekit_run: SuiteRun
) -> None:
    ctx = build_context(BUSYBOX_IMAGE + 'CMD ["echo", "same"]\n')
    tag = f"ekcli-compare/{enginekit_run.make_name()}:1"
    proc = compare([engine_name], ctx, tag)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "all 1 engines agree" in proc.stdout and "same" in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour on a pipe
    assert not engine.images.exists(tag)
    assert not engine.containers.list(all=True, labels={"enginekit.compare": None})

    # The same engine twice (spelt two ways): a random output differs.
    other = _other_spelling(engine, engine_name)
    assert other != engine_name
    twice = compare(
        [engine_name, other], ctx, tag, "cat", "/proc/sys/kernel/random/uuid", options=["--json"]
    )
    result = json.loads(twice.stdout)
    assert twice.returncode == 1, twice.stderr
    assert result["differences"] == ["stdout"] and not result["same"]
    assert not engine.images.exists(tag)


def test_compare_every_chosen_engine(
    engines: dict[str, Engine], build_context: Any, enginekit_run: SuiteRun
) -> None:
    ctx = build_context(BUSYBOX_IMAGE + "WORKDIR /srv\n")
    tag = f"ekcli-compare/{enginekit_run.make_name()}:1"
    script = 'echo "$A $(pwd)"; echo warn >&2; exit 4'
    proc = compare(list(engines), ctx, tag, "sh", "-c", script, options=["-e", "A=1"])
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    header = proc.stdout.splitlines()[0].split()
    assert header == list(engines)
    data = json.loads(
        compare(list(engines), ctx, tag, "sh", "-c", "echo $A; exit 4", options=["--json"]).stdout
    )
    for seen in data["engines"].values():
        assert seen["exit code"] == 4 and seen["state"] == "EXITED" and seen["stdout"] == "\n"
    for eng in engines.values():
        assert not eng.images.exists(tag)


def test_engine_from_environment_and_config_file(
    engine_name: str, engine: Engine, tmp_path: Path
) -> None:
    # ENGINEKIT_SSH_CONFIG stays: it says how ssh reaches a remote engine, not which.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ENGINEKIT_") or k == "ENGINEKIT_SSH_CONFIG"
    }
    proc = run_cli(
        ["version", "--json"], env={**env, "ENGINEKIT_ENGINE": engine_name}, cwd=tmp_path
    )
    assert json.loads(proc.stdout)["engine"]["name"] == engine.name
    (tmp_path / "enginekit.toml").write_text(f'engine = "{engine_name}"\n')
    proc = run_cli(["version", "--json"], env=env, cwd=tmp_path)
    assert json.loads(proc.stdout)["engine"]["name"] == engine.name


def test_mounts_entrypoint_network_and_limits(
    ek: Cli,
    engine: Engine,
    base_image: str,
    label_args: list[str],
    make_name: Callable[..., str],
    mount_source: Path,
) -> None:
    from enginekit import Capability

    caps = engine.capabilities
    args = ["--entrypoint", "sh", "--stop-signal", "SIGINT"]
    if Capability.BIND_MOUNTS in caps:
        (mount_source / "data.txt").write_text("from the host\n")
        args += ["-v", f"{mount_source}:/data:ro"]
    if Capability.NETWORK_NONE in caps:
        args += ["--network", "none"]
    if Capability.PIDS_LIMIT in caps:
        args += ["--pids-limit", "64"]
    name = make_name("mnt")
    script = "cat /data/data.txt 2>/dev/null; touch /data/x 2>/dev/null || echo read-only"
    proc = ek("run", "--name", name, *label_args, *args, base_image, "-c", script)
    shown = json.loads(ek("inspect", "--json", name).stdout)[0]
    assert shown["entrypoint"] == ["sh"] and shown["stop_signal"] == "SIGINT"
    if Capability.BIND_MOUNTS in caps:
        assert proc.stdout == "from the host\nread-only\n"
        assert shown["mounts"] == [
            {"source": str(mount_source), "target": "/data", "read_only": True}
        ]
    if Capability.NETWORK_NONE in caps:
        assert shown["network"] == "none"
    if Capability.PIDS_LIMIT in caps:
        assert shown["resources"]["pids_limit"] == 64
    ek("rm", name)


# -- argument parsing, without an engine -------------------------------------------------
def test_only_the_command_given_gets_its_parser_made(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from enginekit.cli._parser import build_parser

    def parsers(parser: argparse.ArgumentParser, dest: str) -> dict[str, argparse.ArgumentParser]:
        sub = next(a for a in parser._actions if a.dest == dest)
        assert isinstance(sub.choices, dict)
        return sub.choices

    def made(parser: argparse.ArgumentParser, dest: str) -> list[str]:
        found = parsers(parser, dest).values()
        return sorted({p.prog for p in found if "_deferred" not in vars(p)})

    parser = build_parser()
    args = parser.parse_args(["--engine", "docker", "ps", "-a", "--filter", "label=a"])
    assert (args.command_name, args.all, args.filter) == ("ps", True, ["label=a"])
    assert made(parser, "command_name") == ["enginekit ps"]
    parser = build_parser()
    args = parser.parse_args(["image", "rm", "-f", "x"])
    assert (args.command_name, args.image_command, args.force) == ("image", "rm", True)
    image = parsers(parser, "command_name")["image"]
    assert made(parser, "command_name") == ["enginekit image"]
    assert made(image, "image_command") == ["enginekit image rm"]
    # Every command's parser can be made, and shows its own help.
    for name in parsers(build_parser(), "command_name"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([name, "--help"])
        assert exited.value.code == 0
        assert f"usage: enginekit {name} " in capsys.readouterr().out


def test_parse_ports() -> None:
    from enginekit.cli._args import parse_ports

    assert parse_ports(["80", "8080:80/udp", "0.0.0.0:9000:90", "127.0.0.1::91"]) == {
        "80/tcp": (None, None),
        "80/udp": (None, 8080),
        "90/tcp": ("0.0.0.0", 9000),
        "91/tcp": ("127.0.0.1", None),
    }
    from enginekit.cli._app import UsageError

    for bad in ("http", "a:80", "1:2:3:4"):
        with pytest.raises(UsageError):
            parse_ports([bad])


def test_parse_pairs_and_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    from enginekit.cli._app import UsageError
    from enginekit.cli._args import parse_filters, parse_pairs

    monkeypatch.setenv("EK_FROM_HOST", "x=y")
    monkeypatch.delenv("EK_NOT_SET", raising=False)
    assert parse_pairs(
        ["A=1", "B=", "C=a=b", "EK_FROM_HOST", "EK_NOT_SET"], "env", from_env=True
    ) == {
        "A": "1",
        "B": "",
        "C": "a=b",
        "EK_FROM_HOST": "x=y",
    }
    assert parse_pairs(["k", "v=1"], "label") == {"k": "", "v": "1"}
    with pytest.raises(UsageError):
        parse_pairs(["=1"], "label")
    got = parse_filters(["label=a", "label=b=c", "name=n"], ("label", "name"))
    assert got == {"label": {"a": None, "b": "c"}, "name": "n"}
    with pytest.raises(UsageError):
        parse_filters(["status=running"], ("label",))


def test_human_units() -> None:
    import datetime as dt

    from enginekit.cli._format import ago, duration, human_size, jsonable

    assert [human_size(n) for n in (0, 999, 1000, 2_132_190, None)] == [
        "0B",
        "999B",
        "1kB",
        "2.13MB",
        "-",
    ]
    assert [duration(s) for s in (0.2, 1, 59, 61, 600, 3700, 7200, 200000)] == [
        "Less than a second",
        "1 second",
        "59 seconds",
        "About a minute",
        "10 minutes",
        "About an hour",
        "2 hours",
        "2 days",
    ]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert ago(now - dt.timedelta(seconds=5), now) == "5 seconds ago"
    from enginekit import Container, ContainerState

    c = Container(id="a" * 64, name="n", image="i", state=ContainerState.EXITED, env={"K": "v"})
    data = jsonable(c)
    assert data["env"] == {"K": "<hidden>"} and data["state"] == "exited"
    assert "raw" not in data
    assert jsonable(c, show_env=True)["env"] == {"K": "v"}
