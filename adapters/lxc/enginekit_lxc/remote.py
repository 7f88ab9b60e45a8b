"""``lxc+ssh://[user@]host[:port][/lxcpath]``: the LXC driver of another host.

:class:`RemoteLxcDriver` is a proxy: every Driver method is sent to an agent
on the remote host (:mod:`enginekit_lxc.remoteagent`, :mod:`enginekit_lxc.agent`)
that runs this adapter's own :class:`~enginekit_lxc.driver.LxcDriver` with the
URL's LXC path. The remote host needs LXC, umoci, skopeo and python3 (3.11+);
the adapter brings the rest. One ssh connection per driver (its
:class:`~enginekit.sshtunnel.SshTunnel`, the master started on first use and
closed with the driver); each call is an HTTP request on a pooled keep-alive
connection, a forwarded channel to the agent's socket.

Values travel as :mod:`enginekit_lxc.wire` JSON (never pickle: nothing the
remote sends can run code here); an ``enginekit.errors`` exception raised
there is raised here as the same class with its message and fields. A
connection that breaks, or an agent that died, is ``EngineUnavailable``
naming the address (the next call starts a new agent). Streams stream: log
lines (a follow closable from any thread), archives both ways, image save and
load through a temporary file on the remote host (removed after), a build's
context sent as a tar (what Docker's client sends) and its progress lines as
they happen.

Options: ``storage_root`` and ``bridge`` (as for a local LXC driver, on the
remote host); ``identity`` (a key file for ssh ``-i``), ``connect_timeout``
and ``ssh_config`` (``ssh -F``; default ``$ENGINEKIT_SSH_CONFIG``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import attrs

from enginekit.toolkit import hosts
from enginekit.toolkit.driver import Capability, ProgressCallback
from enginekit.toolkit.errors import EngineError, InvalidSpec
from enginekit.toolkit.http import Response, Transport
from enginekit.toolkit.logs import ClosableLines
from enginekit.toolkit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    EngineInfo,
    ExecResult,
    Image,
    LogLine,
    PathStat,
    Stats,
    Stream,
)
from enginekit.toolkit.ssh import CONNECT_TIMEOUT, SshAddress, SshTunnel
from enginekit.toolkit.time import parse_rfc3339

from . import wire
from .errors import ENGINE
from .remoteagent import HINT, AgentDialer

__all__ = ["RemoteLxcDriver"]

_DRIVER_OPTIONS = ("storage_root", "bridge")
_SSH_OPTIONS = ("identity", "connect_timeout", "ssh_config")
_CHUNK = 1 << 20
#: How long the agent may take to start (the bundle's upload included), past the login.
_START_MARGIN = 60.0
#: How long quick calls (hello, ping, info) may take.
_QUICK = 120.0


class _Upload:
    """A request body read from ``stream`` in chunks, after ``head``.

    A read that fails ends the body early (the agent then refuses what it got)
    and is kept in :attr:`error`, to be raised instead of the agent's answer:
    raised inside the transport's send, it would leave the agent waiting for
    the rest of a body that never comes.
    """

    def __init__(self, stream: IO[bytes], head: bytes = b"") -> None:
        self._stream = stream
        self._head = head
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        while True:
            try:
                data = self._stream.read(_CHUNK)
            except Exception as exc:
                self.error = exc
                return
            if not data:
                return
            yield data

    def check(self) -> None:
        if self.error is not None:
            if isinstance(self.error, EngineError):
                raise self.error
            raise EngineError(f"lxc: cannot read what was to be sent ({self.error})") from (
                self.error
            )


class _ResponseFile(io.RawIOBase):
    """A streamed answer as a file; an answer broken off is an ``EngineError``."""

    def __init__(self, response: Response, what: str) -> None:
        self._response = response
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            raw: Any = self._response.fp
            return int(raw.readinto(buffer))
        except Exception as exc:  # http.client.IncompleteRead and kin
            raise EngineError(f"lxc: {self._what} broke off ({exc})") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
        super().close()


class RemoteLxcDriver:
    """The Driver of ``lxc+ssh://`` (see the module)."""

    name = ENGINE

    def __init__(self, address: str, **options: Any) -> None:
        unknown = set(options) - set(_DRIVER_OPTIONS) - set(_SSH_OPTIONS)
        if unknown:
            raise InvalidSpec(f"unknown LXC option(s): {', '.join(sorted(unknown))}")
        for key in _DRIVER_OPTIONS:
            value = options.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidSpec(f"lxc: {key} must be a non-empty string")
        if options.get("storage_root") and not options["storage_root"].startswith("/"):
            raise InvalidSpec("lxc: storage_root must be an absolute path on the remote host")
        text = address.split("://", 1)[1] if "://" in address else address
        parsed = SshAddress.parse("ssh://" + text, identity=options.get("identity"), what="lxc")
        if parsed.path and not parsed.path.startswith("/"):
            raise InvalidSpec("lxc: the LXC path of an lxc+ssh:// address must be absolute")
        self._ssh_address = parsed
        self.address = "lxc+" + parsed.url
        self._tunnel = SshTunnel(
            parsed,
            name=ENGINE,
            connect_timeout=options.get("connect_timeout", CONNECT_TIMEOUT),
            config=options.get("ssh_config"),
        )
        settings = {
            "lxcpath": parsed.path or None,
            "options": {k: options[k] for k in _DRIVER_OPTIONS if options.get(k) is not None},
        }
        self._dialer = AgentDialer(
            self._tunnel,
            settings,
            address=self.address,
            start_timeout=self._tunnel.connect_timeout + _START_MARGIN,
        )
        self._transport = Transport(self.address, name=ENGINE, dialer=self._dialer, hint=HINT)
        self._lock = threading.Lock()
        self._hello: dict[str, Any] | None = None
        self._published: str | None = None
        self._cpus: int | None = None

    def __repr__(self) -> str:
        return f"RemoteLxcDriver({self.address!r})"

    # -- calls ---------------------------------------------------------------
    def _request(
        self,
        path: str,
        *,
        payload: Any = None,
        body: Iterable[bytes] | None = None,
        timeout: float | None = None,
    ) -> Response:
        if body is None:
            data = json.dumps(wire.encode(payload), separators=(",", ":")).encode()
            return self._transport.request(
                "POST",
                path,
                body=data,
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        return self._transport.request("POST", path, body=body, timeout=timeout)

    @staticmethod
    def _result(response: Response) -> Any:
        data = response.read()
        try:
            answer = json.loads(data)
        except ValueError:
            raise wire.WireError(
                f"lxc agent: an answer that is not JSON (status {response.status})"
            ) from None
        if not isinstance(answer, dict):
            raise wire.WireError("lxc agent: an unreadable answer")
        if response.status == 200 and "r" in answer:
            return answer["r"]
        raise wire.decode_error(answer.get("error"))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        response = self._request(f"/call/{method}", payload={"a": list(args), "k": kwargs})
        return wire.decode(self._result(response))

    def _check(self, response: Response) -> None:
        """Raise the error of an answer that is not a stream."""
        if response.status != 200:
            self._result(response)
            raise wire.WireError(f"lxc agent: status {response.status}")  # pragma: no cover

    def hello(self) -> dict[str, Any]:
        """What the remote driver says of itself (asked once)."""
        if self._hello is None:
            with self._lock:
                if self._hello is None:
                    answer = self._result(self._request("/hello", payload={}, timeout=_QUICK))
                    if not isinstance(answer, dict):
                        raise wire.WireError("lxc agent: an unreadable hello")
                    self._hello = answer
        return self._hello

    # -- engine --------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[Capability]:
        known = {c.value for c in Capability}
        return frozenset(Capability(c) for c in self.hello().get("capabilities", ()) if c in known)

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        known = {c.value for c in Capability}
        raw = self.hello().get("unsupported") or {}
        return {Capability(k): str(v) for k, v in raw.items() if k in known}

    # -- where the engine runs ------------------------------------------------
    @property
    def published_address(self) -> str:
        """The address a client reaches the remote host at (where its containers'
        published ports are): ssh's ``HostName`` for the host, resolved once."""
        found = self._published
        if found is None:
            with self._lock:
                if self._published is None:
                    self._published = hosts.address_of(self._tunnel.hostname())
                found = self._published
        return found

    def host_cpus(self) -> int:
        """The CPUs of the remote host (asked of the agent once)."""
        if self._cpus is None:
            self._cpus = int(self._call("host_cpus"))
        return self._cpus

    def host_path_exists(self, path: str) -> bool:
        """Whether ``path`` exists on the remote host (asked of the agent)."""
        return bool(self._call("host_path_exists", path))

    def ping(self) -> None:
        self._result(self._request("/call/ping", payload={"a": [], "k": {}}, timeout=_QUICK))

    def info(self) -> EngineInfo:
        response = self._request("/call/info", payload={"a": [], "k": {}}, timeout=_QUICK)
        info: EngineInfo = wire.decode(self._result(response))
        return info

    def close(self) -> None:
        self._transport.close()

    # -- images --------------------------------------------------------------
    def image_build(
        self, request: BuildRequest, *, progress: ProgressCallback | None = None
    ) -> Image:
        from enginekit.toolkit.build import context_tar

        fields: dict[str, Any] = {
            f.name: getattr(request, f.name)
            for f in attrs.fields(BuildRequest)
            if f.name != "context"
        }
        token = fields["token"] = secrets.token_hex(16)
        head = json.dumps(wire.encode(fields), separators=(",", ":")).encode() + b"\n"
        with context_tar(request.context, request.dockerfile) as tar:
            upload = _Upload(tar, head)
            response = self._request("/image_build", body=upload)
        try:
            upload.check()
            self._check(response)
            for raw in response.iter_lines():
                line = _json_line(raw)
                if "p" in line:
                    if progress is not None:
                        try:
                            progress(str(line["p"]))
                        except BaseException:
                            # The caller's callback: the build goes, its image too,
                            # before the exception leaves (as the builder does here).
                            response.abort()
                            self._give_up(token)
                            raise
                elif "r" in line:
                    image: Image = wire.decode(line["r"])
                    # Every line was taken: the agent may keep the image.
                    verdict = {"t": token, "keep": True}
                    self._result(self._request("/build_verdict", payload=verdict))
                    for _ in response.iter_chunks():
                        pass  # the end of the answer: the connection is reused
                    return image
                elif "e" in line:
                    raise wire.decode_error(line["e"])
            raise EngineError("lxc: the build's answer ended without its image")
        finally:
            response.close()

    def _give_up(self, token: str) -> None:
        """Tell the agent the build ``token`` is refused; return once it has ended there."""
        with contextlib.suppress(EngineError):
            verdict = {"t": token, "keep": False, "wait": True}
            self._result(self._request("/build_verdict", payload=verdict))

    def image_inspect(self, ref: str) -> Image:
        image: Image = self._call("image_inspect", ref)
        return image

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        images: list[Image] = self._call("image_list", name=name, labels=_plain_map(labels))
        return images

    def image_tag(self, ref: str, new_ref: str) -> None:
        self._call("image_tag", ref, new_ref)

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        self._call("image_remove", ref, force=force)

    def image_save(self, ref: str, path: str) -> None:
        response = self._request("/image_save", payload={"ref": ref})
        try:
            self._check(response)
            done = False
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_chunks(_CHUNK):
                        out.write(chunk)
                done = True
            except OSError as exc:
                raise EngineError(f"lxc: cannot write {path}: {exc.strerror}") from exc
            finally:
                if not done:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        finally:
            response.close()

    def image_load(self, path: str) -> list[Image]:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise EngineError(f"lxc: cannot read {path}: {exc.strerror}") from exc
        with fh:
            upload = _Upload(fh)
            response = self._request("/image_load", body=upload)
        if upload.error is not None:
            response.close()
            upload.check()
        images: list[Image] = wire.decode(self._result(response))
        return images

    def image_pull(self, ref: str) -> Image:
        image: Image = self._call("image_pull", ref)
        return image

    def image_push(self, ref: str) -> None:
        self._call("image_push", ref)

    # -- containers ----------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        return str(self._call("container_create", spec))

    def container_start(self, id: str) -> None:
        self._call("container_start", id)

    def container_inspect(self, ref: str) -> Container:
        container: Container = self._call("container_inspect", ref)
        return container

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        found: list[Container] = self._call(
            "container_list", all=all, labels=_plain_map(labels), name=name
        )
        return found

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        return int(self._call("container_wait", id, timeout=timeout))

    def container_logs(
        self,
        id: str,
        *,
        stdout: bool = True,
        stderr: bool = True,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
    ) -> Iterator[LogLine]:
        response = self._request(
            "/logs",
            payload={
                "id": id,
                "stdout": stdout,
                "stderr": stderr,
                "follow": follow,
                "since": since,
                "tail": tail,
            },
        )
        try:
            self._check(response)
        except BaseException:
            response.close()
            raise

        def lines() -> Iterator[LogLine]:
            for raw in response.iter_lines():
                yield _log_line(_json_line(raw))

        return ClosableLines(lines(), abort=response.abort, release=response.close)

    def container_exec(
        self,
        id: str,
        command: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        result: ExecResult = self._call(
            "container_exec",
            id,
            tuple(command),
            env=_plain_map(env),
            workdir=workdir,
            user=user,
        )
        return result

    def container_pause(self, id: str) -> None:
        self._call("container_pause", id)

    def container_unpause(self, id: str) -> None:
        self._call("container_unpause", id)

    def container_stop(self, id: str, *, timeout: float) -> None:
        self._call("container_stop", id, timeout=timeout)

    def container_kill(self, id: str, *, signal: str) -> None:
        self._call("container_kill", id, signal=signal)

    def container_restart(self, id: str, *, timeout: float) -> None:
        self._call("container_restart", id, timeout=timeout)

    def container_remove(self, id: str, *, force: bool = False) -> None:
        self._call("container_remove", id, force=force)

    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        found: PathStat | None = self._call("container_stat_path", id, path)
        return found

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        head = json.dumps(wire.encode({"id": id, "path": path})).encode() + b"\n"
        upload = _Upload(data, head)
        response = self._request("/put_archive", body=upload)
        if upload.error is not None:
            response.close()
            upload.check()
        self._result(response)

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        response = self._request("/get_archive", payload={"id": id, "path": path})
        try:
            self._check(response)
        except BaseException:
            response.close()
            raise
        return io.BufferedReader(_ResponseFile(response, f"the copy of {path}"), _CHUNK)

    def container_stats(self, id: str) -> Stats:
        stats: Stats = self._call("container_stats", id)
        return stats


def _plain_map(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _json_line(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError:
        raise wire.WireError("lxc agent: a streamed line that is not JSON") from None
    if not isinstance(obj, dict):
        raise wire.WireError("lxc agent: an unreadable streamed line")
    return obj


def _log_line(obj: dict[str, Any]) -> LogLine:
    if "e" in obj:
        raise wire.decode_error(obj["e"])
    try:
        stamp = obj.get("t")
        return LogLine(
            stream=Stream(obj["s"]),
            data=base64.b64decode(obj["d"], validate=True),
            timestamp=parse_rfc3339(stamp) if isinstance(stamp, str) else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise wire.WireError(f"lxc agent: an unreadable log line ({exc})") from None
