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

import os
from typing import Any

from enginekit.toolkit.endpoints import Endpoint, check_address, redact
from enginekit.toolkit.errors import InvalidSpec
from enginekit.toolkit.tls import check_plain_tcp

from . import connections, remote
from .driver import DEFAULT_ADDRESS, HINT, PodmanDriver

__all__ = ["DEFAULT_ADDRESS", "HINT", "PodmanDriver", "connect", "endpoints"]

_OPTIONS = {"pool_size", "connection", "insecure", "identity", "connect_timeout", "ssh_config"}


def connect(address: str | None = None, **options: Any) -> PodmanDriver:
    """A driver for the Podman service at ``address``.

    ``address`` is ``unix:///path/to/podman.sock`` (or a bare socket path),
    ``tcp://host:port`` (only to loopback unless ``insecure=True``) or
    ``ssh://[user@]host[:port][/socket]`` (the system's ssh client; see
    :mod:`enginekit_podman.remote`); None means Podman's own choice: the
    connection ``CONTAINER_CONNECTION`` names, else ``CONTAINER_HOST``, else
    the default system connection, else ``unix:///run/podman/podman.sock``
    for root and ``unix://$XDG_RUNTIME_DIR/podman/podman.sock`` for another
    user (see :mod:`enginekit_podman.connections`).

    Options: ``connection`` (a connection's name, instead of an address),
    ``pool_size`` (idle connections kept, default 8), ``insecure`` (True:
    plain TCP to a host other than loopback), ``identity`` (an ssh key file,
    ``ssh -i``; default the connection's ``Identity``, else
    ``CONTAINER_SSHKEY``), ``ssh_config`` (an ssh config file instead of
    ``~/.ssh/config``; default ``$ENGINEKIT_SSH_CONFIG``),
    ``connect_timeout`` (seconds ssh may take to reach the host, default 10).
    """
    checked = check_address(
        "podman", address, options, _OPTIONS, "connection", connections.resolve, tls=False
    )
    address, scheme, target = checked.url, checked.scheme, checked.target
    if scheme == "ssh":
        identity = target.identity if target else os.environ.get("CONTAINER_SSHKEY") or None
        return remote.ssh_driver(
            address, options, pool_size=checked.pool_size, identity=identity, origin=checked.origin
        )
    if scheme in ("tcp", "http"):
        try:
            host = checked.parts.hostname or ""
        except ValueError as exc:
            raise InvalidSpec(f"podman: not an address: {redact(address)} ({exc})") from None
        check_plain_tcp(
            "podman", host, insecure=options.get("insecure") is True, where=checked.where
        )
        return remote.tcp_driver(address, pool_size=checked.pool_size)
    return PodmanDriver(address, pool_size=checked.pool_size)


def endpoints() -> list[Endpoint]:
    """Every Podman system connection, then the address Podman falls back to;
    ``current`` marks the one ``connect()`` picks."""
    return connections.endpoints()
