"""Containers: states, transitions, exit codes, idempotence, refs, wait.

CONTRACT.md, "Containers" (create/start/run/pause/unpause/stop/kill/restart/
remove/wait) and "Semantics that are the same everywhere" (states,
idempotence, NotFound/Conflict, deadlines).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from enginekit import Capability, ContainerState
from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineTimeout,
    ImageNotFound,
    InvalidSpec,
    NotFound,
)
from enginekit.testing.helpers import call_within, poll, wait_state

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

SLEEP = ["sleep", "100"]
#: Longer than any transport read timeout (enginekit.transport's default is 60 s).
LONG = 65
#: Lives through SIGTERM (only SIGKILL ends it) and logs each one: the engine
#: stamps that line when the signal arrives.
TERM_LOGGED = 'trap "echo term" TERM; echo ready; while :; do usleep 50000; done'


def _await_ready(engine: Engine, c: Container) -> None:
    """Until the command has printed ``ready`` (its trap is set by then)."""
    poll(lambda: engine.containers.logs(c).startswith(b"ready\n"), message="the trap to be set")


def _term_stamp(engine: Engine, c: Container) -> dt.datetime | None:
    """When the engine logged the command's ``term`` line (the SIGTERM's arrival),
    on the engine's clock; None if no SIGTERM was seen."""
    with engine.containers.stream_logs(c, follow=False) as lines:
        stamps = [line.timestamp for line in lines if line.data == b"term\n"]
    assert all(s is not None for s in stamps), "a log line without its timestamp"
    return stamps[0] if stamps else None


def _seconds(later: dt.datetime | None, earlier: dt.datetime) -> float:
    assert later is not None
    return (later - earlier).total_seconds()


class TestContainerStates:
    def test_create_is_created(self, engine: Engine, create_container: ContainerFactory) -> None:
        c = create_container(SLEEP)
        for snap in (c, engine.containers.get(c)):
            assert snap.state is ContainerState.CREATED
            assert snap.exit_code is None
            assert snap.pid is None
            assert snap.started_at is None
            assert snap.finished_at is None

    def test_start_is_running(self, engine: Engine, create_container: ContainerFactory) -> None:
        c = create_container(SLEEP)
        started = engine.containers.start(c)
        assert started.id == c.id
        for snap in (started, engine.containers.get(c)):
            assert snap.state is ContainerState.RUNNING
            assert isinstance(snap.pid, int) and snap.pid > 0
            assert snap.exit_code is None
            assert snap.started_at is not None
            assert snap.finished_at is None

    def test_start_of_fast_command_ends_exited(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(["true"])
        started = engine.containers.start(c)
        assert started.state in (ContainerState.RUNNING, ContainerState.EXITED)
        assert engine.containers.wait(c, timeout=30) == 0
        done = engine.containers.get(c)
        assert done.state is ContainerState.EXITED
        assert done.exit_code == 0
        assert done.pid is None
        assert done.finished_at is not None

    def test_run_is_create_and_start(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        assert c.state is ContainerState.RUNNING
        assert isinstance(c.pid, int) and c.pid > 0
        assert engine.containers.get(c).state is ContainerState.RUNNING

    @pytest.mark.requires(Capability.PAUSE)
    def test_pause_and_unpause(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        paused = engine.containers.pause(c)
        assert paused.state is ContainerState.PAUSED
        assert isinstance(paused.pid, int) and paused.pid > 0
        assert engine.containers.get(c).state is ContainerState.PAUSED
        resumed = engine.containers.unpause(c)
        assert resumed.state is ContainerState.RUNNING
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_stop_sends_sigterm_through_init(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        # `sleep` installs no handler: only an init as PID 1 lets SIGTERM end it.
        c = run_container(SLEEP)
        stopped = engine.containers.stop(c, timeout=10)
        assert stopped.state is ContainerState.EXITED
        # 143: SIGTERM ended the command (a SIGKILL after the grace period gives 137).
        assert stopped.exit_code == 143
        got = engine.containers.get(c)
        assert got.exit_code == 143
        assert got.pid is None
        assert got.finished_at is not None

    @pytest.mark.parametrize(
        "script",
        ['trap "" TERM; echo ready; sleep 100', 'trap "" TERM; echo ready; sleep 100; echo after'],
        ids=["last-command", "not-last"],
    )
    def test_stop_timeout_then_sigkill(
        self, engine: Engine, run_container: ContainerFactory, script: str
    ) -> None:
        c = run_container(["sh", "-c", script])
        # Stop only once the trap is set: a SIGTERM before it would end sh (143).
        _await_ready(engine, c)
        t0 = time.monotonic()
        stopped = call_within(60, engine.containers.stop, c, timeout=3)
        elapsed = time.monotonic() - t0
        assert stopped.state is ContainerState.EXITED
        assert stopped.exit_code == 137
        # Not killed before the grace period (a slow machine only makes this longer).
        assert elapsed >= 2.8, f"stop(timeout=3) killed after {elapsed:.2f}s"
        assert engine.containers.logs(c) == b"ready\n"

    @pytest.mark.parametrize("operation", ["stop", "restart"])
    def test_sigkill_comes_after_the_grace_period_given(
        self, engine: Engine, run_container: ContainerFactory, operation: str
    ) -> None:
        c = run_container(["sh", "-c", TERM_LOGGED])
        _await_ready(engine, c)
        t0 = time.monotonic()
        after = call_within(60, getattr(engine.containers, operation), c, timeout=3)
        elapsed = time.monotonic() - t0
        if operation == "stop":
            assert (after.state, after.exit_code) == (ContainerState.EXITED, 137)
        else:
            assert (after.state, after.exit_code) == (ContainerState.RUNNING, None)
        # Not before the grace period (a slow machine only makes this longer).
        assert elapsed >= 2.8, f"{operation}(timeout=3): killed after {elapsed:.2f}s"
        # Nor the default 10 s: from the SIGTERM's arrival (its logged line) to the
        # exit (stop) or the new start (restart; the logs keep the first run's),
        # both on the engine's clock: neither the client's nor the API's delays
        # count on a busy machine.
        term = _term_stamp(engine, c)
        assert term is not None, engine.containers.logs(c)
        took = _seconds(after.finished_at if operation == "stop" else after.started_at, term)
        assert took < 9.5, f"{operation}: {took:.2f}s after SIGTERM (engine clock), not 3 s"

    def test_stop_timeout_zero_kills_at_once(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", TERM_LOGGED])
        _await_ready(engine, c)
        stopped = call_within(60, engine.containers.stop, c, timeout=0)
        assert stopped.exit_code == 137
        # At once: the SIGKILL followed the SIGTERM (if the command even saw it)
        # without a grace period, on the engine's clock.
        term = _term_stamp(engine, c)
        if term is not None:
            grace = _seconds(stopped.finished_at, term)
            assert grace < 5, f"stop(timeout=0): SIGKILL {grace:.2f}s after SIGTERM"

    def test_kill_with_handled_signal_keeps_running(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(
            ["sh", "-c", 'trap "echo got-usr1" USR1; echo ready; while :; do usleep 50000; done']
        )
        poll(lambda: engine.containers.logs(c) == b"ready\n", message="the trap to be set")
        after = call_within(15, engine.containers.kill, c, signal="SIGUSR1")
        assert after.state is ContainerState.RUNNING
        assert after.exit_code is None
        poll(
            lambda: engine.containers.logs(c) == b"ready\ngot-usr1\n",
            message="the signal to reach the command",
        )
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_stop_signal_from_spec(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP, stop_signal="SIGINT")
        assert engine.containers.get(c).stop_signal == "SIGINT"
        stopped = engine.containers.stop(c, timeout=10)
        assert stopped.exit_code == 130

    def test_kill_is_137(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        killed = engine.containers.kill(c)
        assert killed.state is ContainerState.EXITED
        assert killed.exit_code == 137
        assert engine.containers.get(c).exit_code == 137

    def test_kill_sigterm_is_143(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        engine.containers.kill(c, signal="SIGTERM")
        assert engine.containers.wait(c, timeout=30) == 143
        got = engine.containers.get(c)
        assert got.state is ContainerState.EXITED
        assert got.exit_code == 143

    @pytest.mark.parametrize("code", [0, 1, 7, 255])
    def test_exit_codes(self, engine: Engine, run_container: ContainerFactory, code: int) -> None:
        c = run_container(["sh", "-c", f"exit {code}"])
        assert engine.containers.wait(c, timeout=30) == code
        got = engine.containers.get(c)
        assert got.state is ContainerState.EXITED
        assert got.exit_code == code
        # wait() on an exited container returns at once, with the same code
        assert call_within(10, engine.containers.wait, c) == code

    def test_restart_is_running(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        first = engine.containers.get(c)
        restarted = engine.containers.restart(c, timeout=1)
        assert restarted.state is ContainerState.RUNNING
        assert isinstance(restarted.pid, int) and restarted.pid > 0
        assert restarted.exit_code is None
        assert first.started_at is not None and restarted.started_at is not None
        assert restarted.started_at > first.started_at
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_restart_of_exited_is_running(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "test -e /tmp/again && exec sleep 100; touch /tmp/again"])
        assert engine.containers.wait(c, timeout=30) == 0
        restarted = engine.containers.restart(c, timeout=1)
        assert restarted.state is ContainerState.RUNNING
        assert restarted.exit_code is None

    def test_start_of_exited_runs_again(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "test -e /tmp/again && exit 4; touch /tmp/again; exit 3"])
        assert engine.containers.wait(c, timeout=30) == 3
        engine.containers.start(c)
        assert engine.containers.wait(c, timeout=30) == 4
        assert engine.containers.get(c).exit_code == 4

    def test_remove(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["true"])
        engine.containers.wait(c, timeout=30)
        assert engine.containers.remove(c) is None
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.id)
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.name)
        assert engine.containers.list(all=True, name=c.name) == []

    @pytest.mark.requires(Capability.MEMORY_LIMIT)
    def test_oom_kill_is_137(self, engine: Engine, run_container: ContainerFactory) -> None:
        # tail keeps everything after the last newline: /dev/zero has none.
        c = run_container(["sh", "-c", "head -c 200m /dev/zero | tail"], memory="16m")
        assert engine.containers.wait(c, timeout=60) == 137
        got = engine.containers.get(c)
        assert got.state is ContainerState.EXITED
        assert got.exit_code == 137
        assert got.oom_killed is True


class TestContainerIdempotence:
    def test_stop_of_exited_returns_it(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "exit 5"])
        engine.containers.wait(c, timeout=30)
        again = engine.containers.stop(c, timeout=1)
        assert again.id == c.id
        assert again.state is ContainerState.EXITED
        assert again.exit_code == 5

    def test_kill_of_exited_returns_it(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "exit 5"])
        engine.containers.wait(c, timeout=30)
        again = engine.containers.kill(c)
        assert again.id == c.id
        assert again.state is ContainerState.EXITED
        assert again.exit_code == 5

    def test_stop_and_kill_twice(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        assert engine.containers.kill(c).exit_code == 137
        assert engine.containers.kill(c).exit_code == 137
        assert engine.containers.stop(c).exit_code == 137

    @pytest.mark.requires(Capability.PAUSE)
    def test_unpause_of_running_returns_it(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        again = engine.containers.unpause(c)
        assert again.id == c.id
        assert again.state is ContainerState.RUNNING

    @pytest.mark.requires(Capability.PAUSE)
    def test_pause_of_created_is_conflict(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(SLEEP)
        with pytest.raises(Conflict):
            engine.containers.pause(c)
        assert engine.containers.get(c).state is ContainerState.CREATED

    @pytest.mark.requires(Capability.PAUSE)
    def test_pause_of_exited_is_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["true"])
        engine.containers.wait(c, timeout=30)
        with pytest.raises(Conflict):
            engine.containers.pause(c)
        assert engine.containers.get(c).state is ContainerState.EXITED

    @pytest.mark.requires(Capability.EXEC)
    def test_exec_in_exited_is_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["true"])
        engine.containers.wait(c, timeout=30)
        with pytest.raises(Conflict):
            engine.containers.exec(c, ["true"])

    @pytest.mark.requires(Capability.EXEC)
    def test_exec_in_created_is_conflict(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(SLEEP)
        with pytest.raises(Conflict):
            engine.containers.exec(c, ["true"])

    def test_remove_running_without_force_is_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        with pytest.raises(Conflict):
            engine.containers.remove(c)
        assert engine.containers.get(c).state is ContainerState.RUNNING
        assert engine.containers.remove(c, force=True) is None
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.id)

    @pytest.mark.requires(Capability.PAUSE)
    def test_remove_paused_without_force_is_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        engine.containers.pause(c)
        with pytest.raises(Conflict):
            engine.containers.remove(c)
        engine.containers.remove(c, force=True)
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.id)

    def test_remove_created_needs_no_force(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(SLEEP)
        engine.containers.remove(c)
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.id)

    def test_remove_missing_is_not_found(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["true"])
        engine.containers.remove(c, force=True)
        with pytest.raises(ContainerNotFound):
            engine.containers.remove(c.id)
        with pytest.raises(NotFound):
            engine.containers.remove(c.id, force=True)

    def test_create_with_missing_image(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        make_name: Callable[..., str],
    ) -> None:
        name = make_name()
        missing = f"enginekit-test/no-such-image:{name}"
        with pytest.raises(ImageNotFound):
            engine.containers.create(missing, ["true"], name=name, labels=labels)
        with pytest.raises(ImageNotFound):
            engine.containers.run(missing, ["true"], name=name, labels=labels)
        assert engine.containers.list(all=True, name=name) == []
        with pytest.raises(ContainerNotFound):
            engine.containers.get(name)
        assert not engine.images.exists(missing)

    def test_duplicate_name_is_conflict(
        self, engine: Engine, base_image: str, create_container: ContainerFactory
    ) -> None:
        first = create_container(SLEEP, labels={"enginekit.test.which": "first"})
        with pytest.raises(Conflict):
            create_container(["true"], name=first.name, labels={"enginekit.test.which": "second"})
        with pytest.raises(Conflict):
            engine.containers.run(base_image, ["true"], name=first.name)
        same = engine.containers.list(all=True, name=first.name)
        assert [c.id for c in same] == [first.id]
        assert engine.containers.get(first.name).labels["enginekit.test.which"] == "first"

    def test_command_as_string_is_invalid(
        self, engine: Engine, base_image: str, labels: dict[str, str], make_name: Callable[..., str]
    ) -> None:
        name = make_name()
        with pytest.raises(InvalidSpec):
            engine.containers.create(base_image, "echo hi", name=name, labels=labels)  # type: ignore[arg-type]
        with pytest.raises(InvalidSpec):
            engine.containers.run(
                base_image, ["true"], entrypoint="/bin/sh -c", name=name, labels=labels
            )
        assert engine.containers.list(all=True, name=name) == []


class TestContainerRefs:
    def test_every_ref_form(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        for ref in (c, c.id, c.id[:12], c.id[:20], c.name):
            got = engine.containers.get(ref)
            assert got.id == c.id, ref
            assert got.name == c.name, ref
        stopped = engine.containers.stop(c.name, timeout=10)
        assert stopped.id == c.id
        assert engine.containers.wait(c.id[:12]) == 143
        engine.containers.remove(c.id[:12])
        with pytest.raises(ContainerNotFound):
            engine.containers.get(c.id)

    @pytest.mark.parametrize(
        "ref",
        ["ekt-no-such-container", "0123456789ab", "f" * 64],
        ids=["name", "prefix", "full-id"],
    )
    def test_unknown_ref(self, engine: Engine, ref: str) -> None:
        svc = engine.containers
        for call in (
            lambda: svc.get(ref),
            lambda: svc.start(ref),
            lambda: svc.stop(ref),
            lambda: svc.kill(ref),
            lambda: svc.restart(ref),
            lambda: svc.wait(ref, timeout=5),
            lambda: svc.logs(ref),
            lambda: svc.remove(ref),
            lambda: svc.remove(ref, force=True),
        ):
            with pytest.raises(ContainerNotFound) as info:
                call()
            assert isinstance(info.value, NotFound)


class TestContainerWait:
    def test_wait_deadline(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout) as info:
            engine.containers.wait(c, timeout=0.5)
        elapsed = time.monotonic() - t0
        assert isinstance(info.value, TimeoutError)
        # Not before the deadline; after it, generously (a busy machine answers late,
        # a wait that ignored its deadline would run for the container's 100 s).
        assert 0.4 <= elapsed < 30, f"wait(timeout=0.5) took {elapsed:.2f}s"
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_wait_without_deadline(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "sleep 3; exit 6"])
        t0 = time.monotonic()
        assert call_within(60, engine.containers.wait, c, timeout=None) == 6
        assert time.monotonic() - t0 >= 2

    def test_deadlines_outlive_transport_timeouts(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        # A deadline belongs to the operation: a stop whose grace period and a
        # wait whose container both outlast a transport's read timeout (60 s in
        # enginekit.transport) still complete. Both run at once to save time.
        long_stop = run_container(["sh", "-c", 'trap "" TERM; echo ready; sleep 1000'])
        long_run = run_container(["sh", "-c", f"sleep {LONG}; exit 3"])
        poll(lambda: engine.containers.logs(long_stop) == b"ready\n", message="trap set")
        with ThreadPoolExecutor(max_workers=1) as pool:
            t0 = time.monotonic()
            stopping = pool.submit(engine.containers.stop, long_stop, timeout=LONG)
            assert engine.containers.wait(long_run, timeout=None) == 3
            waited = time.monotonic() - t0
            stopped = stopping.result(timeout=60)
            stop_took = time.monotonic() - t0
        assert waited >= LONG - 5
        assert stopped.exit_code == 137
        assert LONG - 1 <= stop_took < LONG + 30

    def test_wait_on_created_waits_for_start(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(["sh", "-c", "exit 9"])
        with pytest.raises(EngineTimeout):
            engine.containers.wait(c, timeout=0.5)
        assert engine.containers.get(c).state is ContainerState.CREATED
        engine.containers.start(c)
        assert engine.containers.wait(c, timeout=30) == 9

    def test_running_to_exited_by_itself(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "sleep 1; exit 2"])
        done = wait_state(engine, c, ContainerState.EXITED, timeout=30)
        assert done.exit_code == 2
