"""Driver-level scenarios that every HTTP adapter's own tests run (Docker's and Podman's).

The contract suite (:mod:`enginekit.testing.suite`) checks an engine through the
facade; these check the driver of an adapter built on
:class:`enginekit.toolkit.http.HttpDriver` directly, on the engine its tests
talk to. An adapter's test module imports the classes (``from
enginekit.testing.httpdriver import *``), where pytest collects them, and
provides one fixture, ``kit``: a :class:`Kit` with its driver, an image with
busybox (``sh``, ``nc``, ``usleep``, ``tail``, ``dd``) and how to make labelled
containers that are removed after the test. The registry tests also use the
plugin's ``registry`` fixture.

Nothing here sleeps for luck: every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

from enginekit.driver import Driver
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
from enginekit.models import BuildRequest, ContainerState, LogLine, Mount, PortBinding, Stream
from enginekit.testing.helpers import call_within

__all__ = [
    "Kit",
    "TestHttpDriverConnect",
    "TestHttpDriverExec",
    "TestHttpDriverFiles",
    "TestHttpDriverImages",
    "TestHttpDriverLifecycle",
    "TestHttpDriverLogs",
    "TestHttpDriverResources",
    "TestHttpDriverWait",
    "await_output",
    "closed_port",
    "read_member",
    "tar_of",
]

SLEEP = ("sleep", "100")
#: Prints ``ready`` once it runs: a signal sent after that reaches the command
#: through the init (one sent while the init still sets up may be lost).
READY_SLEEP = ("sh", "-c", "echo ready; exec sleep 100")


@attrs.frozen
class Kit:
    """What the scenarios need from an adapter's tests."""

    #: The adapter's driver, connected to the engine under test.
    driver: Driver
    #: An image with busybox installed in /bin (labelled, removed by the adapter's tests).
    image: str
    #: The labels of everything the adapter's tests make (their clean-up removes it).
    labels: Mapping[str, str]
    #: ``create(command, **spec) -> id``: a labelled container of ``image`` (spec
    #: fields as ContainerSpec's; ``image=`` another), created, removed after the test.
    create: Callable[..., str]
    #: The adapter's ``connect(address)``.
    connect: Callable[[str], Any]
    #: What an unreachable engine's message tells to start (``"dockerd"``, ...).
    start_hint: str
    #: A short string unique to this test run, for names.
    run_id: str

    def run(self, command: Iterable[str] | None, **spec: Any) -> str:
        """Created and started."""
        cid = self.create(tuple(command) if command is not None else None, **spec)
        self.driver.container_start(cid)
        return cid

    def output(self, cid: str, **kw: Any) -> bytes:
        """Everything the container wrote (both streams unless told)."""
        return b"".join(line.data for line in self.lines(cid, **kw))

    def lines(self, cid: str, **kw: Any) -> list[LogLine]:
        return list(self.driver.container_logs(cid, **kw))


# --------------------------------------------------------------------------- helpers


def await_output(kit: Kit, cid: str, line: bytes = b"ready\n", *, timeout: float = 30) -> None:
    """Until the container has written ``line``."""
    deadline = time.monotonic() + timeout
    while not any(x.data == line for x in kit.lines(cid)):
        assert time.monotonic() < deadline, f"the container did not write {line!r}"
        time.sleep(0.05)


def tar_of(files: Mapping[str, bytes]) -> io.BytesIO:
    """An uncompressed tar of regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    f = tar.extractfile(member) if member.isfile() else None
    return f.read() if f is not None else None


def members(stream: IO[bytes]) -> dict[str, bytes | None]:
    with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return {m.name: read_member(tar, m) for m in tar}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (once this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fetch(port: int, *, timeout: float = 30) -> bytes:
    """The first bytes a server on 127.0.0.1:``port`` sends, once it listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                data = s.recv(100)
            if data:
                return data
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing answered on 127.0.0.1:{port}"
        time.sleep(0.1)


def _seconds(later: dt.datetime | None, earlier: dt.datetime | None) -> float:
    assert later is not None and earlier is not None
    return (later - earlier).total_seconds()


def _context(root: Path, dockerfile: str) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    return str(root)


# --------------------------------------------------------------------------- connect


class TestHttpDriverConnect:
    def test_connect_does_no_io_and_ping_says_where_and_how(self, kit: Kit, tmp_path: Path) -> None:
        address = f"unix://{tmp_path}/no.sock"
        d = kit.connect(address)  # nothing listens there: connect must not notice
        try:
            with pytest.raises(EngineUnavailable) as info:
                d.ping()
        finally:
            d.close()
        assert address in str(info.value) and kit.start_hint in str(info.value)
        assert info.value.address == address

    def test_only_enginekit_errors_leave(self, kit: Kit) -> None:
        d = kit.driver
        for call in (
            lambda: d.container_inspect(f"nope-{kit.run_id}"),
            lambda: d.image_inspect(f"nope-{kit.run_id}"),
            lambda: d.container_kill("c" * 64, signal="SIGKILL"),
        ):
            with pytest.raises(EngineError):
                call()


# --------------------------------------------------------------------------- lifecycle


class TestHttpDriverLifecycle:
    def test_stop_gives_143_through_the_init(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(READY_SLEEP)
        await_output(kit, cid)
        c = d.container_inspect(cid)
        assert c.state is ContainerState.RUNNING and c.pid and c.started_at
        assert c.exit_code is None and c.finished_at is None
        d.container_start(cid)  # starting a running one: no-op
        d.container_stop(cid, timeout=10)
        c = d.container_inspect(cid)
        # 143: SIGTERM ended it through the init (SIGKILL after the timeout gives 137).
        assert c.state is ContainerState.EXITED and c.exit_code == 143
        assert c.pid is None and _seconds(c.finished_at, c.started_at) >= 0
        d.container_stop(cid, timeout=10)  # not running: left as it is
        assert d.container_inspect(cid).exit_code == 143

    def test_stop_timeout_then_sigkill(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(
            ("sh", "-c", 'trap "echo term" TERM; echo ready; while :; do usleep 50000; done')
        )
        await_output(kit, cid)  # the trap is set
        t0 = time.monotonic()
        call_within(60, d.container_stop, cid, timeout=1)
        elapsed = time.monotonic() - t0
        c = d.container_inspect(cid)
        assert c.exit_code == 137
        assert elapsed >= 0.9, f"killed {elapsed:.2f}s after stop(timeout=1)"  # not before
        # The 1 s given, not the default 10 s: on the engine's clock, from the
        # SIGTERM's arrival (the line it made the command log) to the exit.
        (term,) = [x.timestamp for x in kit.lines(cid) if x.data == b"term\n"]
        grace = _seconds(c.finished_at, term)
        assert grace < 8, f"SIGKILL {grace:.2f}s after SIGTERM (engine clock)"

    def test_kill_gives_137_and_a_kill_of_an_exited_one_conflicts(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        d.container_kill(cid, signal="SIGKILL")
        assert d.container_wait(cid, timeout=30) == 137
        assert not d.container_inspect(cid).oom_killed  # killed through the engine
        with pytest.raises(Conflict):
            d.container_kill(cid, signal="SIGKILL")

    def test_kill_with_another_signal(self, kit: Kit) -> None:
        cid = kit.run(READY_SLEEP)
        await_output(kit, cid)
        kit.driver.container_kill(cid, signal="SIGUSR1")
        assert kit.driver.container_wait(cid, timeout=30) == 128 + 10

    def test_pause_unpause_and_conflicts(self, kit: Kit) -> None:
        d = kit.driver
        created = kit.create(SLEEP)
        with pytest.raises(Conflict):
            d.container_pause(created)
        cid = kit.run(SLEEP)
        d.container_pause(cid)
        c = d.container_inspect(cid)
        assert c.state is ContainerState.PAUSED and c.pid
        for conflicting in (
            lambda: d.container_pause(cid),
            lambda: d.container_exec(cid, ("true",)),
            lambda: d.container_remove(cid),
        ):
            with pytest.raises(Conflict):
                conflicting()
        d.container_unpause(cid)
        assert d.container_inspect(cid).state is ContainerState.RUNNING
        with pytest.raises(Conflict):
            d.container_unpause(cid)

    def test_restart(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        first = d.container_inspect(cid).started_at
        d.container_restart(cid, timeout=1)
        c = d.container_inspect(cid)
        assert c.state is ContainerState.RUNNING and _seconds(c.started_at, first) > 0
        assert c.exit_code is None and c.finished_at is None

    def test_remove(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        with pytest.raises(Conflict):
            d.container_remove(cid)
        d.container_remove(cid, force=True)
        with pytest.raises(ContainerNotFound):
            d.container_inspect(cid)
        with pytest.raises(ContainerNotFound):
            d.container_remove(cid)

    def test_start_of_an_exited_container_runs_it_again(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("sh", "-c", "exit 3"))
        assert d.container_wait(cid, timeout=30) == 3
        d.container_start(cid)
        assert d.container_wait(cid, timeout=30) == 3
        assert d.container_inspect(cid).state is ContainerState.EXITED

    def test_oom_kill_is_137(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("tail", "/dev/zero"), memory=32 * 2**20)
        assert d.container_wait(cid, timeout=60) == 137
        assert d.container_inspect(cid).oom_killed
        # A SIGKILL of the engine's own: not an OOM kill.
        stopped = kit.run(SLEEP, memory=32 * 2**20, stop_signal="SIGKILL")
        d.container_stop(stopped, timeout=1)
        c = d.container_inspect(stopped)
        assert c.exit_code == 137 and not c.oom_killed


# --------------------------------------------------------------------------- wait


class TestHttpDriverWait:
    def test_wait_of_an_exited_container_gives_its_code_again(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "exit 5"))
        assert kit.driver.container_wait(cid) == 5
        # No new exit to wait for: an engine waiting for one would time out.
        assert kit.driver.container_wait(cid, timeout=10) == 5

    def test_wait_deadline_leaves_the_container_and_the_connections_sound(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout):
            d.container_wait(cid, timeout=0.5)
        elapsed = time.monotonic() - t0
        # Not before the deadline; after it generously (a busy machine answers
        # late; a wait that ignored it would run for the container's 100 s).
        assert 0.4 < elapsed < 30, elapsed
        assert d.container_inspect(cid).state is ContainerState.RUNNING
        for _ in range(20):  # no pooled connection still carries the abandoned wait
            d.ping()
            assert d.container_inspect(cid).state is ContainerState.RUNNING

    def test_wait_on_created_waits_for_start_and_exit(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.create(("sh", "-c", "sleep 0.5; exit 9"))
        timer = threading.Timer(0.7, d.container_start, args=(cid,))
        timer.start()
        try:
            t0 = time.monotonic()
            assert d.container_wait(cid, timeout=60) == 9
            # Started no sooner than 0.7 s, then ran 0.5 s: a lower bound only.
            assert time.monotonic() - t0 >= 1.1
        finally:
            timer.join()

    def test_wait_without_timeout(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "sleep 2; exit 6"))
        assert call_within(120, kit.driver.container_wait, cid) == 6

    def test_wait_missing(self, kit: Kit) -> None:
        with pytest.raises(ContainerNotFound):
            kit.driver.container_wait("f" * 64, timeout=5)


# --------------------------------------------------------------------------- exec


class TestHttpDriverExec:
    def test_exec(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP, env={"BASE": "1"})
        r = d.container_exec(cid, ("sh", "-c", "echo out; echo err >&2; exit 7"))
        assert (r.exit_code, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
        r = d.container_exec(
            cid,
            ("sh", "-c", "echo $BASE $X; pwd; id -u"),
            env={"X": "2"},
            workdir="/bin",
            user="1000",
        )
        assert (r.exit_code, r.stdout, r.stderr) == (0, b"1 2\n/bin\n1000\n", b"")
        big = d.container_exec(cid, ("sh", "-c", "head -c 300000 /dev/zero"))
        assert big.stdout == b"\0" * 300000
        missing = d.container_exec(cid, ("/no/such/program",))
        assert missing.exit_code in (126, 127)

    def test_exec_in_a_created_container_conflicts(self, kit: Kit) -> None:
        cid = kit.create(SLEEP)
        with pytest.raises(Conflict):
            kit.driver.container_exec(cid, ("true",))

    def test_threads_share_one_driver(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)

        def work(i: int) -> bytes:
            assert d.container_inspect(cid).state is ContainerState.RUNNING
            return bytes(d.container_exec(cid, ("echo", str(i))).stdout)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(40)))
        assert results == [f"{i}\n".encode() for i in range(40)]


# --------------------------------------------------------------------------- resources


class TestHttpDriverResources:
    def test_stats(self, kit: Kit) -> None:
        d = kit.driver
        limited = kit.run(SLEEP, memory=64 * 2**20)
        s = d.container_stats(limited)
        assert s.memory_limit == 64 * 2**20
        assert s.memory_bytes > 0 and s.cpu_seconds >= 0
        assert s.pids is not None and s.pids >= 1
        assert d.container_stats(kit.run(SLEEP)).memory_limit is None

    def test_limits_seen_from_inside(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP, memory=64 * 2**20, pids_limit=20, cpus=0.5)
        mem = d.container_exec(cid, ("cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        if mem.exit_code == 0:  # cgroup v1; v2 has memory.max
            pids = d.container_exec(cid, ("cat", "/sys/fs/cgroup/pids/pids.max"))
            assert (mem.stdout.strip(), pids.stdout.strip()) == (b"67108864", b"20")
        else:
            v2 = d.container_exec(
                cid, ("cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max")
            )
            assert v2.stdout.split() == [b"67108864", b"20"]

    def test_network_none_has_only_loopback(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("ls", "/sys/class/net"), network="none")
        assert d.container_wait(cid, timeout=30) == 0
        assert kit.output(cid) == b"lo\n"
        assert d.container_inspect(cid).network == "none"
        bridged = kit.run(("ls", "/sys/class/net"))
        assert d.container_wait(bridged, timeout=30) == 0
        assert b"eth0" in kit.output(bridged)

    def test_network_host(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP, network="host")
        assert d.container_inspect(cid).network == "host"
        r = d.container_exec(cid, ("ls", "/sys/class/net"))
        assert r.stdout.split().count(b"lo") == 1 and len(r.stdout.split()) > 1

    def test_published_port_answers_on_loopback(self, kit: Kit) -> None:
        d = kit.driver
        script = "while true; do echo hello | nc -l -p 8080; done"
        cid = kit.run(("sh", "-c", script), ports=(PortBinding(container_port=8080),))
        c = d.container_inspect(cid)
        (binding,) = c.ports
        assert binding.host_ip == "127.0.0.1" and binding.container_port == 8080
        assert binding.host_port
        assert _fetch(binding.host_port) == b"hello\n"  # once nc listens
        assert [x.ports for x in d.container_list(name=c.name)] == [c.ports]
        d.container_stop(cid, timeout=1)
        (after,) = d.container_inspect(cid).ports
        assert after.host_port is None  # picked at start, as Docker reports it

    def test_bind_mounts_read_only_and_writable(self, kit: Kit, tmp_path: Path) -> None:
        d = kit.driver
        ro, rw = tmp_path / "ro", tmp_path / "rw"
        ro.mkdir()
        rw.mkdir()
        (ro / "f").write_text("from-host\n")
        tmp_path.chmod(0o755)
        mounts = (
            Mount(source=str(ro), target="/ro", read_only=True),
            Mount(source=str(rw), target="/rw"),
        )
        cid = kit.run(SLEEP, mounts=mounts)
        assert sorted(d.container_inspect(cid).mounts, key=lambda m: m.target) == list(mounts)
        assert d.container_exec(cid, ("cat", "/ro/f")).stdout == b"from-host\n"
        assert d.container_exec(cid, ("touch", "/ro/x")).exit_code != 0
        assert d.container_exec(cid, ("sh", "-c", "echo hi > /rw/x")).exit_code == 0
        assert (rw / "x").read_text() == "hi\n"
        d.container_exec(cid, ("rm", "/rw/x"))  # root-owned file: removed from inside


# --------------------------------------------------------------------------- logs


LOG_SCRIPT = (
    "printf 'out1\\n'; printf 'err1\\n' >&2; "
    "printf 'bin\\377\\376\\000x\\r\\n'; "
    "head -c 40000 /dev/zero | tr '\\0' a; echo; "
    "head -c 16384 /dev/zero | tr '\\0' b; echo; "
    "head -c 20000 /dev/zero | tr '\\0' c >&2; echo >&2; "
    "printf 'last'"
)


class TestHttpDriverLogs:
    def test_logs_are_whole_lines_bytes_unchanged(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("sh", "-c", LOG_SCRIPT))
        assert d.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        out = [x.data for x in lines if x.stream is Stream.STDOUT]
        err = [x.data for x in lines if x.stream is Stream.STDERR]
        assert out == [
            b"out1\n",
            b"bin\xff\xfe\x00x\r\n",
            b"a" * 40000 + b"\n",
            b"b" * 16384 + b"\n",
            b"last",
        ]
        assert err == [b"err1\n", b"c" * 20000 + b"\n"]
        for x in lines:
            assert x.timestamp is not None and x.timestamp.tzinfo is not None
        assert [x.data for x in kit.lines(cid, stdout=False)] == err
        assert [x.data for x in kit.lines(cid, tail=1, stderr=False)] == [b"last"]

    def test_long_unterminated_last_lines(self, kit: Kit) -> None:
        script = "head -c 70000 /dev/zero | tr '\\0' e >&2; head -c 20000 /dev/zero | tr '\\0' o"
        cid = kit.run(("sh", "-c", script))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        assert [x.data for x in lines if x.stream is Stream.STDERR] == [b"e" * 70000]
        assert [x.data for x in lines if x.stream is Stream.STDOUT] == [b"o" * 20000]

    def test_logs_of_no_stream(self, kit: Kit) -> None:
        cid = kit.run(("echo", "x"))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        assert kit.lines(cid, stdout=False, stderr=False) == []
        with pytest.raises(ContainerNotFound):
            kit.driver.container_logs("a" * 64, stdout=False, stderr=False)

    def test_logs_since(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "echo early; sleep 1.2; echo late"))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        assert [x.data for x in lines] == [b"early\n", b"late\n"]
        late = lines[1].timestamp
        assert late is not None
        # 1.2 s of the container's own apart (a busy machine only widens the gap).
        since = late.timestamp() - 0.5
        assert [x.data for x in kit.lines(cid, since=since)] == [b"late\n"]

    def test_follow_ends_when_the_container_exits(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 2"))

        def follow() -> list[bytes]:
            return [x.data for x in kit.driver.container_logs(cid, follow=True)]

        assert call_within(60, follow) == [b"1\n", b"2\n", b"3\n"]
        assert kit.driver.container_wait(cid, timeout=30) == 2

    def test_follow_closed_early_releases(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("sh", "-c", "while :; do echo tick; sleep 0.1; done"))
        stream = d.container_logs(cid, follow=True)
        assert next(stream).data == b"tick\n"
        stream.close()  # type: ignore[attr-defined]
        with pytest.raises(StopIteration):
            next(stream)
        assert d.container_inspect(cid).state is ContainerState.RUNNING
        for _ in range(10):
            d.ping()

    def test_logs_missing(self, kit: Kit) -> None:
        with pytest.raises(ContainerNotFound):
            kit.driver.container_logs("e" * 64)


# --------------------------------------------------------------------------- files


class TestHttpDriverFiles:
    def test_archive_round_trip_on_a_container_never_started(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.create(SLEEP)
        d.container_put_archive(cid, "/bin", tar_of({"dir/hello.txt": b"hi\n"}))
        st = d.container_stat_path(cid, "/bin/dir/hello.txt")
        assert st is not None and st.name == "hello.txt" and st.size == 3 and not st.is_dir
        assert not st.is_symlink and st.link_target == ""
        folder = d.container_stat_path(cid, "/bin/dir")
        assert folder is not None and folder.is_dir
        link = d.container_stat_path(cid, "/bin/sh")
        assert link is not None and link.is_symlink and link.link_target == "/bin/busybox"
        assert d.container_stat_path(cid, "/nope") is None
        assert d.container_stat_path(cid, "/bin/dir/hello.txt/x") is None  # through a file
        assert members(d.container_get_archive(cid, "/bin/dir")) == {
            "dir": None,
            "dir/hello.txt": b"hi\n",
        }
        for missing in ("/nope", "/bin/dir/hello.txt/x"):
            with pytest.raises(NotFound):
                d.container_get_archive(cid, missing)
        with pytest.raises(NotFound):
            d.container_put_archive(cid, "/nope", tar_of({"x": b""}))

    def test_copy_in_and_out_of_a_running_then_stopped_container(self, kit: Kit) -> None:
        d = kit.driver
        script = "mkdir /d; echo hi > /d/f; ln -s /d/f /d/l; echo ready; sleep 100"
        cid = kit.run(("sh", "-c", script))
        await_output(kit, cid)
        link = d.container_stat_path(cid, "/d/l")
        assert link is not None and link.is_symlink and link.name == "l"
        assert link.link_target == "/d/f"
        d.container_put_archive(cid, "/d", tar_of({"new.txt": b"abc"}))
        d.container_stop(cid, timeout=1)
        found = members(d.container_get_archive(cid, "/d"))  # stopped containers too
        assert (found["d/new.txt"], found["d/f"]) == (b"abc", b"hi\n")
        d.container_put_archive(cid, "/", tar_of({"top.txt": b"t"}))
        assert d.container_stat_path(cid, "/top.txt") is not None

    def test_links_to_nothing_are_links(self, kit: Kit) -> None:
        d = kit.driver
        script = "mkdir /d; ln -s nowhere /d/dang; ln -s ../../../x /d/up; echo ready; sleep 100"
        cid = kit.run(("sh", "-c", script))
        await_output(kit, cid)
        for name, text in (("dang", "nowhere"), ("up", "../../../x")):
            st = d.container_stat_path(cid, f"/d/{name}")
            assert st is not None and st.is_symlink and st.name == name and not st.is_dir
            with (
                d.container_get_archive(cid, f"/d/{name}") as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                assert [(m.name, m.issym(), m.linkname) for m in tar] == [(name, True, text)]
        assert d.container_stat_path(cid, "/d/dang/x") is None
        assert d.container_stat_path(cid, "/d/nope") is None

    def test_get_archive_closed_early_releases(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        stream = d.container_get_archive(cid, "/bin")
        assert stream.read(512)
        stream.close()
        for _ in range(10):
            d.ping()
        assert d.container_stat_path(cid, "/bin/sh") is not None

    def test_stat_path_of_a_missing_container(self, kit: Kit) -> None:
        with pytest.raises(ContainerNotFound):
            kit.driver.container_stat_path("d" * 64, "/bin")


# --------------------------------------------------------------------------- images


class TestHttpDriverImages:
    def test_image_inspect_and_list(self, kit: Kit) -> None:
        d = kit.driver
        img = d.image_inspect(kit.image)
        assert kit.image in img.tags and img.id.startswith("sha256:") and len(img.id) == 71
        assert img.size > 0 and img.architecture and img.os == "linux"
        assert d.image_inspect(img.id) == img
        assert d.image_inspect(img.id[7:19]).id == img.id
        repo = kit.image.rpartition(":")[0]
        # (Another run of these tests may hold an image of the same name with its own tag.)
        by_repo = d.image_list(name=repo)
        assert img.id in [i.id for i in by_repo]
        assert all(any(t.rpartition(":")[0] == repo for t in i.tags) for i in by_repo), by_repo
        assert [i.id for i in d.image_list(name=kit.image)] == [img.id]
        assert d.image_list(name=repo + ":other") == []
        assert img.id in [i.id for i in d.image_list(labels=kit.labels)]
        with pytest.raises(ImageNotFound):
            d.image_inspect(f"enginekit-test/absent:{kit.run_id}")

    def test_tag_and_remove(self, kit: Kit) -> None:
        d = kit.driver
        img = d.image_inspect(kit.image)
        extra = f"enginekit-test/tagged:{kit.run_id}"
        d.image_tag(kit.image, extra)
        assert d.image_inspect(extra).id == img.id
        assert set(d.image_inspect(kit.image).tags) == {*img.tags, extra}
        d.image_remove(extra)  # one tag of several: only that tag goes
        with pytest.raises(ImageNotFound):
            d.image_inspect(extra)
        assert d.image_inspect(kit.image).tags == img.tags
        with pytest.raises(ImageNotFound):
            d.image_remove(extra)
        with pytest.raises(ImageNotFound):
            d.image_tag(f"enginekit-test/absent:{kit.run_id}", extra)
        # In use by a container: Conflict unless forced; a tag of several goes
        # alone, the container and the image stay (as `docker rmi`).
        other = f"enginekit-test/other:{kit.run_id}"
        d.image_tag(kit.image, other)
        cid = kit.create(("true",), image=other)
        d.image_remove(other)
        d.image_tag(kit.image, other)
        with pytest.raises(Conflict):
            d.image_remove(img.id)
        assert d.container_inspect(cid).image == other
        d.image_remove(other)

    def test_build_target(self, kit: Kit, tmp_path: Path) -> None:
        d = kit.driver
        ctx = _context(
            tmp_path,
            f'FROM {kit.image} AS first\nRUN echo one > /one\nCMD ["cat", "/one"]\n'
            "FROM first AS second\nRUN exit 9\n",
        )
        tag = f"enginekit-test/target:{kit.run_id}"
        # The second stage fails: building it at all would fail the build.
        img = d.image_build(
            BuildRequest(context=ctx, target="first", tags=(tag,), labels=dict(kit.labels))
        )
        try:
            assert img.tags == (tag,) and img.config.cmd == ("cat", "/one")
            cid = kit.run(None, image=tag)
            assert d.container_wait(cid, timeout=30) == 0
            assert kit.output(cid) == b"one\n"
        finally:
            d.image_remove(tag, force=True)

    def test_build_of_a_bad_dockerfile_fails(self, kit: Kit, tmp_path: Path) -> None:
        ctx = _context(tmp_path, "FROM scratch\nNOSUCHINSTRUCTION x\n")
        with pytest.raises(BuildFailed):
            kit.driver.image_build(BuildRequest(context=ctx, labels=dict(kit.labels)))

    def test_push_then_pull_through_a_local_registry(
        self, kit: Kit, registry: str, tmp_path: Path
    ) -> None:
        d = kit.driver
        ref = f"{registry}/enginekit-test/pushed:{kit.run_id}"
        ctx = _context(tmp_path, f"FROM {kit.image}\nRUN echo {uuid.uuid4().hex} > /marker\n")
        built = d.image_build(BuildRequest(context=ctx, tags=(ref,), labels=dict(kit.labels)))
        assert built.tags == (ref,)
        d.image_push(ref)
        d.image_remove(ref)  # its only tag: the image and its own layer go
        with pytest.raises(ImageNotFound):
            d.image_inspect(built.id)
        pulled = d.image_pull(ref)
        assert pulled.id == built.id and pulled.tags == (ref,)
        assert pulled.labels == built.labels
        d.image_remove(ref)

    def test_pull_and_push_errors(self, kit: Kit, registry: str) -> None:
        d = kit.driver
        with pytest.raises(ImageNotFound, match=r"manifest unknown|not found"):
            d.image_pull(f"{registry}/enginekit-test/never-pushed:{kit.run_id}")
        with pytest.raises(ImageNotFound):
            d.image_push(f"{registry}/enginekit-test/not-here:{kit.run_id}")
        closed = f"127.0.0.1:{closed_port()}/enginekit-test/x:{kit.run_id}"
        with pytest.raises(EngineError, match="refused") as info:
            d.image_pull(closed)
        assert type(info.value) is EngineError
        d.image_tag(kit.image, closed)
        try:
            with pytest.raises(EngineError, match="refused") as info:
                d.image_push(closed)
            assert type(info.value) is EngineError
        finally:
            d.image_remove(closed)
