"""Signal names and numbers: the one table the core and every adapter read.

Containers run on Linux, so the numbers are Linux's (the generic numbering of
x86, arm, arm64, powerpc, s390 and riscv), whatever system the client runs on.
A signal is written as its name, with or without ``SIG`` and in any case
(``"SIGTERM"``, ``"term"``), as its number (``15``, ``"15"``), or, for the
real-time signals, as ``SIGRTMIN+n`` / ``SIGRTMAX-n`` (how Docker, Podman and
image configs write them: systemd images stop with ``SIGRTMIN+3``).

:data:`SIGNALS` holds the signals with a name of their own; the real-time
signals between ``SIGRTMIN`` and ``SIGRTMAX`` are named ``SIGRTMIN+n``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from .errors import InvalidSpec

__all__ = ["ALIASES", "RTMAX", "RTMIN", "SIGNALS", "signal_name", "signal_number"]

#: The first and last real-time signal as the C library shows them to programs.
RTMIN = 34
RTMAX = 64

#: Every signal with a name of its own, by its canonical name.
SIGNALS: Mapping[str, int] = MappingProxyType(
    {
        "SIGHUP": 1,
        "SIGINT": 2,
        "SIGQUIT": 3,
        "SIGILL": 4,
        "SIGTRAP": 5,
        "SIGABRT": 6,
        "SIGBUS": 7,
        "SIGFPE": 8,
        "SIGKILL": 9,
        "SIGUSR1": 10,
        "SIGSEGV": 11,
        "SIGUSR2": 12,
        "SIGPIPE": 13,
        "SIGALRM": 14,
        "SIGTERM": 15,
        "SIGSTKFLT": 16,
        "SIGCHLD": 17,
        "SIGCONT": 18,
        "SIGSTOP": 19,
        "SIGTSTP": 20,
        "SIGTTIN": 21,
        "SIGTTOU": 22,
        "SIGURG": 23,
        "SIGXCPU": 24,
        "SIGXFSZ": 25,
        "SIGVTALRM": 26,
        "SIGPROF": 27,
        "SIGWINCH": 28,
        "SIGIO": 29,
        "SIGPWR": 30,
        "SIGSYS": 31,
        "SIGRTMIN": RTMIN,
        "SIGRTMAX": RTMAX,
    }
)

#: Other names of the same signals: alias -> canonical name.
ALIASES: Mapping[str, str] = MappingProxyType(
    {"SIGIOT": "SIGABRT", "SIGCLD": "SIGCHLD", "SIGPOLL": "SIGIO"}
)

_NAMES = {number: name for name, number in SIGNALS.items()}
_REALTIME = re.compile(r"SIGRTM(IN|AX)([+-])([0-9]{1,2})")


def _lookup(value: str | int) -> tuple[str, int] | None:
    """``(canonical name, number)`` of ``value``; None if it is no signal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().upper()
        if text.isascii() and text.isdigit():
            number = int(text)
        else:
            if not text.startswith("SIG"):
                text = "SIG" + text
            text = ALIASES.get(text, text)
            if text in SIGNALS:
                return text, SIGNALS[text]
            m = _REALTIME.fullmatch(text)
            if m is None:
                return None
            base, sign, offset = m.groups()
            if (base, sign) not in (("IN", "+"), ("AX", "-")):
                return None
            number = RTMIN + int(offset) if base == "IN" else RTMAX - int(offset)
    else:
        return None
    if number in _NAMES:
        return _NAMES[number], number
    if RTMIN < number < RTMAX:
        return f"SIGRTMIN+{number - RTMIN}", number
    return None


def signal_number(name: str | int) -> int:
    """``"SIGTERM"``, ``"term"``, ``"15"`` or ``15`` -> 15; ``"SIGRTMIN+3"`` -> 37.

    ``InvalidSpec`` if ``name`` is not a signal.
    """
    found = _lookup(name)
    if found is None:
        raise InvalidSpec(f"{name!r} is not a signal")
    return found[1]


def signal_name(value: str | int) -> str:
    """The canonical name: ``"term"``, ``"SIGTERM"`` or ``15`` -> ``"SIGTERM"``,
    ``"SIGIOT"`` -> ``"SIGABRT"``, ``37`` or ``"SIGRTMAX-27"`` -> ``"SIGRTMIN+3"``.

    ``InvalidSpec`` if ``value`` is not a signal.
    """
    found = _lookup(value)
    if found is None:
        raise InvalidSpec(f"{value!r} is not a signal")
    return found[0]
