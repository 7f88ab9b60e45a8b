"""Podman 5.x answers and cgroup v2: conversions of recorded libpod JSON.

``*_5.8.6_v1_*.json`` were recorded from Podman 5.8.6 on the test host
(cgroup v1, rootful, cgroupfs; libpod API 5.8.6 spoken). Neither that host nor
this machine can run cgroup v2, so the ``*_v2*`` files are those answers as
a cgroup v2 host gives them, following libpod's source:

- inspect: ``State.CgroupPath`` is the unified path
  (``/machine.slice/libpod-<id>.scope/container`` with the systemd manager),
  ``HostConfig.CgroupManager`` ``systemd`` and ``CgroupMode`` ``private``;
  ``State.OOMKilled`` comes from conmon's OOM marker, which conmon writes on
  v2 when ``memory.events`` counts an ``oom_kill`` (on v1 from the
  ``memory.oom_control`` eventfd): 5.x reads it on both;
- stats (containers/common's cgroup readers): ``CPUNano`` is ``cpu.stat``
  ``usage_usec`` x 1000, no per-CPU figures, ``CPUSystemNano`` is
  ``system_usec`` unscaled (a libpod slip, unused here), ``MemUsage`` is
  ``memory.current`` less ``inactive_file``, ``MemLimit`` is ``memory.max``
  (``max`` clamped to the host's RAM); a controller that is not delegated has
  no files, and libpod skips it: ``PIDs`` 0, ``MemUsage`` 0.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import attrs
from enginekit_podman import convert

from enginekit.models import ContainerState, Mount, PortBinding

DATA = pathlib.Path(__file__).parent / "data"
HOST_MEMORY = 25276194816  # memTotal of info_5.8.6_*.json


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def stats(name: str) -> Any:
    return load(name)["Stats"][0]


def test_5x_config_uses_lists_and_signal_names() -> None:
    raw = load("container_5.8.6_v1_oom.json")
    assert raw["Config"]["Entrypoint"] == ["/bin/busybox"]  # 4.x: "/bin/busybox"
    assert raw["Config"]["StopSignal"] == "SIGTERM"  # 4.x: 15
    c = convert.container_from_inspect(raw)
    assert c.entrypoint == ("/bin/busybox",)
    assert c.command == ("sh", "-c", "x=a; while :; do x=$x$x; done")


def test_5x_running_container() -> None:
    c = convert.container_from_inspect(load("container_5.8.6_v1_running.json"))
    assert c.state is ContainerState.RUNNING and c.pid
    assert c.name.startswith("ekpm-rec-") and c.image.startswith("ekpm-rec-")
    assert c.command == ("sleep", "100") and c.entrypoint == ()
    assert dict(c.env) == {
        "A": "1",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    assert c.workdir == "/w" and c.user is None and c.stop_signal is None
    assert c.resources.memory == 64 << 20 and c.resources.cpus == 0.5
    assert c.resources.pids_limit is None  # created unlimited (-1)
    assert c.mounts and c.mounts[0].target == "/mnt/x" and c.mounts[0].read_only
    assert c.ports == (PortBinding(80, "tcp", "127.0.0.1", c.ports[0].host_port),)
    assert c.ports[0].host_port  # live: the port Podman picked
    assert c.network == "bridge"


def test_5x_created_paused_exited() -> None:
    created = convert.container_from_inspect(load("container_5.8.6_v1_created.json"))
    assert created.state is ContainerState.CREATED and created.exit_code is None
    assert created.ports[0].host_port is None  # picked at create, reported as not yet
    paused = convert.container_from_inspect(load("container_5.8.6_v1_paused.json"))
    assert paused.state is ContainerState.PAUSED and paused.pid
    exited = convert.container_from_inspect(load("container_5.8.6_v1_exited.json"))
    assert exited.state is ContainerState.EXITED and exited.exit_code == 143
    assert exited.pid is None and exited.finished_at is not None
    assert not exited.oom_killed


def test_5x_records_oom_kills() -> None:
    c = convert.container_from_inspect(load("container_5.8.6_v1_oom.json"))
    assert c.state is ContainerState.EXITED and c.exit_code == 137
    assert c.oom_killed
    assert c.resources.memory == 16 << 20


def test_v2_inspect_converts_as_v1() -> None:
    for kind in ("running", "oom"):
        v1 = convert.container_from_inspect(load(f"container_5.8.6_v1_{kind}.json"))
        v2 = convert.container_from_inspect(load(f"container_5.8.6_v2_{kind}.json"))
        assert v2.raw["State"].get("CgroupPath", "/machine.slice").startswith("/machine.slice")
        assert attrs.evolve(v2, raw=None) == attrs.evolve(v1, raw=None)
    assert convert.container_from_inspect(load("container_5.8.6_v2_oom.json")).oom_killed


def test_oom_events_of_5x_have_no_oom_event() -> None:
    # Nothing in the events says "oom" on 5.x either: State.OOMKilled is the source.
    events = load("events_5.8.6_oom.json")
    assert [e["status"] for e in events] == ["create", "init", "start", "died", "cleanup"]
    assert all(e["Action"] == e["status"] for e in events)


def test_stats_v1_5x() -> None:
    s = convert.stats_from_libpod(stats("stats_5.8.6_v1.json"), host_memory=HOST_MEMORY)
    assert s.memory_limit == 64 << 20
    assert s.memory_bytes == 344064 and s.pids == 2
    assert s.cpu_seconds == 9239134 / 1e9


def test_stats_v2() -> None:
    raw = stats("stats_5.8.6_v2.json")
    assert raw["PerCPU"] is None and raw["CPUNano"] % 1000 == 0
    s = convert.stats_from_libpod(raw, host_memory=HOST_MEMORY)
    assert s.cpu_seconds == 0.009239
    assert s.memory_bytes == 331776
    assert s.memory_limit == 64 << 20
    assert s.pids == 2


def test_stats_v2_without_a_memory_limit() -> None:
    s = convert.stats_from_libpod(stats("stats_5.8.6_v2_unlimited.json"), host_memory=HOST_MEMORY)
    assert s.memory_limit is None and s.memory_bytes > 0
    # Without knowing the host's memory, only the kernel's "max" means none.
    raw = dict(stats("stats_5.8.6_v2_unlimited.json"), MemLimit=2**64 - 1)
    assert convert.stats_from_libpod(raw).memory_limit is None


def test_stats_v2_undelegated_pids_is_none_not_zero() -> None:
    raw = stats("stats_5.8.6_v2_undelegated.json")
    s = convert.stats_from_libpod(raw, host_memory=HOST_MEMORY, pids=False)
    assert s.pids is None and s.memory_limit is None
    # With the controller there, 0 is a real count (a stopped container).
    assert convert.stats_from_libpod(raw, host_memory=HOST_MEMORY).pids == 0


def test_mount_of_recorded_5x() -> None:
    c = convert.container_from_inspect(load("container_5.8.6_v2_running.json"))
    (m,) = c.mounts
    assert m == Mount(source=m.source, target="/mnt/x", read_only=True)
