"""Docker's log answers as lines: pieces of a long line joined, lines in time order.

Containers log through Docker's ``local`` driver, which keeps bytes as they
were written (``json-file`` replaces invalid UTF-8). Docker cuts a line
longer than 16 KiB into pieces, each a frame carrying the line's timestamp;
the ``local`` driver's reader drops the newline of a long line's last piece
(an empty last piece when the line was a multiple of 16 KiB), and a long
unterminated last line looks the same: for such a piece, :mod:`.locallog`
says whether it ended its line (:class:`enginekit.toolkit.logs.LineJoiner`
does the joining).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Generator, Iterator

from enginekit.toolkit.http import Response, response_lines
from enginekit.toolkit.logs import ClosableLines, EndsLine, LineJoiner, LogLine

__all__ = ["PIECE", "in_time_order", "joiner", "log_lines"]

#: Docker cuts a longer line into pieces of this size.
PIECE = 16 * 1024
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def joiner(ends_line: EndsLine | None = None) -> LineJoiner:
    """A joiner of Docker's log frames (``timestamps=1``); ``ends_line`` as
    :class:`~enginekit.toolkit.logs.LineJoiner` takes it."""
    return LineJoiner(what="docker logs", piece=PIECE, ends_line=ends_line)


def log_lines(resp: Response, *, ends_line: EndsLine | None, ordered: bool) -> ClosableLines:
    """The lines of a log answer; ``ordered``: in time order (see
    :func:`in_time_order`), for a log read to its end (a followed log is
    handed on as it comes)."""
    return response_lines(resp, joiner(ends_line), arrange=in_time_order if ordered else None)


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
