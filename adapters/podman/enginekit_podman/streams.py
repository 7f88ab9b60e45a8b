"""Whole log lines out of libpod's multiplexed log frames.

Conmon's log file (``k8s-file``) keeps a line longer than its buffer (8 KiB)
as several partial entries, and ``GET /libpod/containers/{id}/logs`` sends one
frame per entry, each with its own timestamp prefix when asked. Frames of
one stream are joined until a newline ends the line
(:class:`enginekit.toolkit.logs.LineJoiner`); bytes are never decoded. A
line's timestamp is that of its first part.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from enginekit.toolkit.http import Response, response_lines
from enginekit.toolkit.logs import ClosableLines, LineJoiner, LogLine

__all__ = ["joiner", "log_lines"]


def joiner(*, timestamps: bool = True) -> LineJoiner:
    """A joiner of libpod's log frames (``timestamps=true``: each starts with its stamp)."""
    return LineJoiner(timestamps=timestamps, what="podman logs")


def log_lines(resp: Response, *, tail: int | None = None) -> ClosableLines:
    """The lines of a log answer (the last ``tail`` only, if given): closing
    them (or their end) releases the answer, aborting wakes a blocked read."""
    arrange = None if tail is None else functools.partial(_last, tail=tail)
    return response_lines(resp, joiner(), arrange=arrange)


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
