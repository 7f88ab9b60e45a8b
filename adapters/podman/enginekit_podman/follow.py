"""A follow of a container's log built from plain reads, complete and in order.

Why not libpod's own follow
---------------------------
``GET /containers/{id}/logs?follow=true`` loses output under a fast writer
with the ``k8s-file`` log driver (Podman's file; ``json-file`` is the same
file): the file tailer Podman uses, meeting the end of the file in the middle
of an entry, sends that part, then seeks to the *end* of the file, so whatever
the container wrote meanwhile is skipped. 10 MiB written at full speed came
through as 0.8 to 2.0 MB on Podman 4.3 (2.4 to 5.2 MB on 5.8); ``podman logs
-f`` does the same. A read without ``follow`` goes through the file from its
start to its end and loses nothing.

What is done instead
--------------------
The follow is a series of reads without ``follow``, each asking only for what
is new: ``since`` = the stamp of the last entry taken less 1 ns (libpod gives
the entries stamped *after* ``since``, so the last one's stamp comes again).
An entry carries the time conmon read it, and several can share one (libpod
shows whole seconds before Podman 5.8, nanoseconds from 5.8): the cursor
counts the entries of that stamp it has taken and passes over as many at the
start of the next read (the file only grows, in order). The last entry of a
read may be one conmon was still writing (the reader sends a part found at the
end of the file as if whole): it is taken once a later entry follows it, or
when two reads in a row end with it unchanged, or when the container has
ended. When a read brings nothing new the container is inspected; once it no
longer runs and Podman has recorded its exit (conmon has written everything
by then), one more read takes the rest and the follow ends.

This serves a remote engine exactly as a local one (nothing reads the engine's
files), which is why it was chosen over tailing the log file directly when it
happens to be readable here: cheaper, but a remote engine would stay lossy.

The cost
--------
A read without ``tail`` goes through the whole file on the engine's side
(Podman 4.3: 0.26 to 0.32 s for a 12 MB log that has nothing new, on this
loaded two-CPU machine), so the pause after a read is at least what the engine
took before its first entry (its way through what was read before): the engine
spends at most about half its time on a follow of a big log. With whole-second stamps every
read also brings again the entries of the last second already taken: a 10 MiB
burst is read about twice. From Podman 4.7 (its ``tail`` reads the file
backwards and keeps partial lines together) a read asks for ``tail=N`` as well,
N twice what the last read brought (256 to 8192): it costs what it returns; a
read that returns N lines may have cut some, and is made again without
``tail``. Between reads the follow waits 0.05 s, up to 0.2 s while nothing
comes (0.05 s while an entry waits to be taken).

Figures (Podman 4.3, load 9 on two CPUs): a line written every 0.24 s reached
the reader 0.16 s after (median; 0.33 s at most), a line after 2 s of silence
0.19 to 0.22 s after (libpod's follow: 0.12 s, 0.25 s at most); the 10 MiB
follow of the reliability suite takes 7.7 to 9.3 s from the start of the
container and gets every byte (libpod's follow: 2.4 to 3.0 s, most bytes lost).

What stays with libpod's follow
-------------------------------
A container whose log driver is not the file: ``journald`` (Podman's default
where systemd runs) is read by libpod from the journal, not by the file tailer
at fault above, and cannot be tried here (no journal on this machine);
``passthrough`` and ``none`` have no log to read. A line stamped earlier than
one already taken (the host's clock set back while the container writes) is
not seen by this follow.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from enginekit.toolkit.errors import ContainerNotFound, EngineError, EngineUnavailable
from enginekit.toolkit.http import Response, demux_frames
from enginekit.toolkit.logs import ClosableLines, LineJoiner
from enginekit.toolkit.models import LogLine, Stream
from enginekit.toolkit.time import unix_nanos

from .streams import joiner as new_joiner

__all__ = [
    "FILE_DRIVERS",
    "FrameCursor",
    "PolledFollow",
    "alive",
    "follow_by_reads",
    "format_stamp",
    "log_driver",
    "stamp_ns",
]

Frame = tuple[int, bytes]

#: Log drivers whose log is the file libpod reads (and follows badly).
FILE_DRIVERS = frozenset({"k8s-file", "json-file", ""})

#: Pause between reads while output comes, or an entry waits to be taken (s).
BASE_DELAY = 0.05
#: Longest pause while nothing comes (s): the latency of a line after a silence.
IDLE_DELAY = 0.2
#: How long a container may show ``stopped`` before its exit is recorded (s).
EXIT_GRACE = 2.0
#: ``tail`` of a bounded read, at first and at most (then the read is unbounded).
FIRST_TAIL = 256
MAX_TAIL = 8192

_NS = 1_000_000_000
_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}


def stamp_ns(payload: bytes) -> int | None:
    """Nanoseconds since the epoch of the ``<RFC 3339> `` a payload starts with."""
    head, sep, _ = payload.partition(b" ")
    return unix_nanos(head) if sep else None


def format_stamp(ns: int) -> str:
    """``ns`` as RFC 3339 in UTC with nanoseconds (what libpod's ``since`` takes)."""
    seconds, frac = divmod(ns, _NS)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{head}.{frac:09d}Z"


class FrameCursor:
    """Where a follow stands: which frames of a read are new, which to take.

    ``boundary`` is the stamp (ns) of the last frame taken and ``at_boundary``
    how many frames of that stamp were taken; ``held`` the last frame of the
    previous read, not taken yet; ``news`` how many frames the last read
    brought that were not seen before (the held one, unchanged, is not news).
    """

    def __init__(self) -> None:
        self.boundary: int | None = None
        self.at_boundary = 0
        self.held: Frame | None = None
        self.taken = 0
        self.news = 0
        self._prefix = b"\0"  # the boundary's stamp as the engine writes it, and its space

    def since(self) -> str | None:
        """The ``since`` of the next read (the boundary's frames come again)."""
        return None if self.boundary is None else format_stamp(self.boundary - 1)

    def fresh(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """The frames of a read not taken before (those re-read at the boundary
        skipped by count, any stamped earlier skipped too), in order."""
        boundary = self.boundary
        skip = self.at_boundary
        prefix = self._prefix
        for frame in frames:
            if boundary is not None:
                payload = frame[1]
                if payload.startswith(prefix):  # the boundary's stamp, written alike
                    if skip > 0:
                        skip -= 1
                        continue
                else:
                    stamp = stamp_ns(payload)
                    if stamp is not None:
                        if stamp < boundary:
                            continue
                        if stamp == boundary and skip > 0:
                            skip -= 1
                            continue
                        if stamp > boundary:
                            boundary = None  # past the boundary: everything is new
            yield frame

    def take(self, frames: Iterable[Frame], *, final: bool) -> Iterator[Frame]:
        """The frames of one read to hand on, in order: all the new ones but the
        last, which waits for a later frame, for a second read ending with it
        unchanged, or for ``final`` (the container has ended)."""
        last: Frame | None = None
        count = 0
        self.news = 0
        for frame in self.fresh(frames):
            count += 1
            if last is not None:
                self._took(last)
                yield last
            elif frame == self.held:
                count -= 1  # the one held, read again: no news
            last = frame
        self.news = count
        if last is None:
            if final:
                self.held = None
            return
        again = count == 0  # only the one held, unchanged: whole
        if final or again:
            self.held = None
            self._took(last)
            yield last
        else:
            self.held = last

    def _took(self, frame: Frame) -> None:
        self.taken += 1
        payload = frame[1]
        stamp = stamp_ns(payload)
        if stamp is None:
            return
        if stamp == self.boundary:
            self.at_boundary += 1
        elif self.boundary is None or stamp > self.boundary:
            self.boundary = stamp
            self.at_boundary = 1
            self._prefix = payload[: payload.index(b" ") + 1]


def _counted_lines(frames: list[Frame]) -> int:
    """Lines as libpod's ``tail`` counts them: entries that end one (a frame
    ending in a newline), and a last entry that ends none."""
    ended = sum(1 for _, payload in frames if payload.endswith(b"\n"))
    if frames and not frames[-1][1].endswith(b"\n"):
        ended += 1
    return ended


def alive(info: Mapping[str, Any], *, stopped_since: float | None, now: float) -> bool:
    """Whether a container (its inspect) may still write to its log.

    Running, paused and stopping do; ``stopped`` with no finish time recorded
    yet means conmon may still be writing what it read last, for a moment
    (``stopped_since``, bounded by :data:`EXIT_GRACE`); anything else does not.
    """
    state = info.get("State")
    if not isinstance(state, Mapping):
        return False
    status = _status(info)
    if status in ("running", "paused", "stopping"):
        return True
    if status == "stopped":
        finished = str(state.get("FinishedAt") or "")
        recorded = bool(finished) and not finished.startswith("0001-")
        if not recorded:
            return stopped_since is None or now - stopped_since < EXIT_GRACE
    return False


class PolledFollow:
    """The follow described above, over a driver's ``read`` and ``inspect``.

    ``first`` is the response of the first read (made by the caller, so that a
    missing container raises at once); ``read(params)`` makes the next ones
    (``params`` adds ``since``/``tail`` to the caller's own);
    ``inspect()`` gives the container's inspect. ``ended`` says the container
    had ended before ``first`` was asked for. ``tail`` keeps only that many
    lines of what ``first`` brings; ``bounded`` allows reads with ``tail``.
    """

    def __init__(
        self,
        first: Response,
        *,
        read: Callable[[Mapping[str, Any]], Response],
        inspect: Callable[[], Mapping[str, Any]],
        since: str | None = None,
        tail: int | None = None,
        ended: bool = False,
        bounded: bool = False,
    ) -> None:
        self._read = read
        self._inspect = inspect
        self._since = since
        self._tail = tail
        self._ended = ended
        self._bounded = bounded
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._resp: Response | None = first
        self._first: Response | None = first
        self._answered = 0.0  # when the last read's first frame (or its end) came
        self.reads = 1

    def iterator(self) -> ClosableLines:
        """The lines, as an abortable driver iterator."""
        return ClosableLines(self._lines(), abort=self.abort, release=self.release)

    def abort(self) -> None:
        self._stop.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            resp.abort()

    def release(self) -> None:
        with self._lock:
            resp, self._resp = self._resp, None
            first, self._first = self._first, None
        for r in (resp, first):
            if r is not None:
                with contextlib.suppress(Exception):
                    r.close()

    # -- the reads ---------------------------------------------------------
    def _frames(self, resp: Response) -> Iterator[Frame]:
        first = True
        try:
            for frame in demux_frames(resp.iter_chunks()):
                if first:
                    self._answered = time.monotonic()
                    first = False
                yield frame
        finally:
            if first:
                self._answered = time.monotonic()
            with self._lock:
                if self._resp is resp:
                    self._resp = None
            resp.close()

    def _request(self, params: Mapping[str, Any]) -> Response | None:
        if self._stop.is_set():
            return None
        resp = self._read(params)
        with self._lock:
            self._resp = resp
        if self._stop.is_set():
            resp.abort()
        self.reads += 1
        return resp

    def _next_read(self, cursor: FrameCursor, tail: int) -> Iterable[Frame] | None:
        """The frames of the next read (None once stopped)."""
        since = cursor.since() or self._since
        params: dict[str, Any] = {} if since is None else {"since": since}
        if self._bounded:
            try:
                resp = self._request({**params, "tail": tail})
            except (ContainerNotFound, EngineUnavailable):
                raise
            except EngineError:
                resp = None  # libpod's backwards read met an entry being written
            else:
                if resp is None:
                    return None
                frames = list(self._frames(resp))
                if _counted_lines(frames) < tail:  # it reached back past ``since``
                    return frames
            # More than ``tail`` lines since: read them all.
        resp = self._request(params)
        return None if resp is None else self._frames(resp)

    # -- the follow --------------------------------------------------------
    def _lines(self) -> Iterator[LogLine]:
        cursor = FrameCursor()
        joiner = new_joiner()
        first = self._first
        self._first = None
        assert first is not None
        frames = cursor.take(self._frames(first), final=self._ended)
        old: Stream | None = None  # whose next line is one before the follow, not asked for
        if self._tail is None:
            for stream, payload in frames:
                yield from joiner.feed(stream, payload)
        else:
            kept: collections.deque[LogLine] = collections.deque(maxlen=self._tail)
            for stream, payload in frames:
                kept.extend(joiner.feed(stream, payload))
            if self._ended:
                kept.extend(joiner.flush())
            elif cursor.held is not None and cursor.held[1].endswith(b"\n"):
                # The entry held back ends the last line before the follow: one
                # of those asked for, it comes later.
                if not self._tail:
                    old = _STREAMS.get(cursor.held[0])
                elif len(kept) == self._tail:
                    kept.popleft()
            yield from kept
        if self._ended:
            rest: Iterator[LogLine] = iter(())
        else:
            rest = self._rest(cursor, joiner)
        for line in itertools.chain(rest, self._unfinished(joiner)):
            if line.stream is old:
                old = None
                continue
            yield line

    def _unfinished(self, joiner: LineJoiner) -> Iterator[LogLine]:
        """The lines left without a newline at the end (none once stopped)."""
        if not self._stop.is_set():
            yield from joiner.flush()

    def _rest(self, cursor: FrameCursor, joiner: LineJoiner) -> Iterator[LogLine]:
        """The reads after the first, until the container has ended (then one
        more read, which takes everything), is removed, or the follow stops."""
        final = False
        stopped_since: float | None = None
        delay = BASE_DELAY
        tail = FIRST_TAIL
        while not self._stop.wait(0 if final else delay):
            started = time.monotonic()
            try:
                batch = self._next_read(cursor, tail)
            except ContainerNotFound:
                return  # removed meanwhile: the follow ends
            if batch is None:
                return
            for stream, payload in cursor.take(batch, final=final):
                yield from joiner.feed(stream, payload)
            if final:
                return
            # What the engine spent before it sent anything: going through the
            # file up to ``since`` (the whole file, before Podman 4.7).
            took = self._answered - started
            lasted = time.monotonic() - started
            tail = max(FIRST_TAIL, min(MAX_TAIL, 2 * cursor.news))
            if cursor.news == 0 or (cursor.held is not None and lasted > BASE_DELAY):
                # Nothing new, or the last entry waits and reading it again costs:
                # has the container ended?
                try:
                    info = self._inspect()
                except ContainerNotFound:
                    final = True
                    continue
                now = time.monotonic()
                if not alive(info, stopped_since=stopped_since, now=now):
                    final = True
                    continue
                if stopped_since is None and _status(info) == "stopped":
                    stopped_since = now
            if cursor.news or cursor.held is not None:
                delay = BASE_DELAY
            else:
                delay = min(IDLE_DELAY, delay * 2)
            # The engine spends at most half its time on this follow.
            delay = max(delay, took)


def _status(info: Mapping[str, Any]) -> str:
    state = info.get("State")
    return str(state.get("Status") or "").lower() if isinstance(state, Mapping) else ""


def log_driver(info: Mapping[str, Any]) -> str:
    """The log driver of a container, from its inspect."""
    host = info.get("HostConfig")
    config = host.get("LogConfig") if isinstance(host, Mapping) else None
    kind = config.get("Type") if isinstance(config, Mapping) else None
    return kind if isinstance(kind, str) else ""


def follow_by_reads(
    read: Callable[[Mapping[str, Any]], Response],
    inspect: Callable[[], Mapping[str, Any]],
    *,
    since: str | None,
    tail: int | None,
    bounded: bool,
) -> ClosableLines | None:
    """A :class:`PolledFollow` of a container whose log is the file, or None
    (another log driver: libpod's own follow is used).

    ``read(params)`` makes a read without ``follow`` (``params`` added to the
    caller's: ``since``, ``tail``); ``inspect()`` gives the container's inspect.
    """
    info = inspect()
    if log_driver(info) not in FILE_DRIVERS:
        return None
    ended = not alive(info, stopped_since=None, now=time.monotonic())
    first = read({} if since is None else {"since": since})
    follow = PolledFollow(
        first, read=read, inspect=inspect, since=since, tail=tail, ended=ended, bounded=bounded
    )
    return follow.iterator()
