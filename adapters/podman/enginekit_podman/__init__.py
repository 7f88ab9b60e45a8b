"""enginekit adapter for Podman: the libpod REST API of ``podman system service``.

Installed as a plugin (entry point ``podman`` in group ``enginekit.adapters``)::

    import enginekit
    engine = enginekit.connect("podman")          # or "podman+unix:///run/podman/podman.sock"

:func:`connect` does no I/O; ``PodmanDriver.ping()`` checks that the service answers.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from enginekit.errors import InvalidSpec, Unsupported

from .driver import DEFAULT_ADDRESS, HINT, PodmanDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "PodmanDriver", "connect"]


def connect(address: str | None = None, **options: Any) -> PodmanDriver:
    """A driver for the Podman service at ``address``.

    ``address`` is ``unix:///path/to/podman.sock`` (or a bare socket path) or
    ``tcp://host:port``; None means ``CONTAINER_HOST`` if set, else
    ``unix:///run/podman/podman.sock``. ``ssh://`` connections are not supported.
    Options: ``pool_size`` (idle connections kept, default 8).
    """
    if address is None:
        address = os.environ.get("CONTAINER_HOST") or DEFAULT_ADDRESS
    if "://" not in address:
        address = "unix://" + address
    scheme = urllib.parse.urlsplit(address).scheme
    if scheme == "ssh":
        raise Unsupported("podman", "ssh:// connections", "use a unix:// socket address")
    if scheme not in ("unix", "tcp", "http"):
        raise InvalidSpec(f"podman: unsupported address scheme {scheme!r} (use unix://)")
    unknown = set(options) - {"pool_size"}
    if unknown:
        raise InvalidSpec(f"podman: unknown options {sorted(unknown)}")
    pool_size = int(options.get("pool_size", 8))
    return PodmanDriver(address, pool_size=pool_size)
