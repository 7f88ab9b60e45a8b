"""Engines reached over the system's ssh client (``enginekit.sshtunnel``).

An :class:`SshAddress` (``ssh://[user@]host[:port][/path]``) opens an
:class:`SshTunnel` (one multiplexed ssh connection per driver, commands run
with :meth:`SshTunnel.run`); an :class:`SshDialer` makes the HTTP transport's
connections through it along a :class:`Route` (a remote socket forwarded, or
a command's stdio).
"""

from __future__ import annotations

from enginekit.sshtunnel import (
    CONFIG_VARIABLE,
    CONNECT_TIMEOUT,
    Route,
    SshAddress,
    SshDialer,
    SshTunnel,
)

__all__ = ["CONFIG_VARIABLE", "CONNECT_TIMEOUT", "Route", "SshAddress", "SshDialer", "SshTunnel"]
