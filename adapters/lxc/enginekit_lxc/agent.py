"""The agent of ``lxc+ssh://``: the LXC driver served on a unix socket of the remote host.

The proxy driver (:mod:`enginekit_lxc.remote`) uploads a bundle of enginekit,
this adapter and attrs to the remote host and starts it there as one ssh
session (:mod:`enginekit_lxc.remoteagent`); this module is what then runs.
It reads its settings as one JSON line on stdin (``{"lxcpath": ...,
"options": {...}}``), makes a private directory (mode 0700), serves
:class:`~enginekit_lxc.driver.LxcDriver` there on the unix socket ``s``
(HTTP/1.1, keep-alive), and says ``{"socket": PATH}`` on stdout. It ends when
its stdin reaches end of file (the ssh session, or the whole connection,
closed) or on SIGTERM/SIGHUP, removing its directory; what a call left in it
(an upload, a build context, a saved image) goes with it.

Calls (all ``POST``; bodies and answers in :mod:`enginekit_lxc.wire`'s JSON;
an error is status 500 with ``{"error": ...}``):

- ``/hello``: capabilities, why the others are missing, and which optional
  members the driver has;
- ``/call/METHOD``: ``{"a": args, "k": kwargs}`` -> ``{"r": result}`` for a
  method of :data:`METHODS`;
- ``/logs``: the lines, one JSON object a line (``{"s","d","t"}``, or
  ``{"e": error}``), chunked as they come; a follow ends when the client
  closes the connection;
- ``/get_archive``: the tar stream, chunked; ``/put_archive``: a JSON line of
  arguments then the tar stream, as the request body;
- ``/image_save``: the archive (written to a private temporary file first);
  ``/image_load``: the archive as the request body;
- ``/image_build``: a JSON line (the request's fields and a ``token`` the
  client chose) then the build context as a tar, extracted into a private
  directory; answers ``{"p": line}`` lines as the build goes, then ``{"r":
  image}`` or ``{"e": error}``. The image is kept only once the client says
  ``/build_verdict`` ``{"t": token, "keep": true}`` (it has taken every line);
  ``"keep": false`` (its progress callback raised), its connection closing, or
  no word within ten minutes stops the build at its next line and removes its
  image (``"wait": true``: answered once that is done), as the builder does
  when the callback raises on the build's own host.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from enginekit.toolkit import hosts
from enginekit.toolkit.errors import EngineError
from enginekit.toolkit.models import BuildRequest

from . import wire
from .agentcontext import extract_context

__all__ = ["METHODS", "OPTIONAL", "extract_context", "main"]

#: The driver methods ``/call/`` runs (the streams have calls of their own).
METHODS = frozenset(
    {
        "ping",
        "info",
        "image_inspect",
        "image_list",
        "image_tag",
        "image_remove",
        "image_pull",
        "image_push",
        "container_create",
        "container_start",
        "container_inspect",
        "container_list",
        "container_wait",
        "container_exec",
        "container_pause",
        "container_unpause",
        "container_stop",
        "container_kill",
        "container_restart",
        "container_remove",
        "container_stat_path",
        "container_stats",
    }
)
#: What the core asks about the engine's host (:mod:`enginekit.hostfacts`): the
#: driver's answer where it has one, else this (the remote) host's.
OPTIONAL = ("host_cpus", "host_path_exists")
_CHUNK = 1 << 20
#: How long a built image waits for the client's word before it is removed.
_VERDICT = 600.0
#: How long calls still running when the agent is told to end may take to finish.
_DRAIN = 120.0


def _work_base() -> str:
    """Where the private directory goes: ``$TMPDIR``, else ``/var/tmp`` (on disk:
    images and contexts can be large), else ``/tmp``."""
    base = os.environ.get("TMPDIR") or ""
    if base and os.path.isdir(base) and len(base) <= 80:  # the socket path fits sun_path
        return base
    if os.access("/var/tmp", os.W_OK | os.X_OK):
        return "/var/tmp"
    return "/tmp"


class _Body(io.RawIOBase):
    """A request body (chunked or with a length) as a file."""

    def __init__(self, rfile: IO[bytes], length: int | None) -> None:
        self._rfile = rfile
        self._left = length  # bytes left (with a length) or in the chunk (chunked)
        self._chunked = length is None
        self._done = length == 0
        if self._chunked:
            self._left = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._done or not len(view):
            return 0
        if self._chunked and not self._left:
            size_line = self._rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise OSError("a malformed chunked body") from None
            if size == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return 0
            self._left = size
        assert self._left is not None
        want = min(len(view), self._left)
        data = self._rfile.read(want)
        if not data:
            raise OSError("the request body ended early")
        view[: len(data)] = data
        self._left -= len(data)
        if not self._left:
            if self._chunked:
                self._rfile.readline(16)  # the CRLF after a chunk
            else:
                self._done = True
        return len(data)

    @property
    def done(self) -> bool:
        return self._done

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


class _Build:
    """A build running: the client's word on it, and its end."""

    def __init__(self) -> None:
        self.said = threading.Event()
        self.keep: list[bool] = []
        self.done = threading.Event()

    @property
    def refused(self) -> bool:
        return bool(self.keep) and not self.keep[0]

    def verdict(self, conn: Any) -> bool:
        """The client's word; no (False) once its connection ``conn`` closes, or
        after :data:`_VERDICT` seconds."""
        deadline = time.monotonic() + _VERDICT
        while not self.said.wait(0.05):
            if time.monotonic() > deadline:
                return False
            with contextlib.suppress(OSError, ValueError):
                if select.select([conn], [], [], 0)[0]:
                    break  # closed (the client sends nothing else on it)
        return bool(self.keep) and self.keep[0]


class Agent:
    """The driver, its private directory, and the calls running now."""

    def __init__(self, driver: Any, folder: str) -> None:
        self.driver = driver
        self.folder = folder
        self._lock = threading.Lock()
        self._busy = 0
        self._builds: dict[str, _Build] = {}

    def hello(self) -> dict[str, Any]:
        driver = self.driver
        return {
            "capabilities": sorted(str(c) for c in driver.capabilities),
            "unsupported": {str(k): v for k, v in getattr(driver, "unsupported", {}).items()},
            "optional": [name for name in OPTIONAL if callable(getattr(driver, name, None))],
            "address": driver.address,
            "python": ".".join(str(v) for v in sys.version_info[:3]),
        }

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    def idle(self) -> bool:
        with self._lock:
            return self._busy == 0

    # A build's image is kept only once the client has taken every progress line
    # (its callback may raise at the last one, which must leave nothing behind, as
    # on this host): it says so with /build_verdict, on another connection, naming
    # the build by the token it chose. A "no" stops the build at its next line;
    # with "wait" the answer comes once the build and its cleanup are over.
    def build_started(self, token: str) -> _Build:
        build = _Build()
        with self._lock:
            if token in self._builds:
                raise EngineError("lxc agent: two builds with one token")
            self._builds[token] = build
        return build

    def build_ended(self, token: str) -> None:
        with self._lock:
            build = self._builds.pop(token, None)
        if build is not None:
            build.done.set()

    def give_verdict(self, token: str, keep: bool, *, wait: bool) -> None:
        with self._lock:
            build = self._builds.get(token)
        if build is None:
            return  # over already (a "no" after the client went: nothing waits)
        build.keep.append(keep)
        build.said.set()
        if wait:
            build.done.wait(_VERDICT)

    def scratch(self) -> str:
        """A new private temporary directory for one call (removed by the caller)."""
        return tempfile.mkdtemp(prefix="call-", dir=self.folder)


class _Server(ThreadingHTTPServer):
    address_family = socket.AF_UNIX
    daemon_threads = True
    block_on_close = False
    agent: Agent

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "local"

    # -- framing -------------------------------------------------------------
    def _body(self) -> _Body:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        rfile: Any = self.rfile
        return _Body(rfile, None if chunked else int(length or 0))

    def _send(self, status: int, payload: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:  # the body was not read whole: the client must not reuse it
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _answer(self, value: Any) -> None:
        try:
            payload = json.dumps({"r": wire.encode(value)}, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            self._fail(EngineError(f"lxc agent: cannot send the answer ({exc})"))
            return
        self._send(200, payload)

    def _fail(self, exc: BaseException) -> None:
        payload = json.dumps({"error": wire.encode_error(exc)}).encode()
        self._send(500, payload)

    def _start_chunks(self, kind: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _line(self, obj: Any) -> None:
        self._chunk(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    # -- dispatch ------------------------------------------------------------
    def do_POST(self) -> None:
        route = urllib.parse.urlsplit(self.path).path
        agent = self.server.agent
        handlers: dict[str, Callable[[Agent], None]] = {
            "/hello": self._hello,
            "/logs": self._logs,
            "/get_archive": self._get_archive,
            "/put_archive": self._put_archive,
            "/image_save": self._image_save,
            "/image_load": self._image_load,
            "/image_build": self._image_build,
            "/build_verdict": self._build_verdict,
        }
        handler = handlers.get(route)
        if handler is None and route.startswith("/call/"):
            handler = self._call
        if handler is None:
            self.close_connection = True
            self._fail(EngineError(f"lxc agent: no call {route}"))
            return
        # A follow and a wait end when the client goes: the end does not wait for them.
        lasting = route in ("/logs", "/call/container_wait")
        try:
            with contextlib.nullcontext() if lasting else agent.busy():
                handler(agent)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away

    def _json_body(self) -> Any:
        body = self._body()
        data = body.read()
        return wire.decode(json.loads(data)) if data else {}

    def _hello(self, agent: Agent) -> None:
        self._json_body()
        try:
            answer = agent.hello()
        except Exception as exc:
            self._fail(exc)
            return
        self._send(200, json.dumps({"r": answer}).encode())

    def _call(self, agent: Agent) -> None:
        name = urllib.parse.urlsplit(self.path).path.removeprefix("/call/")
        try:
            body = self._json_body()
            if name not in METHODS and name not in OPTIONAL:
                raise EngineError(f"lxc agent: no driver method {name!r}")
            args, kwargs = body.get("a", ()), body.get("k", {})
            if name in OPTIONAL:
                # What the driver says of its host, else this host's own answer.
                result = getattr(hosts, name)(agent.driver, *args, **kwargs)
            else:
                result = getattr(agent.driver, name)(*args, **kwargs)
        except Exception as exc:
            self._fail(exc)
            return
        self._answer(result)

    def _logs(self, agent: Agent) -> None:
        try:
            kwargs = self._json_body()
            ident = kwargs.pop("id")
            lines = agent.driver.container_logs(ident, **kwargs)
        except Exception as exc:
            self._fail(exc)
            return
        self._start_chunks("application/x-ndjson")
        wake_r, wake_w = os.pipe()
        watcher = threading.Thread(
            target=_watch_close, args=(self.connection, wake_r, lines), daemon=True
        )
        watcher.start()
        try:
            for line in lines:
                stamp = line.timestamp.isoformat() if line.timestamp is not None else None
                self._line({"s": str(line.stream), "d": wire.encode(line.data)["$b"], "t": stamp})
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:
            self._line({"e": wire.encode_error(exc)})
        finally:
            os.write(wake_w, b"x")
            watcher.join()
            os.close(wake_r)
            os.close(wake_w)
            with contextlib.suppress(Exception):
                close = getattr(lines, "close", None)
                if close is not None:
                    close()
        self._end_chunks()

    def _get_archive(self, agent: Agent) -> None:
        try:
            args = self._json_body()
            stream = agent.driver.container_get_archive(args["id"], args["path"])
        except Exception as exc:
            self._fail(exc)
            return
        try:
            self._start_chunks("application/x-tar")
            try:
                while data := stream.read(_CHUNK):
                    self._chunk(data)
            except OSError:
                # Broken off: end without the last chunk, the client sees it broke off.
                self.close_connection = True
                return
            self._end_chunks()
        finally:
            stream.close()

    def _put_archive(self, agent: Agent) -> None:
        body = self._body()
        try:
            data = io.BufferedReader(body, _CHUNK)
            args = _head(data)
            agent.driver.container_put_archive(args["id"], args["path"], data)
            while data.read(_CHUNK):
                pass  # what the extraction left (a tar's end padding)
        except Exception as exc:
            self._finish_body(body)
            self._fail(exc)
            return
        self._answer(None)

    def _finish_body(self, body: _Body) -> None:
        """Read what is left of the request body (small), or close the connection after."""
        if body.done:
            return
        try:
            for _ in range(64):
                if not body.read(_CHUNK):
                    return
        except OSError:
            pass
        self.close_connection = True

    def _image_save(self, agent: Agent) -> None:
        folder = agent.scratch()
        try:
            args = self._json_body()
            path = os.path.join(folder, "image.tar")
            agent.driver.image_save(args["ref"], path)
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._fail(exc)
            return
        # Removed before it is sent (the open file reads on): gone when the client has it.
        shutil.rmtree(folder, ignore_errors=True)
        with fh:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(os.fstat(fh.fileno()).st_size))
            self.end_headers()
            shutil.copyfileobj(fh, self.wfile, _CHUNK)

    def _image_load(self, agent: Agent) -> None:
        body = self._body()
        folder = agent.scratch()
        try:
            path = os.path.join(folder, "image.tar")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(body, out, _CHUNK)
            images = agent.driver.image_load(path)
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._finish_body(body)
            self._fail(exc)
            return
        shutil.rmtree(folder, ignore_errors=True)
        self._answer(images)

    def _image_build(self, agent: Agent) -> None:
        body = self._body()
        folder = agent.scratch()
        try:
            data = io.BufferedReader(body, _CHUNK)
            fields = _head(data)
            token = str(fields.pop("token"))
            context = os.path.join(folder, "context")
            os.mkdir(context, 0o700)
            extract_context(data, context)
            self._finish_body(body)
            request = BuildRequest(context=context, **fields)
            build = agent.build_started(token)
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._finish_body(body)
            self._fail(exc)
            return
        try:
            self._build(agent, request, build, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            agent.build_ended(token)

    def _build(self, agent: Agent, request: BuildRequest, build: _Build, folder: str) -> None:
        self._start_chunks("application/x-ndjson")

        def progress(text: str) -> None:
            if build.refused:
                raise ConnectionAbortedError("the client gave the build up")
            self._line({"p": text})

        image = None
        keep = False
        try:
            try:
                image = agent.driver.image_build(request, progress=progress)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                raise
            except Exception as exc:
                shutil.rmtree(folder, ignore_errors=True)  # gone when the client has the answer
                self._line({"e": wire.encode_error(exc)})
                self._end_chunks()
                return
            shutil.rmtree(folder, ignore_errors=True)
            if build.refused:
                return
            self._line({"r": wire.encode(image)})
            keep = build.verdict(self.connection)
        finally:
            if not keep and image is not None:
                with contextlib.suppress(Exception):
                    agent.driver.image_remove(image.id, force=True)
        self._end_chunks()

    def _build_verdict(self, agent: Agent) -> None:
        try:
            args = self._json_body()
            keep, wait = bool(args["keep"]), bool(args.get("wait"))
            agent.give_verdict(str(args["t"]), keep, wait=wait)
        except Exception as exc:
            self._fail(exc)
            return
        self._answer(None)


def _head(data: IO[bytes]) -> Any:
    """The JSON line that starts an upload's body (its arguments)."""
    line = data.readline(1 << 24)
    if not line.endswith(b"\n"):
        raise EngineError("lxc agent: an upload without its arguments")
    return wire.decode(json.loads(line))


def _watch_close(conn: Any, wake: int, lines: Any) -> None:
    """Abort the log lines once the client closes its connection (it sends
    nothing after its request: the socket turns readable only then)."""
    try:
        ready, _, _ = select.select([conn, wake], [], [])
    except (OSError, ValueError):
        return
    if conn in ready:
        abort = getattr(lines, "abort", None)
        if abort is not None:
            with contextlib.suppress(Exception):
                abort()


# -- the process -------------------------------------------------------------
def _say(fd: int, obj: Any) -> None:
    os.write(fd, json.dumps(obj).encode() + b"\n")


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data


def _detach_stdio() -> tuple[int, int]:
    """Private copies of stdin and stdout (the ssh session); fds 0, 1 and 2 become
    /dev/null, so that no program the driver starts holds the session open."""
    ours_in, ours_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return ours_in, ours_out


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin ends (see the module)."""
    del argv
    stdin, stdout = _detach_stdio()
    try:
        settings = json.loads(_read_line(stdin) or b"{}")
        options = {k: v for k, v in dict(settings.get("options") or {}).items() if v is not None}
        from .driver import LxcDriver

        driver = LxcDriver(settings.get("lxcpath") or None, **options)
        folder = tempfile.mkdtemp(prefix="ek-agent-", dir=_work_base())
    except Exception as exc:
        _say(stdout, {"error": f"the agent cannot start: {exc}"})
        return 3
    ended = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        ended.set()
        raise SystemExit(0)

    server: _Server | None = None
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, stop)
        path = os.path.join(folder, "s")
        address: Any = path
        server = _Server(address, _Handler)
        server.agent = Agent(driver, folder)
        threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
        _say(stdout, {"socket": path, "pid": os.getpid()})
        while os.read(stdin, 65536):
            pass  # nothing more is sent: end of file is the end
        ended.set()
        deadline = time.monotonic() + _DRAIN
        server.shutdown()  # no new connection; calls running now may finish
        while not server.agent.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
    except SystemExit:
        pass
    finally:
        if server is not None:
            server.server_close()
        with contextlib.suppress(Exception):
            driver.close()
        shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)
