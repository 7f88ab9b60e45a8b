"""The Podman driver: the libpod REST API (``podman system service``) over a unix socket.

Every call goes through the toolkit's HTTP driver base
(:class:`enginekit.toolkit.http.HttpDriver`) to ``/v<libpod API>/libpod/...``,
the version agreed once per connection from ``/_ping`` (:mod:`.versions`:
Podman 4.3 to 5.x); what the instance can do comes from its ``/info``
(:mod:`.host`: cgroup version and controllers, rootless). :mod:`.convert`
turns the answers into models and :mod:`.errors` the failures into
``enginekit.errors``. Where Podman behaves differently from Docker, the
adapter makes up for it here (what is hidden in reports is listed in
:mod:`.convert`):

- every container runs with Podman's init (catatonit) as PID 1, swap equal
  to the memory limit, no pids limit unless one is asked for, without the
  ``TERM``/``container`` variables Podman adds, without an ``/etc/passwd``
  entry made up for an unknown uid (``HOME`` is then ``/``), and as user
  ``0`` rather than "unset" (so that root's supplementary groups match);
- the working directory is resolved inside the container and created there
  (owned by root, as Docker does) before Podman sees it: Podman resolves it
  on the host and would create it there through an absolute symbolic link;
- files copied in keep the tar's owners (``copyUIDGID=false``); a symbolic
  link copied out is the link itself, not what it points to;
- ``wait`` polls the container for a second itself (libpod's ``wait``
  answers only after the post-exit cleanup, ~0.2 s later), then hands over
  to libpod's ``wait`` with a short poll interval; a CREATED container is
  waited for until it has started and exited;
- exit codes are Docker's when the command cannot be started (127/126; the
  init exits 1, an exec 127), and on Podman 4.x ``oom_killed`` is worked
  out from the container's events (4.x never records it; 5.x does);
- a tar copied in is sent without the padding after its end-of-archive
  marker (:mod:`.tartrim`: Podman 5's copier fails on it now and then);
- an exec sees the container's ``HOSTNAME`` as on Docker (:mod:`.execs`);
- a build runs without intermediate layers, so that a failed build leaves
  no image behind, and stage images are removed;
- forced removal of an image a container uses takes its tags off and keeps
  it (Podman would remove the containers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import posixpath
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from enginekit.toolkit import refusals
from enginekit.toolkit.driver import Capability
from enginekit.toolkit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    ImageNotFound,
)
from enginekit.toolkit.http import Response, Row, exec_output
from enginekit.toolkit.models import (
    Container,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    Stats,
)
from enginekit.toolkit.signals import signal_number

from . import convert
from ._base import DEFAULT_ADDRESS, HINT
from ._base import quote as _q
from .errors import (
    init_exec_failure,
    map_errors,
)
from .execs import ExecMixin
from .files import FilesMixin
from .follow import follow_by_reads
from .host import Host, busy_binding
from .images import ImagesMixin
from .streams import log_lines

if TYPE_CHECKING:
    from enginekit.toolkit.models import ContainerSummary, LogLine

__all__ = ["DEFAULT_ADDRESS", "HINT", "PodmanDriver"]

# Variables Podman puts into every container that Docker does not.
_PODMAN_ENV = ("TERM", "container")
_ALL_POLL = 1.0  # seconds of client-side polling before libpod's wait takes over


class PodmanDriver(ExecMixin, ImagesMixin, FilesMixin):
    """A :class:`enginekit.toolkit.driver.Driver` for the libpod API of Podman 4.3 to 5.x."""

    # libpod's 'workdir "X" exists on container ID, but is not a directory',
    # the runtime's chdir failing
    workdir_refusals = ("workdir", "cwd", "chdir")
    start_timeout = None

    name = "podman"

    # -- engine --------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this instance can do (from its ``/info``, asked once)."""
        return self._host_info().capabilities()

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        """Why this instance lacks each capability it lacks."""
        return self._host_info().unsupported()

    def info(self) -> EngineInfo:
        api = self._api()
        data = self._json("GET", "/info", operation="info")
        with map_errors("info"):
            host = data.get("host") or {}
            version = data.get("version") or {}
            store = data.get("store") or {}
            profile = self._remember_host(data)
        return EngineInfo(
            name=self.name,
            version=str(version.get("Version") or ""),
            api_version=api.api_version,
            os=str(host.get("os") or version.get("Os") or ""),
            arch=str(host.get("arch") or ""),
            storage_root=str(store.get("graphRoot") or ""),
            min_api_version=self._min_api_version(),
            max_api_version=api.engine_text,
            cgroup_version=profile.cgroup_version,
            rootless=bool((host.get("security") or {}).get("rootless")),
            image_store=profile.image_store,
        )

    def _min_api_version(self) -> str:
        """The oldest libpod API the engine serves (``/version``; 4.0.0 on 4.x and 5.x)."""
        try:
            data = self._json("GET", "/version", operation="version")
            with map_errors("version"):
                for part in data.get("Components") or ():
                    if str(part.get("Name") or "") == "Podman Engine":
                        return str((part.get("Details") or {}).get("MinAPIVersion") or "")
        except EngineError:
            pass
        return ""

    # -- containers ----------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        if spec.ports:
            # A rootless service cannot bind a low host port: refused before
            # anything is made (Podman would make the container, then fail
            # to start it).
            self._host_info().check_ports(p.host_port for p in spec.ports)
        image, found_as = self._image_lookup(spec.image)
        image_cfg = image.get("Config") or {}
        image_env = {item.partition("=")[0] for item in image_cfg.get("Env") or ()}
        user_env = dict(spec.env)
        given = set(user_env) | image_env
        # Podman writes these into the container's env; Docker sets them only
        # in the process (the same values inside, see the tests).
        hidden = [k for k in ("HOME", "HOSTNAME") if k not in given]
        unset = []
        if spec.workdir is None and not image_cfg.get("WorkingDir"):
            unset.append("workdir")
        if spec.stop_signal is None and not image_cfg.get("StopSignal"):
            unset.append("stop_signal")
        user = spec.user
        if user is None and not image_cfg.get("User"):
            # Without a user Podman leaves root's primary group out of the
            # supplementary groups; as "0" it gives Docker's `groups=0(root),...`.
            user = "0"
            unset.append("user")
        random_ports = sorted(
            {f"{p.container_port}/{p.protocol}" for p in spec.ports if not p.host_port}
        )
        body: dict[str, Any] = {
            "image": found_as,
            "init": True,
            # Docker adds no /etc/passwd entry for a uid the image does not know
            # (and then HOME is /); Podman would, with the workdir as HOME.
            "manage_password": False,
            "create_working_dir": False,
            "env": user_env,
            "unsetenv": [k for k in _PODMAN_ENV if k not in given],
            "labels": dict(spec.labels),
            "annotations": {
                convert.ANNOTATION_IMAGE: spec.image,
                convert.ANNOTATION_HIDE_ENV: ",".join(hidden),
                convert.ANNOTATION_UNSET: ",".join(unset),
                convert.ANNOTATION_RANDOM_PORTS: ",".join(random_ports),
            },
            "netns": {"nsmode": spec.network},
        }
        limits = _resources(spec, self._host_info())
        if limits:
            body["resource_limits"] = limits
        if spec.name is not None:
            body["name"] = spec.name
        if spec.command is not None:
            body["command"] = list(spec.command)
        if spec.entrypoint is not None:
            body["entrypoint"] = list(spec.entrypoint) if spec.entrypoint else [""]
            if spec.command is None:
                body["command"] = []
        if spec.workdir is not None or image_cfg.get("WorkingDir"):
            body["work_dir"] = spec.workdir or image_cfg.get("WorkingDir")
        if user is not None:
            body["user"] = user
        if spec.hostname is not None:
            body["hostname"] = spec.hostname
        if spec.stop_signal is not None:
            body["stop_signal"] = signal_number(spec.stop_signal)
        if spec.ports:
            body["portmappings"] = [
                {
                    "container_port": p.container_port,
                    "host_port": p.host_port or 0,
                    "host_ip": p.host_ip,
                    "protocol": p.protocol,
                }
                for p in spec.ports
            ]
        if spec.mounts:
            body["mounts"] = [
                {
                    "type": "bind",
                    "source": m.source,
                    "destination": m.target,
                    "options": ["rbind", "ro" if m.read_only else "rw"],
                }
                for m in spec.mounts
            ]
        workdir = spec.workdir or image_cfg.get("WorkingDir") or "/"
        if workdir == "/":
            return self._create(body)
        body["annotations"][convert.ANNOTATION_WORKDIR] = workdir
        image_id = str(image["Id"])
        with self._lock:
            known = self._workdirs.get((image_id, workdir))
        if known is not None:
            body["work_dir"] = posixpath.join(known[0], *known[1])
        cid = self._create(body)
        try:
            resolved = self._prepare_workdir(cid, image_id, workdir)
            if resolved != body["work_dir"]:
                # The path goes through a symbolic link. Podman resolves the
                # working directory on the host (and would create it there,
                # following an absolute link out of the container): give it
                # the path as resolved inside the container instead.
                self.container_remove(cid, force=True)
                body["work_dir"] = resolved
                cid = self._create(body)
                self._prepare_workdir(cid, image_id, workdir)
        except BaseException:
            with contextlib.suppress(EngineError):
                self.container_remove(cid, force=True)
            raise
        return cid

    def _create(self, body: Mapping[str, Any]) -> str:
        data = self._json(
            "POST",
            "/containers/create",
            json=body,
            missing=ImageNotFound,
            operation="container create",
        )
        with map_errors("container create"):
            return str(data["Id"])

    def container_start(self, id: str) -> None:
        if self._host_info().checks_ports_first:
            self._refuse_busy_port(id)
        super().container_start(id)

    def _refuse_busy_port(self, id: str) -> None:
        """``Conflict`` for a host port of a stopped container that something on
        this machine holds, before Podman is asked (:attr:`Host.checks_ports_first`:
        rootless Podman would keep the container's address allocated)."""
        data = self._inspect_raw(id)
        with map_errors("container start"):
            container = convert.container_from_inspect(data, engine=self.name)
        if container.state not in (ContainerState.CREATED, ContainerState.EXITED):
            return  # running or paused: its ports are its own
        busy = busy_binding(container.ports)
        if busy is not None:
            raise refusals.port_in_use(busy)

    def container_inspect(self, ref: str) -> Container:
        return self._container_from(self._inspect_raw(ref))

    def _container_from(self, data: dict[str, Any]) -> Container:
        """An inspect answer read, with the exit code and OOM kill as Docker reports them."""
        with map_errors("container inspect"):
            container = convert.container_from_inspect(data, engine=self.name)
        if container.exit_code == 1:
            code = self._exit_code(container.id, 1)
            if code != 1:
                container = attrs.evolve(container, exit_code=code)
        elif (
            container.exit_code == 137
            and container.resources.memory
            and not container.oom_killed
            and not self._api().at_least(5)
            and self._oom_killed(container)
        ):
            container = attrs.evolve(container, oom_killed=True)
        return container

    def _oom_killed(self, container: Container) -> bool:
        """OOM kill of an exited container, from its events (cached once final).

        Only for Podman 4.x, whose ``State.OOMKilled`` stays false: its conmon
        writes the OOM marker where libpod does not look (5.0 gives conmon a
        persist directory and reads it there, on cgroup v1 and v2 alike).
        """
        key = (container.id, container.finished_at)
        with self._lock:
            if key in self._oom_cache:
                return self._oom_cache[key]
            signalled = self._signalled.get(container.id)
        if signalled is not None and (
            container.started_at is None or signalled >= container.started_at
        ):
            return False  # this driver stopped or killed it
        # A `stop` event can land just after the container is seen stopped;
        # the `died` event (written by the cleanup, ~0.2 s after the exit)
        # comes after it: wait for that before answering.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                resp = self._call(
                    "GET",
                    "/events",
                    operation="events",
                    params={
                        "stream": False,
                        "filters": {"container": [container.id], "type": ["container"]},
                    },
                )
                with self._map_errors("events"):
                    events = list(resp.iter_json())
            except EngineError:
                return False
            oom, final = convert.oom_killed_from_events(events)
            if final or not oom or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if final:
            with self._lock:
                if len(self._oom_cache) > 1024:
                    self._oom_cache.clear()
                self._oom_cache[key] = oom
        return oom

    def _exit_code(self, cid: str, code: int) -> int:
        """The exit code as Docker reports it.

        When the command cannot be started, Podman's init exits 1 where
        Docker's exits 127/126: its message, the last line on stderr, tells.
        """
        if code != 1:
            return code
        try:
            resp = self._call(
                "GET",
                f"/containers/{_q(cid)}/logs",
                operation="container logs",
                params={"stdout": False, "stderr": True, "tail": 1},
            )
            _, err = exec_output(resp)
        except EngineError:
            return code
        last = err.rstrip(b"\n").rpartition(b"\n")[2]
        return init_exec_failure(last) or code if last else code

    def _summary_of(self, row: Row) -> ContainerSummary | str:
        """A row of the list, read as it is (:func:`.convert.summary_from_list`);
        the id of a container whose row names its image by id."""
        return convert.summary_from_list(row, engine=self.name) or str(row["Id"])

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        fast_until = time.monotonic() + _ALL_POLL
        delay = 0.005
        while True:
            data = self._inspect_raw(id)
            state = data.get("State") or {}
            status = convert.container_state(str(state.get("Status") or "unknown"))
            if status is ContainerState.EXITED:
                return self._exit_code(id, int(state.get("ExitCode") or 0))
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise EngineTimeout(f"container {id[:12]} did not exit within {timeout} s")
            if status is not ContainerState.CREATED and now >= fast_until:
                break
            pause = delay if deadline is None else min(delay, deadline - now)
            time.sleep(max(pause, 0.0))
            delay = min(delay * 1.5, 0.1)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        params = [("condition", "stopped"), ("condition", "exited"), ("interval", "50ms")]
        try:
            code = self._json(
                "POST",
                f"/containers/{_q(id)}/wait",
                params=params,
                timeout=remaining,
                operation="container wait",
            )
        except EngineTimeout as exc:
            raise EngineTimeout(f"container {id[:12]} did not exit within {timeout} s") from exc
        with map_errors("container wait"):
            result = int(code)
        return self._exit_code(id, result)

    def _logs(
        self, id: str, params: dict[str, Any], *, follow: bool, tail: int | None
    ) -> Iterator[LogLine]:
        def read(extra: Mapping[str, Any], timeout: float | None = 60) -> Response:
            return self._call(
                "GET",
                f"/containers/{_q(id)}/logs",
                operation="container logs",
                params={**params, **extra},
                timeout=timeout,
            )

        if not follow:
            return log_lines(read({"follow": False}), tail=tail)
        # libpod's follow of the log file loses output: see follow.py.
        polled = follow_by_reads(
            lambda extra: read({"follow": False, **extra}),
            lambda: self._inspect_raw(id),
            since=params.get("since"),
            tail=tail,
            bounded=self._api().at_least(4, 7),
        )
        if polled is not None:
            return polled
        return log_lines(
            read({"follow": True} if tail is None else {"follow": True, "tail": tail}, None)
        )

    def container_pause(self, id: str) -> None:
        self._empty("POST", f"/containers/{_q(id)}/pause", operation="pause")

    def container_unpause(self, id: str) -> None:
        self._empty("POST", f"/containers/{_q(id)}/unpause", operation="unpause")

    def _note_signal(self, id: str) -> None:
        with self._lock:
            if len(self._signalled) > 4096:
                self._signalled.clear()
            self._signalled[id] = dt.datetime.now(dt.UTC)

    def container_stop(self, id: str, *, timeout: float) -> None:
        self._note_signal(id)
        self._empty(
            "POST",
            f"/containers/{_q(id)}/stop",
            operation="stop",
            params={"timeout": max(0, math.ceil(timeout))},
            timeout=None,
        )

    def container_kill(self, id: str, *, signal: str) -> None:
        self._note_signal(id)
        self._empty(
            "POST", f"/containers/{_q(id)}/kill", operation="kill", params={"signal": signal}
        )

    def container_remove(self, id: str, *, force: bool = False) -> None:
        params: dict[str, Any] = {"force": bool(force), "v": True}
        if force:
            params["timeout"] = 0
        for attempt in range(5):
            try:
                self._empty(
                    "DELETE",
                    f"/containers/{_q(id)}",
                    operation="container remove",
                    params=params,
                    timeout=None,
                )
                return
            except Conflict as exc:
                # The container exited between Podman's look and its SIGKILL
                # ("could not be stopped: ... container state improper:
                # stopped"): it is stopped now, the removal goes through.
                said = str(exc)
                if not force or attempt == 4 or "could not be stopped" not in said:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def container_stats(self, id: str) -> Stats:
        data = self._json(
            "GET",
            "/containers/stats",
            params={"containers": id, "stream": False},
            operation="stats",
        )
        host = self._host_info()
        with map_errors("stats"):
            entries = data.get("Stats") or []
            if not entries:
                raise ContainerNotFound(f"no stats for container {id[:12]}")
            return convert.stats_from_libpod(
                entries[0], host_memory=host.memory_total, pids=host.has("pids")
            )


def _resources(spec: ContainerSpec, host: Host) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if spec.pids_limit is not None:
        limits["pids"] = {"limit": spec.pids_limit}
    elif host.container_cgroups and host.has("pids"):
        # Podman's default is 2048 tasks; Docker's (and the contract's) is no
        # limit. (Where containers cannot use the pids controller, nothing
        # is asked: a rootless engine sets no default there.)
        limits["pids"] = {"limit": -1}
    if spec.memory is not None:
        # Swap equal to memory: no swap, so going over the limit is an OOM kill.
        limits["memory"] = {"limit": spec.memory, "swap": spec.memory}
    if spec.cpus is not None:
        period = 100_000
        limits["cpu"] = {"quota": max(1000, round(spec.cpus * period)), "period": period}
    return limits
