"""The cgroup layouts over recorded trees, and LXC's config by LXC version and layout.

``data/cgroup-v1`` was recorded on a cgroup v1 (hybrid) host running LXC 5.0
(a container with 32 MiB, 0.5 CPU, 50 pids); ``data/cgroup-v2`` is a unified
host's ``/sys/fs/cgroup`` written from the kernel's cgroup-v2 documentation
(the same container under ``lxc.payload.ek-0123456789abcdef``). Each tree has
the ``/proc`` files the layouts read (``1/cgroup``, ``PID/cgroup``,
``self/mountinfo``). No test here needs LXC, root or a cgroup v2 machine; the
tests that write copy the tree first.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit_lxc import cgroups
from enginekit_lxc.cgroups import DEVICE_RULES, CgroupV1, CgroupV2, Limits, Usage
from enginekit_lxc.cgroupv2 import _KeyedWatch
from enginekit_lxc.lxchost import LxcHost, parse_version

from enginekit.capabilities import ALL_CAPABILITIES, Capability
from enginekit.errors import EngineUnavailable

DATA = Path(__file__).parent / "data"
NAME = "ek-0123456789abcdef"
PAYLOAD = f"lxc.payload.{NAME}"
INIT = 4242


def _tree(tmp_path: Path, which: str) -> Path:
    """A copy of a recorded tree, its mountinfo naming the copy's root."""
    dst = tmp_path / which
    shutil.copytree(DATA / which, dst)
    info = dst / "proc/self/mountinfo"
    info.write_text(info.read_text().replace(" /sys/fs/cgroup", f" {dst}/sys/fs/cgroup"))
    return dst


def _v1(base: Path) -> CgroupV1:
    return CgroupV1(str(base / "sys/fs/cgroup"), str(base / "proc"))


def _v2(base: Path) -> CgroupV2:
    return CgroupV2(str(base / "sys/fs/cgroup"), str(base / "proc"))


@pytest.fixture
def v1(tmp_path: Path) -> Iterator[tuple[Path, CgroupV1]]:
    base = _tree(tmp_path, "cgroup-v1")
    yield base, _v1(base)


@pytest.fixture
def v2(tmp_path: Path) -> Iterator[tuple[Path, CgroupV2]]:
    base = _tree(tmp_path, "cgroup-v2")
    yield base, _v2(base)


# -- the layout is chosen from what the host has -------------------------------------


def test_detect_picks_the_layout_mounted_at_the_root(tmp_path: Path) -> None:
    for which, cls in (("cgroup-v1", CgroupV1), ("cgroup-v2", CgroupV2)):
        base = _tree(tmp_path, which)
        root = str(base / "sys/fs/cgroup")
        info = base / "proc/self/mountinfo"
        found = cgroups.detect(root, str(base / "proc"))
        assert type(found) is cls and found.version == (2 if cls is CgroupV2 else 1)
        # Without a mountinfo: the unified root is the one with cgroup.controllers.
        info.unlink()
        assert type(cgroups.detect(root, str(base / "proc"))) is cls


def test_the_hybrid_unified_mount_is_not_v2(v1: tuple[Path, CgroupV1]) -> None:
    base, _ = v1
    unified = base / "sys/fs/cgroup/unified"
    assert (unified / "cgroup.controllers").exists()  # cgroup2 beside the v1 hierarchies
    root = str(base / "sys/fs/cgroup")
    assert cgroups.detect(root, str(base / "proc")).version == 1


# -- a process's cgroups ---------------------------------------------------------------


def test_v1_dirs_from_proc_pid_cgroup(v1: tuple[Path, CgroupV1]) -> None:
    base, cg = v1
    dirs = cg.dirs(INIT)
    root = base / "sys/fs/cgroup"
    for ctrl in ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "unified"):
        assert dirs[ctrl] == str(root / ctrl / PAYLOAD), ctrl
    assert dirs["systemd"] == str(root / "systemd" / PAYLOAD)  # name=systemd
    assert cg.dirs(99999) == {}  # no such process


def test_v1_combined_hierarchies_and_deleted_paths(v1: tuple[Path, CgroupV1]) -> None:
    base, cg = v1
    root = base / "sys/fs/cgroup"
    (root / "net_cls,net_prio").mkdir()
    text = f"4:net_cls,net_prio:/{PAYLOAD}\n5:memory:/{PAYLOAD} (deleted)\n"
    dirs = cg.parse(text)
    assert dirs["net_cls"] == dirs["net_prio"] == str(root / "net_cls,net_prio" / PAYLOAD)
    assert dirs["memory"] == str(root / "memory" / PAYLOAD)


def test_v2_dirs_from_the_zero_line(v2: tuple[Path, CgroupV2]) -> None:
    base, cg = v2
    assert cg.dirs(INIT) == {"unified": str(base / "sys/fs/cgroup" / PAYLOAD)}
    assert cg.parse("0::/\n") == {"unified": str(base / "sys/fs/cgroup")}
    assert cg.parse("1:memory:/x\n") == {}  # a v1 line is not the unified one
    assert cg.base() == str(base / "sys/fs/cgroup")  # init.scope pruned, as LXC does


# -- what the host can do ----------------------------------------------------------


def test_v1_support_full(v1: tuple[Path, CgroupV1]) -> None:
    _, cg = v1
    sup = cg.support()
    assert sup.version == 1 and dict(sup.missing) == {} and sup.swap and sup.devices


def test_v1_support_missing_controllers_have_reasons(tmp_path: Path) -> None:
    base = _tree(tmp_path, "cgroup-v1")
    root = base / "sys/fs/cgroup"
    shutil.rmtree(root / "pids")
    shutil.rmtree(root / "freezer")
    (root / "cpu/cpu.cfs_quota_us").unlink()
    (root / "memory/memory.memsw.limit_in_bytes").unlink()
    sup = _v1(base).support()
    assert set(sup.missing) == {"pids", "freeze", "cpu"}
    assert "pids controller" in sup.missing["pids"]
    assert "freezer" in sup.missing["freeze"]
    assert "cpu.cfs_quota_us" in sup.missing["cpu"]
    assert not sup.swap
    shutil.rmtree(root / "memory")
    sup = _v1(base).support()
    assert "memory" in sup.missing and "stats" in sup.missing


def test_v2_support_full(v2: tuple[Path, CgroupV2]) -> None:
    _, cg = v2
    sup = cg.support()
    assert sup.version == 2 and dict(sup.missing) == {} and sup.swap and sup.devices


def test_v2_support_without_delegation_or_controllers(tmp_path: Path) -> None:
    base = _tree(tmp_path, "cgroup-v2")
    root = base / "sys/fs/cgroup"
    (root / "cgroup.controllers").write_text("cpuset cpu io hugetlb\n")
    sup = _v2(base).support()
    assert set(sup.missing) == {"memory", "pids", "stats"}
    assert "memory controller" in sup.missing["memory"] and not sup.swap
    # A root whose subtree_control cannot be written (no delegation): no limits, no freezing.
    (root / "cgroup.subtree_control").unlink()
    sup = _v2(base).support()
    assert {"memory", "cpu", "pids", "freeze"} <= set(sup.missing)
    assert "not writable" in sup.missing["cpu"]


def test_v2_support_below_init_scope_and_without_swap(tmp_path: Path) -> None:
    base = _tree(tmp_path, "cgroup-v2")
    # A container host whose init lives in /payload/init.scope: LXC's base is /payload.
    root = base / "sys/fs/cgroup"
    nested = root / "payload"
    nested.mkdir()
    for f in ("cgroup.controllers", "cgroup.subtree_control", "cgroup.freeze"):
        (nested / f).write_text((root / "init.scope" / f).read_text())
    (base / "proc/1/cgroup").write_text("0::/payload/init.scope\n")
    cg = _v2(base)
    assert cg.base() == str(nested)
    sup = cg.support()
    assert dict(sup.missing) == {} and not sup.swap  # no memory.swap.max below /payload
    files = dict(cg.limit_files(Limits(memory=1 << 26)))
    assert files["memory.max"] == "67108864" and "memory.swap.max" not in files


# -- limits as files, and as LXC's config ----------------------------------------------


def test_limit_files_per_layout(v1: tuple[Path, CgroupV1], v2: tuple[Path, CgroupV2]) -> None:
    limits = Limits(memory=32 << 20, cpus=0.5, pids=50)
    devices = [("devices.deny", "a"), *(("devices.allow", r) for r in DEVICE_RULES)]
    assert v1[1].limit_files(limits) == [
        *devices,
        ("memory.limit_in_bytes", "33554432"),
        ("memory.memsw.limit_in_bytes", "33554432"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
        ("pids.max", "50"),
    ]
    assert v2[1].limit_files(limits) == [
        *devices,
        ("memory.max", "33554432"),
        ("memory.swap.max", "0"),
        ("cpu.max", "50000 100000"),
        ("pids.max", "50"),
    ]
    assert v2[1].limit_files(Limits(cpus=0.001, pids=0))[-2:] == [
        ("cpu.max", "1000 100000"),  # the kernel's smallest quota
        ("pids.max", "max"),
    ]
    assert v1[1].limit_files(Limits()) == devices


def _host(version: str, cg: CgroupV1 | CgroupV2) -> LxcHost:
    return LxcHost(version=parse_version(version), version_text=version, cgroups=cg)


def test_config_keys_by_lxc_version_and_layout(
    v1: tuple[Path, CgroupV1], v2: tuple[Path, CgroupV2]
) -> None:
    limits = Limits(memory=64 << 20, cpus=1.5, pids=9)
    for version in ("5.0.2", "6.0.4"):
        conf = _host(version, v1[1]).cgroup_config(limits, NAME)
        assert conf.mount_auto
        assert "lxc.cgroup.devices.deny = a" in conf.lines
        assert "lxc.cgroup.memory.limit_in_bytes = 67108864" in conf.lines
        assert "lxc.cgroup.cpu.cfs_quota_us = 150000" in conf.lines
        assert "lxc.cgroup.pids.max = 9" in conf.lines
        assert not any(ln.startswith(("lxc.cgroup2.", "lxc.hook.")) for ln in conf.lines)
    for version in ("5.0.2", "6.0.4", "7.0.0"):
        conf = _host(version, v2[1]).cgroup_config(limits, NAME)
        assert conf.mount_auto
        assert conf.lines[0] == "lxc.cgroup2.devices.deny = a"
        assert "lxc.cgroup2.devices.allow = c 136:* rwm" in conf.lines
        assert "lxc.cgroup2.memory.max = 67108864" in conf.lines
        assert "lxc.cgroup2.memory.swap.max = 0" in conf.lines
        assert "lxc.cgroup2.cpu.max = 150000 100000" in conf.lines
        assert "lxc.cgroup2.pids.max = 9" in conf.lines
        assert not any(ln.startswith("lxc.cgroup.") for ln in conf.lines)


def test_lxc7_on_v1_writes_no_v1_key(v1: tuple[Path, CgroupV1]) -> None:
    base, cg = v1
    conf = _host("7.0.0", cg).cgroup_config(Limits(memory=64 << 20, pids=9), NAME)
    assert not conf.mount_auto  # LXC 7 cannot mount cgroup v1 (cgroup:mixed fails)
    assert not any(ln.startswith(("lxc.cgroup.", "lxc.cgroup2.")) for ln in conf.lines)
    hooks = [ln for ln in conf.lines if ln.startswith("lxc.hook.start-host = ")]
    assert len(hooks) == 1
    argv = shlex.split(hooks[0].split(" = ", 1)[1])
    assert argv[:4] == [sys.executable, "-I", "-S", "-c"] and "cgroups import main" in argv[4]
    assert os.path.isfile(os.path.join(argv[5], "enginekit_lxc", "cgroups.py"))
    assert argv[6:9] == ["apply", "1", cg.root] and argv[-1] == "--"
    assert "memory.limit_in_bytes=67108864" in argv and "devices.allow=c 1:3 rwm" in argv
    mounts = [ln for ln in conf.lines if ln.startswith("lxc.mount.entry = ")]
    assert mounts[0].startswith("lxc.mount.entry = tmpfs sys/fs/cgroup tmpfs ")
    root = base / "sys/fs/cgroup"
    assert (
        f"lxc.mount.entry = {root}/memory/{PAYLOAD} sys/fs/cgroup/memory none "
        "bind,ro,nosuid,nodev,noexec,optional,create=dir 0 0"
    ) in mounts
    assert not any("systemd" in m for m in mounts)


def test_lxc_versions_parsed_and_too_old_refused(v1: tuple[Path, CgroupV1]) -> None:
    assert parse_version("5.0.2") == (5, 0, 2)
    assert parse_version("6.0.0~git20240101\n") == (6, 0, 0)
    assert parse_version("7.0") == (7, 0, 0)
    with pytest.raises(EngineUnavailable):
        parse_version("unknown")
    _host("5.0.0", v1[1]).check()
    _host("8.1.0", v1[1]).check()  # newer than known: used with LXC 7's rules
    with pytest.raises(EngineUnavailable) as info:
        _host("4.0.12", v1[1]).check()
    assert "4.0.12" in str(info.value) and "5.0" in str(info.value)
    host = _host("8.0.0", v1[1])
    assert host.refused("Failed to start") is None
    err = host.refused('Unsupported config key "lxc.cgroup2.x"')
    assert isinstance(err, EngineUnavailable)
    assert "8.0.0" in str(err) and "5.0 to 7.x" in str(err) and "lxc.cgroup2.x" in str(err)


# -- capabilities ----------------------------------------------------------------------


def test_capabilities_follow_the_host(tmp_path: Path) -> None:
    base = _tree(tmp_path, "cgroup-v2")
    host = _host("6.0.4", _v2(base))
    assert host.capabilities == ALL_CAPABILITIES and host.unsupported == {}
    assert host.cgroup_version == 2
    (base / "sys/fs/cgroup/cgroup.controllers").write_text("cpu io\n")
    host = _host("6.0.4", _v2(base))
    missing = {Capability.MEMORY_LIMIT, Capability.PIDS_LIMIT, Capability.STATS}
    assert host.capabilities == ALL_CAPABILITIES - missing
    assert set(host.unsupported) == missing
    assert "memory controller" in host.unsupported[Capability.MEMORY_LIMIT]
    base1 = _tree(tmp_path, "cgroup-v1")
    shutil.rmtree(base1 / "sys/fs/cgroup/freezer")
    host = _host("7.0.0", _v1(base1))
    assert host.capabilities == ALL_CAPABILITIES - {Capability.PAUSE}
    assert "freezer" in host.unsupported[Capability.PAUSE]


# -- stats, procs ------------------------------------------------------------------------


def test_usage_v1(v1: tuple[Path, CgroupV1]) -> None:
    _, cg = v1
    dirs = cg.dirs(INIT)
    use = cg.usage(dirs)
    assert use == Usage(cpu_seconds=0.004419748, memory_bytes=413696,
                        memory_limit=33554432, pids=2)  # fmt: skip
    Path(dirs["memory"], "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cg.usage(dirs).memory_limit is None  # v1's "no limit"
    assert cg.procs(dirs) == [4242, 4243]
    assert cg.usage({}) == Usage(cpu_seconds=0.0, memory_bytes=0, memory_limit=None, pids=None)


def test_usage_v2(v2: tuple[Path, CgroupV2]) -> None:
    _, cg = v2
    dirs = cg.dirs(INIT)
    assert cg.usage(dirs) == Usage(cpu_seconds=0.215347, memory_bytes=2088960,
                                   memory_limit=33554432, pids=2)  # fmt: skip
    Path(dirs["unified"], "memory.max").write_text("max\n")
    assert cg.usage(dirs).memory_limit is None
    assert cg.procs(dirs) == [4242, 4243]
    leaf = Path(dirs["unified"], ".lxc")  # where lxc-attach puts an exec'd process
    leaf.mkdir()
    (leaf / "cgroup.procs").write_text("4250\n")
    assert sorted(cg.procs(dirs)) == [4242, 4243, 4250]


# -- freezing ------------------------------------------------------------------------------


def test_freeze_v1(v1: tuple[Path, CgroupV1]) -> None:
    _, cg = v1
    dirs = cg.dirs(INIT)
    assert not cg.frozen(dirs)
    cg.freeze(dirs, True)
    assert Path(dirs["freezer"], "freezer.state").read_text() == "FROZEN"
    assert cg.frozen(dirs)
    cg.freeze(dirs, False)
    assert not cg.frozen(dirs)
    with pytest.raises(LookupError):
        cg.freeze({}, True)


def _kernel(events: Path, freeze: Path, stop: threading.Event, delay: float) -> None:
    """What the kernel does with cgroup.freeze: cgroup.events follows, later."""
    while not stop.is_set():
        want = freeze.read_text().strip()
        text = events.read_text()
        if f"frozen {want}" not in text:
            time.sleep(delay)
            events.write_text(f"populated 1\nfrozen {want}\n")
        time.sleep(0.001)


def test_freeze_v2_waits_for_cgroup_events(v2: tuple[Path, CgroupV2]) -> None:
    _, cg = v2
    dirs = cg.dirs(INIT)
    d = Path(dirs["unified"])
    stop = threading.Event()
    kernel = threading.Thread(
        target=_kernel, args=(d / "cgroup.events", d / "cgroup.freeze", stop, 0.05)
    )
    kernel.start()
    try:
        started = time.monotonic()
        cg.freeze(dirs, True)
        assert time.monotonic() - started >= 0.04  # it waited for "frozen 1"
        assert "frozen 1" in (d / "cgroup.events").read_text()
        assert cg.frozen(dirs)
        cg.freeze(dirs, False)
        assert "frozen 0" in (d / "cgroup.events").read_text() and not cg.frozen(dirs)
    finally:
        stop.set()
        kernel.join()
    # Nobody answers: a timeout, not a hang.
    with pytest.raises(TimeoutError):
        cg.freeze(dirs, True, timeout=0.05)
    (d / "cgroup.events").unlink()  # the cgroup went away
    with pytest.raises(FileNotFoundError):
        cg.freeze(dirs, False, timeout=1)


# -- LXC's start-host hook (LXC 7 on cgroup v1) ----------------------------------------------


def test_hook_writes_the_files_into_lxc_pids_cgroups(v1: tuple[Path, CgroupV1]) -> None:
    """The hook line, run the way LXC runs it (``sh -c 'exec HOOK NAME lxc start-host'``
    with ``LXC_PID``), on a process whose cgroups are mirrored into the copied tree."""
    base, cg = v1
    root = base / "sys/fs/cgroup"
    proc = subprocess.Popen(["sleep", "30"])
    try:
        # The hook reads the real /proc: make the pid's cgroup dirs in the copy.
        own = CgroupV1(str(root), "/proc").dirs(proc.pid)
        limits = Limits(memory=48 << 20, cpus=0.25, pids=11)
        for ctrl, path in own.items():
            os.makedirs(path, exist_ok=True)
            for name, _ in cg.limit_files(limits):
                if name.startswith(ctrl + "."):  # the kernel's files, here empty
                    Path(path, name).touch()
        conf = _host("7.0.0", cg).cgroup_config(limits, NAME)
        hook = next(ln for ln in conf.lines if ln.startswith("lxc.hook.start-host"))
        command = f"exec {hook.split(' = ', 1)[1]} '{NAME}' 'lxc' 'start-host'"
        env = {"LXC_PID": str(proc.pid), "PATH": os.environ.get("PATH", "")}
        done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
        assert Path(own["memory"], "memory.limit_in_bytes").read_text() == "50331648"
        assert Path(own["memory"], "memory.memsw.limit_in_bytes").read_text() == "50331648"
        assert Path(own["cpu"], "cpu.cfs_quota_us").read_text() == "25000"
        assert Path(own["pids"], "pids.max").read_text() == "11"
        # devices.allow is written once per rule: the file keeps the last.
        assert Path(own["devices"], "devices.allow").read_text() == DEVICE_RULES[-1]
        # No LXC_PID, or a cgroup that is not there: the hook fails (LXC then aborts).
        done = subprocess.run(["/bin/sh", "-c", command], env={}, capture_output=True)
        assert done.returncode == 1 and b"LXC_PID" in done.stderr
        shutil.rmtree(own["pids"])
        done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True)
        assert done.returncode == 1 and b"cannot set" in done.stderr
    finally:
        proc.kill()
        proc.wait()


# -- OOM kills ---------------------------------------------------------------------------------


def test_v2_oom_watch_needs_kernfs(v2: tuple[Path, CgroupV2]) -> None:
    _, cg = v2
    # A recorded memory.events is a plain file: no change notification, no watch.
    assert cg.oom_watch(cg.dirs(INIT)) is None
    assert cg.oom_watch({}) is None


def _unified_v2_dir() -> Path | None:
    """A cgroup2 mount of this machine where a test may make a child cgroup."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        if tail.split()[:1] == ["cgroup2"]:
            point = Path(head.split()[4])
            if os.access(point, os.W_OK):
                return point
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a cgroup: needs root")
def test_keyed_file_watch_hears_the_kernel() -> None:
    """The v2 watch's mechanism (EPOLLPRI on a kernfs keyed file, re-armed by
    reading) on this machine's own cgroup2 mount: ``cgroup.events``'s
    ``populated`` rises when a process enters a fresh cgroup; the watch ends
    when the cgroup is removed."""
    mount = _unified_v2_dir()
    assert mount is not None, "no writable cgroup2 mount (hybrid or unified) on this machine"
    path = mount / f"enginekit-test-{os.getpid()}"
    path.mkdir()
    proc = None
    try:
        watch = _KeyedWatch(str(path / "cgroup.events"), key="populated")
        import select

        poller = select.poll()
        poller.register(watch.fileno(), select.POLLIN)
        assert poller.poll(50) == []  # nothing happened yet
        proc = subprocess.Popen(["sleep", "30"])
        (path / "cgroup.procs").write_text(str(proc.pid))
        assert poller.poll(2000), "no notification"
        assert watch.check() is True
        assert poller.poll(50) == []  # reading re-armed it
        proc.kill()
        proc.wait()
        proc = None
        deadline = time.monotonic() + 5
        while (path / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.01)
        path.rmdir()
        assert watch.check() is None  # the cgroup is gone: the watch is over
        watch.close()
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if path.exists():
            path.rmdir()
