"""Docker over TCP with TLS, against this machine's dockerd behind a TLS terminator of the
test's own on 127.0.0.1 (socat, with a CA and certificates made per run by openssl).

dockerd speaks the same HTTP over TLS as on its socket: what is tested is enginekit's
side (certificates given by ``tls=``, ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` or a
context; verification on and off; a wrong CA, a wrong name and a missing client
certificate refused, saying so). Plain TCP beyond loopback needs ``insecure=True``.
Nothing is sent to any address but 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import enginekit
from enginekit.errors import EngineError, EngineUnavailable, InvalidSpec

DOCKER_SOCK = "/var/run/docker.sock"


@attrs.frozen
class Pki:
    folder: Path
    ca: Path
    cert: Path
    key: Path
    other_ca: Path

    def tls(self, **extra: object) -> dict[str, object]:
        return {"ca": str(self.ca), "cert": str(self.cert), "key": str(self.key), **extra}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Pki:
    """A CA; a server certificate for 127.0.0.1 (IP only); a client certificate; another CA."""
    for ca in ("ca", "other-ca"):
        openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", "-days", "2",
            "-subj", f"/CN=enginekit test {ca}", cwd=folder,
        )  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(ext)
        openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={name}",
            cwd=folder,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "2",
            "-extfile", f"{name}.ext", cwd=folder,
        )  # fmt: skip
    (folder / "server.pem").write_text(
        (folder / "server-cert.pem").read_text() + (folder / "server-key.pem").read_text()
    )
    return Pki(
        folder,
        ca=folder / "ca.pem",
        cert=folder / "client-cert.pem",
        key=folder / "client-key.pem",
        other_ca=folder / "other-ca.pem",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_terminator(pki: Pki, *, client_cert: bool) -> tuple[subprocess.Popen[bytes], int]:
    """socat: TLS on 127.0.0.1:PORT in front of dockerd's socket."""
    port = free_port()
    listen = (
        f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,"
        f"cert={pki.folder / 'server.pem'},cafile={pki.ca},verify={int(client_cert)}"
    )
    proc = subprocess.Popen(
        ["socat", listen, f"UNIX-CONNECT:{DOCKER_SOCK}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, "socat exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("socat did not listen")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    for tool in ("openssl", "socat"):
        assert shutil.which(tool), f"{tool} is not installed (scripts/setup-engines.sh installs it)"
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def terminators(pki: Pki) -> Iterator[dict[str, int]]:
    """Ports of two terminators: one that asks for a client certificate, one that does not."""
    started = [start_terminator(pki, client_cert=True), start_terminator(pki, client_cert=False)]
    try:
        yield {"mutual": started[0][1], "server-only": started[1][1]}
    finally:
        for proc, _ in started:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(autouse=True)
def no_docker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_TLS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "no-certs"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def test_tls_option_with_client_certificate_verified_both_ways(
    pki: Pki, terminators: dict[str, int]
) -> None:
    url = f"docker+tcp://127.0.0.1:{terminators['mutual']}"
    with enginekit.connect(url, tls=pki.tls()) as engine:
        info = engine.info()
        assert info.name == "docker" and info.version
        assert engine.address == f"tcp://127.0.0.1:{terminators['mutual']}"
        assert engine.driver.transport._tls is not None  # type: ignore[attr-defined]


def test_docker_tls_verify_and_cert_path_as_the_docker_cli_reads_them(
    pki: Pki, terminators: dict[str, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for src, name in ((pki.ca, "ca.pem"), (pki.cert, "cert.pem"), (pki.key, "key.pem")):
        shutil.copy(src, certs / name)
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{terminators['mutual']}")
    with enginekit.connect("docker") as engine:
        engine.ping()
    # The same variables go with an address given outright.
    with enginekit.connect(f"docker+tcp://127.0.0.1:{terminators['mutual']}") as engine:
        engine.ping()
    # Without DOCKER_TLS_VERIFY, plain HTTP meets TLS: refused, quickly, never hangs.
    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    t0 = time.monotonic()
    with enginekit.connect("docker") as engine, pytest.raises(EngineError):
        engine.ping()
    assert time.monotonic() - t0 < 30


def test_a_context_with_tls_material(
    pki: Pki, terminators: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "docker-config"
    cid = hashlib.sha256(b"tls1").hexdigest()
    meta = config / "contexts" / "meta" / cid
    meta.mkdir(parents=True)
    host = f"tcp://127.0.0.1:{terminators['mutual']}"
    meta.joinpath("meta.json").write_text(
        json.dumps({"Name": "tls1", "Endpoints": {"docker": {"Host": host}}})
    )
    tls = config / "contexts" / "tls" / cid / "docker"
    tls.mkdir(parents=True)
    for src, name in ((pki.ca, "ca.pem"), (pki.cert, "cert.pem"), (pki.key, "key.pem")):
        shutil.copy(src, tls / name)
    monkeypatch.setenv("DOCKER_CONTEXT", "tls1")
    with enginekit.connect("docker") as engine:
        assert engine.info().name == "docker"


def test_a_certificate_from_another_ca_is_refused_saying_so(
    pki: Pki, terminators: dict[str, int]
) -> None:
    url = f"docker+tcp://127.0.0.1:{terminators['mutual']}"
    with (
        enginekit.connect(url, tls=pki.tls(ca=str(pki.other_ca))) as engine,
        pytest.raises(EngineUnavailable) as info,
    ):
        engine.ping()
    text = str(info.value)
    assert "certificate failed verification" in text and "127.0.0.1" in text
    # verify=False: the server's certificate is not checked (the client's is still shown).
    with enginekit.connect(url, tls=pki.tls(ca=str(pki.other_ca), verify=False)) as engine:
        engine.ping()


def test_a_name_the_certificate_does_not_hold_is_refused(
    pki: Pki, terminators: dict[str, int]
) -> None:
    # The server's certificate names 127.0.0.1 only.
    url = f"docker+tcp://localhost:{terminators['server-only']}"
    with enginekit.connect(url, tls=pki.tls()) as engine, pytest.raises(EngineUnavailable) as info:
        engine.ping()
    assert "certificate failed verification" in str(info.value)
    assert "localhost" in str(info.value)


def test_a_server_that_wants_a_client_certificate_refuses_none(
    pki: Pki, terminators: dict[str, int]
) -> None:
    url = f"docker+tcp://127.0.0.1:{terminators['mutual']}"
    t0 = time.monotonic()
    with (
        enginekit.connect(url, tls={"ca": str(pki.ca)}) as engine,
        pytest.raises(EngineError) as info,
    ):
        engine.ping()
    # Said as a TLS matter (TLS 1.3: the refusal comes as an alert, or as the end of the
    # session, whichever the client reads first).
    assert "client certificate" in str(info.value) and time.monotonic() - t0 < 30
    # One that does not ask serves a client without one.
    url = f"docker+tcp://127.0.0.1:{terminators['server-only']}"
    with enginekit.connect(url, tls={"ca": str(pki.ca)}) as engine:
        engine.ping()


def test_tls_files_are_checked_before_anything_is_sent(pki: Pki, tmp_path: Path) -> None:
    url = "docker+tcp://127.0.0.1:1"
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(InvalidSpec, match="not usable PEM"):
        enginekit.connect(url, tls={"ca": str(bad)})
    with pytest.raises(InvalidSpec, match="no such file"):
        enginekit.connect(url, tls={"ca": str(tmp_path / "missing.pem")})
    with pytest.raises(InvalidSpec, match="needs its certificate"):
        enginekit.connect(url, tls={"key": str(pki.key)})
    with pytest.raises(InvalidSpec, match="unknown keys"):
        enginekit.connect(url, tls={"cafile": str(pki.ca)})
    with pytest.raises(InvalidSpec, match="verify"):
        enginekit.connect(url, tls={"verify": "yes"})
    with pytest.raises(InvalidSpec, match="tls= is for a tcp"):
        enginekit.connect("docker+unix:///var/run/docker.sock", tls=True)


def test_docker_tls_verify_without_a_ca_is_refused_without_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "s3cret-dir"
    secret_dir.mkdir()
    monkeypatch.setenv("DOCKER_CERT_PATH", str(secret_dir))
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(InvalidSpec, match=r"\$DOCKER_CERT_PATH/ca\.pem") as info:
        enginekit.connect("docker+tcp://127.0.0.1:2376")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_plain_tcp_beyond_loopback_needs_insecure(kind: str) -> None:
    # 192.0.2.1 is TEST-NET-1: never contacted here (connect() sends nothing).
    with pytest.raises(InvalidSpec, match=r"insecure=True.*root on its host") as info:
        enginekit.connect(f"{kind}+tcp://192.0.2.1:2375")
    assert "192.0.2.1" in str(info.value)
    with enginekit.connect(f"{kind}+tcp://192.0.2.1:2375", insecure=True) as eng:
        assert eng.address.startswith("tcp://192.0.2.1")
    for loopback in ("127.0.0.1", "127.3.4.5", "localhost", "[::1]"):
        enginekit.connect(f"{kind}+tcp://{loopback}:2375").close()
    with pytest.raises(InvalidSpec, match="insecure must be True or False"):
        enginekit.connect(f"{kind}+tcp://127.0.0.1:2375", insecure="yes")


def _resetting_tls_server(pki: Pki) -> tuple[socket.socket, threading.Thread]:
    """A TLS 1.3 server on 127.0.0.1 that completes each handshake, then resets the
    connection without a word, as an engine that wants a client certificate may (seen
    with OpenSSL 3.5: the reset reaches the client before the alert)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(pki.folder / "server.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        for _ in range(4):  # the request, and the transport's look at whether it listens
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)  # the request's first byte: the client is done with its part
                    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize("shown", [False, True], ids=["no-client-cert", "client-cert"])
def test_a_session_reset_without_a_word_names_the_client_certificate(pki: Pki, shown: bool) -> None:
    listener, thread = _resetting_tls_server(pki)
    port = listener.getsockname()[1]
    tls = pki.tls() if shown else {"ca": str(pki.ca)}
    try:
        with (
            enginekit.connect(f"docker+tcp://127.0.0.1:{port}", tls=tls) as engine,
            pytest.raises(EngineError) as info,
        ):
            engine.ping()
    finally:
        listener.close()
        thread.join(timeout=10)
    text = str(info.value)
    assert "without answering" in text
    # Only when none was shown is a client certificate the likely reason.
    assert ("client certificate" in text) is (not shown)
