"""Which libpod API the adapter speaks to a Podman service, chosen once per connection.

``GET /_ping`` is never versioned; Podman answers it with ``Libpod-API-Version``
(the libpod API it serves: its own version, ``4.3.1``, ``5.8.6``) and
``API-Version`` (its Docker-compatible API, ``1.41`` on 4.x, ``1.44`` on
recent 5.x). Every other request carries a version in its path
(``/v5.8.6/libpod/...``). Libpod refuses no version there (4.x and 5.x
answer ``/v9.0.0/libpod/info`` alike); it reads it in a few places only:

- container inspect: a path below ``5.0.0`` gets Podman 4's ``Config``
  (``Entrypoint`` one space-joined string, ``StopSignal`` a number); 5.0 and
  later give a list and a name (``"SIGTERM"``). :mod:`.convert` reads both;
- networks: below ``4.0.0`` the libpod network calls answer 400.

So the adapter speaks the engine's own version, up to the newest it was
checked against (:data:`NEWEST`): a later 5.x is spoken to as that one.
Podman older than :data:`OLDEST`, and a major the adapter does not know
(6.x), get ``Unsupported`` naming both versions and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from enginekit.toolkit.errors import EngineUnavailable, Unsupported

__all__ = ["MAJORS", "NEWEST", "OLDEST", "Headers", "Negotiated", "negotiate", "parse_version"]

Version = tuple[int, int, int]

#: The oldest Podman the adapter speaks to (Debian 12's).
OLDEST: Version = (4, 3, 0)
#: The newest libpod API the adapter was checked against.
NEWEST: Version = (5, 8, 6)
#: The libpod majors the adapter knows.
MAJORS = frozenset({4, 5})

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~].*)?$")
_SERVER_RE = re.compile(r"^Libpod/(\S+)")


def parse_version(text: str) -> Version | None:
    """``"5.8.6"`` (also ``"5.0.0-dev"``, ``"4.3"``) -> ``(5, 8, 6)``; None if no version."""
    m = _VERSION_RE.match(text.strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _text(version: Version) -> str:
    return ".".join(str(part) for part in version)


@attrs.frozen
class Negotiated:
    """What was agreed with one Podman service."""

    #: The libpod API the engine serves (``Libpod-API-Version``), as it wrote it.
    engine_text: str
    engine: Version
    #: The libpod API the adapter speaks on this connection.
    spoken: Version
    #: The Docker-compatible API the engine serves (``API-Version``), if it said.
    compat: str = ""

    @property
    def api_version(self) -> str:
        return _text(self.spoken)

    @property
    def prefix(self) -> str:
        """The path prefix of every libpod call: ``/v5.8.6/libpod``."""
        return f"/v{self.api_version}/libpod"

    def at_least(self, *version: int) -> bool:
        """Whether the engine's libpod API is ``version`` or later."""
        return self.engine >= tuple(version)


class Headers(Protocol):
    """Response headers (``http.client.HTTPMessage``, a dict in tests)."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


def _header(headers: Headers, name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value).strip()
    return ""


def negotiate(headers: Headers, *, address: str, hint: str) -> Negotiated:
    """The libpod API to speak, from the headers of a ``/_ping`` answer.

    ``EngineUnavailable`` when the service is not Podman's (no libpod version
    at all), ``Unsupported`` when its version is outside what the adapter
    speaks; both name the versions and what to do.
    """
    libpod = _header(headers, "Libpod-API-Version")
    compat = _header(headers, "API-Version")
    if not libpod:
        server = _SERVER_RE.match(_header(headers, "Server"))
        libpod = server.group(1) if server else ""
    if not libpod:
        seen = f"Docker API {compat}" if compat else "no API version"
        raise EngineUnavailable(
            f"the service answers but is not Podman's (its /_ping names {seen}, "
            "no Libpod-API-Version)",
            address=address,
            hint=hint,
        )
    version = parse_version(libpod)
    known = f"libpod API {_text(OLDEST)} to {max(MAJORS)}.x"
    if version is None:
        raise Unsupported(
            "podman",
            f"libpod API {libpod!r}",
            f"the engine names a version the adapter cannot read; the adapter speaks {known}",
        )
    if version < OLDEST:
        raise Unsupported(
            "podman",
            f"Podman {libpod} (libpod API {libpod})",
            f"the adapter speaks {known}: upgrade Podman to {OLDEST[0]}.{OLDEST[1]} or later",
        )
    if version[0] not in MAJORS:
        raise Unsupported(
            "podman",
            f"Podman {libpod} (libpod API {libpod})",
            f"the adapter speaks {known} and does not know libpod {version[0]}.x yet: "
            f"run Podman {max(MAJORS)}.x, or an enginekit-podman that knows Podman {version[0]}",
        )
    return Negotiated(
        engine_text=libpod, engine=version, spoken=min(version, NEWEST), compat=compat
    )
