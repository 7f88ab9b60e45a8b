"""enginekit adapter for Docker: the Engine API (1.41 to 1.52) over its socket, no docker package.

The API version is negotiated once per driver (see :mod:`.versions`).
Registered as entry point ``docker`` in group ``enginekit.adapters``.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from enginekit.errors import InvalidSpec, Unsupported

from .driver import HINT, DockerDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "DockerDriver", "connect"]

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"
_SCHEMES = ("unix", "tcp", "http")


def connect(address: str | None = None, **options: Any) -> DockerDriver:
    """A driver for the dockerd at ``address`` (no I/O here; ``ping()`` checks it).

    ``address`` None means ``DOCKER_HOST``, else ``unix:///var/run/docker.sock``.
    ``unix:///path``, a bare socket path and ``tcp://host:port`` are served;
    ``ssh://`` and TLS (``DOCKER_TLS_VERIFY``) are ``Unsupported``. Options:
    ``pool_size`` (idle connections kept, default 8).
    """
    from_env = address is None
    if address is None:
        address = os.environ.get("DOCKER_HOST") or DEFAULT_ADDRESS
    address = address.removeprefix("docker+")
    scheme = urllib.parse.urlsplit(address).scheme if "://" in address else "unix"
    if scheme == "ssh":
        raise Unsupported("docker", "ssh:// addresses", "use unix:// or tcp://")
    if scheme not in _SCHEMES:
        raise InvalidSpec(f"docker: unsupported address scheme {scheme!r} (use unix:// or tcp://)")
    if scheme == "tcp" and from_env and os.environ.get("DOCKER_TLS_VERIFY"):
        raise Unsupported("docker", "TLS (DOCKER_TLS_VERIFY)", "use a unix socket or plain tcp://")
    unknown = set(options) - {"pool_size"}
    if unknown:
        raise InvalidSpec(f"docker: unknown connect options: {', '.join(sorted(unknown))}")
    return DockerDriver(address, pool_size=int(options.get("pool_size", 8)))
