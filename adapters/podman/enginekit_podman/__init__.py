"""enginekit adapter for Podman: the libpod REST API of ``podman system service``.

Installed as a plugin (entry point ``podman`` in group ``enginekit.adapters``)::

    import enginekit
    engine = enginekit.connect("podman")          # or "podman+unix:///run/podman/podman.sock"

:func:`connect` does no I/O; ``PodmanDriver.ping()`` checks that the service answers.
Which service ``connect()`` talks to with no address is Podman's own order
(``CONTAINER_CONNECTION``, ``CONTAINER_HOST``, the default connection, the
rootful or rootless socket): see :mod:`.connections`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from enginekit.endpoints import Endpoint, redact
from enginekit.errors import InvalidSpec, Unsupported

from . import connections
from .driver import DEFAULT_ADDRESS, HINT, PodmanDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "PodmanDriver", "connect", "endpoints"]

_OPTIONS = {"pool_size", "connection"}


def connect(address: str | None = None, **options: Any) -> PodmanDriver:
    """A driver for the Podman service at ``address``.

    ``address`` is ``unix:///path/to/podman.sock`` (or a bare socket path) or
    ``tcp://host:port``; None means Podman's own choice: the connection
    ``CONTAINER_CONNECTION`` names, else ``CONTAINER_HOST``, else the default
    system connection, else ``unix:///run/podman/podman.sock`` for root and
    ``unix://$XDG_RUNTIME_DIR/podman/podman.sock`` for another user (see
    :mod:`enginekit_podman.connections`). ``ssh://`` connections are not
    supported. Options: ``connection`` (a connection's name, instead of an
    address), ``pool_size`` (idle connections kept, default 8).
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise InvalidSpec(f"podman: unknown options {sorted(unknown)}")
    connection = options.get("connection")
    target: connections.Target | None = None
    if address is None:
        target = connections.resolve(connection)
        address = target.address
    elif connection is not None:
        raise InvalidSpec("podman: give an address or a connection, not both")
    if "://" not in address:
        address = "unix://" + address
    parts = urllib.parse.urlsplit(address)
    scheme = parts.scheme
    where = f"{target.describe()} points at {redact(address)}; " if target else ""
    if parts.password is not None:
        what = target.describe() if target else "podman: the address"
        raise InvalidSpec(
            f"{what} holds a password (user:password@): enginekit sends none to an engine; "
            "use SSH keys"
        )
    if scheme == "ssh":
        raise Unsupported("podman", "ssh:// connections", f"{where}use a unix:// socket address")
    if scheme not in ("unix", "tcp", "http"):
        raise InvalidSpec(f"podman: unsupported address scheme {scheme!r} ({where}use unix://)")
    pool_size = int(options.get("pool_size", 8))
    return PodmanDriver(address, pool_size=pool_size)


def endpoints() -> list[Endpoint]:
    """Every Podman system connection, then the address Podman falls back to;
    ``current`` marks the one ``connect()`` picks."""
    return connections.endpoints()
