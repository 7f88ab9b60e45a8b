"""Capabilities per Podman instance, from recorded ``/info`` answers.

``info_4.3.1_rootful_v1.json`` was recorded on this machine (cgroup v1,
rootful); ``info_5.8.6_rootful_v1.json`` on the test host (also cgroup v1).
The others are those answers with the fields a different host changes, as
Podman fills them (``libpod/info_linux.go`` and containers/common's
``AvailableControllers``): ``host.cgroupVersion``, ``host.cgroupManager``,
``host.cgroupControllers`` (the root's ``cgroup.controllers`` when
rootful on v2; the user's delegated ones when rootless on v2; none when
rootless on v1), ``host.security.rootless``, ``host.idMappings`` and the
store's paths. Neither machine can run cgroup v2, so v2 is tested here only.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from enginekit_podman.host import Host, host_from_info

from enginekit.capabilities import Capability

DATA = pathlib.Path(__file__).parent / "data"
C = Capability
LIMITS = {C.MEMORY_LIMIT, C.CPU_LIMIT, C.PIDS_LIMIT}
CGROUP = LIMITS | {C.PAUSE, C.STATS}
VERSIONS = sorted({p.name.split("_")[1] for p in DATA.glob("info_*_rootful_v1.json")})


def info(version: str, kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"info_{version}_{kind}.json").read_text())
    return data


def host(version: str, kind: str) -> Host:
    return host_from_info(info(version, kind))


def test_recorded_versions_present() -> None:
    assert "4.3.1" in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_rootful_v1_has_everything(version: str) -> None:
    h = host(version, "rootful_v1")
    assert h.cgroup_version == 1 and not h.rootless
    assert h.image_store == "overlay"
    assert h.memory_total and h.memory_total > 1 << 30
    assert h.capabilities() == frozenset(Capability)
    assert h.unsupported() == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_rootful_v2_has_everything(version: str) -> None:
    h = host(version, "rootful_v2")
    assert h.cgroup_version == 2 and not h.rootless and h.cgroup_manager == "systemd"
    assert h.capabilities() == frozenset(Capability)


@pytest.mark.parametrize("version", VERSIONS)
def test_rootless_v2_with_the_usual_delegation_has_everything(version: str) -> None:
    # systemd 244 and later delegate cpu, io, memory and pids to users.
    h = host(version, "rootless_v2")
    assert h.rootless and h.cgroup_version == 2
    assert h.capabilities() == frozenset(Capability)


@pytest.mark.parametrize("version", VERSIONS)
def test_rootless_v2_with_memory_and_pids_only_cannot_limit_cpu(version: str) -> None:
    h = host(version, "rootless_v2_memory_pids")
    assert h.capabilities() == frozenset(Capability) - {C.CPU_LIMIT}
    assert h.unsupported() == {C.CPU_LIMIT: "cgroup v2 without the cpu controller delegated"}


@pytest.mark.parametrize("version", VERSIONS)
def test_rootless_v2_without_delegation(version: str) -> None:
    h = host(version, "rootless_v2_undelegated")
    reasons = h.unsupported()
    # cgroup.freeze is in every v2 cgroup: pause stays.
    assert set(reasons) == LIMITS | {C.STATS}
    assert reasons[C.MEMORY_LIMIT] == "cgroup v2 without the memory controller delegated"
    assert reasons[C.PIDS_LIMIT] == "cgroup v2 without the pids controller delegated"
    assert "memory and pids controllers delegated" in reasons[C.STATS]
    assert C.PAUSE in h.capabilities()


@pytest.mark.parametrize("version", VERSIONS)
def test_rootless_v2_with_cgroupfs_has_no_container_cgroups(version: str) -> None:
    h = host(version, "rootless_v2_cgroupfs")
    assert not h.container_cgroups
    reasons = h.unsupported()
    assert set(reasons) == CGROUP
    assert all("cgroupfs" in r and "systemd" in r for r in reasons.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_rootless_v1_has_no_limits_no_pause_no_stats(version: str) -> None:
    h = host(version, "rootless_v1")
    assert h.rootless and h.cgroup_version == 1 and h.controllers == frozenset()
    reasons = h.unsupported()
    assert set(reasons) == CGROUP
    assert "cgroup v1" in reasons[C.MEMORY_LIMIT] and "rootless" in reasons[C.MEMORY_LIMIT]
    assert "pause" in reasons[C.PAUSE]
    # Everything else stays.
    assert h.capabilities() == frozenset(Capability) - CGROUP


def test_rootful_v1_without_freezer_or_pids() -> None:
    data = info("4.3.1", "rootful_v1")
    data["host"]["cgroupControllers"] = ["cpuset", "cpu", "cpuacct", "blkio", "memory", "devices"]
    reasons = host_from_info(data).unsupported()
    assert reasons == {
        C.PIDS_LIMIT: "cgroup v1 without the pids controller",
        C.PAUSE: "cgroup v1 without the freezer controller",
        C.STATS: "cgroup v1 without the pids controller (stats read memory use and the "
        "process count from the memory and pids controllers)",
    }


def test_an_info_without_cgroup_fields_assumes_nothing_missing() -> None:
    h = host_from_info({"host": {"security": {}}, "store": {}})
    assert h.cgroup_version is None and h.controllers is None
    assert h.capabilities() == frozenset(Capability)
    # A rootful engine listing no controllers says nothing either.
    h = host_from_info({"host": {"cgroupVersion": "v2", "cgroupControllers": []}})
    assert h.capabilities() == frozenset(Capability)


def test_every_reason_is_one_line() -> None:
    for path in DATA.glob("info_*.json"):
        for reason in host_from_info(json.loads(path.read_text())).unsupported().values():
            assert reason.strip() and "\n" not in reason, path.name
