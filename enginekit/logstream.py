"""The iterator ``containers.stream_logs`` returns, and what drivers give it.

A follow can be closed at any time, from any thread. :class:`LogStream` (what
the user holds) owns the closed state; a driver's log iterator may offer an
``abort()`` that wakes a read blocked in another thread (:class:`Abortable`);
:class:`ClosableLines` is that iterator for a driver whose lines come from a
generator over something it can interrupt (a socket to shut down, an event a
poll loop waits on). :class:`LineJoiner` turns an engine's log frames (Docker's
and libpod's multiplexed stream) into whole lines.

The rules, for the user:

* ``close()`` never raises and returns at once, from any thread; closing twice,
  before the first line, after the end or by leaving a ``with`` block is fine.
* A ``for`` loop over a closed stream simply ends (``StopIteration``): also a
  loop blocked in another thread, which ends within moments of the close when
  the driver can abort its read (every bundled adapter can). A line that
  arrives while the close happens is dropped, and an error the interrupted read
  raises is not reported (the user asked for the end).
* Everything the follow held (connection, file, buffers) is released by the
  close, or by the reading thread as it leaves; no thread is started.

Driver generators are never closed while they run: the thread that calls
``close()`` while another reads only aborts, and the reader closes them on its
way out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from ._guard import _guard
from .errors import EngineError
from .models import LogLine, Stream
from .timeutil import parse_rfc3339, unix_nanos

__all__ = ["Abortable", "ClosableLines", "EndsLine", "LineJoiner", "LogStream"]

#: Whether a last piece of a cut line ended it: ``(stream, stamp in
#: nanoseconds, which piece)`` -> bool (see :class:`LineJoiner`).
EndsLine = Callable[[str, int, int], bool]

_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


@runtime_checkable
class Abortable(Protocol):
    """A driver log iterator that can be interrupted from another thread."""

    def abort(self) -> None:
        """Wake a ``next()`` blocked in another thread, which then ends
        (``StopIteration``) or raises soon after; later ``next()`` calls end.
        Callable from any thread, at any time, any number of times; releases
        nothing itself (``close()``, called afterwards from the reading side,
        does) and never raises."""


class LogStream(Iterator[LogLine]):
    """Log lines of a container, closable at any time from any thread.

    Iterate it (one thread at a time), and ``close()`` it (or use it as a
    context manager) to stop early. Only ``enginekit.errors`` leave it.
    """

    def __init__(self, inner: Iterator[LogLine]) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._reading = False
        self._closed = False
        self._released = False

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> LogLine:
        with self._lock:
            if self._closed:
                raise StopIteration
            if self._reading:
                raise EngineError("a log stream is read by one thread at a time")
            self._reading = True
        line: LogLine | None = None
        try:
            line = self._read()
        except StopIteration:
            with self._lock:
                self._closed = True
            raise
        except Exception:
            with self._lock:
                closed, self._closed = self._closed, True
            if not closed:
                raise
            # Closed meanwhile: the read was interrupted on purpose; the loop ends.
        finally:
            with self._lock:
                self._reading = False
                done = self._closed
            if done:
                self._release()
        if line is None or done:  # a line read while the close happened is dropped
            raise StopIteration
        return line

    @_guard
    def _read(self) -> LogLine:
        return next(self._inner)

    def close(self) -> None:
        """Stop: a reader in another thread ends, resources are released. Never raises."""
        with self._lock:
            if self._closed:
                reading = False
            else:
                self._closed = True
                reading = self._reading
        if not reading:
            self._release()
            return
        abort = getattr(self._inner, "abort", None)
        if abort is not None:
            with contextlib.suppress(Exception):
                abort()
        # The reading thread releases everything as it leaves ``__next__``.

    def _release(self) -> None:
        with self._lock:
            if self._released or self._reading:
                return
            self._released = True
        close = getattr(self._inner, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClosableLines(Iterator[LogLine]):
    """A driver's log lines: a generator plus how to interrupt and release it.

    ``abort`` wakes the generator's blocked read from any thread (it is called
    at most once, and never after ``release``); ``release`` frees what the
    generator reads from (called once, after the generator is closed). After
    an abort the iterator ends (``StopIteration``) whatever the interrupted
    read raised. Satisfies :class:`Abortable`.
    """

    def __init__(
        self,
        lines: Iterator[LogLine],
        *,
        abort: Callable[[], None],
        release: Callable[[], None] | None = None,
    ) -> None:
        self._lines = lines
        self._on_abort: Callable[[], None] | None = abort
        self._on_release = release
        self._lock = threading.Lock()
        self._aborted = False
        self._released = False

    def __iter__(self) -> ClosableLines:
        return self

    def __next__(self) -> LogLine:
        if self._aborted or self._released:
            self.close()
            raise StopIteration
        try:
            line = next(self._lines)
        except StopIteration:
            self.close()
            raise
        except BaseException:
            self.close()
            if self._aborted:
                raise StopIteration from None
            raise
        if self._aborted:
            self.close()
            raise StopIteration
        return line

    def abort(self) -> None:
        with self._lock:
            if self._released or self._aborted:
                return
            self._aborted = True
            on_abort, self._on_abort = self._on_abort, None
            if on_abort is not None:
                with contextlib.suppress(Exception):
                    on_abort()

    def close(self) -> None:
        """Close the generator and release; from the reading thread, or while
        no thread reads. Idempotent."""
        with self._lock:
            if self._released:
                return
            self._released = True
        close = getattr(self._lines, "close", None)
        try:
            if close is not None:
                close()
        finally:
            if self._on_release is not None:
                self._on_release()

    def __enter__(self) -> ClosableLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class LineJoiner:
    """An engine's log frames in, whole lines out, one frame at a time.

    A frame is ``(stream, payload)`` as :func:`enginekit.transport.demux_frames`
    gives it: stream 1 stdout, 2 stderr, 3 the engine's own error (raised as
    ``EngineError`` naming ``what``), others ignored. With ``timestamps`` a
    payload starts with ``<RFC 3339> ``; a payload without a stamp is data as
    a whole. The frames of one stream are joined until a ``b"\\n"``: a line
    keeps the stamp of its first part; bytes are never decoded.

    ``piece``: the size of the pieces an engine cuts a longer line into, each
    its own frame with the line's stamp (Docker: 16 KiB). Where the engine's
    reader drops the newline of the last piece (Docker's ``local`` log
    driver), a piece that follows full pieces of its line without a newline
    may or may not have ended it: ``ends_line(stream, nanoseconds, ordinal)``
    says (without it, it did).
    """

    def __init__(
        self,
        *,
        timestamps: bool = True,
        what: str = "logs",
        piece: int | None = None,
        ends_line: EndsLine | None = None,
    ) -> None:
        self._timestamps = timestamps
        self._what = what
        self._piece = piece
        self._ends_line = ends_line
        self._pending: dict[int, tuple[dt.datetime | None, bytearray]] = {}
        # stream -> (nanoseconds, count) of the full pieces of its current line
        self._cut: dict[int, tuple[int | None, int]] = {}

    def feed(self, stream: int, payload: bytes) -> Iterator[LogLine]:
        """The lines this frame ends (none while a line is still open)."""
        kind = _STREAMS.get(stream)
        if kind is None:
            if stream == 3:
                raise EngineError(f"{self._what}: " + payload.decode("utf-8", "replace").strip())
            return
        stamp, data = self._split(payload)
        if self._piece is not None:
            data = self._mend(stream, kind, stamp, payload, data)
        pending = self._pending
        if stream in pending:
            first, buf = pending[stream]
        else:
            first, buf = stamp, bytearray()
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            yield LogLine(stream=kind, data=bytes(buf[start : end + 1]), timestamp=first)
            first = stamp
            start = end + 1
        if start == len(buf):
            pending.pop(stream, None)
        elif start == 0:
            pending[stream] = (first, buf)
        else:
            pending[stream] = (first, bytearray(buf[start:]))

    def join(self, frames: Iterable[tuple[int, bytes]]) -> Iterator[LogLine]:
        """Every line of ``frames``, the unfinished ones of each stream at the end."""
        for stream, payload in frames:
            yield from self.feed(stream, payload)
        yield from self.flush()

    def flush(self) -> Iterator[LogLine]:
        """What is left without a newline, one line a stream, oldest first (the end of the log)."""
        pending, self._pending = self._pending, {}
        for stream in sorted(pending, key=lambda n: pending[n][0] or _LATEST):
            stamp, buf = pending[stream]
            if buf:
                yield LogLine(stream=_STREAMS[stream], data=bytes(buf), timestamp=stamp)

    def _split(self, payload: bytes) -> tuple[dt.datetime | None, bytes]:
        if not self._timestamps:
            return None, payload
        head, sep, rest = payload.partition(b" ")
        if not sep:
            return None, payload
        try:
            stamp = parse_rfc3339(head)
        except ValueError:
            return None, payload
        return (stamp, rest) if stamp is not None else (None, payload)

    def _mend(
        self, stream: int, kind: Stream, stamp: dt.datetime | None, payload: bytes, data: bytes
    ) -> bytes:
        """``data`` with the newline a cut line's last piece lost given back."""
        nanos = unix_nanos(payload.partition(b" ")[0]) if stamp is not None else None
        before = self._cut.pop(stream, None)
        pieces = before[1] if before is not None and before[0] == nanos else 0
        if len(data) == self._piece and not data.endswith(b"\n"):
            self._cut[stream] = (nanos, pieces + 1)
        elif pieces and not data.endswith(b"\n"):
            ends = self._ends_line
            if ends is None or nanos is None or ends(kind.value, nanos, pieces + 1):
                data += b"\n"
        return data
