"""A Podman service on another host, over ssh (``podman+ssh://``, ``CONTAINER_HOST=ssh://``,
a system connection to ``ssh://``), as ``podman --remote`` reaches it.

The libpod API goes through a stream-local forward of the service's socket
over the system's ssh client (:mod:`enginekit.sshtunnel`), one multiplexed
connection per driver, the connection's ``Identity`` (or
``CONTAINER_SSHKEY``, or the ``identity=`` option) given to ssh as ``-i``.
The socket is the URL's path (``ssh://core@vm:2222/run/user/1000/podman/podman.sock``);
without one, the remote ``podman info`` says where its service listens (as
``podman system connection add`` asks), and where that cannot be asked,
``/run/podman/podman.sock`` for root and ``/run/user/<uid>/podman/podman.sock``
for another user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enginekit.errors import EngineUnavailable
from enginekit.sshtunnel import CONNECT_TIMEOUT, Route, SshAddress, SshDialer, SshTunnel

__all__ = ["SOCKET_QUERY", "ssh_dialer"]

#: The remote command that says where the service's socket is.
SOCKET_QUERY = ("podman", "info", "--format", "'{{.Host.RemoteSocket.Path}}'")
_ROOTFUL = "/run/podman/podman.sock"
_QUERY_TIMEOUT = 60.0


def _socket_path(tunnel: SshTunnel) -> str:
    status, out, _ = tunnel.run(SOCKET_QUERY, timeout=_QUERY_TIMEOUT)
    path = out.strip().removeprefix("unix://")
    if status == 0 and path.startswith("/"):
        return path
    if tunnel.address.user == "root":
        return _ROOTFUL
    status, out, err = tunnel.run(("id", "-u"), timeout=_QUERY_TIMEOUT)
    uid = out.strip()
    if status != 0 or not uid.isdigit():
        said = next((line.strip() for line in err.splitlines() if line.strip()), "")
        raise EngineUnavailable(
            f"podman on {tunnel.address.host}: cannot tell where its service listens "
            f"(`podman info` and `id -u` failed{': ' + said[:200] if said else ''}); "
            "give the socket in the URL: podman+ssh://user@host/path/to/podman.sock",
            address=tunnel.address.url,
        )
    return _ROOTFUL if uid == "0" else f"/run/user/{uid}/podman/podman.sock"


def _find_route(path: str) -> Any:
    def find(tunnel: SshTunnel) -> Route:
        return Route(socket=path or _socket_path(tunnel))

    return find


def ssh_dialer(
    address: str,
    options: Mapping[str, Any],
    *,
    identity: str | None = None,
    origin: str = "",
) -> tuple[str, SshDialer]:
    """The address as messages show it, and the dialer of a transport over ssh."""
    parsed = SshAddress.parse(address, identity=options.get("identity") or identity, what="podman")
    tunnel = SshTunnel(
        parsed,
        name="podman",
        connect_timeout=options.get("connect_timeout", CONNECT_TIMEOUT),
        config=options.get("ssh_config"),
        origin=origin,
    )
    return parsed.url, SshDialer(tunnel, _find_route(parsed.path))
