"""Streaming answers: log frames -> LogLine, and a response body as a file."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Generator, Iterator
from typing import Any

from enginekit.errors import EngineError, EngineTimeout
from enginekit.models import LogLine, Stream
from enginekit.transport import Response, Transport, demux_frames

from .convert import parse_time

__all__ = ["LogIterator", "ResponseStream", "log_lines"]

_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}
_PIECE = 16 * 1024  # Docker cuts a longer line into pieces of this size
_NONE: Any = object()
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


class ResponseStream(io.RawIOBase):
    """A response body as a readable raw file; closing it releases the connection."""

    def __init__(self, resp: Response, transport: Transport) -> None:
        super().__init__()
        self._resp = resp
        self._transport = transport

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._resp.fp.readinto(buffer))  # type: ignore[attr-defined]
        except TimeoutError as exc:
            self.close()
            raise EngineTimeout("docker: the stream stalled") from exc
        except OSError as exc:
            self.close()
            raise self._transport._unavailable(exc) from exc

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class LogIterator(Iterator[LogLine]):
    """Log lines read from an open response; :meth:`close` (or the end) releases it."""

    def __init__(self, resp: Response) -> None:
        self._resp = resp
        self._lines = log_lines(demux_frames(resp.iter_chunks()))

    def __next__(self) -> LogLine:
        try:
            return next(self._lines)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._lines.close()
        self._resp.close()

    def __enter__(self) -> LogIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def log_lines(frames: Iterator[tuple[int, bytes]]) -> Generator[LogLine, None, None]:
    """Frames ``<RFC3339Nano> <bytes>`` (logs with ``timestamps=1``) -> whole lines.

    Containers log through Docker's ``local`` driver, which keeps bytes as
    they were written (``json-file`` replaces invalid UTF-8). Docker cuts a
    line longer than 16 KiB into pieces, each a frame carrying the line's
    timestamp: the pieces of one stream are joined until a ``b"\\n"``. The
    ``local`` driver drops the newline of such a line's last piece (an empty
    last piece when the line was a multiple of 16 KiB): a piece that follows
    a 16 KiB piece of the same line gets it back. Bytes are never decoded. A
    last line without ``b"\\n"`` comes at the end (one longer than 16 KiB
    cannot be told from a terminated one, and is given its newline).
    """
    pending: dict[int, tuple[dt.datetime | None, bytes]] = {}
    cut: dict[int, dt.datetime | None] = {}  # stream -> timestamp of its last 16 KiB piece
    for number, payload in frames:
        stream = _STREAMS.get(number)
        if stream is None:
            if number == 3:  # the daemon's own error, sent in the stream
                raise EngineError("docker logs: " + payload.decode("utf-8", "replace").strip())
            continue
        stamp, sep, data = payload.partition(b" ")
        try:
            when = parse_time(stamp.decode("ascii")) if sep else None
        except ValueError:
            when = None
        if when is None:
            data = payload
        piece_of = cut.pop(number, _NONE)
        if len(data) == _PIECE and not data.endswith(b"\n"):
            cut[number] = when
        elif piece_of is not _NONE and piece_of == when and not data.endswith(b"\n"):
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
