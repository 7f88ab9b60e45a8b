"""A small HTTP/1.1 client for engines that serve a REST API on a socket.

Docker's Engine API and Podman's libpod API are both HTTP on a unix socket
(or TCP). Adapters share this transport rather than each importing an HTTP
library: it is the stdlib ``http.client`` with keep-alive connections pooled
per transport, no TLS context built for a local socket, and no read timeout
unless the caller asks for one (a ``wait`` of an hour must work).

Failures are told apart by when they happen:

- nothing listens at the address (the connection cannot be made):
  :class:`~enginekit.errors.EngineUnavailable`, with the adapter's hint on how
  to start the engine;
- the engine took the connection and closed it (or reset it) without an
  answer, or broke off an answer: :class:`~enginekit.errors.EngineError`
  naming the request (``"docker closed the connection without answering POST
  /v1.51/build"``), no start hint, as the engine is running. When the engine
  answers early and closes while a request body is still being sent (an
  error about the request itself), that answer is returned as usual. When
  nothing takes connections at the address any more (the engine died with the
  request), that is :class:`~enginekit.errors.EngineUnavailable` instead.

Only what is safe to repeat is sent twice. A pooled keep-alive connection is
checked before use (an idle connection that has become readable was closed
by the engine) and dropped if stale. When a request on a reused connection
still gets no answer, an idempotent one (GET, HEAD, OPTIONS, TRACE, PUT,
DELETE; RFC 9110) with a body held in memory is sent once more on a new
connection; any other (a POST that creates a container) is never sent again
once its bytes may have reached the engine: the error says it may or may not
have been carried out.

Streamed text is decoded incrementally, so a UTF-8 character split across
reads arrives whole.

HTTP status codes are left to the adapter, which knows what they mean. No
message shows a query string (it can carry build arguments).
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import io
import json as _json
import select
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Protocol

from .errors import EngineError, EngineTimeout, EngineUnavailable

__all__ = ["Dialer", "Response", "Transport", "demux_frames"]

_DEFAULT_TIMEOUT = 60.0

#: Methods whose repetition has the effect of one request (RFC 9110, 9.2.2).
#: Docker's ``PUT .../archive`` extracts the same archive again: idempotent too.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

#: How long a check that the engine still takes connections may wait.
_PROBE_TIMEOUT = 2.0
_SETTLE = 0.25  # how long a probe's new connection must stay open to count


class Dialer(Protocol):
    """Makes the connections of a :class:`Transport` that reaches its engine some
    other way than a socket address of this machine (an ssh tunnel).

    ``dial`` returns a connected stream socket (or raises: an
    :class:`~enginekit.errors.EngineError` such as ``EngineUnavailable``
    passes through as it is, an ``OSError`` reads as nothing listening);
    ``reachable`` says, without sending anything to the engine, whether the
    way there still stands; ``trouble`` gives the dialer's own words about the
    latest failure on the way (``""`` if none: added to messages); ``close``
    ends it with the transport.
    """

    def dial(self, timeout: float | None) -> socket.socket: ...

    def reachable(self) -> bool: ...

    def trouble(self) -> str: ...

    def close(self) -> None: ...


class _DialedConnection(http.client.HTTPConnection):
    def __init__(self, dialer: Dialer, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._dialer = dialer

    def connect(self) -> None:
        sock = self._dialer.dial(self.timeout)
        sock.settimeout(self.timeout)
        self.sock = sock


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
    (:meth:`iter_chunks`, :meth:`iter_lines`, :func:`demux_frames`,
    :meth:`as_file`); either
    way :meth:`close` (or use as a context manager) hands the connection back.
    """

    def __init__(
        self,
        raw: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        transport: Transport,
        *,
        request: str = "",
        reusable: bool = True,
    ) -> None:
        self._raw = raw
        self._conn: http.client.HTTPConnection | None = conn
        self._transport = transport
        self._request = request
        self._reusable = reusable
        self._lock = threading.Lock()  # close() against abort() from another thread
        self._aborted = False
        self.status = raw.status
        self.headers = raw.headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def fp(self) -> IO[bytes]:
        return self._raw

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A read of the body: one that stalls is ``EngineTimeout``, an answer
        broken off ``EngineError`` (the connection is dropped either way)."""
        try:
            yield
        except TimeoutError as exc:
            self._discard()
            raise self._transport._late(self._request) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise self._broken(exc) from exc

    def read(self) -> bytes:
        with self._reading():
            data = self._raw.read()
        self.close()
        return data

    def as_file(self, buffer_size: int = 65536) -> IO[bytes]:
        """The body as a readable file (an archive, an export): closing it hands
        the connection back, or drops it when the body was left unread. A read
        that stalls past the request's timeout is ``EngineTimeout``, an answer
        broken off ``EngineError``, as for :meth:`read`."""
        return io.BufferedReader(_BodyFile(self), buffer_size=buffer_size)

    def _readinto(self, buffer: Any) -> int:
        with self._reading():
            return self._raw.readinto(buffer)

    def _broken(self, exc: BaseException) -> EngineError:
        if self._aborted:  # our own abort(), not the engine: nothing to look into
            return EngineError(f"{self._transport.name}: reading {self._request} was aborted")
        return self._transport._broke_off(self._request, exc)

    def json(self) -> Any:
        data = self.read()
        return _json.loads(data) if data else None

    def iter_chunks(self, size: int = 65536) -> Iterator[bytes]:
        try:
            while True:
                with self._reading():
                    chunk = (
                        self._raw.read1(size)
                        if hasattr(self._raw, "read1")
                        else self._raw.read(size)
                    )
                    if not chunk and self._raw.length:  # Content-Length said more was coming
                        raise http.client.IncompleteRead(b"", self._raw.length)
                if not chunk:
                    break
                yield chunk
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

    def iter_text(self) -> Iterator[str]:
        """The body as text (UTF-8, invalid bytes replaced), as it comes.

        Decoded incrementally: a character split across reads arrives whole.
        """
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for chunk in self.iter_chunks():
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def iter_json(self) -> Iterator[Any]:
        """A stream of JSON documents, one per line or simply concatenated.

        Text left at the end that is no whole document is ignored.
        """
        decoder = _json.JSONDecoder()
        buf = ""
        for text in self.iter_text():
            buf += text
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                if end == len(buf) and _maybe_longer(obj):
                    break  # a number the next read may continue ("12" of "1234")
                buf = buf[end:]
                yield obj
        buf = buf.strip()
        while buf:
            try:
                obj, end = decoder.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:].lstrip()
            yield obj

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def abort(self) -> None:
        """Wake a thread blocked reading this body, from any thread: the socket
        is shut down (not closed; the reader then sees the body end or break
        off, and closes as usual). The connection is not reused. A no-op once
        the response is closed; never raises."""
        with self._lock:
            self._reusable = False
            self._aborted = True
            sock = self._conn.sock if self._conn is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            reusable = self._reusable
        if conn is None:
            return
        if reusable and self._raw.isclosed() and not self._raw.will_close:
            self._transport._release(conn)
        else:
            # A body left unread: the connection cannot be reused.
            conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _BodyFile(io.RawIOBase):
    """:meth:`Response.as_file`'s raw file."""

    def __init__(self, resp: Response) -> None:
        super().__init__()
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._resp._readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class Transport:
    """Pooled HTTP connections to one engine address.

    ``address`` is ``unix:///path/to.sock`` (or a bare path) or
    ``tcp://host:port`` / ``http://host:port``. ``hint`` says how to start the
    engine (shown when nothing listens there); ``name`` is how messages call
    the engine (``"docker"``; default ``"the engine"``). Thread-safe.

    ``tls``: an :class:`ssl.SSLContext` for a ``tcp://`` address (HTTPS; the
    server's name checked against the address's host when the context checks
    names). ``dialer``: connections are made by it instead (``address`` is
    then only shown in messages); it is closed with the transport.
    """

    def __init__(
        self,
        address: str,
        *,
        hint: str | None = None,
        pool_size: int = 8,
        name: str = "the engine",
        tls: ssl.SSLContext | None = None,
        dialer: Dialer | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(address if "://" in address else "unix://" + address)
        self.address = address
        self.name = name
        self._hint = hint
        self._tls = tls
        self._dialer = dialer
        self._unix_path: str | None
        if dialer is not None:
            self._unix_path = None
            self._host = ""
            self._port = 0
        elif parsed.scheme in ("unix", "http+unix"):
            self._unix_path = parsed.path
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
        if tls is not None and (dialer is not None or self._unix_path is not None):
            raise ValueError("TLS is for a tcp:// address")

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._dialer is not None:
            return _DialedConnection(self._dialer, timeout)
        if self._unix_path is not None:
            return _UnixConnection(self._unix_path, timeout)
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _acquire(
        self, timeout: float | None, *, fresh: bool = False
    ) -> tuple[http.client.HTTPConnection, bool]:
        """A pooled connection still open (and True), or a new one not yet connected."""
        conn = None
        while not fresh:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or not _stale(conn):
                break
            conn.close()  # closed by the engine while idle
            conn = None
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
        """Nothing (or nothing we may use) listens at the address: the start hint applies
        (for a TLS handshake that failed, a word on the certificates instead)."""
        hint = self._hint
        if isinstance(exc, ssl.SSLError):
            hint = "check the CA, client certificate and key given for TLS"
        return EngineUnavailable(
            f"cannot talk to {self.name} ({_reason(exc)})", address=self.address, hint=hint
        )

    def _no_answer(self, request: str, exc: BaseException, *, unsure: bool) -> EngineError:
        """The engine took the request and closed the connection without a status line.

        ``unsure``: a request not safe to repeat, which the engine may have
        carried out (it is not sent again).
        """
        outcome = "; it may or may not have been carried out" if unsure else ""
        message = (
            f"{self.name} closed the connection without answering {request}"
            f" ({_reason(exc)}{self._trouble()}{self._tls_word(exc)}){outcome}"
        )
        if not self._listening():
            # Gone with the request (killed, stopped): the start hint applies.
            return EngineUnavailable(
                f"{message}, and takes no connection now", address=self.address, hint=self._hint
            )
        return EngineError(message)

    def _tls_word(self, exc: BaseException) -> str:
        """For a TLS session the engine ended without answering while no client
        certificate was shown: the likely reason (TLS 1.3 ends the handshake before
        the engine checks the client's certificate, and an engine that wants one
        may then reset the connection instead of sending its alert)."""
        if self._tls is None or getattr(self._tls, "shows_certificate", True):
            return ""
        if isinstance(exc, ssl.SSLError):
            return ""  # said by _reason
        if isinstance(exc, ConnectionError | http.client.RemoteDisconnected):
            return "; TLS: no client certificate was shown; does the engine want one?"
        return ""

    def _trouble(self) -> str:
        """The dialer's words about what failed on the way, as ``"; ssh: ..."``."""
        said = self._dialer.trouble() if self._dialer is not None else ""
        return f"; on the way: {said}" if said else ""

    def _listening(self) -> bool:
        """Whether something still takes connections at the address (nothing is sent)."""
        if self._dialer is not None:
            return self._dialer.reachable()
        conn = self._new_connection(_PROBE_TIMEOUT)
        try:
            conn.connect()
            # A listener closing as its process dies may still take the
            # connection into its backlog, then drop it: a live engine says
            # nothing to a connection that has sent nothing, a dying one
            # closes or resets it at once.
            sock = conn.sock
            if sock is not None and select.select([sock], [], [], _SETTLE)[0]:
                # (the raw socket's peek: on TLS, a session ticket also says "alive")
                return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK))
        except TimeoutError:
            return True  # there, and slow
        except OSError:
            return False
        finally:
            conn.close()
        return True

    def _late(self, request: str) -> EngineTimeout:
        what = f" {request}" if request else ""
        return EngineTimeout(f"{self.name} did not answer{what} in time")

    def _broke_off(self, request: str, exc: BaseException) -> EngineError:
        """The engine began an answer and did not finish it."""
        what = f" to {request}" if request else ""
        message = f"{self.name} broke off its answer{what} ({_reason(exc)}{self._trouble()})"
        if not self._listening():
            # Gone in the middle of it (killed, stopped): the start hint applies.
            return EngineUnavailable(
                f"{message}, and takes no connection now", address=self.address, hint=self._hint
            )
        return EngineError(message)

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

        Raises :class:`EngineUnavailable` when no connection can be made,
        :class:`EngineError` when the engine closes it without answering,
        :class:`EngineTimeout` when a socket operation outlasts ``timeout``.
        """
        url = path
        if params:
            pairs = params.items() if isinstance(params, Mapping) else params
            query = urllib.parse.urlencode([(k, _param(v)) for k, v in pairs if v is not None])
            if query:
                url += "?" + query
        what = f"{method} {path}"  # never the query: it can carry build arguments
        local = self._unix_path is not None or self._dialer is not None
        hdrs = {"Host": "localhost"} if local else {}
        if headers:
            hdrs.update(headers)
        payload: Any = body
        if json is not None:
            payload = _json.dumps(json).encode()
            hdrs["Content-Type"] = "application/json"
        elif body is None and method in ("POST", "PUT"):
            payload = b""
        replayable = payload is None or isinstance(payload, bytes | bytearray)
        if not replayable:
            hdrs.setdefault("Transfer-Encoding", "chunked")
        idempotent = method.upper() in _IDEMPOTENT
        for attempt in range(2):
            # A body read from a stream can be sent once: never on a pooled
            # connection the engine may have closed meanwhile. A second
            # attempt goes on a new connection too.
            conn, reused = self._acquire(timeout, fresh=attempt > 0 or not replayable)
            if conn.sock is None:
                try:
                    conn.connect()
                except TimeoutError as exc:
                    conn.close()
                    raise EngineTimeout(f"{self.name} did not take the connection in time") from exc
                except OSError as exc:
                    conn.close()
                    raise self._unavailable(exc) from exc
            sent: BaseException | None = None
            try:
                conn.request(
                    method,
                    url,
                    body=payload,
                    headers=hdrs,
                    encode_chunked=hdrs.get("Transfer-Encoding") == "chunked",
                )
            except TimeoutError as exc:
                conn.close()
                raise EngineTimeout(f"{self.name} did not take {what} in time") from exc
            except (OSError, http.client.HTTPException) as exc:
                # The engine may have answered early and closed (a request it
                # refuses before reading the body): read that answer below.
                sent = exc
            try:
                raw = conn.getresponse()
            except TimeoutError as exc:
                conn.close()
                raise EngineTimeout(f"{self.name} did not answer {what} in time") from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A pooled keep-alive connection the engine closed as the
                # request went out: once more on a new one, only for a request
                # safe to repeat with its body in memory. Anything else may
                # have been carried out: never sent twice.
                if reused and attempt == 0 and replayable and idempotent:
                    continue
                cause = sent or exc
                raise self._no_answer(what, cause, unsure=not idempotent) from cause
            return Response(raw, conn, self, request=what, reusable=sent is None)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._dialer is not None:
            self._dialer.close()


def _stale(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection can no longer carry a request.

    Idle, nothing is due from the engine: a socket that reads (the engine's
    end of stream, a reset, stray bytes) or has hung up is done with.
    """
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        readable, _, broken = select.select([sock], [], [sock], 0)
        return bool(readable or broken)
    except (OSError, ValueError):
        return True


def _maybe_longer(obj: Any) -> bool:
    """A JSON value at the very end of the text read so far that more text could extend."""
    return isinstance(obj, int | float) and not isinstance(obj, bool)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the engine's certificate failed verification: {exc.verify_message}"
    if isinstance(exc, ssl.SSLEOFError):
        return "TLS: the engine closed the TLS session (does it want a client certificate?)"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or type(exc).__name__
        if "CERTIFICATE_REQUIRED" in str(reason):
            return f"TLS: the engine wants a client certificate ({reason})"
        return f"TLS: {reason}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, http.client.RemoteDisconnected):
        return "no status line"
    return type(exc).__name__


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
