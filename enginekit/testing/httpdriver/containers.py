"""Connecting, lifecycle, wait, exec and resources, at driver level."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path

import pytest

from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
)
from enginekit.models import ContainerState, Mount, PortBinding
from enginekit.testing.helpers import call_within

from ._kit import (
    READY_SLEEP,
    SLEEP,
    Kit,
    await_output,
    fetch_first_bytes,
    seconds_between,
)

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
        assert c.pid is None and seconds_between(c.finished_at, c.started_at) >= 0
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
        grace = seconds_between(c.finished_at, term)
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
        assert c.state is ContainerState.RUNNING and seconds_between(c.started_at, first) > 0
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
        assert fetch_first_bytes(binding.host_port) == b"hello\n"  # once nc listens
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
