"""enginekit.transport against small servers on a unix socket and on 127.0.0.1
(what an engine may do to a request).

Each server here plays one behaviour seen from real engines: nothing listening,
a connection closed without a status line (Docker 29 resets a request of a
refused API version), an early answer while the request body is still being
sent, a keep-alive connection closed while idle (at once, later, half-closed,
or as a request arrives), an answer cut short, text whose characters are cut
across reads, an engine that dies with a request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from enginekit.errors import EngineError, EngineTimeout, EngineUnavailable
from enginekit.transport import Transport

Handler = Callable[[socket.socket], None]

Serve = Callable[[Handler], "tuple[Server, Transport]"]

HINT = "start it with `fakeengined`"


class Server:
    """Accepts connections on ``path`` (None: 127.0.0.1, a free port) and hands
    each to ``handler`` in a thread."""

    def __init__(self, path: Path | None, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        if path is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(path))
            self.address = f"unix://{path}"
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


@pytest.fixture(params=["unix", "tcp"])
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Serve]:
    made: list[tuple[Server, Transport]] = []

    def _serve(handler: Handler) -> tuple[Server, Transport]:
        path = tmp_path / f"engine{len(made)}.sock" if request.param == "unix" else None
        server = Server(path, handler)
        transport = Transport(server.address, hint=HINT, name="fakeengine")
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


def test_an_engine_that_dies_in_the_middle_of_an_answer_is_unavailable(serve: Serve) -> None:
    # A follow or a wait whose engine is killed: the answer breaks off and
    # nothing takes connections any more: EngineUnavailable with the start hint.
    started = threading.Event()
    server: Server

    def dies(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + b"5\r\nhello\r\n")
        started.set()
        server.close()  # nobody listens any more (its accept loop ended)
        conn.shutdown(socket.SHUT_RDWR)

    server, t = serve(dies)
    resp = t.request("POST", "/containers/x/wait", timeout=None)
    with pytest.raises(EngineUnavailable, match="broke off its answer to POST /containers") as info:
        b"".join(resp.iter_chunks())
    assert started.is_set()
    assert HINT in str(info.value)


def test_a_listener_that_drops_what_it_takes_is_not_an_engine(serve: Serve) -> None:
    # A listener closing as its process dies can still take a connection into
    # its backlog and then drop it: that is no engine either.
    first = threading.Event()

    def dies(conn: socket.socket) -> None:
        if first.is_set():
            return  # taken, then closed at once
        first.set()
        read_head(conn)
        conn.sendall(chunked_head() + b"5\r\nhello\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    _, t = serve(dies)
    resp = t.request("GET", "/containers/x/logs", timeout=None)
    with pytest.raises(EngineUnavailable, match="takes no connection now"):
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


# --- Text split across chunks (a UTF-8 character cut in two) -----------------

#: Build output as Docker streams it, with characters of 2, 3 and 4 bytes in
#: the text and in an error message.
STREAM_DOCS = [
    {"stream": "Step 1/2 : RUN echo café € 😀\n"},
    {"stream": "naïve — ünïcode ✓ 中文\n"},
    {"errorDetail": {"message": "échec: 😀 introuvable €"}, "error": "échec: 😀 introuvable €"},
]
STREAM_BODY = b"".join(
    json.dumps(doc, ensure_ascii=False).encode() + b"\r\n" for doc in STREAM_DOCS
)


def chunked(pieces: list[bytes]) -> bytes:
    """An HTTP/1.1 chunked body of ``pieces``, one chunk each."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def chunked_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def test_streamed_text_split_inside_characters(serve: Serve) -> None:
    # Every byte its own HTTP chunk: each multi-byte character is cut at every
    # place it can be cut.
    def one_byte_chunks(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + chunked([bytes([b]) for b in STREAM_BODY]))

    _, t = serve(one_byte_chunks)
    assert list(t.request("POST", "/build", body=b"").iter_json()) == STREAM_DOCS
    assert t._idle  # read to its end: the connection went back to the pool


def test_streamed_text_split_across_socket_reads(serve: Serve) -> None:
    # One HTTP chunk sent in pieces, and a Content-Length body sent in pieces:
    # each cut lands inside a character ("é" of "café", "€", the emoji).
    cuts = [STREAM_BODY.index("é".encode()) + 1, STREAM_BODY.index("€".encode()) + 2]
    cuts.append(STREAM_BODY.index("😀".encode()) + 3)
    pieces = [STREAM_BODY[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM_BODY)], strict=True)]

    def in_pieces(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + b"%x\r\n" % len(STREAM_BODY))
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.05)
        conn.sendall(b"\r\n0\r\n\r\n")
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(STREAM_BODY))
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.05)

    _, t = serve(in_pieces)
    assert list(t.request("GET", "/images/create").iter_json()) == STREAM_DOCS
    assert list(t.request("GET", "/images/create").iter_json()) == STREAM_DOCS


def test_streamed_lines_split_inside_characters(serve: Serve) -> None:
    def one_byte_chunks(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + chunked([bytes([b]) for b in STREAM_BODY]))

    _, t = serve(one_byte_chunks)
    lines = list(t.request("GET", "/events").iter_lines())
    assert [json.loads(line) for line in lines] == STREAM_DOCS


def test_streamed_text_still_replaces_bytes_that_are_not_utf8(serve: Serve) -> None:
    # Invalid bytes, and a character cut off by the end of the stream.
    body = b'{"stream":"a\xffb"}\n{"stream":"\xe2\x82\xac"}\n' + "€".encode()[:2]

    def send(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + chunked([body[:-1], body[-1:]]))

    _, t = serve(send)
    assert list(t.request("GET", "/x").iter_json()) == [{"stream": "a\ufffdb"}, {"stream": "€"}]


def test_a_number_split_across_chunks_is_read_whole(serve: Serve) -> None:
    def send(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(chunked_head() + chunked([b"{}12", b"34 5", b"6"]))

    _, t = serve(send)
    assert list(t.request("GET", "/x").iter_json()) == [{}, 1234, 56]


# --- What is sent again on a fresh connection, and what never is -------------


class Counted:
    """Requests a server read whole, by method (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[str] = []

    def add(self, method: str) -> None:
        with self._lock:
            self.seen.append(method)

    def count(self, method: str) -> int:
        with self._lock:
            return self.seen.count(method)


def eventually(check: Callable[[], bool], within: float = 5.0) -> bool:
    """Whether ``check`` comes true within ``within`` seconds (the server's
    threads count what they accept a moment after the client connected)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_request(rfile: IO[bytes]) -> str | None:
    """Read one request whole (head and body); its method, or None at the end."""
    line = rfile.readline()
    if not line:
        return None
    length = 0
    is_chunked = False
    while True:
        header = rfile.readline()
        if header in (b"\r\n", b""):
            break
        name, _, value = header.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            is_chunked = True
    if is_chunked:
        while (size := int(rfile.readline().split(b";")[0], 16)) > 0:
            rfile.read(size + 2)
        rfile.readline()
    else:
        rfile.read(length)
    return line.split(b" ")[0].decode()


def test_a_post_that_reached_the_engine_is_never_sent_again(serve: Serve) -> None:
    # The engine reads the second request on a keep-alive connection, then the
    # connection dies without an answer: whether it was carried out is unknown.
    counted = Counted()

    def dies_after_reading_the_second(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        first = True
        while (method := read_request(rfile)) is not None:
            counted.add(method)
            if not first:
                return
            first = False
            conn.sendall(answer(b"{}"))

    server, t = serve(dies_after_reading_the_second)
    assert t.request("GET", "/_ping").read() == b"{}"
    with pytest.raises(EngineError) as info:
        t.request("POST", "/containers/create", json={"Image": "x"})
    assert not isinstance(info.value, EngineUnavailable | EngineTimeout)
    assert "POST /containers/create" in str(info.value)
    assert "may or may not have been carried out" in str(info.value)
    assert eventually(lambda: server.connections == 2)  # the second only checked it listens
    time.sleep(0.2)  # a second sending would have reached the server by now
    assert counted.count("POST") == 1 and server.connections == 2
    # The transport is still usable.
    assert t.request("GET", "/_ping").read() == b"{}"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_a_request_safe_to_repeat_is_sent_again_once(serve: Serve, method: str) -> None:
    counted = Counted()

    def dies_after_reading_the_second(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        first = True
        while (seen := read_request(rfile)) is not None:
            counted.add(seen)
            if not first:
                return
            first = False
            conn.sendall(answer(b"" if seen == "HEAD" else b"{}"))

    server, t = serve(dies_after_reading_the_second)
    t.request(method, "/x", body=b"tar" if method == "PUT" else None).read()
    resp = t.request(method, "/x", body=b"tar" if method == "PUT" else None)
    assert resp.status == 200
    resp.read()
    assert counted.count(method) == 3  # once, then twice for the second: its retry
    assert server.connections == 2


def test_a_request_is_sent_again_only_once(serve: Serve) -> None:
    counted = Counted()

    def answers_the_first_only(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        first = server_state["first"]
        server_state["first"] = False
        while (seen := read_request(rfile)) is not None:
            counted.add(seen)
            if not first:
                return  # every later connection dies without answering
            first = False
            conn.sendall(answer(b"{}"))

    server_state = {"first": True}
    server, t = serve(answers_the_first_only)
    t.request("GET", "/x").read()
    with pytest.raises(EngineError, match="without answering GET /x"):
        t.request("GET", "/x")
    assert counted.count("GET") == 3
    assert eventually(lambda: server.connections == 3)  # the third only checked it listens


def test_an_engine_gone_with_the_request_is_unavailable(serve: Serve) -> None:
    # The engine reads the POST and dies: nothing listens any more. The POST
    # is not sent again, and the error is the one of an engine not there.
    counted = Counted()

    def dies_with_the_second(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        first = True
        while (method := read_request(rfile)) is not None:
            counted.add(method)
            if not first:
                server.close()
                return
            first = False
            conn.sendall(answer(b"{}"))

    server, t = serve(dies_with_the_second)
    assert t.request("GET", "/_ping").read() == b"{}"
    with pytest.raises(EngineUnavailable) as info:
        t.request("POST", "/containers/abc/wait", timeout=None)
    err = info.value
    assert err.address == t.address and err.hint == HINT
    assert "without answering POST /containers/abc/wait" in str(err)
    assert "may or may not have been carried out" in str(err)
    assert counted.count("POST") == 1 and server.connections == 1


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_a_connection_closed_while_idle_is_not_used(serve: Serve, delay: float) -> None:
    # The engine answers, then (at once or a while later) closes the
    # keep-alive connection: the next POST goes on a new one, once.
    counted = Counted()
    closed = threading.Semaphore(0)  # one release per connection closed

    def answer_then_close(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        method = read_request(rfile)
        if method is None:
            return
        counted.add(method)
        conn.sendall(answer(b"{}"))
        time.sleep(delay)
        rfile.close()  # the socket closes only once its file is closed too
        conn.close()
        closed.release()

    server, t = serve(answer_then_close)
    assert t.request("GET", "/_ping").read() == b"{}"
    assert closed.acquire(timeout=5)
    assert t.request("POST", "/containers/create", json={}).read() == b"{}"
    assert counted.count("POST") == 1 and server.connections == 2
    assert closed.acquire(timeout=5)
    assert t.request("GET", "/_ping").read() == b"{}"  # after a server-side close
    assert counted.count("GET") == 2 and server.connections == 3


def test_a_half_closed_idle_connection_is_not_used(serve: Serve) -> None:
    # The engine ends its side (EOF for the client) but would still read: a
    # request sent there reaches it, and is never answered.
    counted = Counted()
    half_closed = threading.Event()

    def answer_then_half_close(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        first = True
        while (method := read_request(rfile)) is not None:
            counted.add(method)
            if not first:
                return
            first = False
            conn.sendall(answer(b"{}"))
            conn.shutdown(socket.SHUT_WR)
            half_closed.set()

    server, t = serve(answer_then_half_close)
    assert t.request("GET", "/_ping").read() == b"{}"
    assert half_closed.wait(5)
    assert t.request("POST", "/containers/create", json={}).read() == b"{}"
    assert counted.count("POST") == 1 and server.connections == 2


def test_a_pool_shared_by_threads(serve: Serve) -> None:
    counted = Counted()

    def keep_alive(conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        while (method := read_request(rfile)) is not None:
            counted.add(method)
            conn.sendall(answer(b'{"n":1}'))

    server, t = serve(keep_alive)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(40):
                method = "POST" if i % 2 else "GET"
                assert t.request(method, "/x", json={} if i % 2 else None).json() == {"n": 1}
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert counted.count("POST") == 160 and counted.count("GET") == 160
    assert server.connections <= 8  # each thread holds at most one; all went back
    assert len(t._idle) == server.connections
