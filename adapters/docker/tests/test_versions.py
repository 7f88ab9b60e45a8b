"""API version negotiation, against small stand-ins for dockerd of other versions.

This machine's dockerd speaks 1.41 only; the answers of other Docker releases
(a Docker 28 started with ``DOCKER_MIN_API_VERSION=1.44``, a Docker 19.03, a
Docker that no longer speaks 1.52) are played here by a few lines of HTTP on a
unix socket, each answer as those releases give it (recorded on the test host:
``/_ping``'s ``Api-Version`` header, the 400 "client version ... is too old").
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from enginekit_docker import DockerDriver, connect, versions

from enginekit.errors import EngineError, EngineUnavailable, InvalidSpec
from enginekit.models import BuildRequest


class FakeDockerd:
    """Answers ``/_ping`` with ``Api-Version: max_version`` and refuses versions
    outside ``min_version``..``max_version`` as dockerd does."""

    def __init__(
        self,
        path: Path,
        *,
        max_version: str | None,
        min_version: str = "1.24",
        reset_builds: bool = False,
    ) -> None:
        self.max_version = max_version
        self.min_version = min_version
        self.reset_builds = reset_builds
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self) -> None:
                path = self.path.partition("?")[0]
                fake.paths.append(f"{self.command} {path}")
                if path == "/_ping":
                    headers = {"Api-Version": fake.max_version} if fake.max_version else {}
                    self._send(200, b"OK", headers)
                    return
                if path == "/version":
                    self._send(
                        200, {"ApiVersion": "1.40", "MinAPIVersion": "1.12", "Version": "19.03"}
                    )
                    return
                asked = versions.parse(path.split("/")[1])
                if asked is None:
                    self._send(404, {"message": "page not found"})
                    return
                if fake.reset_builds and path.endswith("/build"):
                    self.close_connection = True
                    self.connection.close()  # no status line, as Docker 29 may do
                    return
                low = versions.parse(fake.min_version)
                assert low is not None
                if asked < low:
                    self._send(
                        400,
                        {
                            "message": f"client version {versions.text(asked)} is too old. "
                            f"Minimum supported API version is {fake.min_version}, please "
                            "upgrade your client to a newer version"
                        },
                    )
                    return
                self._send(200, {"Version": "fake", "ApiVersion": fake.max_version})

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


Fake = Callable[..., tuple[FakeDockerd, DockerDriver]]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    made: list[tuple[FakeDockerd, DockerDriver]] = []

    def _fake(**kw: Any) -> tuple[FakeDockerd, DockerDriver]:
        path = tmp_path / f"docker{len(made)}.sock"
        server = FakeDockerd(path, **kw)
        driver = connect(f"unix://{path}")
        made.append((server, driver))
        return server, driver

    yield _fake
    for server, driver in made:
        driver.close()
        server.close()


def test_parse_and_choose() -> None:
    assert versions.parse("1.51") == (1, 51) and versions.parse("v1.41") == (1, 41)
    assert versions.parse("") is None and versions.parse("1.x") is None
    assert versions.parse("1.100") > versions.parse("1.99")  # type: ignore[operator]
    assert versions.choose((1, 51)) == (1, 51)
    assert versions.choose((1, 55)) == versions.NEWEST == (1, 52)
    assert versions.OLDEST == (1, 41)


def test_docker_28_with_a_floor_of_1_44(fake: Fake) -> None:
    server, d = fake(max_version="1.51", min_version="1.44")
    assert server.paths == []  # connect() sent nothing
    d.ping()
    assert d.api_version == "1.51"
    d._json("GET", "/info", operation="info")
    assert server.paths == ["GET /_ping", "GET /v1.51/info"]  # one ping: it negotiated


def test_a_newer_docker_is_spoken_to_in_the_newest_version_known(fake: Fake) -> None:
    server, d = fake(max_version="1.55", min_version="1.40")
    d._json("GET", "/version", operation="version")  # negotiated by the first call
    assert server.paths == ["GET /_ping", "GET /v1.52/version"]


def test_an_engine_too_old(fake: Fake) -> None:
    _, d = fake(max_version="1.40")
    with pytest.raises(EngineUnavailable) as info:
        d.ping()
    text = str(info.value)
    assert "1.40" in text and "1.41 to 1.52" in text and "upgrade Docker" in text
    assert "api" not in d._kept
    with pytest.raises(EngineUnavailable):
        d.container_inspect("x" * 64)


def test_an_engine_whose_floor_is_above_the_newest_known(fake: Fake) -> None:
    server, d = fake(max_version="1.60", min_version="1.55")
    with pytest.raises(EngineUnavailable) as info:
        d.info()
    err = info.value
    assert not isinstance(err, InvalidSpec)
    assert "1.52" in str(err) and "1.55" in str(err)
    assert "upgrade enginekit-docker" in str(err) and err.address == d.address
    assert "api" not in d._kept  # asked again next time
    with pytest.raises(EngineUnavailable, match=r"1\.55"):
        d.image_inspect("busybox:1")
    assert server.paths.count("GET /_ping") == 2


def test_refused_version_of_a_build(fake: Fake, tmp_path: Path) -> None:
    _, d = fake(max_version="1.60", min_version="1.55")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(EngineUnavailable, match=r"1\.55"):
        d.image_build(BuildRequest(context=str(tmp_path)))


def test_ping_without_a_version_header_asks_version(fake: Fake) -> None:
    server, d = fake(max_version=None)
    with pytest.raises(EngineUnavailable, match=r"up to 1\.40"):
        d.ping()
    assert server.paths == ["GET /_ping", "GET /version"]


def test_a_build_the_engine_closes_without_answering(fake: Fake, tmp_path: Path) -> None:
    _, d = fake(max_version="1.51", reset_builds=True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(EngineError) as info:
        d.image_build(BuildRequest(context=str(tmp_path), build_args={"TOKEN": "s3cret"}))
    err = info.value
    assert not isinstance(err, EngineUnavailable)
    assert "docker closed the connection without answering POST /v1.51/build" in str(err)
    assert "dockerd" not in str(err) and "s3cret" not in str(err)


def test_refusal_messages() -> None:
    old = versions.refused_version(
        400,
        "client version 1.41 is too old. Minimum supported API version is 1.44, "
        "please upgrade your client to a newer version",
        address="unix:///x.sock",
    )
    assert old is not None and "1.41" in str(old) and "1.44" in str(old)
    assert "DOCKER_MIN_API_VERSION" in str(old)
    new = versions.refused_version(
        400, "client version 1.52 is too new. Maximum supported API version is 1.51", address=None
    )
    assert new is not None and "1.52" in str(new) and "connect again" in str(new)
    assert versions.refused_version(400, "invalid reference format", address=None) is None
    assert versions.refused_version(500, "client version 1.41 is too old.", address=None) is None
