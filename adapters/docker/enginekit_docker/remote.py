"""dockerd on another host: over ssh, or over TCP with TLS.

``ssh://[user@]host[:port]`` (``docker+ssh://``, ``DOCKER_HOST=ssh://...``,
a context whose docker endpoint is ``ssh://``): the Engine API over the
system's ssh client (:mod:`enginekit.toolkit.ssh`), one multiplexed connection
per driver. As the docker CLI does, each HTTP connection is ``docker system
dial-stdio`` run on the remote host (which reaches the daemon the remote
docker CLI is set up for); a remote host without the docker CLI is reached
through a forward of ``/var/run/docker.sock``. A path after the host
(``ssh://ci@build1/run/user/1000/docker.sock``) names the daemon's socket on
the remote host: it is forwarded, and no docker CLI is needed there.

``tcp://host[:port]``: TLS when a ``tls=`` option, ``DOCKER_TLS_VERIFY``/
``DOCKER_TLS`` (with ``DOCKER_CERT_PATH``, for an address given outright or
the default context) or a context's TLS material says so, the port then
defaulting to 2376; plain TCP (port 2375) only to loopback unless
``insecure=True`` (see :mod:`enginekit.toolkit.tls`).

Such a daemon's host is not this machine (:class:`RemoteDockerDriver`, see
:mod:`enginekit.toolkit.hosts`): a port is published by default on the address
the client reached the host at (ssh's ``HostName`` for the address, or the
TCP host, resolved once); ``cpus`` is checked against the daemon's ``NCPU``;
a bind mount's source is looked for on that host with ``test -e`` over the
ssh connection. Over TCP there is no shell on the daemon's host: the source
is not looked for beforehand, and the daemon's own refusal of a missing one
(``bind source path does not exist``, made nothing) is the same
``InvalidSpec`` as on every engine.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from enginekit.toolkit import hosts
from enginekit.toolkit.errors import EngineError, EngineUnavailable, InvalidSpec
from enginekit.toolkit.models import ContainerSpec
from enginekit.toolkit.ssh import Route, SshDialer, SshTunnel, ssh_dialer
from enginekit.toolkit.tls import TLSConfig, check_plain_tcp

from . import contexts
from .driver import DockerDriver

__all__ = [
    "DIAL_STDIO",
    "REMOTE_SOCKET",
    "RemoteDockerDriver",
    "ssh_driver",
    "tcp_driver",
    "tcp_target",
]

DIAL_STDIO = ("docker", "system", "dial-stdio")
#: dockerd's socket on a remote host without the docker CLI.
REMOTE_SOCKET = "/var/run/docker.sock"
#: How long the first ``docker system dial-stdio`` (the check that the remote answers) may take.
_PROBE_TIMEOUT = 30.0


def _find_route(path: str) -> Callable[[SshTunnel], Route]:
    def find(tunnel: SshTunnel) -> Route:
        if path:
            return Route(socket=path)
        status, _, err = tunnel.run(DIAL_STDIO, timeout=_PROBE_TIMEOUT)
        if status == 0:
            return Route(command=DIAL_STDIO, probe=DIAL_STDIO)
        if status == 127 or "not found" in err:
            # No docker CLI there: the daemon's own socket, forwarded.
            return Route(socket=REMOTE_SOCKET)
        said = next((line.strip() for line in err.splitlines() if line.strip()), "")
        raise EngineUnavailable(
            f"docker on {tunnel.address.host} does not answer: `docker system dial-stdio` "
            f"there exited with status {status}" + (f": {said[:300]}" if said else ""),
            address=tunnel.address.url,
            hint="start dockerd on that host",
        )

    return find


def tcp_target(
    address: str,
    options: Mapping[str, Any],
    target: contexts.Target | None,
    where: str,
) -> tuple[str, ssl.SSLContext | None]:
    """``tcp://host:port`` with its TLS context (None: plain TCP, checked as such)."""
    parts = urllib.parse.urlsplit(address)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidSpec(f"docker: bad port in {address!r} ({exc})") from None
    host = parts.hostname or ""
    if not host:
        raise InvalidSpec(f"docker: the address {address!r} names no host")
    config: TLSConfig | None
    if "tls" in options:
        config = TLSConfig.from_option(options["tls"], what="docker: tls")
    elif target is not None and not target.from_environment:
        config = _context_tls(target)
    else:
        config = TLSConfig.from_docker_env()
    shown_host = f"[{host}]" if ":" in host else host
    if config is None:
        check_plain_tcp("docker", host, insecure=options.get("insecure") is True, where=where)
        return f"tcp://{shown_host}:{port or 2375}", None
    return f"tcp://{shown_host}:{port or 2376}", config.context()


def _context_tls(target: contexts.Target) -> TLSConfig | None:
    files = target.tls
    if not files and not target.skip_tls_verify:
        return None
    return TLSConfig(
        ca=files.ca,
        cert=files.cert,
        key=files.key,
        verify=not target.skip_tls_verify,
        shown=target.describe(),
    )


#: The daemon's words for a bind mount whose source its host lacks (it then made nothing).
_NO_SOURCE = "bind source path does not exist"


class RemoteDockerDriver(DockerDriver, hosts.RemoteHostFacts):
    """A :class:`DockerDriver` whose daemon runs on another host (ssh or TCP).

    ``host`` is the host as the address names it (a TCP address's host; for
    ssh, ssh's own ``HostName`` for it is used); ``dialer`` is the ssh dialer,
    None for TCP. Nothing is asked in the constructor.
    """

    def __init__(
        self,
        address: str,
        *,
        host: str,
        pool_size: int = 8,
        tls: ssl.SSLContext | None = None,
        dialer: SshDialer | None = None,
    ) -> None:
        super().__init__(address, pool_size=pool_size, tls=tls, dialer=dialer)
        self._init_host_facts(host, dialer.tunnel if dialer is not None else None)

    def __repr__(self) -> str:
        return f"RemoteDockerDriver(address={self.address!r})"

    def _engine_cpus(self) -> tuple[object, str]:
        return self._json("GET", "/info", operation="info").get("NCPU"), "NCPU in /info"

    def container_create(self, spec: ContainerSpec) -> str:
        try:
            return super().container_create(spec)
        except EngineError as exc:
            if spec.mounts and _NO_SOURCE in str(exc):
                raise InvalidSpec("mount source does not exist on the engine's host") from exc
            raise


def ssh_driver(
    address: str, options: Mapping[str, Any], *, pool_size: int, origin: str = ""
) -> RemoteDockerDriver:
    """The driver of a daemon reached over ssh (:func:`enginekit.toolkit.ssh.ssh_dialer`)."""
    shown, dialer = ssh_dialer("docker", address, options, route=_find_route, origin=origin)
    return RemoteDockerDriver(
        shown, host=dialer.tunnel.address.host, pool_size=pool_size, dialer=dialer
    )


def tcp_driver(
    address: str,
    options: Mapping[str, Any],
    target: contexts.Target | None,
    where: str,
    *,
    pool_size: int,
) -> RemoteDockerDriver:
    """The driver of a daemon reached over TCP (see :func:`tcp_target`)."""
    shown, tls = tcp_target(address, options, target, where)
    host = urllib.parse.urlsplit(shown).hostname or ""
    return RemoteDockerDriver(shown, host=host, pool_size=pool_size, tls=tls)
