"""The LXC runtime against real LXC: containers, the monitor, logs, exec, copies.

Everything runs in a private storage root; every container is removed after
each test and the module checks that no LXC container, monitor, mount or
cgroup of its own is left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit_lxc.cgroups import CgroupV1
from enginekit_lxc.driver import LxcDriver
from enginekit_lxc.execute import execute
from enginekit_lxc.lxchost import LxcHost

from enginekit.capabilities import Capability
from enginekit.engine import Engine
from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineTimeout,
    EngineUnavailable,
    NotFound,
    Unsupported,
)
from enginekit.models import (
    BuildRequest,
    ContainerSpec,
    ContainerState,
    Mount,
    PortBinding,
    Stream,
)

pytestmark = pytest.mark.skipif(
    shutil.which("lxc-execute") is None or os.geteuid() != 0,
    reason="needs LXC and root",
)

LABELS = {"enginekit.test": "lxc-runtime"}
IMAGE = "ekrt/bb:1"

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /root /home/app /tmp && \\
    echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && \\
    echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && \\
    echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >> /etc/passwd && \\
    echo 'root:x:0:' > /etc/group && \\
    echo 'wheel:x:10:root,app' >> /etc/group && \\
    echo 'app:x:1000:' >> /etc/group && \\
    echo 'nogroup:x:65534:' >> /etc/group
ENV GREETING=hello
CMD ["sh", "-c", "echo default"]
"""


LXC_NAMES: set[str] = set()


def _holders(storage: str) -> list[int]:
    """Processes with a file under ``storage`` open (monitors hold their lock)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(storage):
                    found.append(int(pid))
                    break
            except OSError:
                continue
    return found


def _cgroup_left(lxc_name: str) -> bool:
    return any(
        Path(f"/sys/fs/cgroup/{sub}lxc.payload.{lxc_name}").exists() for sub in ("freezer/", "")
    )


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = str(tmp_path_factory.mktemp("lxcrt"))
    yield root


@pytest.fixture(scope="module")
def driver(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LxcDriver]:
    d = LxcDriver(storage_root=storage)
    d.ping()
    ctx = tmp_path_factory.mktemp("ctx")
    shutil.copy("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    d.image_build(BuildRequest(context=str(ctx), tags=(IMAGE,), labels=LABELS))
    try:
        yield d
    finally:
        for c in d.container_list(all=True):
            with contextlib.suppress(NotFound):
                d.container_remove(c.id, force=True)
        for img in d.image_list():
            with contextlib.suppress(NotFound):
                d.image_remove(img.id, force=True)
        d.close()
        lxc = subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True).stdout.split()
        assert not [n for n in lxc if n in LXC_NAMES], lxc
        with open("/proc/self/mounts") as fh:
            assert storage not in fh.read()
        time.sleep(0.1)
        assert not _holders(storage), "monitors left behind"
        left = [n for n in LXC_NAMES if _cgroup_left(n)]
        assert not left, "cgroups left behind"


@pytest.fixture
def make(driver: LxcDriver) -> Iterator[object]:
    made: list[str] = []

    def create(command: tuple[str, ...] | None = None, **spec: object) -> str:
        spec.setdefault("network", "none")
        labels = dict(LABELS)
        labels.update(spec.pop("labels", {}))  # type: ignore[call-overload]
        cid = driver.container_create(
            ContainerSpec(image=IMAGE, command=command, labels=labels, **spec)  # type: ignore[arg-type]
        )
        made.append(cid)
        LXC_NAMES.add(driver.container_inspect(cid).raw["meta"]["lxc_name"])
        return cid

    yield create
    names = set()
    for cid in made:
        with contextlib.suppress(NotFound):
            names.add(driver.container_inspect(cid).raw["meta"]["lxc_name"])
            driver.container_remove(cid, force=True)
    for name in names:
        assert not os.path.exists(os.path.join(driver.lxcpath, name)), name


def _logs(driver: LxcDriver, cid: str, **kw: object) -> tuple[bytes, bytes]:
    out, err = b"", b""
    for line in driver.container_logs(cid, **kw):  # type: ignore[arg-type]
        if line.stream is Stream.STDOUT:
            out += line.data
        else:
            err += line.data
    return out, err


def _await_output(driver: LxcDriver, cid: str, want: bytes | None) -> None:
    """Until stdout is ``want`` (None: anything), 30 s at most."""
    deadline = time.monotonic() + 30
    while True:
        out = _logs(driver, cid)[0]
        if out == want or (want is None and out):
            return
        assert time.monotonic() < deadline, f"output never became {want!r} (last: {out!r})"
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _run(driver: LxcDriver, make: object, command: tuple[str, ...] | None, **spec: object) -> str:
    cid: str = make(command, **spec)  # type: ignore[operator]
    driver.container_start(cid)
    driver.container_wait(cid, timeout=30)
    return cid


# -- execute (build steps) ----------------------------------------------------


def test_execute_runs_in_rootfs_and_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "env", "id", "pwd", "kill", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    seen: list[tuple[Stream, bytes]] = []
    rc = execute(
        str(root),
        ["sh", "-c", "env; pwd; echo oops >&2; exit 7"],
        env={"A": "1", "ODD": " x\ny "},
        workdir="/work/dir",
        user=None,
        on_output=lambda s, b: seen.append((s, b)),
    )
    assert rc == 7
    out = b"".join(b for s, b in seen if s is Stream.STDOUT)
    err = b"".join(b for s, b in seen if s is Stream.STDERR)
    assert err == b"oops\n"
    assert b"A=1\n" in out and b"ODD= x\ny \n" in out and b"/work/dir\n" in out
    assert b"container=" not in out
    assert b"HOME=/\n" in out and b"PATH=/usr/local/sbin:" in out
    assert sorted(os.listdir(root)) == ["bin", "work"]  # no dev/proc/sys left
    assert execute(str(root), ["sh", "-c", "kill -9 $$"], env={}, workdir="/", user=None) == 137
    assert execute(str(root), ["sh", "-c", "kill -15 $$"], env={}, workdir="/", user=None) == 143
    assert execute(str(root), ["nonexistent"], env={}, workdir="/", user=None) == 127


# -- run to completion ---------------------------------------------------------


def test_run_output_env_user_hostname(driver: LxcDriver, make: object) -> None:
    cid = _run(
        driver,
        make,
        ("sh", "-c", "env; id; pwd; hostname; echo err >&2; exit 3"),
        env={"B": "2"},
        workdir="/made/here",
    )
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.EXITED and c.exit_code == 3
    assert c.started_at and c.finished_at and c.created_at
    assert c.finished_at >= c.started_at >= c.created_at
    assert c.hostname == cid[:12] and c.pid is None
    out, err = _logs(driver, cid)
    assert err == b"err\n"
    env = dict(
        line.split("=", 1) for line in out.decode().splitlines() if "=" in line and "(" not in line
    )
    assert env["HOSTNAME"] == cid[:12]
    assert env["HOME"] == "/root"
    assert env["GREETING"] == "hello" and env["B"] == "2"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert "container" not in env
    assert "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n" in out.decode()
    assert out.decode().endswith("/made/here\n" + cid[:12] + "\n")


def test_default_command_and_user_forms(driver: LxcDriver, make: object) -> None:
    cid = _run(driver, make, None)
    assert _logs(driver, cid) == (b"default\n", b"")
    cid = _run(driver, make, ("sh", "-c", "id; echo $HOME"), user="app")
    assert _logs(driver, cid)[0] == (
        b"uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)\n/home/app\n"
    )
    cid = _run(driver, make, ("id",), user="1234:10")
    assert _logs(driver, cid)[0] == b"uid=1234 gid=10(wheel) groups=10(wheel)\n"
    cid = _run(driver, make, ("echo", "a"), entrypoint=("echo", "ep"))
    assert _logs(driver, cid)[0] == b"ep echo a\n"
    c = driver.container_inspect(cid)
    assert c.entrypoint == ("echo", "ep") and c.command == ("echo", "a")


def test_network_none_has_loopback_only(driver: LxcDriver, make: object) -> None:
    cid = _run(driver, make, ("sh", "-c", "ls /sys/class/net"))
    assert _logs(driver, cid)[0] == b"lo\n"


# -- states, stop, kill, restart -----------------------------------------------


def test_states_pause_stop_restart(driver: LxcDriver, make: object) -> None:
    cid = make(("sh", "-c", "echo run; exec sleep 60"))  # type: ignore[operator]
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.CREATED and c.exit_code is None and c.started_at is None
    driver.container_start(cid)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.RUNNING and c.pid
    _await_output(driver, cid, b"run\n")
    driver.container_start(cid)  # no-op
    driver.container_pause(cid)
    assert driver.container_inspect(cid).state is ContainerState.PAUSED
    with pytest.raises(Conflict):
        driver.container_pause(cid)
    with pytest.raises(Conflict):
        driver.container_exec(cid, ("true",))
    driver.container_unpause(cid)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    driver.container_stop(cid, timeout=10)
    c = driver.container_inspect(cid)
    # 143: SIGTERM ended it (SIGKILL after the timeout gives 137).
    assert c.state is ContainerState.EXITED and c.exit_code == 143 and c.pid is None
    first_start = c.started_at
    driver.container_restart(cid, timeout=5)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.RUNNING and c.started_at and first_start
    assert c.started_at > first_start
    _await_output(driver, cid, b"run\nrun\n")
    driver.container_kill(cid, signal="SIGKILL")
    assert driver.container_wait(cid, timeout=10) == 137
    assert _logs(driver, cid)[0] == b"run\nrun\n"  # logs appended across runs
    with pytest.raises(Conflict):
        driver.container_kill(cid, signal="SIGKILL")
    with pytest.raises(Conflict):
        driver.container_stop(cid, timeout=1)
    driver.container_start(cid)  # an exited container starts again
    assert driver.container_inspect(cid).state is ContainerState.RUNNING


def test_stop_escalates_to_kill(driver: LxcDriver, make: object) -> None:
    script = 'trap "echo term" TERM; echo ready; while true; do usleep 50000; done'
    cid = make(("sh", "-c", script))  # type: ignore[operator]
    driver.container_start(cid)
    _await_output(driver, cid, b"ready\n")  # the trap is set
    t0 = time.monotonic()
    driver.container_stop(cid, timeout=1)
    assert time.monotonic() - t0 > 0.9  # not killed before the grace period
    c = driver.container_inspect(cid)
    assert c.exit_code == 137 and c.finished_at is not None
    # The 1 s given, not the default 10 s: on the engine's clock, from the SIGTERM's
    # arrival (the line it made the command log) to the exit the monitor recorded.
    (term,) = [x.timestamp for x in driver.container_logs(cid) if x.data == b"term\n"]
    assert term is not None
    assert (c.finished_at - term).total_seconds() < 8


def test_stop_signal_and_paused_stop(driver: LxcDriver, make: object) -> None:
    cid = make(("sleep", "60"), stop_signal="SIGINT")  # type: ignore[operator]
    driver.container_start(cid)
    driver.container_pause(cid)
    driver.container_stop(cid, timeout=5)
    c = driver.container_inspect(cid)
    assert c.exit_code == 130 and c.stop_signal == "SIGINT"


def test_wait_timeout_and_errors(driver: LxcDriver, make: object) -> None:
    cid = make(("sleep", "60"), name="ek-rt-wait")  # type: ignore[operator]
    driver.container_start(cid)
    with pytest.raises(EngineTimeout):
        driver.container_wait(cid, timeout=0.2)
    assert driver.container_inspect("ek-rt-wait").id == cid
    assert driver.container_inspect(cid[:12]).id == cid
    with pytest.raises(Conflict):
        make(("true",), name="ek-rt-wait")  # type: ignore[operator]
    with pytest.raises(Conflict):
        driver.container_remove(cid)
    with pytest.raises(ContainerNotFound):
        driver.container_inspect("no-such-container")
    assert [c.id for c in driver.container_list(name="ek-rt-wait")] == [cid]
    assert [c.id for c in driver.container_list(labels={"ek.x": None})] == []
    driver.container_remove(cid, force=True)
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(cid)
    cid2 = make(("true",), name="ek-rt-wait")  # type: ignore[operator]
    assert driver.container_inspect("ek-rt-wait").id == cid2


def test_list_filters(driver: LxcDriver, make: object) -> None:
    a = make(("sleep", "60"), labels={"ek.role": "a"})  # type: ignore[operator]
    b = make(("true",), labels={"ek.role": "b"})  # type: ignore[operator]
    driver.container_start(a)
    running = {c.id for c in driver.container_list(labels=LABELS)}
    assert a in running and b not in running
    every = {c.id for c in driver.container_list(all=True, labels={"ek.role": None})}
    assert {a, b} <= every
    assert [c.id for c in driver.container_list(all=True, labels={"ek.role": "b"})] == [b]


# -- the monitor ---------------------------------------------------------------


def test_state_survives_driver_and_monitor_death(
    driver: LxcDriver, make: object, storage: str
) -> None:
    cid = make(("sh", "-c", "echo hi; sleep 60"))  # type: ignore[operator]
    driver.container_start(cid)
    _await_output(driver, cid, b"hi\n")
    status = driver.container_inspect(cid).raw["status"]
    os.kill(status["monitor_pid"], signal.SIGKILL)
    time.sleep(0.1)
    other = LxcDriver(storage_root=storage)
    try:
        assert other.container_inspect(cid).state is ContainerState.RUNNING
        other.container_stop(cid, timeout=5)
        c = other.container_inspect(cid)
        assert c.state is ContainerState.EXITED and c.exit_code == 143
        assert driver.container_wait(cid, timeout=5) == 143
        assert _logs(other, cid)[0] == b"hi\n"
        # The rootfs was unmounted by the recovery.
        with open("/proc/self/mounts") as fh:
            assert os.path.join(storage, "containers", cid) not in fh.read()
        # It starts again with a new monitor.
        driver.container_start(cid)
        assert other.container_inspect(cid).state is ContainerState.RUNNING
    finally:
        other.close()


def test_exit_seen_by_new_driver(driver: LxcDriver, make: object, storage: str) -> None:
    cid = _run(driver, make, ("sh", "-c", "printf 'a\\nb'; exit 9"))
    other = LxcDriver(storage_root=storage)
    try:
        c = other.container_inspect(cid)
        assert c.exit_code == 9 and c.finished_at == driver.container_inspect(cid).finished_at
        assert _logs(other, cid) == (b"a\nb", b"")
    finally:
        other.close()


# -- logs ----------------------------------------------------------------------


def test_logs_long_lines_binary_tail_follow(driver: LxcDriver, make: object) -> None:
    script = (
        "head -c 40000 /dev/zero | tr '\\0' x; echo; printf '\\001\\377\\n'; "
        "echo e1 >&2; echo e2 >&2; sleep 0.3; echo late"
    )
    cid = make(("sh", "-c", script))  # type: ignore[operator]
    driver.container_start(cid)
    lines = list(driver.container_logs(cid, follow=True))
    assert [ln.data for ln in lines if ln.stream is Stream.STDOUT] == [
        b"x" * 40000 + b"\n",
        b"\x01\xff\n",
        b"late\n",
    ]
    assert [ln.data for ln in lines if ln.stream is Stream.STDERR] == [b"e1\n", b"e2\n"]
    assert all(ln.timestamp and ln.timestamp.tzinfo for ln in lines)
    assert driver.container_inspect(cid).state is ContainerState.EXITED
    tail = [ln.data for ln in driver.container_logs(cid, tail=2)]
    assert tail[-1] == b"late\n" and len(tail) == 2
    assert [ln.data for ln in driver.container_logs(cid, stdout=False)] == [b"e1\n", b"e2\n"]
    since = lines[-1].timestamp.timestamp()  # type: ignore[union-attr]
    assert [ln.data for ln in driver.container_logs(cid, since=since)] == [b"late\n"]


# -- exec ----------------------------------------------------------------------


def test_exec(driver: LxcDriver, make: object) -> None:
    cid = make(("sleep", "60"), env={"BASE": "1"})  # type: ignore[operator]
    driver.container_start(cid)
    r = driver.container_exec(
        cid, ("sh", "-c", "echo $BASE $X $HOME; pwd; id -u; echo e >&2; exit 4"),
        env={"X": "y"}, workdir="/tmp", user="app",
    )  # fmt: skip
    assert r.exit_code == 4
    assert r.stdout == b"1 y /home/app\n/tmp\n1000\n" and r.stderr == b"e\n"
    r = driver.container_exec(cid, ("env",))
    env = dict(ln.split("=", 1) for ln in r.stdout.decode().splitlines())
    assert "container" not in env and env["HOSTNAME"] == cid[:12] and env["BASE"] == "1"
    assert driver.container_exec(cid, ("sh", "-c", "kill -9 $$")).exit_code == 137
    assert driver.container_exec(cid, ("nonexistent",)).exit_code == 127
    driver.container_kill(cid, signal="SIGKILL")
    driver.container_wait(cid, timeout=10)
    with pytest.raises(Conflict):
        driver.container_exec(cid, ("true",))


# -- resources -----------------------------------------------------------------


def test_memory_oom_and_stats(driver: LxcDriver, make: object) -> None:
    cid = make(
        ("sh", "-c", "sleep 0.5; x=$(head -c 200000000 /dev/zero | tr '\\0' a)"),  # type: ignore[operator]
        memory=32 * 1024 * 1024,
        pids_limit=50,
        cpus=0.5,
    )
    driver.container_start(cid)
    s = driver.container_stats(cid)
    assert s.memory_limit == 32 * 1024 * 1024 and s.pids and s.memory_bytes > 0
    assert driver.container_wait(cid, timeout=30) == 137
    c = driver.container_inspect(cid)
    assert c.oom_killed
    assert c.resources.memory == 32 * 1024 * 1024 and c.resources.pids_limit == 50
    cid = make(("sleep", "60"))  # type: ignore[operator]
    driver.container_start(cid)
    s = driver.container_stats(cid)
    assert s.memory_limit is None and s.cpu_seconds >= 0 and s.pids == 2


def test_pids_limit(driver: LxcDriver, make: object) -> None:
    cid = _run(driver, make, ("sh", "-c", PIDS_MAX), pids_limit=7)
    assert _logs(driver, cid)[0] == b"7\n"


PIDS_MAX = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
LIMITS_INSIDE = (
    "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes;"
    f"{PIDS_MAX};"
    "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo"
    " $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us);"
    "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | head -1"
)


def test_what_the_host_lacks_is_refused_before_anything_is_made(
    storage: str, driver: LxcDriver, tmp_path: Path
) -> None:
    """A host without the memory, pids and freezer controllers (a recorded v1
    tree without them): the engine declares them missing with the reason, and
    runs asking for them are refused before a container is made."""
    tree = tmp_path / "cgroup-v1"
    shutil.copytree(Path(__file__).parent / "data" / "cgroup-v1", tree)
    for ctrl in ("memory", "pids", "freezer"):
        shutil.rmtree(tree / "sys/fs/cgroup" / ctrl)
    lacking = LxcDriver(storage_root=storage)
    real = driver.host
    lacking._host = LxcHost(
        version=real.version,
        version_text=real.version_text,
        cgroups=CgroupV1(str(tree / "sys/fs/cgroup"), str(tree / "proc")),
    )
    engine = Engine(lacking)
    missing = {Capability.MEMORY_LIMIT, Capability.PIDS_LIMIT, Capability.PAUSE, Capability.STATS}
    assert missing == set(Capability) - engine.capabilities
    assert "memory controller" in engine.unsupported[Capability.MEMORY_LIMIT]
    before = {c.id for c in lacking.container_list(all=True)}
    for kwargs in ({"memory": "64m"}, {"pids_limit": 5}):
        with pytest.raises(Unsupported) as info:
            engine.containers.run(IMAGE, ["true"], labels=LABELS, network="none", **kwargs)
        assert "controller" in str(info.value)
    assert {c.id for c in lacking.container_list(all=True)} == before
    lacking.close()


def test_older_lxc_rules_on_this_host(storage: str, driver: LxcDriver) -> None:
    """LXC 6's keys given to this host's LXC: they run on LXC 5 and 6; LXC 7 on
    cgroup v1 refuses ``lxc.cgroup.*`` ("Unsupported config key"), which is an
    ``EngineUnavailable`` naming the LXC version, with nothing left behind."""
    d6 = LxcDriver(storage_root=storage)
    real = driver.host
    d6._host = LxcHost(version=(6, 0, 0), version_text=real.version_text, cgroups=real.cgroups)
    spec = ContainerSpec(image=IMAGE, command=("true",), labels=LABELS, pids_limit=5)
    cid = d6.container_create(spec)
    LXC_NAMES.add(d6.container_inspect(cid).raw["meta"]["lxc_name"])
    try:
        if real.version >= (7, 0, 0) and real.cgroup_version == 1:
            with pytest.raises(EngineUnavailable) as info:
                d6.container_start(cid)
            assert "Unsupported config key" in str(info.value)
            assert real.version_text in str(info.value) and "7.x" in str(info.value)
            assert d6.container_inspect(cid).state is ContainerState.CREATED
        else:
            d6.container_start(cid)
            assert d6.container_wait(cid, timeout=30) == 0
    finally:
        d6.container_remove(cid, force=True)
        d6.close()


def test_lxc7_rules_on_this_host(storage: str, driver: LxcDriver) -> None:
    """LXC 7's rules with this host's cgroups (on cgroup v1: LXC 7 writes no
    v1 limit, so the adapter's start-host hook does, and the container's
    cgroups are bound in read-only), run on this host's LXC: limits, device
    allow-list, stats, pause and the OOM kill as with LXC 5's keys."""
    d7 = LxcDriver(storage_root=storage)
    real = driver.host
    d7._host = LxcHost(version=(7, 0, 0), version_text="7.0.0", cgroups=real.cgroups)
    made = []
    try:
        spec = ContainerSpec(
            image=IMAGE, command=("sh", "-c", LIMITS_INSIDE + "; sleep 30"), labels=LABELS,
            network="none", memory=48 * 1024 * 1024, pids_limit=11, cpus=0.25,
        )  # fmt: skip
        cid = d7.container_create(spec)
        made.append(cid)
        LXC_NAMES.add(d7.container_inspect(cid).raw["meta"]["lxc_name"])
        d7.container_start(cid)
        _await_output(d7, cid, None)
        for _ in range(200):
            out = _logs(d7, cid)[0].split(b"\n")
            if len(out) >= 5:
                break
            time.sleep(0.01)
        assert out[:3] == [b"50331648", b"11", b"25000 100000"], out
        if real.cgroup_version == 1:
            assert out[3] == b"c 1:3 rwm"  # the allow-list, not "a *:* rwm"
        s = d7.container_stats(cid)
        assert s.memory_limit == 48 * 1024 * 1024 and s.pids == 2 and s.memory_bytes > 0
        d7.container_pause(cid)
        assert d7.container_inspect(cid).state is ContainerState.PAUSED
        d7.container_unpause(cid)
        assert d7.container_inspect(cid).state is ContainerState.RUNNING
        d7.container_kill(cid, signal="SIGKILL")
        assert d7.container_wait(cid, timeout=30) == 137
        hog = ("sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)")
        cid = d7.container_create(
            ContainerSpec(image=IMAGE, command=hog, labels=LABELS, memory=32 * 1024 * 1024)
        )
        made.append(cid)
        LXC_NAMES.add(d7.container_inspect(cid).raw["meta"]["lxc_name"])
        d7.container_start(cid)
        assert d7.container_wait(cid, timeout=30) == 137
        assert d7.container_inspect(cid).oom_killed
    finally:
        for cid in made:
            with contextlib.suppress(NotFound):
                d7.container_remove(cid, force=True)
        d7.close()


# -- ports and bind mounts -----------------------------------------------------


def test_published_port_on_bridge(driver: LxcDriver, make: object) -> None:
    cid = make(  # type: ignore[operator]
        ("sh", "-c", "mkdir /www; echo hello > /www/index.html; exec httpd -f -p 8080 -h /www"),
        network="bridge",
        ports=(PortBinding(container_port=8080),),
    )
    driver.container_start(cid)
    c = driver.container_inspect(cid)
    port = c.ports[0].host_port
    assert port and c.ports[0].host_ip == "127.0.0.1"
    body = b""
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
            break
        except OSError:
            time.sleep(0.05)
    assert body == b"hello\n"
    driver.container_stop(cid, timeout=5)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_bind_mounts(driver: LxcDriver, make: object, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    out = tmp_path / "out"
    out.mkdir()
    cid = _run(
        driver, make,
        ("sh", "-c", "cat /ro/in.txt; echo x > /ro/new || echo refused; echo w > /rw/f"),
        mounts=(Mount(source=str(tmp_path), target="/ro", read_only=True),
                Mount(source=str(out), target="/rw")),
    )  # fmt: skip
    assert _logs(driver, cid)[0] == b"from host\nrefused\n"
    assert (out / "f").read_text() == "w\n"


# -- copies --------------------------------------------------------------------


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    buf.seek(0)
    return buf


def test_copy_stopped_and_running_never_escapes(driver: LxcDriver, make: object) -> None:
    cid = make(("sleep", "60"))  # type: ignore[operator]
    # Created, never started: the overlay is composed for the copy.
    driver.container_put_archive(
        cid, "/tmp", _tar({"d/a.txt": b"A"}, {"d/esc": "/../../../../etc", "d/rel": "../../.."})
    )
    st = driver.container_stat_path(cid, "/tmp/d/a.txt")
    assert st and st.size == 1 and not st.is_dir
    link = driver.container_stat_path(cid, "/tmp/d/esc")
    assert link and link.is_symlink and link.link_target == "/../../../../etc"
    assert driver.container_stat_path(cid, "/nope") is None
    # Through the links: resolved inside the container, never to the host.
    assert driver.container_stat_path(cid, "/tmp/d/esc/passwd") is not None  # its /etc/passwd
    data = driver.container_get_archive(cid, "/tmp/d/esc/passwd").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmembers()[0]
        assert member.name == "passwd"
        content = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert content.startswith(b"root:x:0:0:root:/root") and b"app:x:1000" in content
    with pytest.raises(NotFound):
        driver.container_get_archive(cid, "/tmp/d/rel/proc/1/environ_nope")
    # Writing through an escaping link stays inside too.
    driver.container_put_archive(cid, "/tmp/d/rel/tmp", _tar({"via.txt": b"V"}))
    assert driver.container_stat_path(cid, "/tmp/via.txt") is not None
    with open("/proc/self/mounts") as fh:
        assert f"containers/{cid}" not in fh.read()  # the temporary mount is gone
    driver.container_start(cid)
    r = driver.container_exec(cid, ("cat", "/tmp/d/a.txt", "/tmp/via.txt"))
    assert r.stdout == b"AV"
    # Running: through the live root.
    driver.container_put_archive(cid, "/", _tar({"live/b.txt": b"B"}))
    assert driver.container_exec(cid, ("cat", "/live/b.txt")).stdout == b"B"
    data = driver.container_get_archive(cid, "/live").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["live", "live/b.txt"]
    with pytest.raises(NotFound):
        driver.container_put_archive(cid, "/missing", _tar({"x": b""}))


def test_remove_leaves_nothing(driver: LxcDriver, make: object, storage: str) -> None:
    cid = make(("sleep", "60"), name="ek-rt-gone")  # type: ignore[operator]
    driver.container_start(cid)
    lxc_name = driver.container_inspect(cid).raw["meta"]["lxc_name"]
    assert lxc_name in subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True).stdout
    driver.container_remove(cid, force=True)
    assert not os.path.exists(os.path.join(storage, "containers", cid))
    assert not os.path.exists(os.path.join(driver.lxcpath, lxc_name))
    assert not os.path.exists(os.path.join(storage, "containers", "names", "ek-rt-gone"))
    assert not _cgroup_left(lxc_name)


def test_monitor_death_then_exit_is_inferred(driver: LxcDriver, make: object) -> None:
    cid = make(("sleep", "60"))  # type: ignore[operator]
    driver.container_start(cid)
    monitor = driver.container_inspect(cid).raw["status"]["monitor_pid"]
    os.kill(monitor, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not _gone(monitor):
        assert time.monotonic() < deadline, "the monitor outlived its SIGKILL"
        time.sleep(0.01)
    driver.container_kill(cid, signal="SIGKILL")
    assert driver.container_wait(cid, timeout=10) == 137  # the signal sent, recorded
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.EXITED and c.finished_at and c.pid is None


def test_host_network_uses_host_name(driver: LxcDriver, make: object) -> None:
    cid = _run(driver, make, ("hostname",), network="host")
    assert _logs(driver, cid)[0] == socket.gethostname().encode() + b"\n"


def test_odd_env_names_and_empty_values(driver: LxcDriver, make: object) -> None:
    env = {"DOTTED.NAME": "d", "DASHED-NAME": "x", "EMPTY": "", "SP": "  a  ", "NL": "a\nb"}
    cid = make(("sh", "-c", "cat /proc/$$/environ; echo; sleep 60"), env=env)  # type: ignore[operator]
    driver.container_start(cid)
    for _ in range(500):
        if _logs(driver, cid)[0].endswith(b"\0\n"):
            break
        time.sleep(0.01)
    seen = dict(item.split(b"=", 1) for item in _logs(driver, cid)[0].split(b"\0") if b"=" in item)
    for key, value in env.items():
        assert seen[key.encode()] == value.encode(), key
    r = driver.container_exec(cid, ("cat", "/proc/self/environ"), env={"E.X": "", "F-Y": "1"})
    got = dict(item.split(b"=", 1) for item in r.stdout.split(b"\0") if b"=" in item)
    assert got[b"E.X"] == b"" and got[b"F-Y"] == b"1" and got[b"DOTTED.NAME"] == b"d"
    assert b"container" not in got
    r = driver.container_exec(cid, ("pwd",), workdir="/no/such/dir")
    assert r.exit_code == 126


def test_stop_kills_every_process(driver: LxcDriver, make: object) -> None:
    cid = make(("sh", "-c", 'trap "" TERM; echo ready; sleep 100; echo after'))  # type: ignore[operator]
    driver.container_start(cid)
    _await_output(driver, cid, b"ready\n")
    t0 = time.monotonic()
    driver.container_stop(cid, timeout=1)
    # Not after the sleep's 100 s: its process was killed too (bounded generously).
    assert time.monotonic() - t0 < 30
    assert driver.container_inspect(cid).exit_code == 137
    assert _logs(driver, cid)[0] == b"ready\n"


def test_commands_are_the_containers_own(driver: LxcDriver, make: object) -> None:
    """A command named like a busybox applet is still looked up in the container's PATH."""
    cid = make(("ls",), env={"PATH": "/opt/bin:/bin"})  # type: ignore[operator]
    driver.container_put_archive(cid, "/", _tar({"opt/bin/ls": b"#!/bin/sh\necho mine\n"}))
    # _tar makes files 0644: make it executable through a second archive entry mode.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("opt/bin/ls")
        data = b"#!/bin/sh\necho mine\n"
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    driver.container_put_archive(cid, "/", buf)
    driver.container_start(cid)
    assert driver.container_wait(cid, timeout=30) == 0
    assert _logs(driver, cid)[0] == b"mine\n"
    cid = _run(driver, make, ("no-such-program",))
    assert driver.container_inspect(cid).exit_code == 127
    assert b"executable file not found" in _logs(driver, cid)[1]
    cid = make(("sleep", "60"))  # type: ignore[operator]
    driver.container_start(cid)
    r = driver.container_exec(cid, ("no-such-program",))
    assert r.exit_code == 127 and b"not found" in r.stderr
    r = driver.container_exec(cid, ("ls", "/opt"), env={"PATH": "/nowhere"})
    assert r.exit_code == 127


def test_bridge_addresses_are_unique_across_storage_roots(
    driver: LxcDriver, make: object, tmp_path: Path
) -> None:
    other = LxcDriver(storage_root=str(tmp_path / "other"))
    try:
        # The same image in the other store, through an archive.
        archive = str(tmp_path / "img.tar")
        driver.image_save(IMAGE, archive)
        other.image_load(archive)
        a = make(("sleep", "60"), network="bridge")  # type: ignore[operator]
        b = other.container_create(
            ContainerSpec(image=IMAGE, command=("sleep", "60"), labels=LABELS, network="bridge")
        )
        driver.container_start(a)
        other.container_start(b)
        ip_a = driver.container_inspect(a).raw["status"]["ip"]
        ip_b = other.container_inspect(b).raw["status"]["ip"]
        assert ip_a and ip_b and ip_a != ip_b
        lease = other.container_inspect(b).raw["status"]["lease"]
        assert os.path.exists(lease)
        other.container_remove(b, force=True)
        assert not os.path.exists(lease)
    finally:
        for c in other.container_list(all=True):
            other.container_remove(c.id, force=True)
        for img in other.image_list():
            other.image_remove(img.id, force=True)
        other.close()
