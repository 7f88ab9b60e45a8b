"""What one dockerd can do, read once from its ``GET /info``.

:func:`describe` turns ``/info`` into an :class:`Instance`: the capabilities
of that daemon, a reason for each one it lacks, its cgroup version, whether it
runs rootless, and which image store it keeps images in. The driver reads
``/info`` for it once, on first use of :attr:`~.DockerDriver.capabilities`
(never in ``connect()``), and keeps the answer.

=================== ===================================================================
capability          missing when ``/info`` says
=================== ===================================================================
``MEMORY_LIMIT``    ``MemoryLimit: false`` (no memory controller), or no cgroups at all
``CPU_LIMIT``       ``CpuCfsQuota: false`` (``NanoCpus`` is a CFS quota)
``PIDS_LIMIT``      ``PidsLimit: false`` (no pids controller)
``PAUSE``           no cgroups (``CgroupDriver: none``: rootless Docker on cgroup v1)
``STATS``           no cgroups (same)
``NETWORK_HOST``    rootless (``SecurityOptions`` has ``name=rootless``): the "host"
                    network is RootlessKit's namespace, not the host's
=================== ===================================================================

Everything else (build, save, load, pull, push, exec, ports, bind mounts,
networks none and bridge, copy) every supported Docker does. ``SwapLimit:
false`` does not remove ``MEMORY_LIMIT``: the limit holds, only swap is not
limited with it (a container may then swap where it would be OOM-killed).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from enginekit.toolkit.driver import Capability

__all__ = ["CONTAINERD_SNAPSHOTTER", "Instance", "cgroup_version", "describe", "image_store"]

#: ``DriverStatus`` says ``["driver-type", CONTAINERD_SNAPSHOTTER]`` on the containerd image store.
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"


@attrs.frozen
class Instance:
    capabilities: frozenset[Capability]
    unsupported: Mapping[Capability, str]
    cgroup_version: int | None
    rootless: bool
    image_store: str

    @property
    def containerd_store(self) -> bool:
        return self.image_store == "containerd"


def _security_options(info: Mapping[str, Any]) -> set[str]:
    names = set()
    for option in info.get("SecurityOptions") or ():
        for part in str(option).split(","):
            key, _, value = part.partition("=")
            if key == "name":
                names.add(value)
    return names


def image_store(info: Mapping[str, Any]) -> str:
    """``"containerd"`` on the containerd image store, else the graph driver (``"overlay2"``)."""
    for entry in info.get("DriverStatus") or ():
        if (
            isinstance(entry, list | tuple)
            and len(entry) == 2
            and entry[0] == "driver-type"
            and entry[1] == CONTAINERD_SNAPSHOTTER
        ):
            return "containerd"
    return str(info.get("Driver") or "")


def cgroup_version(info: Mapping[str, Any]) -> int | None:
    raw = str(info.get("CgroupVersion") or "")
    return int(raw) if raw.isdigit() else None


def describe(info: Mapping[str, Any]) -> Instance:
    """``GET /info`` -> what this daemon can do, and why not the rest."""
    rootless = "rootless" in _security_options(info)
    version = cgroup_version(info)
    missing: dict[Capability, str] = {}
    if str(info.get("CgroupDriver") or "") == "none":
        why = (
            "this dockerd manages no cgroups (rootless Docker on cgroup v1): "
            "run it on cgroup v2 with systemd, or rootful"
        )
        for cap in (
            Capability.MEMORY_LIMIT,
            Capability.CPU_LIMIT,
            Capability.PIDS_LIMIT,
            Capability.PAUSE,
            Capability.STATS,
        ):
            missing[cap] = why
    layout = f"cgroup v{version}" if version else "this host's cgroups"
    if not info.get("MemoryLimit", True):
        missing.setdefault(
            Capability.MEMORY_LIMIT,
            f"dockerd reports no memory limit support ({layout} without the memory controller"
            + (" delegated)" if rootless else ")"),
        )
    if not info.get("CpuCfsQuota", True):
        missing.setdefault(
            Capability.CPU_LIMIT,
            f"dockerd reports no CFS quota support ({layout} without the cpu controller"
            + (" delegated)" if rootless else ")"),
        )
    if not info.get("PidsLimit", True):
        missing.setdefault(
            Capability.PIDS_LIMIT,
            f"dockerd reports no pids limit support ({layout} without the pids controller"
            + (" delegated)" if rootless else ")"),
        )
    if rootless:
        missing[Capability.NETWORK_HOST] = (
            "rootless Docker's host network is RootlessKit's namespace, not the host's"
        )
    return Instance(
        capabilities=frozenset(Capability) - frozenset(missing),
        unsupported=MappingProxyType(missing),
        cgroup_version=version,
        rootless=rootless,
        image_store=image_store(info),
    )
