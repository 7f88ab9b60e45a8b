"""Stats, OOM and capabilities on cgroup v2 and other daemon set-ups, over written answers.

No host here runs cgroup v2 or a rootless Docker: ``tests/data/cgroup2/`` holds
Docker's answers as it gives them on a v2 host (see its README), and the
``/info`` of other set-ups is written inline from Docker's documented fields.
The memory figure follows ``docker stats``: usage less inactive file cache,
read from v1's ``total_inactive_file`` or v2's ``inactive_file``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from enginekit_docker import convert, instance

from enginekit.capabilities import Capability
from enginekit.models import ContainerState

V2 = Path(__file__).parent / "data" / "cgroup2"
V1 = Path(__file__).parent / "data" / "v1.51"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def test_v2_memory_is_usage_less_inactive_file() -> None:
    data = load(V2 / "stats_limited.json")
    memory = data["memory_stats"]
    assert "total_inactive_file" not in memory["stats"] and "max_usage" not in memory
    s = convert.stats(data, limited=True)
    assert s.memory_bytes == memory["usage"] - memory["stats"]["inactive_file"] == 2396160
    assert s.memory_limit == 67108864
    assert s.pids == 2
    assert s.cpu_seconds == 0.03175  # usage_usec x 1000, in ns


def test_v2_without_a_limit() -> None:
    data = load(V2 / "stats_unlimited.json")
    s = convert.stats(data, limited=False)
    assert s.memory_limit is None  # Docker's figure is the machine's memory
    assert s.memory_bytes == 1490944 - 1052672
    assert s.pids == 1


def test_v1_memory_is_usage_less_total_inactive_file() -> None:
    data = copy.deepcopy(load(V1 / "stats_limited.json"))
    memory = data["memory_stats"]
    # v1 has both the cgroup's own figure and the hierarchical total: the total counts.
    memory["stats"].update(inactive_file=4096, total_inactive_file=8192 + 4096)
    memory["usage"] = 1_000_000
    assert convert.stats(data, limited=True).memory_bytes == 1_000_000 - 12288
    recorded = convert.stats(load(V1 / "stats_limited.json"), limited=True)
    assert recorded.memory_bytes == load(V1 / "stats_limited.json")["memory_stats"]["usage"]


def test_cache_larger_than_usage_is_not_subtracted() -> None:
    v1 = {"usage": 4096, "stats": {"total_inactive_file": 8192, "inactive_file": 0}}
    v2 = {"usage": 4096, "stats": {"inactive_file": 8192}}
    assert convert.memory_in_use(v1) == convert.memory_in_use(v2) == 4096
    assert convert.memory_in_use({}) == 0


def test_v2_oom_killed() -> None:
    c = convert.container_from_inspect(load(V2 / "container_oom.json"))
    assert c.state is ContainerState.EXITED and c.exit_code == 137 and c.oom_killed
    assert c.resources.memory == 16777216


def test_v2_info() -> None:
    info = load(V2 / "info.json")
    described = instance.describe(info)
    assert described.cgroup_version == 2 and described.rootless is False
    assert described.capabilities == frozenset(Capability) and not described.unsupported
    engine = convert.engine_info(load(V1 / "version.json"), info, api_version="1.51")
    assert engine.cgroup_version == 2 and engine.image_store == "overlay2"


def _info(**changes: Any) -> dict[str, Any]:
    info = load(V2 / "info.json")
    info.update(changes)
    return info


def test_rootless_v2_without_delegated_controllers() -> None:
    info = _info(
        SecurityOptions=["name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"],
        CpuCfsQuota=False,
        PidsLimit=False,
    )
    d = instance.describe(info)
    assert d.rootless and d.cgroup_version == 2
    assert d.unsupported.keys() == {
        Capability.CPU_LIMIT,
        Capability.PIDS_LIMIT,
        Capability.NETWORK_HOST,
    }
    assert "cpu controller delegated" in d.unsupported[Capability.CPU_LIMIT]
    assert "RootlessKit" in d.unsupported[Capability.NETWORK_HOST]
    assert Capability.MEMORY_LIMIT in d.capabilities and Capability.PAUSE in d.capabilities
    assert not d.capabilities & d.unsupported.keys()


def test_rootless_v1_has_no_cgroups() -> None:
    info = _info(
        CgroupVersion="1",
        CgroupDriver="none",
        SecurityOptions=["name=seccomp,profile=builtin", "name=rootless"],
        MemoryLimit=False,
        CpuCfsQuota=False,
        PidsLimit=False,
    )
    d = instance.describe(info)
    lacking = {
        Capability.MEMORY_LIMIT,
        Capability.CPU_LIMIT,
        Capability.PIDS_LIMIT,
        Capability.PAUSE,
        Capability.STATS,
        Capability.NETWORK_HOST,
    }
    assert d.unsupported.keys() == lacking
    assert all("no cgroups" in d.unsupported[c] for c in lacking - {Capability.NETWORK_HOST})
    assert d.capabilities == frozenset(Capability) - lacking


def test_rootful_v1_without_the_memory_controller() -> None:
    d = instance.describe(_info(CgroupVersion="1", CgroupDriver="cgroupfs", MemoryLimit=False))
    assert d.unsupported.keys() == {Capability.MEMORY_LIMIT}
    assert "cgroup v1 without the memory controller" in d.unsupported[Capability.MEMORY_LIMIT]
    assert "delegated" not in d.unsupported[Capability.MEMORY_LIMIT]


def test_image_store_detection() -> None:
    assert instance.image_store({"Driver": "overlay2", "DriverStatus": [["a", "b"]]}) == "overlay2"
    c8d = {
        "Driver": "overlayfs",
        "DriverStatus": [["driver-type", instance.CONTAINERD_SNAPSHOTTER]],
    }
    assert instance.image_store(c8d) == "containerd"
    assert instance.image_store({}) == ""
    assert instance.cgroup_version({"CgroupVersion": ""}) is None
