"""A Podman service on another host, over ssh (``podman+ssh://``, ``CONTAINER_HOST=ssh://``,
a system connection to ``ssh://``), as ``podman --remote`` reaches it.

The libpod API goes through a stream-local forward of the service's socket
over the system's ssh client (:mod:`enginekit.toolkit.ssh`), one multiplexed
connection per driver, the connection's ``Identity`` (or
``CONTAINER_SSHKEY``, or the ``identity=`` option) given to ssh as ``-i``.
The socket is the URL's path (``ssh://core@vm:2222/run/user/1000/podman/podman.sock``);
without one, the remote ``podman info`` says where its service listens (as
``podman system connection add`` asks), and where that cannot be asked,
``/run/podman/podman.sock`` for root and ``/run/user/<uid>/podman/podman.sock``
for another user.

Such a service's host is not this machine (:class:`RemotePodmanDriver`, see
:mod:`enginekit.toolkit.hosts`): a port is published by default on the address the
client reaches that host at (ssh's ``HostName`` for the address, resolved once),
``cpus`` is checked against the service's ``host.cpus`` and a bind mount's
source is looked for there with ``test -e`` over the ssh connection. A service
reached over plain TCP (``insecure=True``) has no shell beside it: a source is
not looked for beforehand, and the service's refusal of a missing one
(``statfs ...: no such file or directory``, made nothing) is the same
``InvalidSpec`` as on every engine.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from enginekit.toolkit import hosts
from enginekit.toolkit.errors import EngineError, EngineUnavailable, InvalidSpec
from enginekit.toolkit.models import ContainerSpec
from enginekit.toolkit.ssh import Route, SshDialer, SshTunnel, ssh_dialer

from .driver import PodmanDriver
from .host import PORT_START, Host, host_from_info

__all__ = ["SOCKET_QUERY", "RemotePodmanDriver", "ssh_driver", "tcp_driver"]

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


def _find_route(path: str) -> Callable[[SshTunnel], Route]:
    def find(tunnel: SshTunnel) -> Route:
        return Route(socket=path or _socket_path(tunnel))

    return find


class RemotePodmanDriver(PodmanDriver, hosts.RemoteHostFacts):
    """A :class:`PodmanDriver` whose service runs on another host (ssh or TCP).

    ``host`` is the host as the address names it (for ssh, ssh's own
    ``HostName`` for it is used); ``dialer`` is the ssh dialer, None for TCP.
    Nothing is asked in the constructor.
    """

    def __init__(
        self, address: str, *, host: str, pool_size: int = 8, dialer: SshDialer | None = None
    ) -> None:
        super().__init__(address, pool_size=pool_size, dialer=dialer)
        self._init_host_facts(host, dialer.tunnel if dialer is not None else None)

    def __repr__(self) -> str:
        return f"RemotePodmanDriver(address={self.address!r})"

    def _engine_cpus(self) -> tuple[object, str]:
        data = self._json("GET", "/info", operation="info")
        return (data.get("host") or {}).get("cpus"), "host.cpus in /info"

    def _make_host(self, data: Mapping[str, Any]) -> Host:
        """As locally, with the host's unprivileged port start asked over ssh for a
        rootless service (a low port is then refused before anything is made)."""
        security = (data.get("host") or {}).get("security") or {}
        start = None
        if security.get("rootless") and self._ssh is not None:
            status, out, _ = self._ssh.run(("cat", PORT_START), timeout=30)
            if status == 0 and out.strip().isdigit():
                start = int(out.strip())
        return host_from_info(data, address=self.address, unprivileged_port_start=start)

    def container_create(self, spec: ContainerSpec) -> str:
        try:
            return super().container_create(spec)
        except EngineError as exc:
            said = str(exc)
            if spec.mounts and "statfs" in said and "no such file or directory" in said:
                raise InvalidSpec("mount source does not exist on the engine's host") from exc
            raise


def ssh_driver(
    address: str,
    options: Mapping[str, Any],
    *,
    pool_size: int,
    identity: str | None = None,
    origin: str = "",
) -> RemotePodmanDriver:
    """The driver of a service reached over ssh (:func:`enginekit.toolkit.ssh.ssh_dialer`)."""
    shown, dialer = ssh_dialer(
        "podman", address, options, route=_find_route, identity=identity, origin=origin
    )
    return RemotePodmanDriver(
        shown, host=dialer.tunnel.address.host, pool_size=pool_size, dialer=dialer
    )


def tcp_driver(address: str, *, pool_size: int) -> RemotePodmanDriver:
    """The driver of a service reached over TCP (the address already checked)."""
    host = urllib.parse.urlsplit(address).hostname or ""
    return RemotePodmanDriver(address, host=host, pool_size=pool_size)
