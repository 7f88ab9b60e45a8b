"""enginekit adapter for Docker: the Engine API (1.41 to 1.52) over its socket, no docker package.

The API version is negotiated once per driver (see :mod:`.versions`).
Registered as entry point ``docker`` in group ``enginekit.adapters``.
Which dockerd ``connect()`` talks to with no address is Docker's own order
(``DOCKER_HOST``, ``DOCKER_CONTEXT``, the current context): see :mod:`.contexts`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from enginekit.toolkit.errors import InvalidSpec
from enginekit.toolkit.hosts import Endpoint, redact

from . import contexts
from .driver import HINT, DockerDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "DockerDriver", "connect", "endpoints"]

DEFAULT_ADDRESS = contexts.DEFAULT_HOST
_SCHEMES = ("unix", "tcp", "http", "ssh")
_OPTIONS = {
    "pool_size",
    "context",
    "tls",
    "insecure",
    "identity",
    "connect_timeout",
    "ssh_config",
}


def connect(address: str | None = None, **options: Any) -> DockerDriver:
    """A driver for the dockerd at ``address`` (no I/O here; ``ping()`` checks it).

    ``address`` None means Docker's own choice: ``DOCKER_HOST``, else the
    context named by ``DOCKER_CONTEXT``, else the current context of
    ``~/.docker/config.json`` (``docker context use``), else
    ``unix:///var/run/docker.sock`` (see :mod:`enginekit_docker.contexts`).
    ``unix:///path`` (or a bare socket path), ``tcp://host[:port]`` (TLS as
    ``tls=``, ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` or the context say;
    plain TCP only to loopback unless ``insecure=True``) and
    ``ssh://[user@]host[:port][/socket]`` (the system's ssh client; see
    :mod:`enginekit_docker.remote`) are served.

    Options: ``context`` (a context's name, instead of an address),
    ``pool_size`` (idle connections kept, default 8), ``tls`` (True, False,
    or ``{"ca": path, "cert": path, "key": path, "verify": bool}``),
    ``insecure`` (True: plain TCP to a host other than loopback),
    ``identity`` (an ssh key file, ``ssh -i``), ``ssh_config`` (an ssh
    config file instead of ``~/.ssh/config``, ``ssh -F``; default
    ``$ENGINEKIT_SSH_CONFIG``), ``connect_timeout`` (seconds ssh may take to
    reach the host, default 10).
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise InvalidSpec(f"docker: unknown connect options: {', '.join(sorted(unknown))}")
    context = options.get("context")
    insecure = options.get("insecure", False)
    if not isinstance(insecure, bool):
        raise InvalidSpec("docker: insecure must be True or False")
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
    if scheme not in _SCHEMES:
        raise InvalidSpec(
            f"docker: unsupported address scheme {scheme!r} ({where}use unix://, tcp:// or ssh://)"
        )
    pool_size = int(options.get("pool_size", 8))
    if scheme != "tcp" and options.get("tls") not in (None, False):
        raise InvalidSpec(f"docker: tls= is for a tcp:// address, not {scheme}://")
    for name in ("identity", "ssh_config"):
        if scheme != "ssh" and options.get(name) is not None:
            raise InvalidSpec(f"docker: {name}= is for an ssh:// address, not {scheme}://")
    # ssh and TLS are imported for a remote daemon only: a local one starts faster.
    if scheme == "ssh":
        from . import remote

        origin = target.describe() if target else ""
        return remote.ssh_driver(address, options, pool_size=pool_size, origin=origin)
    if scheme in ("tcp", "http"):
        from . import remote

        return remote.tcp_driver(address, options, target, where, pool_size=pool_size)
    return DockerDriver(address, pool_size=pool_size)


def endpoints() -> list[Endpoint]:
    """Every Docker context (``default`` first) and which one ``connect()`` picks."""
    return contexts.endpoints()
