"""enginekit adapter for Docker: the Engine API (1.41 to 1.52) over its socket, no docker package.

The API version is negotiated once per driver (see :mod:`.versions`).
Registered as entry point ``docker`` in group ``enginekit.adapters``.
Which dockerd ``connect()`` talks to with no address is Docker's own order
(``DOCKER_HOST``, ``DOCKER_CONTEXT``, the current context): see :mod:`.contexts`.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from enginekit.endpoints import Endpoint, redact
from enginekit.errors import InvalidSpec, Unsupported

from . import contexts
from .driver import HINT, DockerDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "DockerDriver", "connect", "endpoints"]

DEFAULT_ADDRESS = contexts.DEFAULT_HOST
_SCHEMES = ("unix", "tcp", "http")
_OPTIONS = {"pool_size", "context"}


def connect(address: str | None = None, **options: Any) -> DockerDriver:
    """A driver for the dockerd at ``address`` (no I/O here; ``ping()`` checks it).

    ``address`` None means Docker's own choice: ``DOCKER_HOST``, else the
    context named by ``DOCKER_CONTEXT``, else the current context of
    ``~/.docker/config.json`` (``docker context use``), else
    ``unix:///var/run/docker.sock`` (see :mod:`enginekit_docker.contexts`).
    ``unix:///path``, a bare socket path and ``tcp://host:port`` are served;
    ``ssh://`` and TLS (``DOCKER_TLS_VERIFY``, a context's TLS material) are
    ``Unsupported``. Options: ``context`` (a context's name, instead of an
    address), ``pool_size`` (idle connections kept, default 8).
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise InvalidSpec(f"docker: unknown connect options: {', '.join(sorted(unknown))}")
    context = options.get("context")
    target: contexts.Target | None = None
    if address is None:
        target = contexts.resolve(context)
        address = target.address
    elif context is not None:
        raise InvalidSpec("docker: give an address or a context, not both")
    address = address.removeprefix("docker+")
    parts = urllib.parse.urlsplit(address) if "://" in address else None
    scheme = parts.scheme if parts else "unix"
    where = f"{target.describe()} points at {redact(address)}; " if target else ""
    if parts is not None and parts.password is not None:
        what = target.describe() if target else "docker: the address"
        raise InvalidSpec(
            f"{what} holds a password (user:password@): enginekit sends none to an engine; "
            "use SSH keys or TLS certificates"
        )
    if scheme == "ssh":
        raise Unsupported("docker", "ssh:// addresses", f"{where}use unix:// or tcp://")
    if scheme not in _SCHEMES:
        raise InvalidSpec(
            f"docker: unsupported address scheme {scheme!r} ({where}use unix:// or tcp://)"
        )
    if scheme == "tcp" and target is not None:
        if target.from_environment and os.environ.get("DOCKER_TLS_VERIFY"):
            raise Unsupported(
                "docker", "TLS (DOCKER_TLS_VERIFY)", f"{where}use a unix socket or plain tcp://"
            )
        if target.tls or target.skip_tls_verify:
            raise Unsupported(
                "docker",
                "TLS (a context's TLS material)",
                f"{where}use a unix socket or plain tcp://",
            )
    return DockerDriver(address, pool_size=int(options.get("pool_size", 8)))


def endpoints() -> list[Endpoint]:
    """Every Docker context (``default`` first) and which one ``connect()`` picks."""
    return contexts.endpoints()
