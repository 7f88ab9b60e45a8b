"""Engines named by an engine's own configuration: Docker contexts, Podman connections.

An adapter may define, beside its ``connect`` callable (in the same module), a
function ``endpoints() -> list[Endpoint]``: every engine that engine's own
tools would know by name (a Docker context, a Podman system connection) and
the one ``connect(NAME)`` picks with no address (``current``).
:func:`enginekit.config.endpoints` collects them from every installed
adapter, and ``enginekit engines`` shows them. Reading them does no I/O
beyond the engine's configuration files: whether each one answers is
probed separately, by connecting with ``Endpoint.options``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["Endpoint", "redact"]


def _frozen_options(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Endpoint:
    """One engine an engine's configuration names.

    ``engine`` is the adapter (``"docker"``), ``name`` the name the engine's
    tools give it (a context's or connection's name; ``"default"`` for
    Docker's default context; None for Podman's own default address),
    ``url`` where it points (its address, never with a password),
    ``current`` whether ``enginekit.connect(engine)`` picks it now,
    ``source`` where it is defined (a file, or ``DOCKER_HOST``), and
    ``options`` the keyword options of the adapter's ``connect`` that reach
    it (``{"context": "build1"}``; an ``"address"`` key is its first argument).
    """

    engine: str
    name: str | None
    url: str
    current: bool = False
    source: str = ""
    options: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_options, eq=False, repr=False
    )


def redact(url: str) -> str:
    """``url`` without a password in its user part (``ssh://me:secret@h`` -> ``ssh://me@h``)."""
    if "://" not in url or "@" not in url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{hostport}"))
