"""Which Engine API version to speak: negotiated once per driver from ``/_ping``.

Docker serves each API version from its minimum to its maximum under
``/v<version>/``; Docker 29.0 refuses versions below 1.44 (``400 client
version 1.41 is too old``, or a connection reset for a request with a body),
later 29.x releases again accept 1.40 and up. The adapter speaks every
version from :data:`OLDEST` (Docker 20.10) to :data:`NEWEST` (Docker 29.0):

- the first request of a driver (or :meth:`ping`) sends ``GET /_ping``
  without a version; its ``Api-Version`` header is the engine's maximum;
- the driver speaks ``min(engine maximum, NEWEST)`` from then on;
- an engine whose maximum is below :data:`OLDEST` is refused at once, and
  one whose minimum is above :data:`NEWEST` answers the first versioned
  call with Docker's "client version ... is too old": both become
  :class:`~enginekit.errors.EngineUnavailable` naming the two versions and
  what to do (:func:`too_old_engine`, :func:`version_refused`).

What differs between the versions the adapter speaks, and how each
difference is handled, is listed in :mod:`.convert` (answers) and the
driver's docstrings (requests).
"""

from __future__ import annotations

import re

from enginekit.toolkit.errors import EngineUnavailable

__all__ = [
    "NEWEST",
    "OLDEST",
    "Version",
    "choose",
    "parse",
    "refused_version",
    "text",
    "too_old_engine",
    "version_refused",
]

Version = tuple[int, int]

#: The oldest Engine API version the adapter speaks (Docker 20.10).
OLDEST: Version = (1, 41)
#: The newest Engine API version the adapter speaks (Docker 29.0). Checked
#: against the version history: 1.52 changes nothing the adapter sends, and
#: only omits fields it reads as optional (image ``Config`` fields left unset).
NEWEST: Version = (1, 52)

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\s*$")
_REFUSED = re.compile(
    r"client version (?P<client>[\d.]+) is too (?P<which>old|new)\. "
    r"(?:Minimum|Maximum) supported API version is (?P<server>[\d.]+)",
    re.IGNORECASE,
)


def parse(text: str | None) -> Version | None:
    """``"1.51"`` -> ``(1, 51)``; None for anything else."""
    match = _VERSION.match(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _span() -> str:
    return f"{text(OLDEST)} to {text(NEWEST)}"


def choose(engine_max: Version) -> Version:
    """The version to speak to an engine whose maximum is ``engine_max`` (checked
    against :data:`OLDEST` by the caller)."""
    return min(engine_max, NEWEST)


def too_old_engine(engine_max: str, *, address: str) -> EngineUnavailable:
    """The engine's newest API version is below :data:`OLDEST`."""
    return EngineUnavailable(
        f"docker speaks Engine API up to {engine_max}; enginekit-docker speaks {_span()}",
        address=address,
        hint="upgrade Docker to 20.10 or newer",
    )


def version_refused(
    client: str, engine: str, which: str, *, address: str | None
) -> EngineUnavailable:
    """Docker refused the version spoken (``which``: ``"old"`` or ``"new"``)."""
    if which == "old":
        message = (
            f"docker refuses Engine API {client}: its minimum is {engine}, and "
            f"enginekit-docker speaks {_span()}"
        )
        hint = (
            "upgrade enginekit-docker, or start dockerd with "
            f"DOCKER_MIN_API_VERSION={text(NEWEST)} (or lower) if this Docker allows it"
        )
    else:
        message = f"docker refuses Engine API {client}: its maximum is {engine}"
        hint = "the engine changed since this connection was made: connect again"
    return EngineUnavailable(message, address=address, hint=hint)


def refused_version(status: int, message: str, *, address: str | None) -> EngineUnavailable | None:
    """The error for Docker's 400 "client version X is too old/new" answer, else None."""
    if status != 400:
        return None
    match = _REFUSED.search(message)
    if match is None:
        return None
    return version_refused(
        match.group("client"), match.group("server"), match.group("which"), address=address
    )
