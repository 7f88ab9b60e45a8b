"""Waiting until the container's init can take a signal, so that none is lost.

Every container runs docker-init (tini) as PID 1. A signal reaching PID 1 of
a PID namespace before it has blocked the signals it forwards is dropped by
the kernel (an init ignores signals it does not handle). tini does that
within moments of starting, before it starts the command, but a ``stop`` or
``kill`` sent right after ``start`` can come first: the container then
ignores the SIGTERM and is killed 137 after the grace period instead of
exiting 143.

Before a catchable signal is sent, :func:`wait_until_ready` looks at
``/proc/<pid>`` of the init (the daemon reports its host pid) and waits,
briefly, until it has started its child. Where ``/proc`` does not show that
process (a daemon on another machine), it returns at once.
"""

from __future__ import annotations

import time

__all__ = ["wait_until_ready"]

_POLL = 0.001


def _has_child(pid: int) -> bool | None:
    """Whether ``pid`` has a child; None if ``/proc`` cannot tell."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return bool(f.read().strip())
    except OSError:
        return None


def wait_until_ready(pid: int, *, timeout: float = 2.0) -> None:
    """Return once the init ``pid`` has started its command, is gone, or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        ready = _has_child(pid)
        if ready is None or ready or time.monotonic() >= deadline:
            return
        time.sleep(_POLL)
