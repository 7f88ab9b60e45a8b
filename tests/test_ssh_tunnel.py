"""The ssh way to an engine (enginekit.sshtunnel), against an sshd of the test's own on
127.0.0.1 (enginekit.testing.sshd: keys made per run, nothing under /etc/ssh).

Nothing is sent to any address but 127.0.0.1. The engines behind it are this
machine's dockerd and Podman service.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import enginekit
from enginekit import Engine
from enginekit.errors import EngineUnavailable, InvalidSpec
from enginekit.sshtunnel import SESSIONS_PER_MASTER, SshAddress, SshDialer, SshTunnel
from enginekit.testing.sshd import LoopbackSshd

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    server = LoopbackSshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_env(sshd: LoopbackSshd, monkeypatch: pytest.MonkeyPatch) -> LoopbackSshd:
    monkeypatch.setenv("ENGINEKIT_SSH_CONFIG", str(sshd.client_config))
    for var in ("DOCKER_HOST", "CONTAINER_HOST", "CONTAINER_SSHKEY", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    return sshd


def tunnel_of(engine: Engine) -> SshTunnel:
    dialer = engine.driver.transport._dialer  # type: ignore[attr-defined]
    assert isinstance(dialer, SshDialer)
    return dialer.tunnel


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, sshd: LoopbackSshd, *, key: Path | None, known: Path) -> Path:
    lines = ["Host 127.0.0.1", "    IdentitiesOnly yes", f"    UserKnownHostsFile {known}"]
    lines += ["    StrictHostKeyChecking yes"]
    if key is not None:
        lines.append(f"    IdentityFile {key}")
    path.write_text("\n".join(lines) + "\n")
    return path


# -- addresses ------------------------------------------------------------------------
def test_address_parts_and_how_they_are_shown() -> None:
    a = SshAddress.parse("docker+ssh://ci@build1.example:2222", identity="/k/id")
    assert (a.user, a.host, a.port, a.path) == ("ci", "build1.example", 2222, "")
    assert a.url == "ssh://ci@build1.example:2222"
    assert a.options() == ["-l", "ci", "-p", "2222", "-i", "/k/id"]
    assert "/k/id" not in repr(a) and "/k/id" not in a.command()
    b = SshAddress.parse("ssh://[::1]/run/user/1000/podman/podman.sock")
    assert (b.host, b.user, b.port, b.path) == (
        "::1",
        None,
        None,
        "/run/user/1000/podman/podman.sock",
    )
    assert b.url == "ssh://[::1]/run/user/1000/podman/podman.sock" and b.options() == []


@pytest.mark.parametrize(
    "url",
    [
        "docker+ssh://-oProxyCommand=touch%20x",
        "docker+ssh://root@-oProxyCommand=x",
        "docker+ssh://-l@127.0.0.1",
        "docker+ssh://root@127.0.0.1:99999",
        "docker+ssh://root@127.0.0.1:port",
        "docker+ssh://root@127.0.0.1?x=1",
        "docker+ssh://ro%20ot@127.0.0.1",
        "docker+ssh://",
        "podman+ssh://root@127.0.0.1/run/a%00b",
    ],
)
def test_an_address_ssh_could_read_as_an_option_is_refused_before_anything_runs(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where a tunnel would make its directory
    with pytest.raises(InvalidSpec):
        enginekit.connect(url)
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_an_ssh_url_is_refused_without_quoting_it() -> None:
    with pytest.raises(InvalidSpec) as info:
        enginekit.connect("docker+ssh://ci:s3cret@127.0.0.1:22")
    assert "s3cret" not in str(info.value) and "password" in str(info.value)


def test_connect_options_are_checked() -> None:
    with pytest.raises(InvalidSpec, match="connect_timeout"):
        enginekit.connect("docker+ssh://root@127.0.0.1:22", connect_timeout=0)
    with pytest.raises(InvalidSpec, match="identity= is for an ssh"):
        enginekit.connect("docker+unix:///var/run/docker.sock", identity="/k")
    with pytest.raises(InvalidSpec, match="ssh_config"):
        enginekit.connect("podman+ssh://root@127.0.0.1:22", ssh_config="/nonexistent/config")


# -- one connection per Engine ---------------------------------------------------------
def test_one_handshake_serves_every_call_and_thread_and_close_ends_it(
    ssh_env: LoopbackSshd,
) -> None:
    engine = enginekit.connect(ssh_env.url("docker"))
    tunnel = tunnel_of(engine)
    assert tunnel.handshakes == 0  # connect() sends nothing
    errors: list[BaseException] = []

    def calls() -> None:
        try:
            for _ in range(5):
                engine.ping()
                engine.info()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=calls) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert tunnel.handshakes == 1
    master = tunnel._masters[0]
    pid, control, folder = master.proc.pid, master.control, tunnel._dir
    assert folder is not None and Path(control).is_socket()
    sessions = [p.pid for m in tunnel._masters for p, _ in m.sessions]
    assert sessions  # the pooled dial-stdio connections
    engine.close()
    assert not alive(pid) and not any(alive(p) for p in sessions)
    assert not Path(folder).exists()
    engine.close()  # again: nothing to do


def test_more_live_sessions_than_sshd_allows_per_connection_open_a_second_master(
    ssh_env: LoopbackSshd,
) -> None:
    tunnel = SshTunnel(SshAddress.parse(ssh_env.url("docker")), name="test")
    try:
        streams = [tunnel.open_stream(("cat",)) for _ in range(SESSIONS_PER_MASTER + 2)]
        assert tunnel.handshakes == 2 and len(tunnel._masters) == 2
        for i, stream in enumerate(streams):
            stream.settimeout(30)
            stream.sendall(f"line {i}\n".encode())
        for i, stream in enumerate(streams):
            got = b""
            while not got.endswith(b"\n"):
                got += stream.recv(100)
            assert got == f"line {i}\n".encode()
        procs = [p for m in tunnel._masters for p, _ in m.sessions]
        for stream in streams:
            stream.close()
    finally:
        tunnel.close()
    assert all(p.poll() is not None for p in procs)


def test_a_master_that_died_is_replaced_on_the_next_call(ssh_env: LoopbackSshd) -> None:
    with enginekit.connect(ssh_env.url("podman")) as engine:
        engine.ping()
        tunnel = tunnel_of(engine)
        old = tunnel._masters[0].proc
        old.kill()  # our own ssh master: the connection drops
        old.wait(10)
        deadline = time.monotonic() + 30
        while True:  # a pooled connection over it may fail once; a new call reconnects
            try:
                engine.ping()
                break
            except enginekit.EngineError:
                assert time.monotonic() < deadline
        assert tunnel.handshakes == 2 and tunnel._masters[0].proc is not old


def test_tunnels_left_open_are_closed_at_interpreter_exit(ssh_env: LoopbackSshd) -> None:
    script = (
        "import enginekit, sys\n"
        f"e = enginekit.connect({ssh_env.url('docker')!r})\n"
        "e.ping()\n"
        "t = e.driver.transport._dialer.tunnel\n"
        "print(t._masters[0].proc.pid, t._dir, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    pid, folder = done.stdout.split()
    assert not alive(int(pid)) and not Path(folder).exists()


# -- ssh failing: EngineUnavailable with the address and ssh's own words, in bounded time ----
def unavailable(url: str, **options: object) -> tuple[EngineUnavailable, float]:
    t0 = time.monotonic()
    with enginekit.connect(url, **options) as engine, pytest.raises(EngineUnavailable) as info:
        engine.ping()
    return info.value, time.monotonic() - t0


def test_nothing_listening_is_unavailable_at_once(ssh_env: LoopbackSshd) -> None:
    port = closed_port()
    exc, took = unavailable(f"docker+ssh://root@127.0.0.1:{port}")
    text = str(exc)
    assert exc.address == f"ssh://root@127.0.0.1:{port}"
    assert "Connection refused" in text and f"ssh -p {port} root@127.0.0.1" in text
    assert took < 15


def test_a_refused_key_is_unavailable_naming_ssh_error(
    ssh_env: LoopbackSshd, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    config = write_config(tmp_path / "cfg", ssh_env, key=None, known=ssh_env.known_hosts)
    exc, took = unavailable(ssh_env.url("podman"), ssh_config=str(config), identity=str(stranger))
    assert "Permission denied" in str(exc) and took < 30
    assert str(stranger) not in str(exc) and str(stranger) not in repr(exc.args)
    # The right key through identity= logs in.
    with enginekit.connect(
        ssh_env.url("docker"), ssh_config=str(config), identity=str(ssh_env.client_key)
    ) as engine:
        engine.ping()


def test_an_unknown_host_key_is_unavailable_not_a_prompt(
    ssh_env: LoopbackSshd, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = write_config(tmp_path / "cfg", ssh_env, key=ssh_env.client_key, known=empty)
    exc, took = unavailable(ssh_env.url("docker"), ssh_config=str(config))
    assert "Host key verification failed" in str(exc) or "host key" in str(exc).lower()
    assert took < 30


def test_a_host_that_never_speaks_is_unavailable_within_the_connect_timeout(
    ssh_env: LoopbackSshd,
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        exc, took = unavailable(f"docker+ssh://root@127.0.0.1:{port}", connect_timeout=2)
    assert "timed out" in str(exc) and took < 2 + 25


def test_a_remote_socket_that_is_not_there_is_unavailable_with_ssh_words(
    ssh_env: LoopbackSshd,
) -> None:
    exc, took = unavailable(ssh_env.url("docker", path="/run/enginekit-nothing.sock"))
    assert "open failed" in str(exc) and took < 30


# -- the remote host's side ---------------------------------------------------------------
def test_docker_without_the_cli_there_goes_through_the_forwarded_socket(
    ssh_env: LoopbackSshd,
) -> None:
    # The second port's sessions have no PATH: `docker` is not found there.
    with enginekit.connect(ssh_env.url("docker", port=ssh_env.bare_port)) as engine:
        assert engine.info().name == "docker"
        dialer = engine.driver.transport._dialer  # type: ignore[attr-defined]
        assert dialer.route.socket == "/var/run/docker.sock" and not dialer.route.command
    with enginekit.connect(ssh_env.url("docker")) as engine:
        engine.ping()
        dialer = engine.driver.transport._dialer  # type: ignore[attr-defined]
        assert dialer.route.command == ("docker", "system", "dial-stdio")


def test_podman_socket_is_asked_of_podman_info_or_is_roots_default(
    ssh_env: LoopbackSshd,
) -> None:
    for port in (ssh_env.port, ssh_env.bare_port):
        with enginekit.connect(ssh_env.url("podman", port=port)) as engine:
            assert engine.info().name == "podman"
            dialer = engine.driver.transport._dialer  # type: ignore[attr-defined]
            assert dialer.route.socket == "/run/podman/podman.sock"
    url = ssh_env.url("podman", path="/run/podman/podman.sock")
    with enginekit.connect(url) as engine:
        engine.ping()
        assert engine.address == url.removeprefix("podman+")


def test_container_host_and_docker_host_name_ssh(
    ssh_env: LoopbackSshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", ssh_env.url("docker").removeprefix("docker+"))
    monkeypatch.setenv("CONTAINER_HOST", ssh_env.url("podman").removeprefix("podman+"))
    monkeypatch.setenv("CONTAINER_SSHKEY", str(ssh_env.client_key))
    for name in ("docker", "podman"):
        with enginekit.connect(name) as engine:
            engine.ping()
            assert engine.address == f"ssh://root@127.0.0.1:{ssh_env.port}"
            if name == "podman":
                assert tunnel_of(engine).address.identity == str(ssh_env.client_key)


def test_close_from_another_thread_ends_a_login_in_progress(ssh_env: LoopbackSshd) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        engine = enginekit.connect(f"docker+ssh://root@127.0.0.1:{port}", connect_timeout=60)
        tunnel = tunnel_of(engine)
        failed: list[BaseException] = []

        def ping() -> None:
            try:
                engine.ping()
            except enginekit.EngineError as exc:
                failed.append(exc)

        caller = threading.Thread(target=ping)
        caller.start()
        silent.settimeout(30)
        waiting, _ = silent.accept()  # ssh is connected, waiting for the silent host's banner
        with waiting:
            deadline = time.monotonic() + 10
            while tunnel._dir is None and time.monotonic() < deadline:
                time.sleep(0.02)
            folder = tunnel._dir
            t0 = time.monotonic()
            engine.close()
            caller.join(30)
            # Ended by the close, not by the 60 s connect timeout (bounded generously).
            assert not caller.is_alive() and failed and time.monotonic() - t0 < 30
        assert folder is not None and not Path(folder).exists()
