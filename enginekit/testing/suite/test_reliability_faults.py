"""Reliability: the engine's daemon killed (``kill -9``) in the middle of use,
then started again.

Docker and Podman: the daemon process (dockerd, the podman service). LXC has no
daemon: what dies is enginekit's own per-container monitor (what conmon is to
Podman), while the container's processes live on.

What must hold, on every engine:

* while the daemon is down, every call returns at once with a right answer or
  raises :class:`~enginekit.errors.EngineUnavailable` (never hangs, never
  another class); a ``wait`` or a follow blocked when the daemon died ends
  with ``EngineUnavailable`` or goes on serving;
* after the restart, the same :class:`~enginekit.Engine` works: a container
  that had exited keeps its exit code and logs; the one that was running is
  running or exited, stops and is removed; a new container runs;
* nothing is left behind.

The daemon is killed and started by the program given with
``--enginekit-faults`` (``$ENGINEKIT_TEST_FAULTS``; scripts/test.sh passes
scripts/faults.sh): ``COMMAND kill|start ENGINE ADDRESS``. Without one these
tests are deselected, and the run says so.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.errors import EngineUnavailable, NotFound
from enginekit.models import ContainerState

from ..helpers import poll
from ..plugin import faults_command

if TYPE_CHECKING:
    from enginekit import Engine

#: How long a call may take to come back while the daemon is down.
_PROMPT = 10.0


class _Outcome:
    """What a call running in a thread came to: a value, or an exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # recorded for the assertion
            self.error = exc
        finally:
            self.done.set()


def _answers_or_unavailable(what: str, fn: Callable[[], Any], check: Callable[[Any], bool]) -> bool:
    """Call ``fn`` with the daemon down: it comes back within ``_PROMPT`` s with a
    right answer (``check`` holds; returns True) or ``EngineUnavailable`` (False)."""
    outcome = _Outcome(fn)
    assert outcome.done.wait(_PROMPT), f"{what} hangs with the daemon down (> {_PROMPT}s)"
    if outcome.error is None:
        assert check(outcome.value), f"{what} with the daemon down answered {outcome.value!r}"
        return True
    assert isinstance(outcome.error, EngineUnavailable), (
        f"{what} with the daemon down raised {type(outcome.error).__name__}: {outcome.error}"
    )
    return False


@pytest.mark.faults
class TestReliabilityDaemonKilled:
    # A method, so that ``from enginekit.testing.suite import *`` brings it along.
    @pytest.fixture
    def inject(
        self, request: pytest.FixtureRequest, engine: Engine, engine_name: str
    ) -> Iterator[Callable[[str], None]]:
        command = faults_command(request.config)
        assert command, "the faults marker's deselection let this test through without a command"
        started = [True]

        def run(action: str) -> None:
            proc = subprocess.run(
                [command, action, engine_name, engine.address],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=180,
                start_new_session=True,  # a daemon it starts is not in pytest's process group
                check=False,
            )
            if proc.returncode != 0:
                pytest.fail(
                    f"fault injector: {action} {engine_name} exited {proc.returncode}: "
                    f"{proc.stderr.decode(errors='replace')[-2000:]}",
                    pytrace=False,
                )
            started[0] = action == "start"

        yield run
        if not started[0]:  # the test failed between kill and start: bring the daemon back
            run("start")

    def test_killed_mid_use_and_restarted(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        inject: Callable[[str], None],
    ) -> None:
        containers = engine.containers
        done = containers.run(base_image, ["sh", "-c", "echo before; exit 3"], labels=labels)
        live = containers.run(base_image, ["sh", "-c", "echo up; exec sleep 300"], labels=labels)
        made = [done, live]
        try:
            assert containers.wait(done, timeout=60) == 3
            poll(lambda: b"up\n" in containers.logs(live), timeout=30, message="live printed up")
            waiter = _Outcome(lambda: containers.wait(live, timeout=240))
            follower = _Outcome(lambda: list(containers.stream_logs(live, follow=True)))
            time.sleep(0.5)  # both blocked on the engine
            assert not waiter.done.is_set() and not follower.done.is_set()

            inject("kill")
            down_at = time.monotonic()
            inspect_ok = _answers_or_unavailable(
                "containers.get",
                lambda: containers.get(done),
                lambda c: (c.state, c.exit_code) == (ContainerState.EXITED, 3),
            )
            _answers_or_unavailable(
                "containers.list",
                lambda: containers.list(all=True, labels=labels),
                lambda cs: {c.id for c in cs} >= {done.id, live.id},
            )
            _answers_or_unavailable(
                "containers.logs",
                lambda: containers.logs(done),
                lambda out: out == b"before\n",
            )
            for name, blocked in (("wait", waiter), ("follow", follower)):
                # A daemon gone: the blocked call ends with EngineUnavailable. An
                # engine that still answers (LXC's containers outlive the monitor)
                # may keep it going.
                ended = blocked.done.wait(max(0.0, down_at + _PROMPT - time.monotonic()))
                if ended:
                    assert isinstance(blocked.error, EngineUnavailable), (
                        f"a blocked {name} ended with {blocked.error!r} / {blocked.value!r} "
                        "when the daemon died"
                    )
                else:
                    assert inspect_ok, f"a blocked {name} hangs while the engine does not answer"

            inject("start")
            again = poll(
                lambda: _get_or_none(engine, done), timeout=60, message="the engine answers again"
            )
            assert (again.state, again.exit_code) == (ContainerState.EXITED, 3)
            assert containers.logs(done) == b"before\n"
            state = containers.get(live).state
            assert state in (ContainerState.RUNNING, ContainerState.EXITED), state
            containers.stop(live, timeout=5)
            assert containers.get(live).state is ContainerState.EXITED
            for name, blocked in (("wait", waiter), ("follow", follower)):
                assert blocked.done.wait(30), f"a blocked {name} outlives the container's stop"
                assert blocked.error is None or isinstance(blocked.error, EngineUnavailable), (
                    f"{name}: {blocked.error!r}"
                )
            fresh = containers.run(base_image, ["echo", "after"], labels=labels)
            made.append(fresh)
            assert containers.wait(fresh, timeout=60) == 0
            assert containers.logs(fresh) == b"after\n"
        finally:
            for c in made:
                try:
                    containers.remove(c, force=True)
                except NotFound:
                    pass
                except EngineUnavailable:
                    inject("start")
                    containers.remove(c, force=True)
        left = {c.id for c in containers.list(all=True, labels=labels)} & {c.id for c in made}
        assert not left, f"left behind: {sorted(left)}"


def _get_or_none(engine: Engine, ref: Any) -> Any:
    try:
        return engine.containers.get(ref)
    except EngineUnavailable:
        return None
