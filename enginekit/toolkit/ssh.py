"""Engines reached over the system's ssh client (``enginekit.sshtunnel``).

An :class:`SshAddress` (``ssh://[user@]host[:port][/path]``) opens an
:class:`SshTunnel` (one multiplexed ssh connection per driver, commands run
with :meth:`SshTunnel.run`); an :class:`SshDialer` makes the HTTP transport's
connections through it along a :class:`Route` (a remote socket forwarded, or
a command's stdio). :func:`ssh_dialer` puts the three together from
``connect()``'s address and options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from enginekit.sshtunnel import (
    CONFIG_VARIABLE,
    CONNECT_TIMEOUT,
    Route,
    SshAddress,
    SshDialer,
    SshTunnel,
)

__all__ = [
    "CONFIG_VARIABLE",
    "CONNECT_TIMEOUT",
    "Route",
    "SshAddress",
    "SshDialer",
    "SshTunnel",
    "ssh_dialer",
]


def ssh_dialer(
    engine: str,
    address: str,
    options: Mapping[str, Any],
    *,
    route: Callable[[str], Callable[[SshTunnel], Route]],
    identity: str | None = None,
    origin: str = "",
) -> tuple[str, SshDialer]:
    """The address as messages show it, and the dialer of a transport over ssh.

    ``options`` are ``connect()``'s: ``identity`` (else ``identity`` here),
    ``connect_timeout``, ``ssh_config``. ``route(path)`` (the URL's path, or
    ``""``) says how the tunnel reaches the engine, asked on first use;
    ``origin`` names what chose the address, for messages.
    """
    parsed = SshAddress.parse(address, identity=options.get("identity") or identity, what=engine)
    tunnel = SshTunnel(
        parsed,
        name=engine,
        connect_timeout=options.get("connect_timeout", CONNECT_TIMEOUT),
        config=options.get("ssh_config"),
        origin=origin,
    )
    return parsed.url, SshDialer(tunnel, route(parsed.path))
