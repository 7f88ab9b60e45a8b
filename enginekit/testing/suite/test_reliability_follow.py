"""Reliability: a follow (``stream_logs(..., follow=True)``) closed at any time, from any thread.

CONTRACT.md, "Containers": a follow ends when the container exits and can be
closed at any time. ``close()`` returns at once and raises nothing, from the
reading thread or from another one; a reader blocked waiting for output that
never comes ends within a second, its ``for`` loop simply ending (no
exception); closing twice, closing before the first line, closing after the
end and ``with`` all behave; the container is left as it was; and nothing is
left behind in the process: no thread and no open file descriptor (socket,
pipe or log file).

Each test follows through an Engine of its own and closes it at the end, so
the count of open descriptors compares without the pooled connections of the
suite's shared Engine; a connection a follow failed to release is not pooled,
so it still counts.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

import enginekit
from enginekit import ContainerState, LogLine
from enginekit.errors import EngineError
from enginekit.testing.helpers import call_within

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

#: Seconds within which close() returns and a blocked reader ends after it: at
#: once, bounded generously for a busy machine (a close that waited for the next
#: line of a silent container, or for its exit, would never end).
_PROMPT = 5.0
#: A container that prints one line, then nothing while it lives.
_SILENT = ["sh", "-c", "echo ready; exec sleep 600"]
#: A container that prints a line every 0.1 s.
_CHATTY = ["sh", "-c", "while :; do echo tick; usleep 100000; done"]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Baseline:
    """Threads and open descriptors of this process, to compare with later."""

    def __init__(self) -> None:
        self.threads = threading.active_count()
        self.fds = _fds()

    def assert_back(self, what: str, within: float = 5.0) -> None:
        """Both counts back to the baseline (waiting ``within`` s for threads to end)."""
        deadline = time.monotonic() + within
        while True:
            threads, fds = threading.active_count(), _fds()
            if threads <= self.threads and fds <= self.fds:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        names = sorted(t.name for t in threading.enumerate())
        pytest.fail(
            f"{what}: {threads} threads (before: {self.threads}: {names}), "
            f"{fds} open descriptors (before: {self.fds}): {_fd_targets()}"
        )


def _fd_targets() -> list[str]:
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue
    return out


class _Reader:
    """A thread iterating a follow with ``for``: what it got, how it ended, when."""

    def __init__(self, stream: Iterator[LogLine]) -> None:
        self.stream = stream
        self.lines: list[LogLine] = []
        self.error: BaseException | None = None
        self.first = threading.Event()
        self.ended_at: float | None = None
        self.thread = threading.Thread(target=self._run, name="follow-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for line in self.stream:
                self.lines.append(line)
                self.first.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.first.set()


def _close(stream: Iterator[LogLine]) -> None:
    close: Callable[[], None] | None = getattr(stream, "close", None)
    assert close is not None, "stream_logs must return a closable iterator"
    close()


def _timed_close(stream: Iterator[LogLine]) -> float:
    """Close ``stream`` in this thread; how long close() took (it must not raise)."""
    start = time.monotonic()
    _close(stream)
    return time.monotonic() - start


def _ends_cleanly(reader: _Reader, closed_at: float, what: str) -> None:
    reader.thread.join(_PROMPT + 0.5)
    assert not reader.thread.is_alive(), f"{what}: the reader still blocks after close()"
    assert reader.ended_at is not None
    took = reader.ended_at - closed_at
    assert took < _PROMPT, f"{what}: the reader ended {took:.2f}s after close()"
    assert reader.error is None, f"{what}: the reader's loop raised {reader.error!r}"


def _state(eng: Engine, c: Container) -> ContainerState:
    return eng.containers.get(c).state


class TestReliabilityFollowClose:
    @pytest.fixture
    def follower(self, engine_name: str) -> Iterator[Callable[[], Engine]]:
        """``follower()``: a new Engine on the engine under test (closed at teardown)."""
        made: list[Engine] = []

        def make() -> Engine:
            made.append(enginekit.connect(engine_name))
            return made[-1]

        yield make
        for eng in made:
            eng.close()

    def test_close_from_another_thread_while_the_reader_blocks(
        self, engine: Engine, run_container: ContainerFactory, follower: Callable[[], Engine]
    ) -> None:
        c = run_container(_SILENT)
        base = _Baseline()
        eng = follower()
        stream = eng.containers.stream_logs(c, follow=True)
        reader = _Reader(stream)
        assert reader.first.wait(30), "the first line never came"
        assert [line.data for line in reader.lines] == [b"ready\n"], reader.error
        time.sleep(0.5)  # the reader now waits for output that never comes
        assert reader.thread.is_alive(), f"the follow ended by itself: {reader.error!r}"
        closed_at = time.monotonic()
        took = call_within(10, _timed_close, stream)
        assert took < _PROMPT, f"close() from another thread took {took:.2f}s"
        _ends_cleanly(reader, closed_at, "close() from another thread")
        assert [line.data for line in reader.lines] == [b"ready\n"]
        with pytest.raises(StopIteration):
            next(stream)
        call_within(10, _close, stream)  # a second close is a no-op
        assert _state(eng, c) is ContainerState.RUNNING
        eng.close()
        base.assert_back("after a follow closed from another thread")
        del stream  # kept alive until here: nothing may rely on garbage collection

    def test_close_in_the_reading_thread(
        self, engine: Engine, run_container: ContainerFactory, follower: Callable[[], Engine]
    ) -> None:
        c = run_container(_CHATTY)
        base = _Baseline()
        eng = follower()
        streams: list[Iterator[LogLine]] = []

        def between_items() -> None:
            stream = eng.containers.stream_logs(c, follow=True)
            streams.append(stream)
            assert [next(stream).data for _ in range(3)] == [b"tick\n"] * 3
            _close(stream)
            with pytest.raises(StopIteration):
                next(stream)
            _close(stream)

        def before_the_first_line() -> None:
            stream = eng.containers.stream_logs(c, follow=True)
            streams.append(stream)
            _close(stream)
            with pytest.raises(StopIteration):
                next(stream)
            assert list(stream) == []
            _close(stream)

        def with_block() -> None:
            with eng.containers.stream_logs(c, follow=True) as stream:
                streams.append(stream)
                assert next(stream).data == b"tick\n"
            with pytest.raises(StopIteration):
                next(stream)

        def loop_broken_off() -> None:
            stream = eng.containers.stream_logs(c, follow=True)
            streams.append(stream)
            for n, _line in enumerate(stream):
                if n == 4:
                    _close(stream)
            # the loop ended after the close, without an exception

        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always", ResourceWarning)
            for step in (between_items, before_the_first_line, with_block, loop_broken_off):
                call_within(30, step)
            assert _state(eng, c) is ContainerState.RUNNING
            eng.close()
            base.assert_back("after follows closed in the reading thread")
            streams.clear()
            gc.collect()
        # Released by close(), not when the garbage collector finds them.
        unclosed = [str(w.message) for w in warned if issubclass(w.category, ResourceWarning)]
        assert unclosed == []

    def test_follow_ended_by_exit_then_closed(
        self, engine: Engine, run_container: ContainerFactory, follower: Callable[[], Engine]
    ) -> None:
        c = run_container(["sh", "-c", "echo a; usleep 500000; echo b >&2; usleep 500000; exit 3"])
        base = _Baseline()
        eng = follower()
        stream = eng.containers.stream_logs(c, follow=True)
        reader = _Reader(stream)
        reader.thread.join(30)
        assert not reader.thread.is_alive(), "the follow did not end when the container exited"
        assert reader.error is None, reader.error
        assert [line.data for line in reader.lines] == [b"a\n", b"b\n"]
        call_within(10, _close, stream)  # closing after the end is a no-op
        call_within(10, _close, stream)
        # A follow of the exited container: ends by itself, or closed early.
        assert eng.containers.wait(c, timeout=30) == 3
        again = eng.containers.stream_logs(c, follow=True)
        replayed: list[LogLine] = call_within(30, list, again)
        assert [line.data for line in replayed] == [b"a\n", b"b\n"]
        early = eng.containers.stream_logs(c, follow=True)
        assert call_within(30, next, early).data == b"a\n"
        call_within(10, _close, early)
        with pytest.raises(StopIteration):
            next(early)
        eng.close()
        base.assert_back("after follows ended by the container's exit")
        del stream, again, early

    def test_many_follows_opened_and_closed(
        self, engine: Engine, run_container: ContainerFactory, follower: Callable[[], Engine]
    ) -> None:
        silent = run_container(_SILENT)
        chatty = run_container(_CHATTY)
        base = _Baseline()
        eng = follower()
        streams: list[Iterator[LogLine]] = []
        errors: list[str] = []
        for n in range(20):
            c = silent if n % 2 else chatty
            stream = eng.containers.stream_logs(c, follow=True)
            streams.append(stream)
            reader = _Reader(stream)
            if n % 4 < 2:  # else closed at once, perhaps before the reader began
                assert reader.first.wait(30), f"follow {n}: no first line"
                time.sleep(0.1)
            closed_at = time.monotonic()
            try:
                took = call_within(10, _timed_close, stream)
            except Exception as exc:  # a raw exception is the failure being tested
                errors.append(f"follow {n}: close() raised {exc!r}")
                reader.thread.join(1)
                continue
            if took >= _PROMPT:
                errors.append(f"follow {n}: close() took {took:.2f}s")
            reader.thread.join(_PROMPT + 0.5)
            if reader.thread.is_alive() or reader.ended_at is None:
                errors.append(f"follow {n}: the reader still blocks after close()")
            elif reader.ended_at - closed_at >= _PROMPT:
                errors.append(f"follow {n}: the reader ended after {reader.ended_at - closed_at}s")
            if reader.error is not None:
                errors.append(f"follow {n}: the reader's loop raised {reader.error!r}")
        assert errors == []
        assert _state(eng, silent) is ContainerState.RUNNING
        assert _state(eng, chatty) is ContainerState.RUNNING
        eng.close()
        base.assert_back("after 20 follows opened and closed")
        del streams

    def test_only_engine_errors_leave_a_closed_follow(
        self, engine: Engine, run_container: ContainerFactory, follower: Callable[[], Engine]
    ) -> None:
        """A follow whose container is removed under it ends or raises an EngineError;
        closing it afterwards from another thread raises nothing."""
        c = run_container(_SILENT)
        eng = follower()
        stream = eng.containers.stream_logs(c, follow=True)
        reader = _Reader(stream)
        assert reader.first.wait(30), "the first line never came"
        engine.containers.remove(c, force=True)
        reader.thread.join(30)
        assert not reader.thread.is_alive(), "the follow outlived its container"
        assert reader.error is None or isinstance(reader.error, EngineError), reader.error
        call_within(10, _close, stream)
