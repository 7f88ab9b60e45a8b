"""lxc+ssh through an sshd of the test's own on 127.0.0.1 (enginekit.testing.sshd):
the agent brought over ssh once, started once per Engine, gone (with its directory)
when the Engine closes; a host without python3; an agent that died started again;
then this machine's LXC doing the everyday work through it (build, run, wait, logs,
follow, exec, copy both ways, save/load) and what an inspect costs (printed).

The whole contract suite runs over lxc+ssh the same way:
``python -m enginekit.testing.sshd --engines lxc -- python -m pytest tests/test_contract.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from enginekit_lxc import remoteagent, wire
from enginekit_lxc.remote import RemoteLxcDriver

import enginekit
from enginekit import Engine
from enginekit.errors import EngineUnavailable
from enginekit.testing import baseimage
from enginekit.testing.sshd import LoopbackSshd

LABEL = "enginekit.test.lxcssh"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    server = LoopbackSshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connect(sshd: LoopbackSshd, **options: Any) -> RemoteLxcDriver:
    driver = enginekit.connect(sshd.url("lxc"), ssh_config=str(sshd.client_config), **options)
    remote = driver.driver
    assert isinstance(remote, RemoteLxcDriver)
    return remote


def _gone(path: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _agents(sha: str) -> list[int]:
    """Processes running the agent bundle ``sha`` on this machine (the 'remote')."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if f"agent-{sha}.pyz".encode() in cmdline and b"serve" in cmdline:
                found.append(int(entry))
    return found


def test_one_agent_one_handshake_and_nothing_left_after_close(sshd: LoopbackSshd) -> None:
    _, sha = remoteagent.bundle()
    before = set(_agents(sha))
    driver = _connect(sshd)
    dialer = driver._dialer
    try:
        assert driver.host_cpus() == os.cpu_count()
        assert driver.host_path_exists("/proc/self") and not driver.host_path_exists("/no/such")
        assert driver.published_address == "127.0.0.1"
        for _ in range(5):
            driver.host_path_exists("/")
        assert dialer.starts == 1 and dialer.tunnel.handshakes == 1
        agent = dialer.agent()
        folder = os.path.dirname(agent.path)
        assert (os.stat(folder).st_mode & 0o777) == 0o700
        assert os.listdir(folder) == ["s"]
        ours = set(_agents(sha)) - before
        assert len(ours) == 1
        cache = Path.home() / ".cache" / "enginekit"
        assert (cache / f"agent-{sha}.pyz").is_file()
        assert (cache.stat().st_mode & 0o777) == 0o700
    finally:
        driver.close()
    assert _gone(folder), "the agent's directory stayed after close"
    deadline = time.monotonic() + 10
    while set(_agents(sha)) & ours and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_agents(sha)) & ours, "the agent outlived its Engine"
    assert not [p for p in (Path.home() / ".cache" / "enginekit").iterdir() if ".tmp" in p.name]


def test_an_agent_that_died_is_started_again(sshd: LoopbackSshd) -> None:
    driver = _connect(sshd)
    try:
        assert driver.host_path_exists("/")
        first = driver._dialer.agent()
        folder = os.path.dirname(first.path)
        _, sha = remoteagent.bundle()
        for pid in _agents(sha):
            if Path(f"/proc/{pid}/fd").exists() and _holds(pid, first.path):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while first.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not first.alive()
        assert driver.host_cpus() >= 1 and driver.host_path_exists("/")
        assert driver._dialer.starts == 2
        shutil.rmtree(folder, ignore_errors=True)  # the killed one could not clean up
    finally:
        driver.close()


def _holds(pid: int, socket_path: str) -> bool:
    """Whether ``pid`` is the agent serving ``socket_path`` (its cwd-independent check:
    the socket's inode among its open sockets)."""
    try:
        inode = None
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == socket_path:
                inode = fields[6]
        if inode is None:
            return False
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]"
            for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


def test_a_host_without_python3_is_unavailable_saying_so(sshd: LoopbackSshd) -> None:
    driver = enginekit.connect(
        sshd.url("lxc", port=sshd.bare_port), ssh_config=str(sshd.client_config)
    )
    try:
        with pytest.raises(EngineUnavailable) as info:
            driver.info()
        text = str(info.value)
        assert "python3" in text and f":{sshd.bare_port}" in text, text
    finally:
        driver.close()


# -- this machine's LXC through the agent ----------------------------------------
@pytest.fixture(scope="module")
def remote(
    sshd: LoopbackSshd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, str, str]]:
    run_id = uuid.uuid4().hex[:12]
    engine = enginekit.connect(sshd.url("lxc"), ssh_config=str(sshd.client_config))
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    context = baseimage.write_context(tmp_path_factory.mktemp("ctx"), busybox)
    tag = f"enginekit-test/lxcssh-busybox:{run_id}"
    labels = {LABEL: run_id}
    try:
        image = engine.images.build(str(context), tag=tag, labels=labels)
        assert image.labels.get(LABEL) == run_id
        yield engine, tag, run_id
    finally:
        for c in engine.containers.list(all=True, labels=labels):
            engine.containers.remove(c, force=True)
        for ref in (tag, f"{tag}-copy"):
            if engine.images.exists(ref):
                engine.images.remove(ref, force=True)
        engine.close()


def test_run_wait_logs_follow_and_exit_code(remote: tuple[Engine, str, str]) -> None:
    engine, image, run_id = remote
    c = engine.containers.run(
        image, ["sh", "-c", "echo out; echo err >&2; exit 3"], labels={LABEL: run_id}
    )
    assert engine.containers.wait(c, timeout=60) == 3
    assert engine.containers.logs(c, stderr=False) == b"out\n"
    assert engine.containers.logs(c, stdout=False) == b"err\n"
    engine.containers.remove(c)
    c = engine.containers.run(
        image,
        ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"],
        labels={LABEL: run_id},
    )
    with engine.containers.stream_logs(c, follow=True) as lines:
        got = [line.data for line in lines]
    assert got == [b"line 1\n", b"line 2\n", b"line 3\n"]
    assert engine.containers.wait(c, timeout=60) == 0
    engine.containers.remove(c)


def test_exec_and_copy_both_ways(remote: tuple[Engine, str, str], tmp_path: Path) -> None:
    engine, image, run_id = remote
    c = engine.containers.run(image, ["sleep", "300"], labels={LABEL: run_id})
    try:
        result = engine.containers.exec(
            c, ["sh", "-c", "echo $0 $X; echo e >&2; exit 5", "hi"], env={"X": "y"}
        )
        assert (result.exit_code, result.stdout, result.stderr) == (5, b"hi y\n", b"e\n")
        src = tmp_path / "in"
        src.mkdir()
        payload = bytes(range(256)) * 4096
        (src / "data.bin").write_bytes(payload)
        engine.containers.copy_to(c, src, "/tmp/in")
        listing = engine.containers.exec(c, ["wc", "-c", "/tmp/in/data.bin"])
        assert listing.stdout == b"1048576 /tmp/in/data.bin\n"
        out = tmp_path / "out"
        engine.containers.copy_from(c, "/tmp/in", out)
        assert (out / "data.bin").read_bytes() == payload
    finally:
        engine.containers.remove(c, force=True)


def test_save_and_load_stream_over_the_connection(
    remote: tuple[Engine, str, str], tmp_path: Path
) -> None:
    engine, image, _ = remote
    archive = tmp_path / "image.tar"
    engine.images.save(image, archive)
    assert archive.stat().st_size > 500_000
    copy = f"{image}-copy"
    engine.images.tag(image, copy)
    engine.images.remove(copy)
    loaded = engine.images.load(archive)
    assert loaded and engine.images.get(image).id == loaded[0].id
    folder = os.path.dirname(engine.driver._dialer.agent().path)  # type: ignore[attr-defined]
    assert os.listdir(folder) == ["s"]  # the temporary archives are gone


def test_inspect_over_lxc_ssh_against_a_raw_call_through_the_same_forward(
    remote: tuple[Engine, str, str],
) -> None:
    engine, image, run_id = remote
    driver: Any = engine.driver
    c = engine.containers.create(image, ["true"], labels={LABEL: run_id})
    try:
        handshakes = driver._dialer.tunnel.handshakes
        n = 40
        engine.containers.get(c)
        ours = []
        for _ in range(n):
            t0 = time.perf_counter()
            engine.containers.get(c)
            ours.append(time.perf_counter() - t0)
        body = json.dumps(wire.encode({"a": [c.id], "k": {}})).encode()
        conn = http.client.HTTPConnection("localhost", timeout=30)
        conn.sock = driver._dialer.dial(30)
        raw = []
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                conn.request("POST", "/call/container_inspect", body=body)
                resp = conn.getresponse()
                assert resp.status == 200
                resp.read()
                raw.append(time.perf_counter() - t0)
        finally:
            conn.close()
        local = enginekit.connect("lxc")
        try:
            direct = []
            for _ in range(n):
                t0 = time.perf_counter()
                local.driver.container_inspect(c.id)
                direct.append(time.perf_counter() - t0)
        finally:
            local.close()
        med = {
            k: statistics.median(v) * 1000
            for k, v in (("ssh", ours), ("raw", raw), ("local", direct))
        }
        print(
            f"\n[lxc] container inspect medians over {n}: enginekit over lxc+ssh "
            f"{med['ssh']:.2f} ms, raw call through the same forward {med['raw']:.2f} ms, "
            f"the LXC driver on this machine {med['local']:.2f} ms"
        )
        assert driver._dialer.tunnel.handshakes == handshakes
        assert driver._dialer.starts == 1
        assert med["ssh"] < med["raw"] * 3 + 5, med
    finally:
        engine.containers.remove(c, force=True)


def test_a_python_too_old_is_unavailable_saying_so(
    sshd: LoopbackSshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bootstrap's own check, made to refuse this machine's python3.
    monkeypatch.setattr(
        remoteagent, "_BOOTSTRAP", remoteagent._BOOTSTRAP.replace("(3, 11)", "(99, 0)")
    )
    driver = enginekit.connect(sshd.url("lxc"), ssh_config=str(sshd.client_config))
    try:
        with pytest.raises(EngineUnavailable) as info:
            driver.ping()
        text = str(info.value)
        assert "needs Python 3.11 or newer" in text and f":{sshd.port}" in text, text
    finally:
        driver.close()
