"""Signal names and numbers, Linux's whatever the client runs on
(``enginekit.signals``): ``signal_number("TERM")`` is 15,
``signal_name(37)`` ``"SIGRTMIN+3"``; ``InvalidSpec`` for what is no signal."""

from __future__ import annotations

from enginekit.signals import ALIASES, RTMAX, RTMIN, SIGNALS, signal_name, signal_number

__all__ = ["ALIASES", "RTMAX", "RTMIN", "SIGNALS", "signal_name", "signal_number"]
