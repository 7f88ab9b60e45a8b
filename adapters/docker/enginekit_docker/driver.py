"""DockerDriver: the enginekit Driver over Docker's Engine API (HTTP on the unix socket).

Every call goes through the toolkit's HTTP driver base
(:class:`enginekit.toolkit.http.HttpDriver`) under the Engine API version
negotiated once per driver (:mod:`.api`, :mod:`.versions`: 1.41 to 1.52,
Docker 20.10 to 29); answers are turned into models by :mod:`.convert` and
errors by :mod:`.errors`. The image operations live in :mod:`.images`, exec
and pause in :mod:`.execs`, the other container operations here. The driver
keeps no per-call state: one instance serves many threads.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

from enginekit.toolkit import refusals
from enginekit.toolkit.driver import Capability
from enginekit.toolkit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    ImageNotFound,
    InvalidSpec,
    NotFound,
)
from enginekit.toolkit.models import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineInfo,
    LogLine,
    PathStat,
    Stats,
)
from enginekit.toolkit.signals import signal_number

from . import convert, names, streams
from .api import HINT
from .errors import error_for, map_errors, message_of
from .execs import ExecOps
from .images import ImageOps
from .initsignals import wait_until_ready
from .locallog import PieceResolver

__all__ = ["HINT", "DockerDriver"]

# A stop or restart may take its ``t`` seconds and then the kill: the HTTP
# call gets that long plus this margin.
_STOP_MARGIN = 30.0
#: How long a log read refused during a removal waits for that removal to end.
_REMOVAL_SETTLE = 10.0
#: How long a container must show "dead" to be taken as dead, not at the end of a removal.
_DEAD_SETTLE = 1.0


def _seconds(timeout: float) -> int:
    """Docker's ``t`` is whole seconds."""
    return max(0, math.ceil(timeout))


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise EngineTimeout("the deadline passed")
    return left


class DockerDriver(ExecOps, ImageOps):
    """The enginekit Driver for Docker (Engine API 1.41 to 1.52, negotiated).

    Extras outside the portable API: :attr:`transport` (the HTTP transport
    to dockerd), :attr:`api_version` (the version spoken), :meth:`url` (a
    path under it) and :meth:`build_tar` (build from an already made context tar).
    """

    # runc's 'chdir to cwd ("X") ... not a directory', Docker's own words
    # (a mount point made through a file is not the working directory)
    workdir_refusals = ("chdir to cwd", "Cannot mkdir:")

    def __repr__(self) -> str:
        return f"DockerDriver(address={self.address!r})"

    # -- engine ---------------------------------------------------------------
    def info(self) -> EngineInfo:
        version = self._json("GET", "/version", operation="version")
        info = self._json("GET", "/info", operation="info")
        with map_errors("info"):
            return convert.engine_info(version, info, api_version=self.api_version)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this daemon can do (see :mod:`.instance`); read from ``/info`` once."""
        return self._instance().capabilities

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        """Why this daemon lacks each capability it lacks (see :mod:`.instance`)."""
        return self._instance().unsupported

    # -- containers -----------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        """A one-character name is stored as :func:`.names.engine_name` (see :mod:`.names`)."""
        body = convert.create_body(spec)
        params = {"name": names.engine_name(spec.name)} if spec.name else None
        if spec.name and names.is_mapped(spec.name):
            if self._find(spec.name) is not None:
                raise Conflict(f"docker create: the name {spec.name!r} is already in use")
            body["Labels"][names.NAME_LABEL] = spec.name
        try:
            with map_errors("create"):
                data = self._call(
                    "POST",
                    "/containers/create",
                    operation="create",
                    missing=ImageNotFound,
                    params=params,
                    json=body,
                ).json()
                return str(data["Id"])
        except Conflict as exc:
            if spec.name and names.is_mapped(spec.name):  # created meanwhile
                raise Conflict(f"docker create: the name {spec.name!r} is already in use") from exc
            raise
        except EngineError as exc:
            # Docker makes the working directory as it creates the container
            # ("Cannot mkdir: X is not a directory", or the mkdir's or lstat's
            # own error for a path through a file); it has made nothing then.
            if spec.workdir and refusals.names_not_a_directory(str(exc)):
                raise refusals.workdir_not_a_directory(spec.workdir) from exc
            raise

    def container_inspect(self, ref: str) -> Container:
        """A one-character ``ref`` is a name only (never an id prefix); the
        Docker name a one-character name is stored under is not a ref."""
        if names.is_mapped(ref):
            found = self._find(ref)
            if found is None:
                raise ContainerNotFound(f"docker inspect: no container named {ref!r}")
            return found
        data = self._inspect_raw(ref)
        container = self._container_from(data)
        if ref != container.name and ref == str(data.get("Name", "")).lstrip("/"):
            raise ContainerNotFound(f"docker inspect: no such container: {ref}")
        return container

    def _container_from(self, data: dict[str, Any]) -> Container:
        with map_errors("inspect"):
            return convert.container_from_inspect(data)

    def _find(self, name: str) -> Container | None:
        """The container named ``name`` (one character), if there is one."""
        try:
            data = self._inspect_raw(names.engine_name(name))
        except ContainerNotFound:
            return None
        container = self._container_from(data)
        return container if container.name == name else None

    def _summary_of(self, row: Mapping[str, Any]) -> ContainerSummary | str:
        """An entry of the list, read as it is (:func:`.convert.summary_from_list`);
        the id of a container whose entry shows an image id for the name asked."""
        return convert.summary_from_list(row) or str(row["Id"])

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        try:
            return self._wait(id, timeout)
        except EngineTimeout as exc:
            raise EngineTimeout(
                f"docker wait: container {id[:12]} did not exit within {timeout} s"
            ) from exc

    def _wait(self, id: str, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with map_errors("wait"):
            state = self._inspect_raw(id)["State"]
            status = state.get("Status")
            if convert.container_state(status) is ContainerState.EXITED:
                return int(state.get("ExitCode") or 0)
            # ``not-running`` answers at once for a created container; wait for
            # the exit after its start instead.
            condition = "next-exit" if status == "created" else "not-running"
            resp = self._call(
                "POST",
                f"/containers/{id}/wait",
                operation="wait",
                params={"condition": condition},
                timeout=_remaining(deadline),
            )
            with resp:
                if condition == "next-exit":
                    # The daemon sends the headers once the wait is registered:
                    # a start and exit that slipped in before shows here.
                    again = self._inspect_raw(id)["State"]
                    if convert.container_state(again.get("Status")) is ContainerState.EXITED:
                        return int(again.get("ExitCode") or 0)
                body = b"".join(resp.iter_chunks())
            data = json.loads(body)
            error = (data.get("Error") or {}).get("Message")
            if error:
                raise EngineError(f"docker wait: {error}")
            return int(data["StatusCode"])

    def _gone_after_removal(self, id: str, refusal: Conflict) -> None:
        """Docker refuses to read a container it is removing ("can not get logs from
        container which is dead or marked for removal") where the other engines
        read it or find it gone: once the removal is over, that is ContainerNotFound.
        Returns (the refusal stands) for another refusal, for a container that
        stays dead (a removal that failed: it is not going away), or one still
        there after ``_REMOVAL_SETTLE``.
        (The inspection does not say "marked for removal": a container being
        removed shows "running" until its kill is through, then "removing";
        Docker 28 also shows "dead" for a moment at the end of every removal,
        so "dead" must last ``_DEAD_SETTLE`` to count.)"""
        if "marked for removal" not in str(refusal):
            return
        deadline = time.monotonic() + _REMOVAL_SETTLE
        dead_since: float | None = None
        while True:
            try:
                state = self._inspect_raw(id).get("State") or {}
            except ContainerNotFound as gone:
                raise gone from refusal
            now = time.monotonic()
            if state.get("Status") != "dead":
                dead_since = None
            elif dead_since is None:
                dead_since = now
            elif now - dead_since > _DEAD_SETTLE:
                return
            if now > deadline:
                return
            time.sleep(0.05)

    def _logs(
        self, id: str, params: dict[str, Any], *, follow: bool, tail: int | None
    ) -> Iterator[LogLine]:
        params.update(follow=follow, tail=tail if tail is not None else "all")
        try:
            resp = self._call(
                "GET",
                f"/containers/{id}/logs",
                operation="logs",
                params=params,
                timeout=None if follow else 60.0,
            )
        except Conflict as exc:
            self._gone_after_removal(id, exc)
            raise
        resolver = PieceResolver(id, lambda: self._inspect_raw(id), self._root_dir)
        return streams.log_lines(resp, ends_line=resolver, ordered=not follow)

    def _init_ready(self, id: str, signal_name: str | None) -> None:
        """Let the init of a just started container get ready for ``signal_name``
        (the stop signal if None) before it is sent: see :mod:`.initsignals`."""
        if not self.address.startswith(("unix:", "/")):
            return  # the daemon's pids are not this machine's
        data = self._inspect_raw(id)
        state = data.get("State") or {}
        if not (data.get("HostConfig") or {}).get("Init") or not state.get("Running"):
            return
        name = signal_name or (data.get("Config") or {}).get("StopSignal") or "SIGTERM"
        try:
            number = signal_number(str(name))
        except InvalidSpec:
            return  # Docker refuses it
        if state.get("Pid") and number not in (signal_number("SIGKILL"), signal_number("SIGSTOP")):
            wait_until_ready(int(state["Pid"]))

    def container_stop(self, id: str, *, timeout: float) -> None:
        self._init_ready(id, None)
        seconds = _seconds(timeout)
        try:
            self._empty(
                "POST",
                f"/containers/{id}/stop",
                operation="stop",
                params={"t": seconds},
                timeout=seconds + _STOP_MARGIN,
            )
        except EngineTimeout:
            # The daemon still stops it: the deadline is the operation's.
            self.container_wait(id, timeout=_STOP_MARGIN)

    def container_kill(self, id: str, *, signal: str) -> None:
        self._init_ready(id, signal)
        self._empty("POST", f"/containers/{id}/kill", operation="kill", params={"signal": signal})

    def container_remove(self, id: str, *, force: bool = False) -> None:
        self._empty(
            "DELETE", f"/containers/{id}", operation="remove", params={"force": force, "v": True}
        )

    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        resp = self._request("HEAD", f"/containers/{id}/archive", params={"path": path})
        resp.read()
        if resp.status == 404:
            # A HEAD answer has no message: tell a missing container from a missing path.
            self._inspect_raw(id)
            return None
        if not resp.ok:
            # Again as GET, whose answer says why.
            again = self._request("GET", f"/containers/{id}/archive", params={"path": path})
            if again.ok:
                again.close()
                raise error_for(resp.status, "", operation="stat")
            message = message_of(again)
            error = self._error(again.status, message, operation="stat", missing=ContainerNotFound)
            if type(error) is NotFound:  # no such path (not: no such container)
                return None
            raise error
        header = resp.headers.get("X-Docker-Container-Path-Stat")
        if not header:
            raise EngineError("docker stat: no path stat in the answer")
        with map_errors("stat"):
            return convert.path_stat(header)

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        # The daemon's extraction (moby's archive package up to go-archive 0.2)
        # refuses a link whose text climbs out of ``path`` ("invalid symlink"):
        # such a tar goes to an ancestor folder, its names prefixed with the way down.
        resolve = functools.partial(self._real_folder, id)
        from enginekit.toolkit import archives  # not on every start-up: it is heavy

        with archives.from_ancestor(path, data, resolve) as sent, map_errors("put archive"):
            where, body = sent
            self._call(
                "PUT",
                f"/containers/{id}/archive",
                operation="put archive",
                params={"path": where},
                body=body,
                headers={"Content-Type": "application/x-tar"},
            ).read()

    def _real_folder(self, id: str, path: str) -> str:
        """``path`` with its symbolic links resolved in the container (the daemon's
        stat of a link gives its target fully resolved)."""
        current = "/"
        for part in [p for p in path.split("/") if p not in ("", ".")]:
            if part == "..":
                current = current.rsplit("/", 1)[0] or "/"
                continue
            current = current.rstrip("/") + "/" + part
            stat = self.container_stat_path(id, current)
            if stat is not None and stat.is_symlink and stat.link_target.startswith("/"):
                current = stat.link_target.rstrip("/") or "/"
        return current

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        resp = self._call(
            "GET", f"/containers/{id}/archive", operation="get archive", params={"path": path}
        )
        return resp.as_file()

    def container_stats(self, id: str) -> Stats:
        limited = bool((self._inspect_raw(id).get("HostConfig") or {}).get("Memory"))
        data = self._json(
            "GET",
            f"/containers/{id}/stats",
            operation="stats",
            params={"stream": False, "one-shot": True},
        )
        with map_errors("stats"):
            return convert.stats(data, limited=limited)
