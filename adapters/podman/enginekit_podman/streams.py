"""Whole log lines out of libpod's multiplexed log frames.

Conmon's log file (``k8s-file``) keeps a line longer than its buffer (8 KiB)
as several partial entries, and ``GET /libpod/containers/{id}/logs`` sends one
frame per entry, each with its own timestamp prefix when asked. Frames of
one stream are joined here until a newline ends the line; bytes are never
decoded. A line's timestamp is that of its first part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from enginekit.logstream import ClosableLines
from enginekit.models import LogLine, Stream
from enginekit.transport import Response, demux_frames

from .convert import parse_time

__all__ = ["LineJoiner", "LogIterator", "log_lines"]

_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}


def _split_timestamp(payload: bytes) -> tuple[dt.datetime | None, bytes]:
    head, sep, rest = payload.partition(b" ")
    if not sep:
        return None, payload
    stamp = parse_time(head.decode("ascii", "replace"))
    if stamp is None:
        return None, payload
    return stamp, rest


class LineJoiner:
    """Frames in, whole lines out, one frame at a time (what :func:`log_lines`
    does for a whole stream; a follow feeds it frame by frame across reads)."""

    def __init__(self, *, timestamps: bool = True) -> None:
        self._timestamps = timestamps
        self._pending: dict[int, tuple[dt.datetime | None, bytearray]] = {}

    def feed(self, stream: int, payload: bytes) -> Iterator[LogLine]:
        """The lines this frame ends (none while a line is still open)."""
        kind = _STREAMS.get(stream)
        if kind is None:
            return
        timestamps = self._timestamps
        stamp, data = _split_timestamp(payload) if timestamps else (None, payload)
        pending = self._pending
        if stream in pending:
            first_stamp, buf = pending[stream]
        else:
            first_stamp, buf = stamp, bytearray()
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            yield LogLine(stream=kind, data=bytes(buf[start : end + 1]), timestamp=first_stamp)
            first_stamp = stamp
            start = end + 1
        if start == len(buf):
            pending.pop(stream, None)
        elif start == 0:
            pending[stream] = (first_stamp, buf)
        else:
            pending[stream] = (first_stamp, bytearray(buf[start:]))

    def flush(self) -> Iterator[LogLine]:
        """What is left without a newline, one line per stream (the end of the log)."""
        pending, self._pending = self._pending, {}
        for stream, (stamp, buf) in pending.items():
            if buf:
                yield LogLine(stream=_STREAMS[stream], data=bytes(buf), timestamp=stamp)


def log_lines(frames: Iterable[tuple[int, bytes]], *, timestamps: bool) -> Iterator[LogLine]:
    """Join ``(stream, payload)`` frames into :class:`LogLine` objects.

    With ``timestamps`` each payload starts with ``<RFC 3339> `` (what libpod
    sends for ``timestamps=true``). A trailing part without a newline is
    given as the last line of its stream.
    """
    joiner = LineJoiner(timestamps=timestamps)
    for stream, payload in frames:
        yield from joiner.feed(stream, payload)
    yield from joiner.flush()


class LogIterator(ClosableLines):
    """Log lines read from an open response (the last ``tail`` only, if given).

    :meth:`close` (or the end) releases the response; :meth:`abort` wakes a
    read blocked in another thread (the socket is shut down).
    """

    def __init__(self, resp: Response, *, tail: int | None = None) -> None:
        lines = log_lines(demux_frames(resp.iter_chunks()), timestamps=True)
        super().__init__(
            lines if tail is None else _last(lines, tail), abort=resp.abort, release=resp.close
        )


def _last(lines: Iterator[LogLine], tail: int) -> Iterator[LogLine]:
    """The last ``tail`` lines, counted here (libpod is asked for a tail only with follow)."""
    if tail == 0:
        return
    kept: list[LogLine] = []
    for line in lines:
        kept.append(line)
        if len(kept) > 2 * tail + 64:
            del kept[:-tail]
    yield from kept[-tail:]
