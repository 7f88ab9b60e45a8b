"""DockerDriver against the live dockerd (no mocks): every behaviour the adapter promises."""

from __future__ import annotations

import concurrent.futures
import io
import os
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from docker_support import LABELS, RUN, busybox_context
from enginekit_docker import DockerDriver, connect, versions

from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    InvalidSpec,
    NotFound,
)
from enginekit.models import (
    BuildRequest,
    ContainerState,
    Mount,
    PortBinding,
    Resources,
    Stream,
)
from enginekit.ociarchive import read_index

Make = Callable[..., str]
SLEEP = ("sleep", "100")


def _get(driver: DockerDriver, path: str, **params: object) -> list[dict[str, str]]:
    resp = driver.transport.request("GET", driver.url(path), params=params)
    assert resp.status == 200
    return resp.json()  # type: ignore[no-any-return]


def descendants(driver: DockerDriver, image: str) -> tuple[set[str], set[str]]:
    """Containers (all) and images (as ``docker images`` lists them, dangling
    included) made from ``image`` or an image built on it: what a build on
    ``image`` could leave. Other users of the daemon do not disturb it."""
    root = driver.image_inspect(image).id
    containers = {
        c["Id"] for c in _get(driver, "/containers/json", all=True, filters={"ancestor": [root]})
    }
    parent = {i["Id"]: i.get("ParentId", "") for i in _get(driver, "/images/json", all=True)}

    def built_on_root(image_id: str) -> bool:
        seen = set()
        while image_id and image_id not in seen:
            seen.add(image_id)
            image_id = parent.get(image_id, "")
            if image_id == root:
                return True
        return False

    images = {i["Id"] for i in _get(driver, "/images/json") if built_on_root(i["Id"])}
    return containers, images


# -- connecting ---------------------------------------------------------------


def test_connect_defaults_and_docker_host(docker_host_env: None) -> None:
    os.environ.pop("DOCKER_HOST", None)
    assert connect().address == "unix:///var/run/docker.sock"
    os.environ["DOCKER_HOST"] = "unix:///tmp/elsewhere.sock"
    assert connect().address == "unix:///tmp/elsewhere.sock"
    assert connect("tcp://127.0.0.1:2375").address == "tcp://127.0.0.1:2375"
    assert connect("docker+unix:///var/run/docker.sock").address == "unix:///var/run/docker.sock"


def test_connect_takes_ssh_and_tls_without_io(
    docker_host_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ssh: nothing runs until the first call (the host does not exist).
    assert connect("ssh://user@host.invalid").address == "ssh://user@host.invalid"
    os.environ["DOCKER_HOST"] = "tcp://127.0.0.1:2376"
    os.environ["DOCKER_TLS_VERIFY"] = "1"
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))  # holds no ca.pem
    with pytest.raises(InvalidSpec, match=r"DOCKER_TLS_VERIFY is set but .*ca\.pem does not exist"):
        connect()
    with pytest.raises(InvalidSpec):
        connect("unix:///var/run/docker.sock", bogus=1)


def test_connect_does_no_io_and_ping_explains(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/no.sock"
    d = connect(address)  # nothing listens there: connect must not notice
    with pytest.raises(EngineUnavailable) as info:
        d.ping()
    assert address in str(info.value) and "dockerd" in str(info.value)
    assert info.value.address == address


def test_ping_info_capabilities(driver: DockerDriver) -> None:
    driver.ping()
    info = driver.info()
    assert info.name == "docker" and info.version and info.os == "linux"
    assert info.arch and info.storage_root
    # The highest version both sides speak.
    engine_max = versions.parse(info.max_api_version)
    assert engine_max is not None and engine_max >= versions.OLDEST
    assert versions.parse(info.api_version) == min(engine_max, versions.NEWEST)
    assert driver.api_version == info.api_version
    assert versions.parse(info.min_api_version) is not None
    assert info.cgroup_version in (1, 2) and info.rootless is not None
    assert info.image_store in ("overlay2", "containerd", "vfs", "btrfs", "zfs", "fuse-overlayfs")
    assert driver.name == "docker"
    assert driver.capabilities | frozenset(driver.unsupported) == frozenset(Capability)
    assert not driver.capabilities & frozenset(driver.unsupported)
    if not info.rootless:
        assert Capability.NETWORK_HOST in driver.capabilities


def test_version_negotiated_once_and_lazily(tmp_path: Path) -> None:
    """No request before the first call; one ``/_ping`` for many threads."""
    d = connect()
    assert "api" not in d._kept  # connect() sent nothing
    pings: list[str] = []
    real = d.transport.request

    def counting(method: str, path: str, **kw: object) -> object:
        if path == "/_ping":
            pings.append(path)
        return real(method, path, **kw)  # type: ignore[arg-type]

    d.transport.request = counting  # type: ignore[method-assign]
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            found = set(pool.map(lambda _: d.url("/info"), range(32)))
        assert len(found) == 1 and len(pings) == 1
        assert found == {f"/v{d.api_version}/info"}
        d.info()
        assert len(pings) == 1
    finally:
        d.close()


# -- create / inspect ---------------------------------------------------------


def test_create_reports_the_spec(
    driver: DockerDriver, make: Make, image: str, tmp_path: Path
) -> None:
    name = f"ekd-{RUN}-spec"
    cid = make(
        ("sleep", "5"),
        name=name,
        env={"A": "1", "EMPTY": ""},
        workdir="/tmp",
        user="1000:1000",
        labels={"x.y": "z"},
        hostname="spec-host",
        ports=(PortBinding(container_port=80),),
        mounts=(Mount(source=str(tmp_path), target="/data", read_only=True),),
        memory=64 * 2**20,
        cpus=0.5,
        pids_limit=32,
        stop_signal="SIGINT",
    )
    assert len(cid) == 64
    c = driver.container_inspect(cid)
    assert (c.id, c.name, c.image) == (cid, name, image)
    assert c.image_id == driver.image_inspect(image).id
    assert c.state is ContainerState.CREATED
    assert c.exit_code is None and c.pid is None and c.started_at is None
    assert c.created_at is not None and c.created_at.tzinfo is not None
    assert c.command == ("sleep", "5") and c.entrypoint == ()
    assert dict(c.env) == {"A": "1", "EMPTY": "", "PATH": "/bin"}
    assert (c.workdir, c.user, c.hostname) == ("/tmp", "1000:1000", "spec-host")
    assert c.labels["x.y"] == "z"
    assert c.ports == (PortBinding(container_port=80, host_ip="127.0.0.1", host_port=None),)
    assert c.mounts == (Mount(source=str(tmp_path), target="/data", read_only=True),)
    assert c.resources == Resources(memory=64 * 2**20, cpus=0.5, pids_limit=32)
    assert c.network == "bridge" and c.stop_signal == "SIGINT" and c.engine == "docker"
    # name, 12+ char prefix and full id all resolve
    assert driver.container_inspect(name).id == cid
    assert driver.container_inspect(cid[:12]).id == cid


def test_create_errors(driver: DockerDriver, make: Make, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        make(("true",), image="enginekit-docker-test/absent:nope")
    name = f"ekd-{RUN}-dup"
    make(("true",), name=name)
    with pytest.raises(Conflict):
        make(("true",), name=name)
    with pytest.raises(InvalidSpec):
        make(("true",), mounts=(Mount(source=str(tmp_path / "absent"), target="/x"),))
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(f"ekd-{RUN}-absent")
    with pytest.raises(ContainerNotFound):
        driver.container_start("0" * 64)


def test_entrypoint_override(driver: DockerDriver, run: Make) -> None:
    cid = run(("echo hi; exit 4",), entrypoint=("sh", "-c"))
    assert driver.container_wait(cid, timeout=30) == 4
    c = driver.container_inspect(cid)
    assert c.entrypoint == ("sh", "-c") and c.command == ("echo hi; exit 4",)
    assert b"".join(x.data for x in driver.container_logs(cid)) == b"hi\n"


# -- lifecycle ----------------------------------------------------------------


def test_start_stop_gives_143_through_init(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.RUNNING and c.pid and c.started_at
    assert c.exit_code is None and c.finished_at is None
    driver.container_start(cid)  # starting a running one: no-op
    driver.container_stop(cid, timeout=10)
    c = driver.container_inspect(cid)
    # 143: SIGTERM reached sleep through the init (SIGKILL after the timeout gives 137).
    assert c.state is ContainerState.EXITED and c.exit_code == 143
    assert c.pid is None and c.finished_at is not None and c.finished_at >= c.started_at
    driver.container_stop(cid, timeout=10)  # already stopped (304): fine


def test_signals_right_after_start_are_not_lost(driver: DockerDriver, make: Make) -> None:
    def one(i: int) -> tuple[str, int | None]:
        cid = make(SLEEP, stop_signal="SIGINT" if i % 2 else None)
        driver.container_start(cid)
        if i % 2:
            driver.container_stop(cid, timeout=10)
            return "stop", driver.container_inspect(cid).exit_code
        driver.container_kill(cid, signal="SIGTERM")
        return "kill", driver.container_wait(cid, timeout=20)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = set(pool.map(one, range(16)))
    assert results == {("stop", 130), ("kill", 143)}


def test_stop_timeout_then_sigkill(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"))
    time.sleep(0.3)
    t0 = time.monotonic()
    driver.container_stop(cid, timeout=1)
    assert 0.9 < time.monotonic() - t0 < 10
    assert driver.container_inspect(cid).exit_code == 137


def test_kill_and_kill_exited(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    driver.container_kill(cid, signal="SIGKILL")
    assert driver.container_wait(cid, timeout=30) == 137
    with pytest.raises(Conflict):
        driver.container_kill(cid, signal="SIGKILL")


def test_kill_with_other_signal(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    driver.container_kill(cid, signal="SIGUSR1")
    assert driver.container_wait(cid, timeout=30) == 128 + 10


def test_pause_unpause(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    driver.container_pause(cid)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.PAUSED and c.pid is not None
    with pytest.raises(Conflict):
        driver.container_pause(cid)
    with pytest.raises(Conflict):
        driver.container_exec(cid, ("true",))
    with pytest.raises(Conflict):
        driver.container_remove(cid)
    driver.container_unpause(cid)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    with pytest.raises(Conflict):
        driver.container_unpause(cid)


def test_pause_of_a_stopped_container_conflicts(driver: DockerDriver, make: Make) -> None:
    cid = make(SLEEP)
    with pytest.raises(Conflict):
        driver.container_pause(cid)


def test_restart(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    first = driver.container_inspect(cid).started_at
    assert first is not None
    driver.container_restart(cid, timeout=5)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.RUNNING and c.started_at is not None and c.started_at > first
    assert c.exit_code is None and c.finished_at is None


def test_remove(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    with pytest.raises(Conflict):
        driver.container_remove(cid)
    driver.container_remove(cid, force=True)
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(cid)
    with pytest.raises(ContainerNotFound):
        driver.container_remove(cid)


def test_restart_of_exited_container_with_start(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "exit 3"))
    assert driver.container_wait(cid, timeout=30) == 3
    driver.container_start(cid)
    assert driver.container_wait(cid, timeout=30) == 3
    assert driver.container_inspect(cid).state is ContainerState.EXITED


def test_missing_executable_exits_127(driver: DockerDriver, run: Make) -> None:
    cid = run(("/no/such/program",))
    assert driver.container_wait(cid, timeout=30) == 127


def test_oom_kill(driver: DockerDriver, run: Make) -> None:
    cid = run(("dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"), memory=16 * 2**20)
    assert driver.container_wait(cid, timeout=60) == 137
    c = driver.container_inspect(cid)
    assert c.oom_killed and c.exit_code == 137


# -- wait ---------------------------------------------------------------------


def test_wait_exited_returns_at_once(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "exit 5"))
    assert driver.container_wait(cid) == 5
    t0 = time.monotonic()
    assert driver.container_wait(cid, timeout=5) == 5
    assert time.monotonic() - t0 < 1


def test_wait_timeout_leaves_container_and_connection_pool_sound(
    driver: DockerDriver, run: Make
) -> None:
    cid = run(SLEEP)
    t0 = time.monotonic()
    with pytest.raises(EngineTimeout):
        driver.container_wait(cid, timeout=0.5)
    assert 0.4 < time.monotonic() - t0 < 3
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    for _ in range(20):  # no pooled connection still carries the abandoned wait
        driver.ping()
        assert driver.container_inspect(cid).state is ContainerState.RUNNING


def test_wait_on_created_waits_for_start_and_exit(driver: DockerDriver, make: Make) -> None:
    cid = make(("sh", "-c", "sleep 0.5; exit 9"))
    timer = threading.Timer(0.7, driver.container_start, args=(cid,))
    timer.start()
    try:
        t0 = time.monotonic()
        assert driver.container_wait(cid, timeout=30) == 9
        assert time.monotonic() - t0 >= 1.1
    finally:
        timer.join()


def test_wait_without_timeout_outlives_transport_default(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "sleep 2; exit 6"))
    assert driver.container_wait(cid) == 6


def test_wait_missing(driver: DockerDriver) -> None:
    with pytest.raises(ContainerNotFound):
        driver.container_wait("f" * 64, timeout=5)


# -- logs ---------------------------------------------------------------------


LOG_SCRIPT = (
    "printf 'out1\\n'; printf 'err1\\n' >&2; "
    "printf 'bin\\377\\376\\000x\\n'; "
    "head -c 40000 /dev/zero | tr '\\0' a; echo; "
    "head -c 16384 /dev/zero | tr '\\0' b; echo; "
    "head -c 20000 /dev/zero | tr '\\0' c >&2; echo >&2; "
    "printf 'last'"
)


def test_logs_are_whole_lines_bytes_unchanged(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", LOG_SCRIPT))
    assert driver.container_wait(cid, timeout=30) == 0
    lines = list(driver.container_logs(cid))
    out = [x.data for x in lines if x.stream is Stream.STDOUT]
    err = [x.data for x in lines if x.stream is Stream.STDERR]
    assert out == [
        b"out1\n",
        b"bin\xff\xfe\x00x\n",
        b"a" * 40000 + b"\n",
        b"b" * 16384 + b"\n",
        b"last",
    ]
    assert err == [b"err1\n", b"c" * 20000 + b"\n"]
    for x in lines:
        assert x.timestamp is not None and x.timestamp.tzinfo is not None
    only_err = list(driver.container_logs(cid, stdout=False))
    assert [x.data for x in only_err] == err
    tail = list(driver.container_logs(cid, tail=1, stderr=False))
    assert [x.data for x in tail] == [b"last"]


def test_long_unterminated_last_lines(driver: DockerDriver, run: Make) -> None:
    cid = run(
        (
            "sh",
            "-c",
            "head -c 70000 /dev/zero | tr '\\0' e >&2; head -c 20000 /dev/zero | tr '\\0' o",
        )
    )
    assert driver.container_wait(cid, timeout=30) == 0
    lines = list(driver.container_logs(cid))
    assert [(x.stream, x.data) for x in lines if x.stream is Stream.STDERR] == [
        (Stream.STDERR, b"e" * 70000)
    ]
    assert [x.data for x in lines if x.stream is Stream.STDOUT] == [b"o" * 20000]


def test_logs_of_no_stream(driver: DockerDriver, run: Make) -> None:
    cid = run(("echo", "x"))
    driver.container_wait(cid, timeout=30)
    assert list(driver.container_logs(cid, stdout=False, stderr=False)) == []
    with pytest.raises(ContainerNotFound):
        driver.container_logs("a" * 64, stdout=False, stderr=False)


def test_logs_since(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "echo early; sleep 1.2; echo late"))
    driver.container_wait(cid, timeout=30)
    lines = list(driver.container_logs(cid))
    assert [x.data for x in lines] == [b"early\n", b"late\n"]
    late = lines[1].timestamp
    assert late is not None
    since = late.timestamp() - 0.5
    assert [x.data for x in driver.container_logs(cid, since=since)] == [b"late\n"]


def test_follow_ends_when_container_exits(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 2"))
    t0 = time.monotonic()
    got = [x.data for x in driver.container_logs(cid, follow=True)]
    assert got == [b"1\n", b"2\n", b"3\n"]
    assert time.monotonic() - t0 < 10
    assert driver.container_wait(cid, timeout=5) == 2


def test_follow_closed_early_releases(driver: DockerDriver, run: Make) -> None:
    cid = run(("sh", "-c", "while :; do echo tick; sleep 0.1; done"))
    stream = driver.container_logs(cid, follow=True)
    assert next(stream).data == b"tick\n"
    stream.close()  # type: ignore[attr-defined]
    with pytest.raises(StopIteration):
        next(stream)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    for _ in range(10):
        driver.ping()


def test_logs_missing(driver: DockerDriver) -> None:
    with pytest.raises(ContainerNotFound):
        driver.container_logs("e" * 64)


# -- exec ---------------------------------------------------------------------


def test_exec(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP, env={"BASE": "1"})
    r = driver.container_exec(cid, ("sh", "-c", "echo out; echo err >&2; exit 7"))
    assert (r.exit_code, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    r = driver.container_exec(
        cid, ("sh", "-c", "echo $BASE $X; pwd; id -u"), env={"X": "2"}, workdir="/bin", user="1000"
    )
    assert r.exit_code == 0 and r.stdout == b"1 2\n/bin\n1000\n"
    big = driver.container_exec(cid, ("sh", "-c", "head -c 300000 /dev/zero"))
    assert big.stdout == b"\0" * 300000
    missing = driver.container_exec(cid, ("/no/such/program",))
    assert missing.exit_code in (126, 127)


def test_exec_not_running_conflicts(driver: DockerDriver, make: Make) -> None:
    cid = make(SLEEP)
    with pytest.raises(Conflict):
        driver.container_exec(cid, ("true",))


def test_threads_share_one_driver(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)

    def work(i: int) -> bytes:
        assert driver.container_inspect(cid).state is ContainerState.RUNNING
        return driver.container_exec(cid, ("echo", str(i))).stdout

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(40)))
    assert results == [f"{i}\n".encode() for i in range(40)]


# -- resources, network, ports, mounts -----------------------------------------


def test_stats(driver: DockerDriver, run: Make) -> None:
    limited = run(SLEEP, memory=64 * 2**20)
    s = driver.container_stats(limited)
    assert s.memory_limit == 67108864
    assert s.memory_bytes > 0 and s.cpu_seconds > 0 and s.pids is not None and s.pids >= 1
    free = run(SLEEP)
    assert driver.container_stats(free).memory_limit is None


def test_limits_seen_from_inside(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP, memory=64 * 2**20, pids_limit=20, cpus=0.5)
    mem = driver.container_exec(cid, ("cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"))
    pids = driver.container_exec(cid, ("cat", "/sys/fs/cgroup/pids/pids.max"))
    if mem.exit_code == 0:  # cgroups v1 (this machine); v2 has memory.max
        assert mem.stdout.strip() == b"67108864"
        assert pids.stdout.strip() == b"20"
    else:
        v2 = driver.container_exec(cid, ("cat", "/sys/fs/cgroup/memory.max"))
        assert v2.stdout.strip() == b"67108864"


def test_network_none_has_only_loopback(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP, network="none")
    r = driver.container_exec(cid, ("cat", "/proc/net/dev"))
    names = {line.split(b":")[0].strip() for line in r.stdout.splitlines()[2:]}
    assert names == {b"lo"}
    assert driver.container_inspect(cid).network == "none"


def test_network_host(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP, network="host")
    assert driver.container_inspect(cid).network == "host"
    r = driver.container_exec(cid, ("cat", "/proc/net/dev"))
    assert len(r.stdout.splitlines()) > 3


def test_published_port_answers_on_loopback(
    driver: DockerDriver, run: Make, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("hello from enginekit\n")
    cid = run(
        ("httpd", "-f", "-p", "8080", "-h", "/www"),
        ports=(PortBinding(container_port=8080),),
        mounts=(Mount(source=str(tmp_path), target="/www", read_only=True),),
    )
    c = driver.container_inspect(cid)
    (port,) = c.ports
    assert port.host_ip == "127.0.0.1" and port.host_port
    body = b""
    for _ in range(20):  # bounded: httpd needs a moment to listen
        try:
            with socket.create_connection(("127.0.0.1", port.host_port), timeout=2) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                body = b"".join(iter(lambda: s.recv(4096), b""))
            if body:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert body.endswith(b"hello from enginekit\n")
    listed = driver.container_list(name=c.name)
    assert listed[0].ports == c.ports


def test_bind_mount_read_only_and_writable(driver: DockerDriver, run: Make, tmp_path: Path) -> None:
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    cid = run(
        SLEEP,
        mounts=(
            Mount(source=str(ro), target="/ro", read_only=True),
            Mount(source=str(rw), target="/rw"),
        ),
    )
    assert driver.container_exec(cid, ("touch", "/ro/x")).exit_code != 0
    assert driver.container_exec(cid, ("sh", "-c", "echo hi > /rw/x")).exit_code == 0
    assert (rw / "x").read_text() == "hi\n"
    driver.container_exec(cid, ("rm", "/rw/x"))  # root-owned file: removed from inside


# -- list ---------------------------------------------------------------------


def test_list_filters(driver: DockerDriver, make: Make, run: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    base = f"ekd-{RUN}-list-{tag}"
    running = run(SLEEP, name=base, labels={"list": tag, "role": "a"})
    created = make(SLEEP, name=base + "x", labels={"list": tag, "role": "b"})
    ids = {c.id for c in driver.container_list(labels={"list": tag})}
    assert ids == {running}
    ids = {c.id for c in driver.container_list(all=True, labels={"list": tag})}
    assert ids == {running, created}
    assert [c.id for c in driver.container_list(all=True, labels={"list": tag, "role": "b"})] == [
        created
    ]
    assert [c.id for c in driver.container_list(all=True, labels={"role": None, "list": tag})]
    # exact name: the prefix of another name does not match it
    assert [c.id for c in driver.container_list(all=True, name=base)] == [running]
    assert [c.id for c in driver.container_list(all=True, name=base + "x")] == [created]
    assert driver.container_list(all=True, name=base[:-1]) == []


def test_list_entries_agree_with_inspect(driver: DockerDriver, make: Make, run: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [
        make(SLEEP, labels={"agree": tag}),
        run(SLEEP, labels={"agree": tag}, ports=(PortBinding(container_port=80),)),
        run(("sh", "-c", "exit 3"), labels={"agree": tag}),
    ]
    driver.container_wait(ids[2], timeout=30)
    paused = run(SLEEP, labels={"agree": tag})
    driver.container_pause(paused)
    ids.append(paused)
    listed = {c.id: c for c in driver.container_list(all=True, labels={"agree": tag})}
    assert set(listed) == set(ids)
    for cid in ids:
        full, entry = driver.container_inspect(cid), listed[cid]
        for field in ("id", "name", "image", "image_id", "state", "exit_code", "labels", "mounts"):
            assert getattr(entry, field) == getattr(full, field), field
        if full.state in (ContainerState.RUNNING, ContainerState.PAUSED):
            assert entry.ports == full.ports
        assert full.created_at is not None and entry.created_at is not None
        assert abs((full.created_at - entry.created_at).total_seconds()) < 1


# -- copy ---------------------------------------------------------------------


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    f = tar.extractfile(member) if member.isfile() else None
    return f.read() if f is not None else None


def test_archive_round_trip_on_a_stopped_container(driver: DockerDriver, make: Make) -> None:
    cid = make(SLEEP)  # never started
    driver.container_put_archive(cid, "/bin", _tar({"dir/hello.txt": b"hi\n"}))
    st = driver.container_stat_path(cid, "/bin/dir/hello.txt")
    assert st is not None and st.name == "hello.txt" and st.size == 3 and not st.is_dir
    d = driver.container_stat_path(cid, "/bin/dir")
    assert d is not None and d.is_dir
    link = driver.container_stat_path(cid, "/bin/sh")
    assert link is not None and link.is_symlink and link.link_target == "/bin/busybox"
    assert driver.container_stat_path(cid, "/nope") is None
    assert driver.container_stat_path(cid, "/bin/dir/hello.txt/x") is None  # through a file
    with (
        driver.container_get_archive(cid, "/bin/dir") as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        found = {m.name: _read(tar, m) for m in tar}
    assert found == {"dir": None, "dir/hello.txt": b"hi\n"}
    with pytest.raises(NotFound):
        driver.container_get_archive(cid, "/nope")
    with pytest.raises(NotFound):
        driver.container_get_archive(cid, "/bin/dir/hello.txt/x")
    with pytest.raises(NotFound):
        driver.container_put_archive(cid, "/nope", _tar({"x": b""}))


def test_get_archive_closed_early_releases(driver: DockerDriver, run: Make) -> None:
    cid = run(SLEEP)
    stream = driver.container_get_archive(cid, "/bin")
    assert stream.read(512)
    stream.close()
    for _ in range(10):
        driver.ping()


def test_stat_path_missing_container(driver: DockerDriver) -> None:
    with pytest.raises(ContainerNotFound):
        driver.container_stat_path("d" * 64, "/bin")


# -- images -------------------------------------------------------------------


def test_image_inspect_and_list(driver: DockerDriver, image: str) -> None:
    img = driver.image_inspect(image)
    assert image in img.tags and img.id.startswith("sha256:") and img.size > 0
    assert img.config.cmd == ("sh",) and img.config.env["PATH"] == "/bin"
    assert img.labels == LABELS and img.architecture and img.os == "linux"
    assert driver.image_inspect(img.id) == img
    assert driver.image_inspect(img.id[7:19]).id == img.id
    repo = image.split(":")[0]
    assert [i.id for i in driver.image_list(name=repo)] == [img.id]
    assert [i.id for i in driver.image_list(name=image)] == [img.id]
    assert driver.image_list(name=repo + ":other") == []
    assert [i.id for i in driver.image_list(labels=LABELS)] == [img.id]
    with pytest.raises(ImageNotFound):
        driver.image_inspect("enginekit-docker-test/absent:nope")


def test_tag_and_remove(driver: DockerDriver, image: str, make: Make) -> None:
    img = driver.image_inspect(image)
    extra = f"enginekit-docker-test/tagged:{RUN}"
    driver.image_tag(image, extra)
    assert driver.image_inspect(extra).id == img.id
    assert extra in driver.image_inspect(image).tags
    driver.image_remove(extra)  # one of several tags: only that tag goes
    with pytest.raises(ImageNotFound):
        driver.image_inspect(extra)
    assert driver.image_inspect(image).id == img.id
    with pytest.raises(ImageNotFound):
        driver.image_remove(extra)
    with pytest.raises(ImageNotFound):
        driver.image_tag("enginekit-docker-test/absent:nope", extra)


def _build(driver: DockerDriver, ctx: Path, **kw: object) -> tuple[object, list[str]]:
    seen: list[str] = []
    request = BuildRequest(context=str(ctx), labels=LABELS, **kw)  # type: ignore[arg-type]
    return driver.image_build(request, progress=seen.append), seen


def test_build_features(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("A\n")
    (ctx / "skip.txt").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("skip.txt\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {image} AS base\n"
        "ARG GREETING=none\n"
        'RUN echo "$GREETING" > /greeting && echo built-step\n'
        "FROM base\n"
        "COPY --from=base /greeting /copied\n"
        "COPY a.txt /a.txt\n"
        "WORKDIR /app\nUSER 1000\nENV K=V\nEXPOSE 8080\n"
        "LABEL from.file=yes\n"
        'ENTRYPOINT ["sh", "-c"]\nCMD ["cat /copied"]\n'
    )
    tag = f"enginekit-docker-test/built:{RUN}"
    img, seen = _build(
        driver, ctx, tags=(tag, tag + "-b"), build_args={"GREETING": "hello"}, target=None
    )
    try:
        assert set(img.tags) == {tag, tag + "-b"}  # type: ignore[attr-defined]
        cfg = img.config  # type: ignore[attr-defined]
        assert cfg.entrypoint == ("sh", "-c") and cfg.cmd == ("cat /copied",)
        assert cfg.workdir == "/app" and cfg.user == "1000" and cfg.env["K"] == "V"
        assert cfg.exposed_ports == ("8080/tcp",)
        assert img.labels["from.file"] == "yes" and img.labels["enginekit.test"]  # type: ignore[attr-defined]
        assert any(line.startswith("Step ") and "RUN" in line for line in seen)
        assert "built-step" in seen
    finally:
        driver.image_remove(tag, force=True)
        driver.image_remove(tag + "-b", force=True)


def test_build_target(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {image} AS first\nRUN echo one > /one\nFROM first AS second\nRUN exit 9\n"
    )
    img, _ = _build(driver, ctx, target="first", tags=(f"enginekit-docker-test/target:{RUN}",))
    driver.image_remove(img.id, force=True)  # type: ignore[attr-defined]


def test_build_failure_leaves_nothing(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    nonce = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(
        f"FROM {image}\nRUN echo {nonce} > /n\n"
        "RUN echo to-stdout; echo to-stderr >&2; exit 3\nRUN echo unreachable\n"
    )
    before = descendants(driver, image)
    with pytest.raises(BuildFailed) as info:
        _build(driver, ctx, tags=(f"enginekit-docker-test/fails:{RUN}",))
    err = info.value
    assert err.step == "RUN echo to-stdout; echo to-stderr >&2; exit 3"
    assert err.exit_code == 3
    assert "to-stdout" in err.output and "to-stderr" in err.output
    assert nonce not in err.output  # the tail of the failing step only
    assert descendants(driver, image) == before
    with pytest.raises(ImageNotFound):
        driver.image_inspect(f"enginekit-docker-test/fails:{RUN}")


def test_build_failure_of_a_copy_step(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nRUN true\nCOPY absent.txt /x\n")
    before = descendants(driver, image)
    with pytest.raises((BuildFailed, InvalidSpec)) as info:
        _build(driver, ctx)
    if isinstance(info.value, BuildFailed):
        assert info.value.step == "COPY absent.txt /x" and info.value.exit_code is None
    assert descendants(driver, image) == before


def test_build_interrupted_by_progress_leaves_nothing(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {image}\nRUN echo {uuid.uuid4().hex} > /a\nRUN echo stop-here; sleep 2\nRUN true\n"
    )
    before = descendants(driver, image)

    def progress(line: str) -> None:
        if line == "stop-here":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.image_build(BuildRequest(context=str(ctx), labels=LABELS), progress=progress)
    deadline = time.monotonic() + 15
    while descendants(driver, image) != before and time.monotonic() < deadline:
        time.sleep(0.2)  # the daemon cancels the build and removes its container
    assert descendants(driver, image) == before


def test_build_bad_dockerfile(driver: DockerDriver, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nNOSUCHINSTRUCTION x\n")
    with pytest.raises(BuildFailed):
        _build(driver, ctx)


def test_multi_stage_build_leaves_no_stray_image(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    nonce = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(
        f"FROM {image} AS stage\nRUN echo {nonce} > /n\nFROM {image}\nCOPY --from=stage /n /n\n"
    )
    containers, images = descendants(driver, image)
    img, _ = _build(driver, ctx)
    assert descendants(driver, image) == (containers, images | {img.id})  # type: ignore[attr-defined]
    driver.image_remove(img.id)  # type: ignore[attr-defined]
    assert descendants(driver, image) == (containers, images)


def test_images_sharing_cached_steps_are_removed_whole(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    """Two builds share the images of their first steps (a cache hit); removing
    both leaves none of them (Docker 28's containerd store alone would leave
    the second build's images: see ``ImageOps._delete_image``)."""
    containers, images = descendants(driver, image)
    nonce = uuid.uuid4().hex
    built = []
    for n, extra in enumerate(("", "RUN echo three > /three\n")):
        ctx = tmp_path / f"ctx{n}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM {image}\nLABEL enginekit.test.nonce={nonce}\n"
            f"RUN echo one > /one\nRUN echo two > /two\n{extra}"
        )
        built.append(_build(driver, ctx)[0])
    mine = {"label": [f"enginekit.test.nonce={nonce}"]}  # every image below carries it
    assert len(_get(driver, "/images/json", all=True, filters=mine)) >= 5
    for img in built:
        driver.image_remove(img.id)  # type: ignore[attr-defined]
    assert _get(driver, "/images/json", all=True, filters=mine) == []
    assert descendants(driver, image) == (containers, images)


def test_save_and_load(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    img = driver.image_inspect(image)
    tag = f"enginekit-docker-test/saved:{RUN}"
    driver.image_tag(image, tag)
    path = tmp_path / "image.tar"
    driver.image_save(tag, str(path))
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    driver.image_remove(tag)
    loaded = driver.image_load(str(path))
    (saved,) = read_index(path)
    if driver.info().image_store == "containerd":  # the manifest's digest (docs/engines.md)
        assert [i.id for i in loaded] == [saved.manifest_digest]
    else:  # the config's
        assert [i.id for i in loaded] == [img.id] == [saved.id]
    assert tag in loaded[0].tags
    driver.image_remove(tag)
    with pytest.raises(ImageNotFound):
        driver.image_save("enginekit-docker-test/absent:nope", str(tmp_path / "x.tar"))
    assert not (tmp_path / "x.tar").exists()


def test_image_remove_in_use(driver: DockerDriver, image: str, make: Make) -> None:
    tag = f"enginekit-docker-test/inuse:{RUN}"
    ctx = busybox_context(Path(f"/tmp/enginekit-docker-{RUN}-inuse"))
    try:
        img = driver.image_build(BuildRequest(context=str(ctx), tags=(tag,), labels=LABELS))
    finally:
        import shutil

        shutil.rmtree(ctx, ignore_errors=True)
    make(("true",), image=tag)
    with pytest.raises(Conflict):
        driver.image_remove(img.id)
    driver.image_remove(tag, force=True)


def test_push_then_pull_through_a_local_registry(
    driver: DockerDriver, image: str, registry: str, tmp_path: Path
) -> None:
    ref = f"{registry}/ekd/pushed:{RUN}"
    dockerfile = f"FROM {image}\nRUN echo {RUN} > /marker\n"
    built = driver.image_build(
        BuildRequest(context=str(busybox_context(tmp_path, dockerfile)), tags=(ref,), labels=LABELS)
    )
    driver.image_push(ref)
    driver.image_remove(ref)  # its only tag: the image and its own layer go
    with pytest.raises(ImageNotFound):
        driver.image_inspect(built.id)
    pulled = driver.image_pull(ref)
    assert pulled.id == built.id and pulled.tags == (ref,)
    assert pulled.labels == built.labels
    driver.image_remove(ref)


def test_pull_and_push_errors(driver: DockerDriver, image: str, registry: str) -> None:
    with pytest.raises(ImageNotFound, match=r"manifest unknown|not found"):  # classic, containerd
        driver.image_pull(f"{registry}/ekd/never-pushed:{RUN}")
    with pytest.raises(ImageNotFound):
        driver.image_push(f"{registry}/ekd/not-here:{RUN}")
    closed = f"127.0.0.1:{_closed_port()}/ekd/x:{RUN}"
    with pytest.raises(EngineError, match="refused") as info:
        driver.image_pull(closed)
    assert type(info.value) is EngineError
    driver.image_tag(image, closed)
    try:
        with pytest.raises(EngineError, match="refused") as info:
            driver.image_push(closed)
        assert type(info.value) is EngineError
    finally:
        driver.image_remove(closed)


def test_pull_and_push_of_a_name_without_registry_ask_nobody(tmp_path: Path) -> None:
    d = connect(f"unix://{tmp_path}/no.sock")  # nothing listens: any call would fail
    for ref in ("busybox:latest", "library/busybox:1", "sha256:" + "a" * 64, "a" * 12):
        with pytest.raises(ImageNotFound, match="names no registry"):
            d.image_pull(ref)
        with pytest.raises(InvalidSpec, match="names no registry"):
            d.image_push(ref)  # Docker would push a bare name to Docker Hub


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_only_enginekit_errors_leave(driver: DockerDriver) -> None:
    for call in (
        lambda: driver.container_inspect("nope-" + RUN),
        lambda: driver.image_inspect("nope-" + RUN),
        lambda: driver.container_kill("c" * 64, signal="SIGKILL"),
    ):
        with pytest.raises(EngineError):
            call()
