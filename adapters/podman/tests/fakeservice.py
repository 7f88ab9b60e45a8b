"""A stand-in for ``podman system service`` on a unix socket, for driver unit tests.

It answers ``/_ping`` with the headers a test gives and any other GET with
the recorded JSON registered for the path's tail (the part after
``/v<version>``), and notes every path asked, in order. Only for the
adapter's own tests of what the driver asks and how often; the contract
suite runs against real engines only.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import pathlib
import re
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["FakeService", "serve"]

_VERSIONED = re.compile(r"^/v[0-9][0-9A-Za-z.-]*(/.*)$")


class FakeService(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.ping_headers: dict[str, str] = {}
        #: path tail (``/libpod/info``) -> JSON answer
        self.routes: dict[str, Any] = {}
        self.seen: list[str] = []
        self.lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"unix://{self.server_address}"

    def asked(self, tail: str) -> int:
        """How many requests went to ``tail`` (any version, any query)."""
        with self.lock:
            return sum(1 for p in self.seen if _tail(p).split("?")[0] == tail)


def _tail(path: str) -> str:
    m = _VERSIONED.match(path)
    return m.group(1) if m else path


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeService
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:
        return "local"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append(self.path)
        if self.path == "/_ping":
            self._send(200, b"OK", self.server.ping_headers)
            return
        answer = self.server.routes.get(_tail(self.path).split("?")[0])
        if answer is None:
            self._send(404, b'{"message": "no such container"}', {})
        elif isinstance(answer, bytes):
            self._send(200, answer, {})
        else:
            self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})


@contextlib.contextmanager
def serve(path: pathlib.Path) -> Iterator[FakeService]:
    server = FakeService(str(path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
