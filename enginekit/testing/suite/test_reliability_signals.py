"""Reliability: a container whose main process is killed from outside enginekit.

``Container.pid`` is the host pid of the container's main process (its init, PID 1
of the container's pid namespace) as the engine reports it. Killed with SIGKILL by
someone else (``kill -9`` on the host, the OOM killer), the container exits with
128 + 9 = 137 on every engine, as Docker and Podman report it, and the exit code
outlives the process that saw it.

The test sends the signal itself, so it needs the engine's processes on the
machine that runs the tests (the test host runs its suite inside, next to its
engines). It first makes sure the pid is that very container's PID 1 (a pid
namespace's init whose command line, or its child's, holds a token of the test),
and never signals anything else.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from enginekit.models import ContainerState

if TYPE_CHECKING:
    from enginekit import Engine


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return out


def _is_namespace_init(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) >= 2 and ids[-1] == "1"
    except OSError:
        return False
    return False


def _holds_token(pid: int, token: bytes, depth: int = 3) -> bool:
    if token in _cmdline(pid):
        return True
    return depth > 0 and any(_holds_token(child, token, depth - 1) for child in _children(pid))


class TestReliabilityKillFromOutside:
    def test_sigkill_of_the_containers_pid_gives_137(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        token = f"ekt-kill-{uuid.uuid4().hex}"
        c = engine.containers.run(base_image, ["sh", "-c", f"sleep 600; : {token}"], labels=labels)
        try:
            pid = c.pid
            assert c.state is ContainerState.RUNNING and isinstance(pid, int), c
            # The init may not have started the command yet: a few seconds for that.
            deadline = time.monotonic() + 10
            while not (_is_namespace_init(pid) and _holds_token(pid, token.encode())):
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                pytest.fail(
                    f"Container.pid {pid} is not this container's PID 1 on this machine: "
                    "this test needs the engine's processes where the tests run",
                    pytrace=False,
                )
            os.kill(pid, signal.SIGKILL)
            code = engine.containers.wait(c, timeout=60)
            after = engine.containers.get(c)
            assert (code, after.exit_code, after.state) == (137, 137, ContainerState.EXITED)
            assert after.pid is None
        finally:
            engine.containers.remove(c, force=True)
