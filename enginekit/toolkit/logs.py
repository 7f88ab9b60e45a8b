"""Log lines as a driver gives them (``enginekit.logstream``).

:class:`LineJoiner` turns an engine's log frames
(:func:`~enginekit.toolkit.http.demux_frames`) into whole lines, stamps kept,
bytes unchanged; :class:`ClosableLines` makes the iterator ``container_logs``
returns from a generator and a way to interrupt it (:class:`Abortable`: a
follow closed from another thread).
"""

from __future__ import annotations

from enginekit.logstream import Abortable, ClosableLines, EndsLine, LineJoiner
from enginekit.models import LogLine, Stream

__all__ = ["Abortable", "ClosableLines", "EndsLine", "LineJoiner", "LogLine", "Stream"]
