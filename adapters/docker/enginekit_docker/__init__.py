"""enginekit adapter for Docker: the Engine API (1.41 to 1.52) over its socket, no docker package.

The API version is negotiated once per driver (see :mod:`.versions`).
Registered as entry point ``docker`` in group ``enginekit.adapters``.
Which dockerd ``connect()`` talks to with no address is Docker's own order
(``DOCKER_HOST``, ``DOCKER_CONTEXT``, the current context): see :mod:`.contexts`.
"""

from __future__ import annotations

from typing import Any

from enginekit.toolkit.endpoints import Endpoint, check_address
from enginekit.toolkit.errors import InvalidSpec

from . import contexts
from .driver import HINT, DockerDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "DockerDriver", "connect", "endpoints"]

DEFAULT_ADDRESS = contexts.DEFAULT_HOST
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
    checked = check_address(
        "docker", address, options, _OPTIONS, "context", contexts.resolve, tls=True
    )
    address, scheme, target = checked.address, checked.scheme, checked.target
    if scheme != "tcp" and options.get("tls") not in (None, False):
        raise InvalidSpec(f"docker: tls= is for a tcp:// address, not {scheme}://")
    # ssh and TLS are imported for a remote daemon only: a local one starts faster.
    if scheme == "ssh":
        from . import remote

        return remote.ssh_driver(
            address, options, pool_size=checked.pool_size, origin=checked.origin
        )
    if scheme in ("tcp", "http"):
        from . import remote

        return remote.tcp_driver(
            address, options, target, checked.where, pool_size=checked.pool_size
        )
    return DockerDriver(address, pool_size=checked.pool_size)


def endpoints() -> list[Endpoint]:
    """Every Docker context (``default`` first) and which one ``connect()`` picks."""
    return contexts.endpoints()
