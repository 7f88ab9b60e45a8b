"""Reading a container's log (see :mod:`.logfile`) as :class:`LogLine` objects.

A follow waits for more in a poll loop; it ends when the container has
stopped, or at once when it is aborted from another thread (the loop waits on
an event, not in a sleep), which is how a follow closed from anywhere ends.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator

from enginekit.toolkit.logs import ClosableLines
from enginekit.toolkit.models import LogLine, Stream

from . import logfile

__all__ = ["container_lines"]


def container_lines(
    path: str,
    *,
    stdout: bool,
    stderr: bool,
    follow: bool,
    since: float | None,
    tail: int | None,
    live: bool,
    running: Callable[[], bool],
) -> ClosableLines:
    """Lines of the log at ``path``: the last ``tail`` (all if None), none
    before ``since`` (Unix seconds); with ``follow`` on until ``running()`` is
    False. ``live``: the container was running when asked (a line it has not
    ended yet is then left out of a read that does not follow)."""
    stop = threading.Event()
    lines = _lines(path, stdout, stderr, follow, since, tail, live, running, stop)
    return ClosableLines(lines, abort=stop.set)


def _lines(
    path: str,
    stdout: bool,
    stderr: bool,
    follow: bool,
    since: float | None,
    tail: int | None,
    live: bool,
    running: Callable[[], bool],
    stop: threading.Event,
) -> Iterator[LogLine]:
    # Compared in microseconds (what a LogLine's timestamp carries), with
    # one of slack for the float ``since``.
    since_us = round(since * 1e6) if since is not None else None
    if tail is not None:
        records = logfile.iter_records(path)
        lines = logfile.iter_lines(records, stdout=stdout, stderr=stderr, flush_partial=not live)
        last = deque(
            (ln for ln in lines if since_us is None or ln[1] // 1000 >= since_us - 1),
            maxlen=max(tail, 0),
        )
        for stream, ts, data in last:
            yield _line(stream, ts, data)
        if not follow:
            return
        # Follow on from the end of what was read.
        records = _skip_existing(path, running, stop)
    else:
        records = logfile.iter_records(path, follow=follow, still_running=running, stop=stop)
    for stream, ts, data in logfile.iter_lines(
        records, stdout=stdout, stderr=stderr, flush_partial=follow or not live
    ):
        if since_us is not None and ts // 1000 < since_us - 1:
            continue
        yield _line(stream, ts, data)


def _line(stream: int, ts: int, data: bytes) -> LogLine:
    return LogLine(
        stream=Stream.STDOUT if stream == logfile.STDOUT else Stream.STDERR,
        data=data,
        timestamp=dt.datetime.fromtimestamp(ts / 1e9, dt.UTC),
    )


def _skip_existing(
    path: str, running: Callable[[], bool], stop: threading.Event
) -> Iterator[tuple[int, int, bytes]]:
    """Records appended after the current end of the log (for ``tail`` + ``follow``)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    seen = 0
    for rec in logfile.iter_records(path, follow=True, still_running=running, stop=stop):
        if seen >= size:
            yield rec
        seen += 13 + len(rec[2])
