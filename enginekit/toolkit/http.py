"""The HTTP side of an adapter whose engine serves a REST API (Docker's Engine
API, Podman's libpod API): the transport, and :class:`HttpDriver`, the base
such a driver builds on.

:class:`Transport` (``enginekit.transport``) sends requests on pooled
keep-alive connections (unix socket, TCP, TLS, or a :class:`Dialer` such as
ssh's) and gives a :class:`Response`; :func:`demux_frames` splits the
multiplexed stream of logs and execs.

:class:`HttpDriver` holds what both engines' drivers do the same way:

- the API version, agreed once per driver from ``GET /_ping`` on first need
  (:meth:`HttpDriver._api`, :meth:`HttpDriver._negotiate`), every path sent
  under it (:meth:`HttpDriver._path`);
- calls whose failed answer raises the adapter's error (:meth:`~HttpDriver._call`,
  :meth:`~HttpDriver._json`, :meth:`~HttpDriver._empty`; the adapter says what
  an HTTP status and message mean in :meth:`~HttpDriver._error`), and
  :func:`map_errors` for an answer that cannot be read;
- ``container_exec`` and ``container_logs`` up to the engine's own part: the
  exec's create body (Docker's, which libpod takes too) goes to :meth:`~HttpDriver._exec`,
  the log request's common parameters to :meth:`~HttpDriver._logs`;
  :func:`exec_output` reads an attached exec's output, :func:`response_lines`
  a log answer as the lines ``container_logs`` returns;
- ``GET /containers/{ref}/json`` (:meth:`~HttpDriver._inspect_raw`);
- the container list: the adapter sends its list request in
  :meth:`~HttpDriver._list_rows` and reads one row in
  :meth:`~HttpDriver._summary_of`; ``container_list`` inspects each row's
  ``Id`` (:class:`~enginekit.toolkit.driver.BaseDriver`'s list-then-inspect),
  ``container_summaries`` reads the rows themselves (that one request).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import struct
import tarfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from email.message import Message
from typing import Any, Generic, TypeVar

from enginekit import refusals
from enginekit.errors import (
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    NotFound,
)
from enginekit.logstream import ClosableLines, LineJoiner
from enginekit.models import BuildRequest, Container, ContainerSummary, ExecResult, LogLine
from enginekit.transport import Dialer, Response, Transport, demux_frames

from .driver import BaseDriver, LabelFilter, summaries_from_rows

__all__ = [
    "UNREADABLE",
    "Dialer",
    "HttpDriver",
    "Response",
    "Row",
    "Transport",
    "build_params",
    "demux_frames",
    "error_message",
    "exec_output",
    "map_errors",
    "quote",
    "response_lines",
]

V = TypeVar("V")
#: One row of an engine's list answer (a JSON object).
Row = Mapping[str, Any]

#: What an answer that is not what the engine documents raises as it is read
#: (bad JSON or UTF-8, a missing field or item, a tar stream cut short).
UNREADABLE: tuple[type[Exception], ...] = (
    ValueError,
    KeyError,
    IndexError,
    EOFError,
    struct.error,
    tarfile.TarError,
    zlib.error,
    http.client.HTTPException,
)


@contextlib.contextmanager
def map_errors(engine: str, operation: str) -> Iterator[None]:
    """Let enginekit errors through; turn what an answer caused (:data:`UNREADABLE`)
    or a local file operation that failed (``OSError``) into ``EngineError``.

    Nothing else is translated: a ``TypeError`` or ``AttributeError`` is a bug
    (the facade reports it as such), and an exception of the caller's own
    callback is the caller's (the facade lets it leave as it is).
    """
    try:
        yield
    except EngineError:
        raise
    except UNREADABLE as exc:
        raise EngineError(
            f"{engine} {operation}: unexpected answer ({type(exc).__name__})"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EngineError(f"{engine} {operation}: {reason}") from exc


def error_message(body: bytes) -> str:
    """The message of an error answer: its JSON ``message`` (libpod: or ``cause``),
    else the body's text; ``""`` for an empty body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for key in ("message", "cause"):
            said = data.get(key)
            if isinstance(said, str) and said:
                return said
    return text


def quote(value: str) -> str:
    """``value`` as one URL path segment."""
    return urllib.parse.quote(value, safe="")


def exec_output(resp: Response) -> tuple[bytes, bytes]:
    """stdout and stderr of an attached exec's answer (multiplexed frames), read
    to its end; the answer is closed."""
    out, err = bytearray(), bytearray()
    with resp:
        for stream, payload in demux_frames(resp.iter_chunks()):
            if stream == 1:
                out += payload
            elif stream == 2:
                err += payload
    return bytes(out), bytes(err)


def build_params(request: BuildRequest, tags: Iterable[str]) -> list[tuple[str, Any]]:
    """The query of ``POST /build`` that Docker's and libpod's builds read alike:
    each of ``tags`` (``t``), the Dockerfile, no intermediate container left
    (``rm``, ``forcerm``), and the request's build arguments, labels and target."""
    params: list[tuple[str, Any]] = [("t", tag) for tag in tags]
    params += [("dockerfile", request.dockerfile), ("rm", True), ("forcerm", True)]
    if request.build_args:
        params.append(("buildargs", dict(request.build_args)))
    if request.labels:
        params.append(("labels", dict(request.labels)))
    if request.target:
        params.append(("target", request.target))
    return params


def response_lines(
    resp: Response,
    joiner: LineJoiner,
    *,
    arrange: Callable[[Iterator[LogLine]], Iterator[LogLine]] | None = None,
) -> ClosableLines:
    """The lines of a log answer (multiplexed frames, joined by ``joiner``, then
    ``arrange``\\ d if given): closing them (or their end) releases the answer,
    aborting wakes a read blocked in another thread."""
    lines = joiner.join(demux_frames(resp.iter_chunks()))
    return ClosableLines(
        arrange(lines) if arrange is not None else lines, abort=resp.abort, release=resp.close
    )


class HttpDriver(BaseDriver, Generic[V]):
    """The base of a driver over an engine's HTTP API (see the module).

    ``V`` is what :meth:`_negotiate` makes of the ``/_ping`` answer (the API
    version spoken). A subclass sets ``name`` and ``hint`` and implements
    :meth:`_negotiate`, :meth:`_path`, :meth:`_error`, :meth:`_list_rows` and
    :meth:`_summary_of`.
    """

    #: How to start the engine, for ``EngineUnavailable``.
    hint = ""
    #: How long ``GET /_ping`` may take.
    ping_timeout = 5.0

    def __init__(
        self,
        address: str,
        *,
        pool_size: int = 8,
        tls: ssl.SSLContext | None = None,
        dialer: Dialer | None = None,
    ) -> None:
        super().__init__()
        self.address = address
        self.transport = Transport(
            address, hint=self.hint, pool_size=pool_size, name=self.name, tls=tls, dialer=dialer
        )

    def close(self) -> None:
        self.transport.close()
        super().close()

    # -- the API version, agreed once -------------------------------------------
    def _negotiate(self, ping: Message) -> V:
        """The version to speak, from ``/_ping``'s headers (``EngineUnavailable``
        or ``Unsupported`` for an engine the adapter cannot speak to)."""
        raise NotImplementedError

    def _path(self, path: str) -> str:
        """``path`` as sent, under the agreed version (``/info`` -> ``/v1.51/info``)."""
        raise NotImplementedError

    def _api(self) -> V:
        """The version agreed on this connection, asked with one ``/_ping`` on first need."""
        return self._once("api", lambda: self._negotiate(self._ping()))

    def ping(self) -> None:
        """``GET /_ping``; the first answer also settles the API version."""
        headers = self._ping()
        self._once("api", lambda: self._negotiate(headers))

    def _ping(self) -> Message:
        """``GET /_ping`` (never versioned): its headers; ``EngineUnavailable``
        unless the engine answers it with a success."""
        try:
            resp = self.transport.request("GET", "/_ping", timeout=self.ping_timeout)
            body = resp.read()
        except EngineTimeout as exc:
            raise EngineUnavailable(
                f"{self.name} did not answer /_ping in time", address=self.address, hint=self.hint
            ) from exc
        except EngineUnavailable:
            raise
        except EngineError as exc:  # took the connection, gave no answer
            raise EngineUnavailable(str(exc), address=self.address, hint=self.hint) from exc
        if not resp.ok:
            raise EngineUnavailable(
                f"{self.name} answered /_ping with HTTP {resp.status}: "
                + (error_message(body) or "no message"),
                address=self.address,
                hint=self.hint,
            )
        return resp.headers

    # -- calls ---------------------------------------------------------------------
    def _error(
        self, status: int, message: str, *, operation: str, missing: type[NotFound]
    ) -> EngineError:
        """The enginekit error for a failed answer (``missing``: what a 404 means here)."""
        raise NotImplementedError

    def _map_errors(self, operation: str) -> contextlib.AbstractContextManager[None]:
        return map_errors(self.name, operation)

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        """A request under the agreed version; the answer unchecked."""
        return self.transport.request(method, self._path(path), **kwargs)

    def _check(
        self, resp: Response, *, operation: str, missing: type[NotFound] = ContainerNotFound
    ) -> Response:
        """``resp`` if it is a success (2xx, or 304: already so); else its body
        is read and its error raised."""
        if resp.ok or resp.status == 304:
            return resp
        message = error_message(resp.read())
        raise self._error(resp.status, message, operation=operation, missing=missing)

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        missing: type[NotFound] = ContainerNotFound,
        **kwargs: Any,
    ) -> Response:
        """Send a request; a failed answer raises its error, a success is returned unread."""
        return self._check(
            self._request(method, path, **kwargs), operation=operation, missing=missing
        )

    def _json(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        missing: type[NotFound] = ContainerNotFound,
        **kwargs: Any,
    ) -> Any:
        """The JSON of a successful answer."""
        with self._map_errors(operation):
            return self._call(method, path, operation=operation, missing=missing, **kwargs).json()

    def _empty(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        missing: type[NotFound] = ContainerNotFound,
        **kwargs: Any,
    ) -> None:
        """A call whose answer carries nothing needed (read, to free the connection)."""
        self._call(method, path, operation=operation, missing=missing, **kwargs).read()

    def _inspect_raw(self, ref: str) -> dict[str, Any]:
        """``GET /containers/{ref}/json``: the engine's own inspect of a container."""
        data = self._json("GET", f"/containers/{quote(ref)}/json", operation="inspect")
        if not isinstance(data, dict):
            raise EngineError(f"{self.name} inspect: unexpected answer (not an object)")
        return data

    # -- the container list -------------------------------------------------------
    def _list_rows(self, *, all: bool, labels: LabelFilter, name: str | None) -> list[Row]:
        """The engine's list request with these filters (as far as it has them):
        its rows, each with the container's ``Id``, in the order to show them;
        more than match is fine (what is read is filtered again), fewer is not."""
        raise NotImplementedError

    def _summary_of(self, row: Row) -> ContainerSummary | str:
        """One row of :meth:`_list_rows` as a summary; the container's id where
        the row does not say enough (it is inspected instead)."""
        raise NotImplementedError

    def _container_from(self, data: dict[str, Any]) -> Container:
        """The container an answer of :meth:`_inspect_raw` describes (the adapter's
        reading of it, with what the adapter adds: as ``container_inspect`` gives it)."""
        raise NotImplementedError

    def _inspect_raw_or_none(self, id: str) -> dict[str, Any] | None:
        try:
            return self._inspect_raw(id)
        except ContainerNotFound:
            return None

    def _inspect_each(self, ids: Sequence[str]) -> list[Container | None]:
        """Each container's inspect answer asked ``list_workers`` at once (None for
        one gone), read by :meth:`_container_from` in the calling thread once all
        are in: the workers only wait on the engine, and Python's work is done in
        one thread (read in the workers, it made them contend for the
        interpreter: a list of 200 took 1.2x longer on a busy machine)."""
        found: list[Container | None] = []
        for data in self._each(self._inspect_raw_or_none, ids):
            try:
                found.append(None if data is None else self._container_from(data))
            except ContainerNotFound:  # gone while what the adapter adds was asked
                found.append(None)
        return found

    def _container_ids(self, *, all: bool, labels: LabelFilter, name: str | None) -> list[str]:
        """The ids of :meth:`_list_rows`'s rows."""
        rows = self._list_rows(all=all, labels=labels, name=name)
        with self._map_errors("list"):
            return [str(row["Id"]) for row in rows]

    def container_summaries(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[ContainerSummary]:
        """What ``container_list`` gives, from :meth:`_list_rows`' one request,
        each row read by :meth:`_summary_of` (see
        :func:`~enginekit.toolkit.driver.summaries_from_rows`)."""
        rows = self._list_rows(all=all, labels=labels, name=name)
        with self._map_errors("list"):
            return summaries_from_rows(
                rows, self._summary_of, self._inspect_each, all=all, labels=labels, name=name
            )

    # -- start, and tars sent ------------------------------------------------------
    #: The engine's words for a working directory it could not enter as it
    #: started a container (see :func:`enginekit.refusals.start_refusal`).
    workdir_refusals: tuple[str, ...] = ()
    #: How long a start may take (None: as long as the engine takes).
    start_timeout: float | None = 60.0

    def container_start(self, id: str) -> None:
        """``POST /containers/{id}/start``. A start the engine refused for what the
        image lacks or a host port in use is worded as on every engine
        (:func:`enginekit.refusals.start_refusal`); the container stays created."""
        try:
            self._empty(
                "POST",
                f"/containers/{quote(id)}/start",
                operation="start",
                timeout=self.start_timeout,
            )
        except EngineError as exc:
            if exc.status == 404:
                raise
            refused = refusals.start_refusal(
                str(exc), lambda: self.container_inspect(id), self.workdir_refusals
            )
            if refused is None:
                raise
            raise refused from exc

    def _send_tar(self, method: str, path: str, body: Any, **kwargs: Any) -> Response:
        """A request whose body is a tar stream (a build context, files copied in);
        the answer unchecked."""
        headers = {"Content-Type": "application/x-tar"}
        return self._request(method, path, body=body, headers=headers, **kwargs)

    # -- exec and logs, up to the engine's part -----------------------------------
    def container_exec(
        self,
        id: str,
        command: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        """The exec's create body, run by :meth:`_exec`."""
        body: dict[str, Any] = {
            "Cmd": list(command),
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": False,
        }
        if env:
            body["Env"] = [f"{k}={v}" for k, v in env.items()]
        if workdir is not None:
            body["WorkingDir"] = workdir
        if user is not None:
            body["User"] = user
        return self._exec(id, body)

    def _exec(self, id: str, body: dict[str, Any]) -> ExecResult:
        """Create the exec ``body`` (``POST /containers/{id}/exec``), start it and
        return its outcome."""
        raise NotImplementedError

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
        """No streams asked: no lines (the container must exist); else
        :meth:`_logs` with the common parameters."""
        if not stdout and not stderr:
            self._inspect_raw(id)
            return iter(())
        params: dict[str, Any] = {"stdout": stdout, "stderr": stderr, "timestamps": True}
        if since is not None:
            params["since"] = f"{since:.9f}"
        return self._logs(id, params, follow=follow, tail=tail)

    def _logs(
        self, id: str, params: dict[str, Any], *, follow: bool, tail: int | None
    ) -> Iterator[LogLine]:
        """The lines of ``GET /containers/{id}/logs`` with ``params`` (stdout,
        stderr, timestamps, since), followed or not, the last ``tail`` only."""
        raise NotImplementedError
