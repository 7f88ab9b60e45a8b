"""Streaming answers: log frames -> LogLine, and a response body as a file."""

from __future__ import annotations

import datetime as dt
import heapq
import http.client
import io
from collections.abc import Callable, Generator, Iterator
from typing import Any

from enginekit.errors import EngineError, EngineTimeout
from enginekit.logstream import ClosableLines
from enginekit.models import LogLine, Stream
from enginekit.timeutil import parse_rfc3339
from enginekit.transport import Response, demux_frames

from .convert import unix_nanos

EndsLine = Callable[[str, int, int], bool]

__all__ = ["EndsLine", "LogIterator", "ResponseStream", "in_time_order", "log_lines"]

_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}
_PIECE = 16 * 1024  # Docker cuts a longer line into pieces of this size
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


class ResponseStream(io.RawIOBase):
    """A response body as a readable raw file; closing it releases the connection."""

    def __init__(self, resp: Response, address: str) -> None:
        super().__init__()
        self._resp = resp
        self._address = address

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._resp.fp.readinto(buffer))  # type: ignore[attr-defined]
        except TimeoutError as exc:
            self.close()
            raise EngineTimeout("docker: the stream stalled") from exc
        except (OSError, http.client.HTTPException) as exc:
            # The daemon answered and stopped: not a daemon that is not there.
            self.close()
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise EngineError(f"docker broke off the stream ({reason})") from exc

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class LogIterator(ClosableLines):
    """Log lines read from an open response; :meth:`close` (or the end) releases it,
    :meth:`abort` wakes a read blocked in another thread (the socket is shut down).

    ``ordered``: lines in time order (see :func:`in_time_order`), for a log
    read to its end; a followed log is handed on as it comes.
    """

    def __init__(
        self, resp: Response, *, ends_line: EndsLine | None = None, ordered: bool = False
    ) -> None:
        lines = log_lines(demux_frames(resp.iter_chunks()), ends_line=ends_line)
        super().__init__(
            in_time_order(lines) if ordered else lines, abort=resp.abort, release=resp.close
        )


def log_lines(
    frames: Iterator[tuple[int, bytes]], *, ends_line: EndsLine | None = None
) -> Generator[LogLine, None, None]:
    """Frames ``<RFC3339Nano> <bytes>`` (logs with ``timestamps=1``) -> whole lines.

    Containers log through Docker's ``local`` driver, which keeps bytes as
    they were written (``json-file`` replaces invalid UTF-8). Docker cuts a
    line longer than 16 KiB into pieces, each a frame carrying the line's
    timestamp: the pieces of one stream are joined until a ``b"\\n"``. The
    ``local`` driver's reader drops the newline of a long line's last piece
    (an empty last piece when the line was a multiple of 16 KiB), and a long
    unterminated last line looks the same: for a piece that follows 16 KiB
    pieces of its line without a newline, ``ends_line(source, time_nano,
    ordinal)`` says whether it ended the line (see :mod:`.locallog`; without
    it, it did). Bytes are never decoded. A last line without ``b"\\n"``
    comes at the end.
    """
    pending: dict[int, tuple[dt.datetime | None, bytes]] = {}
    # stream -> (nanoseconds, count) of the 16 KiB pieces of its current line
    cut: dict[int, tuple[int | None, int]] = {}
    for number, payload in frames:
        stream = _STREAMS.get(number)
        if stream is None:
            if number == 3:  # the daemon's own error, sent in the stream
                raise EngineError("docker logs: " + payload.decode("utf-8", "replace").strip())
            continue
        stamp, sep, data = payload.partition(b" ")
        text = stamp.decode("ascii", "replace")
        try:
            when = parse_rfc3339(text) if sep else None
        except ValueError:
            when = None
        if when is None:
            data = payload
        nanos = unix_nanos(text) if when is not None else None
        before = cut.pop(number, None)
        pieces = before[1] if before is not None and before[0] == nanos else 0
        if len(data) == _PIECE and not data.endswith(b"\n"):
            cut[number] = (nanos, pieces + 1)
        elif pieces and not data.endswith(b"\n") and _ends(ends_line, stream, nanos, pieces + 1):
            data += b"\n"
        first, buf = pending.pop(number, (when, b""))
        *lines, rest = (buf + data).split(b"\n")
        for line in lines:
            yield LogLine(stream=stream, data=line + b"\n", timestamp=first)
            first = when
        if rest:
            pending[number] = (first, rest)
    for number in sorted(pending, key=lambda n: pending[n][0] or _LATEST):
        first, rest = pending[number]
        yield LogLine(stream=_STREAMS[number], data=rest, timestamp=first)


#: How far out of place a line can come: stdout and stderr are copied to the
#: log by two goroutines, which stamp a line as they read it and can write
#: the later one first (seen on Docker 20.10 under load: microseconds apart).
_REORDER_WINDOW = 64


def in_time_order(
    lines: Iterator[LogLine], window: int = _REORDER_WINDOW
) -> Generator[LogLine, None, None]:
    """``lines`` sorted by timestamp within a sliding ``window``; lines of the
    same time keep their order, so each stream keeps its own."""
    heap: list[tuple[dt.datetime, int, LogLine]] = []
    last = _EARLIEST
    try:
        for seq, line in enumerate(lines):
            last = line.timestamp or last  # an unstamped line stays where it came
            heapq.heappush(heap, (last, seq, line))
            if len(heap) > window:
                yield heapq.heappop(heap)[2]
        while heap:
            yield heapq.heappop(heap)[2]
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def _ends(ends_line: EndsLine | None, stream: Stream, nanos: int | None, ordinal: int) -> bool:
    return ends_line is None or nanos is None or ends_line(stream.value, nanos, ordinal)
