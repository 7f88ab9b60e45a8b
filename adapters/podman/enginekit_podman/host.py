"""What one Podman instance can do, read from its ``GET /libpod/info``.

The capabilities that depend on the engine's host are those cgroups carry:
limits, pause, stats. ``/info`` says which cgroup version the host runs
(``host.cgroupVersion``: ``"v1"``/``"v2"``), whether the service runs
rootless (``host.security.rootless``), its cgroup manager
(``host.cgroupManager``: ``"systemd"``/``"cgroupfs"``) and the controllers
containers can use (``host.cgroupControllers``):

- rootful on cgroup v1: the v1 hierarchies mounted (``memory``, ``cpu``,
  ``pids``, ``freezer``, ...);
- rootful on cgroup v2: the root's ``cgroup.controllers``; freezing is
  ``cgroup.freeze``, in every v2 cgroup, not a controller;
- rootless on cgroup v2: only what systemd delegated to the user
  (``memory pids`` on older systemd, ``cpu cpuset io memory pids`` since
  systemd 244), and only with the ``systemd`` cgroup manager: with
  ``cgroupfs`` a rootless container gets no cgroup of its own;
- rootless on cgroup v1: nothing (Podman reports no controllers): limits
  are ignored with a warning, pause and stats refuse.

A rootless service runs as one user of its host (``host.idMappings``: the
container's uid 0 is that user's uid). Reached from its host by a client
running as another user (root driving a test user's service, say), it cannot
read that client's files: a bind mount of them fails in the engine
(``statfs ...: permission denied``), so ``BIND_MOUNTS`` is missing for such a
client. A rootless service cannot publish a host port below its host's
``net.ipv4.ip_unprivileged_port_start`` (1024 unless lowered): such a port is
``Unsupported`` before anything is created (:meth:`Host.check_ports`). Both
facts are known only when the engine is on the client's machine (a
``unix://`` address); elsewhere nothing is assumed.

Every other capability (build, images, exec, copy, ports, mounts, networks)
works on every Podman 4.3 to 5.x instance, rootful or rootless (tried on
rootless Podman 4.3 on cgroup v1).
"""

from __future__ import annotations

import errno
import os
import socket
import types
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from enginekit.toolkit.driver import Capability
from enginekit.toolkit.errors import Unsupported
from enginekit.toolkit.models import PortBinding

__all__ = ["PORT_START", "Host", "busy_binding", "host_from_info"]

_CGROUP_CAPS = (
    Capability.MEMORY_LIMIT,
    Capability.CPU_LIMIT,
    Capability.PIDS_LIMIT,
    Capability.PAUSE,
    Capability.STATS,
)


@attrs.frozen
class Host:
    """The engine's host, as its ``/info`` describes it."""

    #: 1 or 2; None when the engine does not say (then nothing is assumed missing).
    cgroup_version: int | None = None
    rootless: bool = False
    cgroup_manager: str = ""
    controllers: frozenset[str] | None = None
    memory_total: int | None = None
    image_store: str = ""
    #: The host uid a rootless service runs as (its containers' uid 0); None when rootful.
    service_uid: int | None = None
    #: The client's uid when it runs on the engine's host; None when unknown (remote).
    client_uid: int | None = None
    #: The engine host's ``net.ipv4.ip_unprivileged_port_start``; None when unknown.
    unprivileged_port_start: int | None = None
    # Worked out once, when made.
    _reasons: Mapping[Capability, str] = attrs.field(init=False, eq=False, repr=False)
    _capabilities: frozenset[Capability] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        reasons = self._missing()
        object.__setattr__(self, "_reasons", types.MappingProxyType(reasons))
        object.__setattr__(self, "_capabilities", frozenset(Capability) - set(reasons))

    def has(self, controller: str) -> bool:
        """Whether containers can use ``controller`` (True when the engine lists none)."""
        return self.controllers is None or controller in self.controllers

    @property
    def container_cgroups(self) -> bool:
        """Whether containers get a cgroup of their own at all."""
        if not self.rootless:
            return True
        if self.cgroup_version == 1:
            return False
        return self.cgroup_manager in ("", "systemd")

    def unsupported(self) -> Mapping[Capability, str]:
        """Capability -> why this instance lacks it (only those it lacks)."""
        return self._reasons

    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    @property
    def local(self) -> bool:
        """Whether the engine runs on the client's machine (the client's uid is known)."""
        return self.client_uid is not None

    @property
    def checks_ports_first(self) -> bool:
        """Whether a start looks for its host ports taken before asking the engine.

        A rootless Podman 4.3 whose port forwarder cannot bind a taken port
        keeps the container's address allocated (its CNI plugin's
        ``duplicate allocation is not allowed`` then refuses every later
        start); asked first, the start is refused as on every engine
        (``Conflict``) and the container starts once the port is free. Only
        where the engine runs on this machine, whose ports the client sees.
        """
        return self.rootless and self.local

    @property
    def foreign_client(self) -> bool:
        """A client on the engine's host running as another user than the rootless service."""
        return (
            self.rootless
            and self.service_uid is not None
            and self.client_uid is not None
            and self.client_uid != self.service_uid
        )

    def check_ports(self, host_ports: Iterable[int | None]) -> None:
        """``Unsupported`` for a host port a rootless service cannot publish."""
        start = self.unprivileged_port_start
        if not self.rootless or start is None:
            return
        low = sorted({p for p in host_ports if p and p < start})
        if low:
            ports = ", ".join(str(p) for p in low)
            raise Unsupported(
                "podman",
                f"publishing host port{'s' if len(low) > 1 else ''} {ports}",
                f"a rootless Podman service cannot bind a port below {start} "
                f"(net.ipv4.ip_unprivileged_port_start on its host)",
            )

    def _missing(self) -> dict[Capability, str]:
        out = self._cgroup_missing()
        if self.foreign_client:
            out[Capability.BIND_MOUNTS] = (
                f"the rootless Podman service runs as uid {self.service_uid} and cannot read "
                f"the files of this client (uid {self.client_uid}); bind mounts need a client "
                f"running as uid {self.service_uid}"
            )
        return out

    def _cgroup_missing(self) -> dict[Capability, str]:
        if not self.container_cgroups:
            if self.cgroup_version == 1:
                why = "rootless Podman on a cgroup v1 host"
                return {
                    Capability.MEMORY_LIMIT: f"{why} cannot set limits (Podman ignores them)",
                    Capability.CPU_LIMIT: f"{why} cannot set limits (Podman ignores them)",
                    Capability.PIDS_LIMIT: f"{why} cannot set limits (Podman ignores them)",
                    Capability.PAUSE: f"{why} cannot pause containers (no freezer)",
                    Capability.STATS: f"{why} has no stats (no cgroup per container)",
                }
            why = (
                "rootless Podman with the cgroupfs cgroup manager gives containers no cgroup "
                'of their own (set cgroup_manager = "systemd" in containers.conf)'
            )
            return dict.fromkeys(_CGROUP_CAPS, why)
        out: dict[Capability, str] = {}
        where = f"cgroup v{self.cgroup_version}" if self.cgroup_version else "the host"
        delegated = " delegated" if self.rootless else ""

        def missing(controller: str) -> str:
            return f"{where} without the {controller} controller{delegated}"

        if not self.has("memory"):
            out[Capability.MEMORY_LIMIT] = missing("memory")
        if not self.has("cpu"):
            out[Capability.CPU_LIMIT] = missing("cpu")
        if not self.has("pids"):
            out[Capability.PIDS_LIMIT] = missing("pids")
        if self.cgroup_version == 1 and not self.has("freezer"):
            out[Capability.PAUSE] = missing("freezer")
        stats_needs = ["memory", "pids"] + (["cpuacct"] if self.cgroup_version == 1 else [])
        lacking = [c for c in stats_needs if not self.has(c)]
        if lacking:
            out[Capability.STATS] = (
                f"{where} without the {' and '.join(lacking)} "
                f"controller{'s' if len(lacking) > 1 else ''}{delegated} "
                "(stats read memory use and the process count from the memory and pids controllers)"
            )
        return out


def _cgroup_version(value: Any) -> int | None:
    text = str(value or "").strip().lower().lstrip("v")
    return int(text) if text in ("1", "2") else None


def busy_binding(bindings: Iterable[PortBinding]) -> PortBinding | None:
    """The first binding with a fixed host port that something on this machine
    holds (a listening or bound socket), or None.

    Bound as the engine's port forwarder binds (``SO_REUSEADDR``, as Go's
    listeners do), so a port in ``TIME_WAIT`` is free; a port this client may
    not bind (below the unprivileged start) is not judged.
    """
    for binding in bindings:
        if not binding.host_port:
            continue
        ip = binding.host_ip or "0.0.0.0"
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        kind = socket.SOCK_DGRAM if binding.protocol == "udp" else socket.SOCK_STREAM
        if binding.protocol not in ("tcp", "udp"):
            continue
        try:
            with socket.socket(family, kind) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((ip.strip("[]"), binding.host_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return binding
    return None


def _service_uid(host: Mapping[str, Any]) -> int | None:
    """The host uid that the container's uid 0 maps to (a rootless service's user)."""
    mappings = (host.get("idMappings") or {}).get("uidmap") or ()
    for entry in mappings:
        if isinstance(entry, Mapping) and entry.get("container_id") == 0:
            host_id = entry.get("host_id")
            return host_id if isinstance(host_id, int) else None
    return None


#: Where a Linux host says its lowest port an unprivileged process may bind.
PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


def _local_port_start() -> int | None:
    try:
        with open(PORT_START, encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def host_from_info(
    data: Mapping[str, Any],
    *,
    address: str | None = None,
    client_uid: int | None = None,
    unprivileged_port_start: int | None = None,
) -> Host:
    """A :class:`Host` from ``GET /libpod/info`` (Podman 4.x and 5.x alike).

    ``address`` is where the engine was reached: for a ``unix://`` one (the
    engine is on this machine) the client's uid and this machine's
    unprivileged port start are taken unless given.
    """
    host: Mapping[str, Any] = data.get("host") or {}
    security: Mapping[str, Any] = host.get("security") or {}
    store: Mapping[str, Any] = data.get("store") or {}
    raw_controllers = host.get("cgroupControllers")
    controllers = (
        frozenset(str(c) for c in raw_controllers) if isinstance(raw_controllers, list) else None
    )
    rootless = bool(security.get("rootless"))
    if controllers is not None and not controllers and not rootless:
        # A rootful engine listing nothing says nothing (an empty list only
        # means "none delegated" for a rootless one).
        controllers = None
    memory = int(host.get("memTotal") or 0)
    local = address is not None and address.startswith("unix:")
    return Host(
        cgroup_version=_cgroup_version(host.get("cgroupVersion")),
        rootless=rootless,
        cgroup_manager=str(host.get("cgroupManager") or ""),
        controllers=controllers,
        memory_total=memory or None,
        image_store=str(store.get("graphDriverName") or ""),
        service_uid=_service_uid(host) if rootless else None,
        client_uid=client_uid if client_uid is not None or not local else os.geteuid(),
        unprivileged_port_start=(
            unprivileged_port_start
            if unprivileged_port_start is not None or not local
            else _local_port_start()
        ),
    )
