"""enginekit.logstream: a log stream closed at any time, from any thread.

LogStream over driver iterators that block (with and without ``abort``), and
ClosableLines over a real HTTP response that never ends (a unix socket server
in the test), interrupted with ``Response.abort``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enginekit.errors import EngineError
from enginekit.logstream import Abortable, ClosableLines, LineJoiner, LogStream
from enginekit.models import LogLine, Stream
from enginekit.transport import Transport

LINE = LogLine(stream=Stream.STDOUT, data=b"x\n", timestamp=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


class Blocking:
    """A driver iterator: one line, then a read that blocks until released."""

    def __init__(self, *, abortable: bool) -> None:
        self.gate = threading.Event()
        self.first = True
        self.closed_in: list[str] = []
        self.reading = False
        if abortable:
            self.abort = self.gate.set

    def __iter__(self) -> Blocking:
        return self

    def __next__(self) -> LogLine:
        if self.first:
            self.first = False
            return LINE
        self.reading = True
        try:
            self.gate.wait(10)
            raise EngineError("the read was broken off")
        finally:
            self.reading = False

    def close(self) -> None:
        assert not self.reading, "closed while a thread was inside next()"
        self.closed_in.append(threading.current_thread().name)


def _until(condition: Callable[[], object], what: str) -> None:
    """Wait (10 s at most) until ``condition()`` holds."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within 10 s"
        time.sleep(0.01)


def _reader(stream: LogStream) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []

    def run() -> None:
        try:
            got.extend(stream)
        except BaseException as exc:
            got.append(exc)

    thread = threading.Thread(target=run, name="reader", daemon=True)
    thread.start()
    return thread, got


def test_close_from_another_thread_aborts_and_the_reader_closes() -> None:
    inner = Blocking(abortable=True)
    stream = LogStream(inner)
    thread, got = _reader(stream)
    _until(lambda: inner.reading, "the reader blocked in its read")
    start = time.monotonic()
    stream.close()
    # Without waiting for the reader: the blocked read ends only when aborted, and
    # its gate would hold it 10 s (generous for a busy machine, short of that).
    assert time.monotonic() - start < 5
    thread.join(2)
    assert not thread.is_alive()
    assert got == [LINE]  # the broken-off read is not reported: the loop just ends
    assert inner.closed_in == ["reader"]
    stream.close()
    assert inner.closed_in == ["reader"]
    with pytest.raises(StopIteration):
        next(stream)


def test_without_abort_the_reader_ends_at_its_next_line() -> None:
    inner = Blocking(abortable=False)
    stream = LogStream(inner)
    thread, got = _reader(stream)
    _until(lambda: inner.reading, "the reader blocked in its read")
    stream.close()  # returns at once, raises nothing
    assert thread.is_alive() and inner.closed_in == []
    inner.gate.set()
    thread.join(2)
    assert got == [LINE] and inner.closed_in == ["reader"]


def test_close_before_the_first_line_and_with() -> None:
    inner = Blocking(abortable=True)
    stream = LogStream(inner)
    stream.close()
    assert inner.closed_in == [threading.current_thread().name]
    assert list(stream) == []
    inner2 = Blocking(abortable=True)
    with LogStream(inner2) as s2:
        assert next(s2) == LINE
    assert len(inner2.closed_in) == 1
    with pytest.raises(StopIteration):
        next(s2)


def test_an_error_not_asked_for_is_raised_then_the_stream_ends() -> None:
    inner = Blocking(abortable=True)
    inner.gate.set()
    stream = LogStream(inner)
    assert next(stream) == LINE
    with pytest.raises(EngineError, match="broken off"):
        next(stream)
    assert len(inner.closed_in) == 1
    with pytest.raises(StopIteration):
        next(stream)


def test_two_readers_at_once_is_an_engine_error() -> None:
    inner = Blocking(abortable=True)
    stream = LogStream(inner)
    next(stream)
    thread, _ = _reader(stream)
    _until(lambda: inner.reading, "the reader blocked in its read")
    with pytest.raises(EngineError, match="one thread at a time"):
        next(stream)
    stream.close()
    thread.join(2)
    assert not thread.is_alive()


def _never_ending(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n")
    conn.recv(1)  # until the client goes away
    conn.close()


@pytest.fixture
def endless(tmp_path: Path) -> Iterator[Transport]:
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    handlers: list[threading.Thread] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            thread = threading.Thread(target=_never_ending, args=(conn,), daemon=True)
            thread.start()
            handlers.append(thread)

    threading.Thread(target=accept, daemon=True).start()
    transport = Transport(f"unix://{path}")
    yield transport
    transport.close()
    server.close()
    for thread in handlers:
        thread.join(5)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_response_abort_wakes_a_blocked_reader_and_releases_the_socket(
    endless: Transport,
) -> None:
    before = _fds()
    resp = endless.request("GET", "/logs", timeout=None)

    def lines() -> Iterator[LogLine]:
        for chunk in resp.iter_chunks():
            yield LogLine(stream=Stream.STDOUT, data=chunk, timestamp=None)

    stream = LogStream(ClosableLines(lines(), abort=resp.abort, release=resp.close))
    assert isinstance(stream._inner, Abortable)
    thread, got = _reader(stream)
    _until(lambda: got, "the reader got the first line")
    assert thread.is_alive()
    stream.close()
    thread.join(2)
    assert not thread.is_alive()
    assert [line.data for line in got if isinstance(line, LogLine)] == [b"ab\n"]
    assert all(isinstance(x, LogLine) for x in got), got
    deadline = time.monotonic() + 5  # the server's side of the socket closes too
    while _fds() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _fds() <= before
    resp.abort()  # after the close: a no-op


# -- LineJoiner: log frames into lines ------------------------------------------------


def _stamped(stamp: str, data: bytes) -> bytes:
    return stamp.encode() + b" " + data


def test_frames_of_a_stream_are_joined_until_a_newline() -> None:
    t1, t2 = "2026-01-01T00:00:01.000000001Z", "2026-01-01T00:00:02Z"
    frames = [
        (1, _stamped(t1, b"hel")),
        (2, _stamped(t1, b"err\n")),
        (1, _stamped(t2, b"lo\nnext\n")),
        (0, b"stdin is not shown"),
        (1, _stamped(t2, b"\xff unterminated")),
    ]
    lines = list(LineJoiner(what="x logs").join(frames))
    first = dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    second = dt.datetime(2026, 1, 1, 0, 0, 2, tzinfo=dt.UTC)
    assert [(line.stream, line.data, line.timestamp) for line in lines] == [
        (Stream.STDERR, b"err\n", first),
        (Stream.STDOUT, b"hello\n", first),  # the stamp of its first part
        (Stream.STDOUT, b"next\n", second),
        (Stream.STDOUT, b"\xff unterminated", second),
    ]


def test_unfinished_lines_come_last_oldest_first() -> None:
    frames = [
        (2, _stamped("2026-01-01T00:00:02Z", b"late")),
        (1, _stamped("2026-01-01T00:00:01Z", b"early")),
    ]
    lines = list(LineJoiner().join(frames))
    assert [line.data for line in lines] == [b"early", b"late"]


def test_a_payload_without_a_stamp_is_data_as_it_is() -> None:
    lines = list(LineJoiner().join([(1, b"no stamp here\n"), (1, b"0001-01-01T00:00:00Z x\n")]))
    assert [(line.data, line.timestamp) for line in lines] == [
        (b"no stamp here\n", None),
        (b"0001-01-01T00:00:00Z x\n", None),  # Go's zero time is no stamp
    ]


def test_the_engines_own_error_in_the_stream_is_raised() -> None:
    joined = LineJoiner(timestamps=False, what="x logs").join([(3, b"gone\n")])
    with pytest.raises(EngineError, match="x logs: gone"):
        next(joined)


@pytest.mark.parametrize(("ended", "last"), [(True, b"tail\n"), (False, b"tail")])
def test_a_cut_lines_last_piece_gets_its_newline_back_when_it_ended_the_line(
    ended: bool, last: bytes
) -> None:
    stamp = "2026-01-01T00:00:01.000000007Z"
    asked: list[tuple[str, int, int]] = []

    def ends(stream: str, nanos: int, ordinal: int) -> bool:
        asked.append((stream, nanos, ordinal))
        return ended

    frames = [
        (1, _stamped(stamp, b"ab")),
        (1, _stamped(stamp, b"cd")),
        (1, _stamped(stamp, b"tail")),
    ]
    lines = list(LineJoiner(piece=2, ends_line=ends).join(frames))
    assert [line.data for line in lines] == [b"abcd" + last]
    assert asked == [("stdout", 1_767_225_601_000_000_007, 3)]
