"""Reliability: exec, pause, stop and remove of one container from several threads at once.

CONTRACT.md: ``exec`` of a container that is not running (paused included)
raises ``Conflict``; a missing container raises ``NotFound``. When another
thread pauses, stops or removes the container while execs start, each exec
either runs (an :class:`ExecResult` of the command itself) or fails as the
contract says for the state it met: ``Conflict`` (paused, stopping, stopped)
or ``ContainerNotFound`` (removed), never another error, never an exit code
the command did not give (a runtime's refusal reported as 126, an attach tool
failing with 1). Nothing hangs: every race is bounded in time. Once the
container is removed, none of its engine helpers stays on this machine
(:mod:`enginekit.testing.leaks`; checked where the engine runs here).

Each race: :data:`THREADS` threads x :data:`ROUNDS` execs against one
adversary thread. The outcomes are printed (``pytest -rP`` shows them).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import Conflict, ContainerNotFound, EngineError
from enginekit.models import ContainerState, ExecResult
from enginekit.testing import leaks

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

THREADS = 3
ROUNDS = 20
#: Seconds a whole race may take before it counts as hung.
RACE_LIMIT = 120.0
_HI = ["sh", "-c", "echo hi"]
# Exit codes of an exec whose process the stop killed (SIGKILL, SIGTERM).
_KILLED = (137, 143)


class _Race:
    """Runs execs in threads against an adversary; collects every outcome."""

    def __init__(self, engine: Engine, container: Container) -> None:
        self.engine = engine
        self.container = container
        self.outcomes: list[tuple[str, Any]] = []
        self.adversary: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.execs_done = threading.Event()

    def _exec_loop(self, start: threading.Barrier) -> None:
        start.wait()
        for _ in range(ROUNDS):
            try:
                outcome: tuple[str, Any] = (
                    "result",
                    self.engine.containers.exec(self.container, _HI),
                )
            except Exception as exc:
                outcome = (type(exc).__name__, exc)
            with self._lock:
                self.outcomes.append(outcome)

    def run(self, adversary: Callable[[_Race], None]) -> None:
        start = threading.Barrier(THREADS + 1)

        def adverse() -> None:
            start.wait()
            try:
                adversary(self)
            except Exception as exc:
                self.adversary.append((type(exc).__name__, exc))

        workers = [
            threading.Thread(target=self._exec_loop, args=(start,), daemon=True)
            for _ in range(THREADS)
        ]
        other = threading.Thread(target=adverse, daemon=True)
        for t in [*workers, other]:
            t.start()
        deadline = time.monotonic() + RACE_LIMIT
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        self.execs_done.set()
        other.join(max(0.0, deadline - time.monotonic()))
        hung = [t for t in [*workers, other] if t.is_alive()]
        assert not hung, (
            f"{len(hung)} of the race's threads did not finish in {RACE_LIMIT:g}s "
            f"(the engine hung); outcomes so far: {self.summary()}"
        )

    def summary(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        for kind, value in self.outcomes:
            counts[f"exec {kind}" + (f" {value.exit_code}" if kind == "result" else "")] += 1
        for kind, _ in self.adversary:
            counts[f"adversary {kind}"] += 1
        return dict(sorted(counts.items()))

    def unexpected(self, allowed: Callable[[str, Any], bool]) -> list[str]:
        return [f"{kind}: {value!r}" for kind, value in self.outcomes if not allowed(kind, value)]


def _said_hi(value: Any) -> bool:
    return isinstance(value, ExecResult) and (value.exit_code, value.stdout) == (0, b"hi\n")


def _assert_no_helpers_left(engine: Engine, container_id: str) -> None:
    """None of the removed container's engine helpers, mounts or directories stay."""
    overdue, waiting = leaks.leftovers(engine, [container_id])
    assert not overdue, "\n".join(leaks.describe(x) for x in overdue)
    if waiting:  # within the engine's own documented delay (Podman's exec conmon)
        print(f"{len(waiting)} helper processes end by themselves:", leaks.describe(waiting[0]))


def _remove(engine: Engine, container: Container) -> None:
    with contextlib.suppress(ContainerNotFound):
        engine.containers.remove(container, force=True)


@pytest.mark.requires(Capability.EXEC, Capability.PAUSE)
class TestReliabilityExecPauseRace:
    def test_exec_racing_pause_is_a_result_or_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])

        def pauser(race: _Race) -> None:
            cycles = 0
            while not race.execs_done.is_set() and cycles < 500:
                cycles += 1
                for step in (engine.containers.pause, engine.containers.unpause):
                    try:
                        got = step(c)
                        race.adversary.append(("ok", got.state))
                    except Conflict as exc:
                        race.adversary.append(("Conflict", exc))
                    time.sleep(0.003)

        race = _Race(engine, c)
        try:
            race.run(pauser)
            print(f"{engine.name}: exec racing pause/unpause: {race.summary()}")
            wrong = race.unexpected(lambda kind, value: kind == "Conflict" or _said_hi(value))
            assert not wrong, f"{len(wrong)} execs neither ran nor met Conflict: {wrong[:5]}"
            other = [a for a in race.adversary if a[0] not in ("ok", "Conflict")]
            assert not other, f"pause/unpause failed otherwise than Conflict: {other[:5]}"
            # The container is whole afterwards: running, and an exec runs.
            after = engine.containers.unpause(c)
            assert after.state is ContainerState.RUNNING
            assert _said_hi(engine.containers.exec(c, _HI))
        finally:
            _remove(engine, c)
        _assert_no_helpers_left(engine, c.id)

    def test_exec_in_paused_container_is_conflict_every_time(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])
        try:
            engine.containers.pause(c)
            outcomes = []
            for _ in range(5):
                try:
                    outcomes.append(repr(engine.containers.exec(c, _HI)))
                except Conflict:
                    outcomes.append("Conflict")
            assert outcomes == ["Conflict"] * 5
            engine.containers.unpause(c)
            assert _said_hi(engine.containers.exec(c, _HI))
        finally:
            _remove(engine, c)


@pytest.mark.requires(Capability.EXEC)
class TestReliabilityExecStopRace:
    def test_exec_racing_stop_is_a_result_or_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])

        def stopper(race: _Race) -> None:
            time.sleep(0.05)
            race.adversary.append(("ok", engine.containers.stop(c, timeout=0).state))

        race = _Race(engine, c)
        try:
            race.run(stopper)
            print(f"{engine.name}: exec racing stop: {race.summary()}")
            assert race.adversary == [("ok", ContainerState.EXITED)], race.adversary

            def allowed(kind: str, value: Any) -> bool:
                if kind == "Conflict":
                    return True
                return _said_hi(value) or (
                    isinstance(value, ExecResult) and value.exit_code in _KILLED
                )

            wrong = race.unexpected(allowed)
            assert not wrong, f"{len(wrong)} execs met the stop otherwise: {wrong[:5]}"
            with pytest.raises(Conflict):
                engine.containers.exec(c, _HI)
        finally:
            _remove(engine, c)
        _assert_no_helpers_left(engine, c.id)


@pytest.mark.requires(Capability.EXEC)
class TestReliabilityExecRemoveRace:
    def test_exec_racing_remove_is_a_result_conflict_or_not_found(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])

        def remover(race: _Race) -> None:
            time.sleep(0.05)
            engine.containers.remove(c, force=True)
            race.adversary.append(("ok", None))

        race = _Race(engine, c)
        try:
            race.run(remover)
            print(f"{engine.name}: exec racing remove: {race.summary()}")
            assert race.adversary == [("ok", None)], race.adversary

            def allowed(kind: str, value: Any) -> bool:
                if kind in ("Conflict", "ContainerNotFound"):
                    return True
                return _said_hi(value) or (
                    isinstance(value, ExecResult) and value.exit_code in _KILLED
                )

            wrong = race.unexpected(allowed)
            assert not wrong, f"{len(wrong)} execs met the removal otherwise: {wrong[:5]}"
            with pytest.raises(ContainerNotFound):
                engine.containers.get(c.id)
        finally:
            _remove(engine, c)
        _assert_no_helpers_left(engine, c.id)


@pytest.mark.requires(Capability.PAUSE)
class TestReliabilityPauseStopRace:
    def test_pause_racing_stop_is_a_result_or_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])
        seen: list[tuple[str, Any]] = []
        stopped: list[ContainerState] = []
        done = threading.Event()

        def pauser() -> None:
            for _ in range(200):
                if done.is_set():
                    return
                for step in (engine.containers.pause, engine.containers.unpause):
                    try:
                        seen.append(("ok", step(c).state))
                    except EngineError as exc:
                        seen.append((type(exc).__name__, exc))

        t = threading.Thread(target=pauser, daemon=True)
        try:
            t.start()
            time.sleep(0.1)
            try:
                stopped.append(engine.containers.stop(c, timeout=0).state)
            except Conflict:
                # The container was being paused or thawed as the stop came
                # (Podman refuses its clean-up then): a Conflict, and the
                # container still stops.
                stopped.append(ContainerState.PAUSED)
            time.sleep(0.1)
            done.set()
            t.join(RACE_LIMIT)
            assert not t.is_alive(), "pause/unpause did not finish (the engine hung)"
            print(
                f"{engine.name}: pause racing stop: stop {stopped}, "
                f"pause/unpause {dict(collections.Counter(k for k, _ in seen))}"
            )
            wrong = [s for s in seen if s[0] not in ("ok", "Conflict")]
            assert not wrong, f"pause/unpause met the stop otherwise than Conflict: {wrong[:5]}"
            # Whatever the stop met, a stop now leaves the container exited.
            assert engine.containers.stop(c, timeout=0).state is ContainerState.EXITED
        finally:
            done.set()
            _remove(engine, c)
        _assert_no_helpers_left(engine, c.id)


@pytest.mark.requires(Capability.EXEC)
class TestReliabilityExecOwn126:
    """A 126 the command itself gives stays an ExecResult (not a Conflict)."""

    @pytest.mark.parametrize(
        "command",
        [["/etc/passwd"], ["sh", "-c", "exit 126"]],
        ids=["not-executable", "exit-126"],
    )
    def test_own_126_is_a_result(
        self, engine: Engine, run_container: ContainerFactory, command: list[str]
    ) -> None:
        c = run_container(["sleep", "600"])
        try:
            result = engine.containers.exec(c, command)
            assert result.exit_code == 126, result
            assert engine.containers.get(c).state is ContainerState.RUNNING
        finally:
            _remove(engine, c)
