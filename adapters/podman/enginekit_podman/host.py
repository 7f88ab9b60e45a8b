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

Every other capability (build, images, exec, copy, ports, mounts, networks)
works on every Podman 4.3 to 5.x instance.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import attrs

from enginekit.capabilities import Capability

__all__ = ["Host", "host_from_info"]

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

    def _missing(self) -> dict[Capability, str]:
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


def host_from_info(data: Mapping[str, Any]) -> Host:
    """A :class:`Host` from ``GET /libpod/info`` (Podman 4.x and 5.x alike)."""
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
    return Host(
        cgroup_version=_cgroup_version(host.get("cgroupVersion")),
        rootless=rootless,
        cgroup_manager=str(host.get("cgroupManager") or ""),
        controllers=controllers,
        memory_total=memory or None,
        image_store=str(store.get("graphDriverName") or ""),
    )
