"""enginekit.transport against small servers on a unix socket (what an engine may do to a request).

Each server here plays one behaviour seen from real engines: nothing listening,
a connection closed without a status line (Docker 29 resets a request of a
refused API version), an early answer while the request body is still being
sent, a keep-alive connection closed while idle, an answer cut short.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enginekit.errors import EngineError, EngineTimeout, EngineUnavailable
from enginekit.transport import Transport

Handler = Callable[[socket.socket], None]

Serve = Callable[[Handler], "tuple[Server, Transport]"]

HINT = "start it with `fakeengined`"


class Server:
    """Accepts connections on ``path`` and hands each to ``handler`` in a thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def read_head(conn: socket.socket) -> bytes:
    """The request line and headers (the body is left in the socket)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def answer(body: bytes, status: str = "200 OK", *, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    made: list[tuple[Server, Transport]] = []

    def _serve(handler: Handler) -> tuple[Server, Transport]:
        server = Server(tmp_path / f"engine{len(made)}.sock", handler)
        transport = Transport(f"unix://{server.path}", hint=HINT, name="fakeengine")
        made.append((server, transport))
        return server, transport

    yield _serve
    for server, transport in made:
        transport.close()
        server.close()


def test_nothing_listening_gives_the_start_hint(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/absent.sock"
    t = Transport(address, hint=HINT, name="fakeengine")
    with pytest.raises(EngineUnavailable) as info:
        t.request("GET", "/_ping")
    assert info.value.address == address and info.value.hint == HINT
    assert "cannot talk to fakeengine" in str(info.value) and HINT in str(info.value)


def test_a_socket_nobody_accepts_on_gives_the_start_hint(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nothing listens: ECONNREFUSED
    with pytest.raises(EngineUnavailable, match="start it with"):
        Transport(f"unix://{path}", hint=HINT).request("GET", "/_ping")


def test_closed_without_an_answer_is_said_as_such(serve: Serve) -> None:
    def hang_up(conn: socket.socket) -> None:
        read_head(conn)

    _, t = serve(hang_up)
    with pytest.raises(EngineError) as info:
        t.request("POST", "/v1.41/build", params={"buildargs": {"TOKEN": "s3cret"}}, body=b"x")
    err = info.value
    assert not isinstance(err, EngineUnavailable)
    assert str(err).startswith(
        "fakeengine closed the connection without answering POST /v1.41/build"
    )
    assert "s3cret" not in str(err) and "buildargs" not in str(err)
    assert HINT not in str(err)


def test_reset_while_a_streamed_body_is_sent(serve: Serve) -> None:
    def reset(conn: socket.socket) -> None:
        read_head(conn)
        conn.recv(10)
        # Close with unread data: the sender sees a reset or a broken pipe.

    _, t = serve(reset)

    def body() -> Iterator[bytes]:
        for _ in range(2000):
            yield b"y" * 65536

    with pytest.raises(EngineError) as info:
        t.request("POST", "/v1.41/build", body=body(), timeout=10)
    assert not isinstance(info.value, EngineUnavailable)
    assert "without answering POST /v1.41/build" in str(info.value)


def test_an_early_answer_to_a_streamed_body_is_read(
    serve: Serve,
) -> None:
    message = b'{"message":"client version 1.41 is too old. Minimum supported API version is 1.44"}'

    def refuse(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(answer(message, "400 Bad Request", close=True))
        conn.shutdown(socket.SHUT_WR)
        conn.recv(10)

    server, t = serve(refuse)

    def body() -> Iterator[bytes]:
        for _ in range(2000):
            yield b"y" * 65536

    resp = t.request("POST", "/v1.41/build", body=body(), timeout=10)
    assert resp.status == 400 and resp.read() == message
    # That connection is not handed back to the pool.
    assert t._idle == []
    assert server.connections == 1


def test_an_idle_connection_the_engine_closed_is_replaced(
    serve: Serve,
) -> None:
    def one_answer_then_close(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(answer(b"OK"))  # keep-alive, then closed while idle

    server, t = serve(one_answer_then_close)
    assert t.request("GET", "/_ping").read() == b"OK"
    assert len(t._idle) == 1
    assert t.request("GET", "/_ping").read() == b"OK"  # retried once on a fresh connection
    assert server.connections == 2


def test_a_streamed_body_never_goes_on_a_pooled_connection(
    serve: Serve,
) -> None:
    def keep_alive(conn: socket.socket) -> None:
        while True:
            head = read_head(conn)
            if not head:
                return
            if b"chunked" in head.lower():
                data = b""
                while not data.endswith(b"0\r\n\r\n"):
                    data += conn.recv(65536)
            conn.sendall(answer(b"OK"))

    server, t = serve(keep_alive)
    assert t.request("GET", "/_ping").read() == b"OK"
    assert len(t._idle) == 1
    assert t.request("POST", "/load", body=iter([b"abc"])).read() == b"OK"
    assert server.connections == 2  # a new connection for the stream, the idle one kept
    assert t.request("GET", "/_ping").read() == b"OK"
    assert server.connections == 2


def test_an_answer_cut_short(serve: Serve) -> None:
    def short(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"z" * 10)

    _, t = serve(short)
    resp = t.request("GET", "/images/get", params={"names": "x"})
    with pytest.raises(EngineError) as info:
        resp.read()
    assert not isinstance(info.value, EngineUnavailable)
    assert "fakeengine broke off its answer to GET /images/get" in str(info.value)
    resp = t.request("GET", "/images/get")
    with pytest.raises(EngineError, match="broke off"):
        b"".join(resp.iter_chunks())


def test_no_answer_in_time(serve: Serve) -> None:
    done = threading.Event()

    def silent(conn: socket.socket) -> None:
        read_head(conn)
        done.wait(5)

    _, t = serve(silent)
    try:
        with pytest.raises(EngineTimeout, match="fakeengine did not answer GET /x in time"):
            t.request("GET", "/x", timeout=0.2)
    finally:
        done.set()


def test_default_name_and_old_keywords() -> None:
    t = Transport("/nonexistent/engine.sock", hint="h")  # the interface adapters already use
    assert t.name == "the engine"
    with pytest.raises(EngineUnavailable, match="cannot talk to the engine"):
        t.request("GET", "/_ping", timeout=1)
