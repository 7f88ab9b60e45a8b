"""A small HTTP/1.1 client for engines that serve a REST API on a socket.

Docker's Engine API and Podman's libpod API are both HTTP on a unix socket
(or TCP). Adapters share this transport rather than each importing an HTTP
library: it is the stdlib ``http.client`` with keep-alive connections pooled
per transport, no TLS context built for a local socket, and no read timeout
unless the caller asks for one (a ``wait`` of an hour must work).

Socket failures become :class:`~enginekit.errors.EngineUnavailable`; HTTP
status codes are left to the adapter, which knows what they mean.
"""

from __future__ import annotations

import http.client
import json as _json
import socket
import struct
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from .errors import EngineTimeout, EngineUnavailable

__all__ = ["Response", "Transport", "demux_frames"]

_DEFAULT_TIMEOUT = 60.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Response:
    """A response whose body has not been read yet.

    Read it whole (:meth:`read`, :meth:`json`) or as a stream
    (:meth:`iter_chunks`, :meth:`iter_lines`, :func:`demux_frames`); either
    way :meth:`close` (or use as a context manager) hands the connection back.
    """

    def __init__(
        self,
        raw: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        transport: Transport,
    ) -> None:
        self._raw = raw
        self._conn: http.client.HTTPConnection | None = conn
        self._transport = transport
        self.status = raw.status
        self.headers = raw.headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def fp(self) -> IO[bytes]:
        return self._raw

    def read(self) -> bytes:
        try:
            data = self._raw.read()
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise self._transport._unavailable(exc) from exc
        self.close()
        return data

    def json(self) -> Any:
        data = self.read()
        return _json.loads(data) if data else None

    def iter_chunks(self, size: int = 65536) -> Iterator[bytes]:
        try:
            while True:
                chunk = (
                    self._raw.read1(size) if hasattr(self._raw, "read1") else self._raw.read(size)
                )
                if not chunk:
                    break
                yield chunk
        except TimeoutError as exc:
            self._discard()
            raise EngineTimeout("the engine did not answer in time") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise self._transport._unavailable(exc) from exc
        finally:
            self.close()

    def iter_lines(self) -> Iterator[bytes]:
        """Newline-delimited body (e.g. JSON progress messages), without the newlines."""
        buf = b""
        for chunk in self.iter_chunks():
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield line
        if buf.strip():
            yield buf

    def iter_json(self) -> Iterator[Any]:
        """A stream of JSON documents, one per line or simply concatenated."""
        decoder = _json.JSONDecoder()
        buf = ""
        for chunk in self.iter_chunks():
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield obj

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._raw.isclosed() and not self._raw.will_close:
            self._transport._release(conn)
        else:
            # A body left unread: the connection cannot be reused.
            conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """Pooled HTTP connections to one engine address.

    ``address`` is ``unix:///path/to.sock`` (or a bare path) or
    ``tcp://host:port`` / ``http://host:port``. Thread-safe.
    """

    def __init__(self, address: str, *, hint: str | None = None, pool_size: int = 8) -> None:
        parsed = urllib.parse.urlsplit(address if "://" in address else "unix://" + address)
        self.address = address
        self._hint = hint
        if parsed.scheme in ("unix", "http+unix"):
            self._unix_path: str | None = parsed.path
            self._host = ""
            self._port = 0
        elif parsed.scheme in ("tcp", "http"):
            self._unix_path = None
            self._host = parsed.hostname or "127.0.0.1"
            self._port = parsed.port or 2375
        else:
            raise ValueError(f"unsupported transport address scheme {parsed.scheme!r}")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pool_size = pool_size
        self._closed = False

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._unix_path is not None:
            return _UnixConnection(self._unix_path, timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _acquire(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return self._new_connection(timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def _unavailable(self, exc: BaseException) -> EngineUnavailable:
        reason = type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        return EngineUnavailable(
            f"cannot talk to the engine ({reason})", address=self.address, hint=self._hint
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        body: bytes | IO[bytes] | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _DEFAULT_TIMEOUT,
    ) -> Response:
        """Send a request; return the response with its body unread.

        ``params`` is a mapping or a sequence of pairs (for repeated keys);
        None values are left out, bools become ``true``/``false`` and dicts
        and lists JSON.

        ``timeout`` bounds each socket operation (None: wait for ever, for
        calls whose duration the engine decides, such as wait and stop).
        """
        url = path
        if params:
            pairs = params.items() if isinstance(params, Mapping) else params
            query = urllib.parse.urlencode([(k, _param(v)) for k, v in pairs if v is not None])
            if query:
                url += "?" + query
        hdrs = {"Host": "localhost"} if self._unix_path is not None else {}
        if headers:
            hdrs.update(headers)
        payload: Any = body
        if json is not None:
            payload = _json.dumps(json).encode()
            hdrs["Content-Type"] = "application/json"
        elif body is None and method in ("POST", "PUT"):
            payload = b""
        if payload is not None and not isinstance(payload, bytes | bytearray):
            hdrs.setdefault("Transfer-Encoding", "chunked")
        for attempt in range(2):
            conn, reused = self._acquire(timeout)
            try:
                conn.request(
                    method,
                    url,
                    body=payload,
                    headers=hdrs,
                    encode_chunked=hdrs.get("Transfer-Encoding") == "chunked",
                )
                raw = conn.getresponse()
            except TimeoutError as exc:
                conn.close()
                raise EngineTimeout(f"the engine did not answer {method} in time") from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A pooled keep-alive connection the server closed: retry once
                # on a fresh one, only when no body stream was consumed.
                if reused and attempt == 0 and (payload is None or isinstance(payload, bytes)):
                    continue
                raise self._unavailable(exc) from exc
            return Response(raw, conn, self)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return _json.dumps(value)
    return str(value)


_HEADER = struct.Struct(">BxxxL")


def demux_frames(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split Docker's multiplexed stream into ``(stream, payload)`` frames.

    ``stream`` is 1 for stdout, 2 for stderr (0 stdin, 3 system error).
    """
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            stream, size = _HEADER.unpack_from(buf)
            if len(buf) < 8 + size:
                break
            payload = bytes(buf[8 : 8 + size])
            del buf[: 8 + size]
            yield stream, payload
