"""The Podman driver: the libpod REST API (``podman system service``) over a unix socket.

Every call goes through :class:`enginekit.transport.Transport` to
``/v4.0.0/libpod/...``; :mod:`.convert` turns the answers into models and
:mod:`.errors` the failures into ``enginekit.errors``. Where Podman differs
from Docker, the adapter makes up for it here (see the module docs of
:mod:`.convert` for what is hidden in reports):

- containers always run with Podman's init (catatonit) as PID 1, with a
  working directory created when missing, an unlimited pids limit unless
  one is asked for, swap equal to the memory limit, and without the
  ``TERM``/``container`` variables Podman adds to the environment;
- ``wait`` polls the container briefly itself (libpod's ``wait`` answers
  only after the post-exit cleanup, ~0.2 s later), then hands over to
  libpod's ``wait`` with a short poll interval;
- a build runs without intermediate layers, so that a failed build leaves
  no image behind, and a stage image left over is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import io
import math
import os
import posixpath
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import attrs

from enginekit import ociarchive
from enginekit.capabilities import Capability
from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    InvalidSpec,
    NotFound,
    Unsupported,
)
from enginekit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecResult,
    Image,
    LogLine,
    PathStat,
    Stats,
)
from enginekit.transport import Response, Transport, demux_frames

from . import convert
from .build import BuildLog
from .errors import (
    check,
    error_for,
    exec_start_failure,
    init_exec_failure,
    map_errors,
    message_of,
)
from .streams import log_lines

__all__ = ["DEFAULT_ADDRESS", "HINT", "PodmanDriver"]

DEFAULT_ADDRESS = "unix:///run/podman/podman.sock"
HINT = (
    "start it with `podman system service --time=0 unix:///run/podman/podman.sock` "
    "(or `bash scripts/setup-engines.sh`)"
)
API = "/v4.0.0/libpod"
_PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"
# Variables Podman puts into every container that Docker does not.
_PODMAN_ENV = ("TERM", "container")
_ALL_POLL = 1.0  # seconds of client-side polling before libpod's wait takes over
_LIST_WORKERS = 8


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class _ArchiveStream(io.RawIOBase):
    """A tar stream from ``GET .../archive``: reads the response, closes it when done."""

    def __init__(self, resp: Response, address: str) -> None:
        self._resp = resp
        self._fp = resp.fp
        self._address = address

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._fp.read(len(buffer))
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise EngineUnavailable(
                f"reading an archive failed ({reason})", address=self._address
            ) from exc
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class PodmanDriver:
    """A :class:`enginekit.driver.Driver` for Podman 4.x's libpod API."""

    name = "podman"
    capabilities: frozenset[Capability] = frozenset(Capability) - {
        Capability.PULL,
        Capability.PUSH,
    }

    def __init__(self, address: str = DEFAULT_ADDRESS, *, pool_size: int = 8) -> None:
        self.address = address
        self._transport = Transport(address, hint=HINT, pool_size=pool_size)
        self._host_memory: int | None = None
        self._lock = threading.Lock()
        self._oom_cache: dict[tuple[str, dt.datetime | None], bool] = {}
        # When this driver last sent a container a stop or a signal (libpod
        # does not always record a `stop` event).
        self._signalled: dict[str, dt.datetime] = {}
        # (image id, working directory) -> (existing part, resolved; missing parts)
        self._workdirs: dict[tuple[str, str], tuple[str, list[str]]] = {}

    # -- plumbing ------------------------------------------------------------
    @property
    def transport(self) -> Transport:
        """The HTTP transport (engine-specific extra, not part of the portable API)."""
        return self._transport

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self._transport.request(method, API + path, **kwargs)

    def _json(
        self,
        method: str,
        path: str,
        *,
        missing: type[NotFound] = ContainerNotFound,
        what: str = "",
        **kwargs: Any,
    ) -> Any:
        with map_errors(what or f"{method} {path}"):
            resp = self._request(method, path, **kwargs)
            check(resp, missing=missing)
            return resp.json()

    def _call(
        self, method: str, path: str, *, missing: type[NotFound] = ContainerNotFound, **kw: Any
    ) -> int:
        """A request whose body does not matter; returns the status (2xx or 304)."""
        with map_errors(f"{method} {path}"):
            resp = self._request(method, path, **kw)
            check(resp, missing=missing)
            resp.read()
            return resp.status

    # -- engine --------------------------------------------------------------
    def ping(self) -> None:
        try:
            resp = self._transport.request("GET", "/_ping", timeout=10)
            body = resp.read()
        except EngineUnavailable:
            raise
        except EngineError as exc:
            raise EngineUnavailable(
                f"podman did not answer ({exc})", address=self.address, hint=HINT
            ) from exc
        if resp.status != 200:
            raise EngineUnavailable(
                f"podman answered /_ping with HTTP {resp.status} ({message_of(body)})",
                address=self.address,
                hint=HINT,
            )

    def info(self) -> EngineInfo:
        data = self._json("GET", "/info", what="info")
        with map_errors("info"):
            host = data.get("host") or {}
            version = data.get("version") or {}
            store = data.get("store") or {}
            self._host_memory = int(host.get("memTotal") or 0) or None
            return EngineInfo(
                name=self.name,
                version=str(version.get("Version") or ""),
                api_version=str(version.get("APIVersion") or ""),
                os=str(host.get("os") or version.get("Os") or ""),
                arch=str(host.get("arch") or ""),
                storage_root=str(store.get("graphRoot") or ""),
            )

    def close(self) -> None:
        self._transport.close()

    # -- images --------------------------------------------------------------
    def _image_raw(self, ref: str) -> dict[str, Any]:
        return self._image_lookup(ref)[0]

    def _image_lookup(self, ref: str) -> tuple[dict[str, Any], str]:
        """``GET /images/{ref}/json``, trying Podman's ``localhost/`` name first.

        Returns the image data and the name that found it.
        """
        candidates = [convert.engine_image_ref(ref)]
        if candidates[0] != ref:
            candidates.append(ref)
        last: NotFound | None = None
        for cand in candidates:
            try:
                data = self._json("GET", f"/images/{_q(cand)}/json", missing=ImageNotFound)
            except NotFound as exc:
                last = exc
                continue
            if not isinstance(data, dict):
                raise EngineError("podman: unexpected answer to image inspect")
            return data, cand
        raise ImageNotFound(f"no image {ref!r}") from last

    def image_inspect(self, ref: str) -> Image:
        data = self._image_raw(ref)
        with map_errors("image inspect"):
            return convert.image_from_inspect(data, engine=self.name)

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        rows = self._list_images()
        ids: list[str] = []
        with map_errors("image list"):
            for row in rows or ():
                tags = [convert.user_image_name(t) for t in row.get("RepoTags") or ()]
                tags = [t for t in tags if not t.startswith("<none>")]
                if name is not None and not _name_matches(name, tags):
                    continue
                if labels and not _labels_match(row.get("Labels") or {}, labels):
                    continue
                ids.append(str(row["Id"]))
        images = self._map_parallel(ids, self._image_or_none)
        out = [img for img in images if img is not None]
        return sorted(out, key=lambda i: (i.tags, i.id))

    def _list_images(self) -> Any:
        return self._list("/images/json", {"all": False}, "image list")

    def _list(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        """A list endpoint, read again when it fails because an object went
        away while it was being listed (another client at work)."""
        for attempt in range(5):
            try:
                return self._json("GET", path, params=params, what=what)
            except (EngineUnavailable, EngineTimeout):
                raise
            except EngineError:
                # "image not known", "layer not known": an object went away
                # while the list was being read. Reading is safe to repeat.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return []  # pragma: no cover

    def _image_or_none(self, image_id: str) -> Image | None:
        try:
            return self.image_inspect(image_id)
        except ImageNotFound:
            return None

    def image_tag(self, ref: str, new_ref: str) -> None:
        source = self._image_raw(ref)
        target = convert.engine_image_ref(new_ref)
        repo, _, tag = target.rpartition(":")
        if "/" in tag or not repo:
            repo, tag = target, "latest"
        self._call(
            "POST",
            f"/images/{_q(str(source['Id']))}/tag",
            params={"repo": repo, "tag": tag},
            missing=ImageNotFound,
        )

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        data = self._image_raw(ref)
        image_id = str(data["Id"])
        names = [str(n) for n in data.get("RepoTags") or ()]
        by_name = not (ref.startswith("sha256:") or image_id.startswith(ref))
        if by_name:
            wanted = convert.engine_image_ref(ref)
            name = wanted if wanted in names else ref
            if len(names) > 1:
                # Only that tag goes, the image stays (as `docker rmi name:tag`).
                self._untag(image_id, name)
                return
        elif len(names) > 1 and not force:
            raise Conflict(
                f"image {ref} is referenced by several tags ({len(names)}); remove them by name "
                "or use force"
            )
        users = self._containers_using(image_id)
        if users:
            if not force:
                raise Conflict(f"image {ref} is in use by {len(users)} container(s)")
            if not by_name and self._containers_using(image_id, running=True):
                raise Conflict(f"image {ref} is in use by a running container (cannot be forced)")
            # `docker rmi -f` of an image a stopped container uses removes
            # it and leaves the container; Podman cannot keep a container
            # without its image (it would remove the containers): the tags
            # go and the image stays, untagged, for the container.
            for n in names if not by_name else [convert.engine_image_ref(ref)]:
                self._untag(image_id, n)
            return
        self._call(
            "DELETE",
            f"/images/{_q(image_id)}",
            params={"force": bool(force)},
            missing=ImageNotFound,
        )

    def _untag(self, image_id: str, name: str) -> None:
        repo, _, tag = name.rpartition(":")
        if "/" in tag or not repo:
            repo, tag = name, "latest"
        self._call(
            "POST",
            f"/images/{_q(image_id)}/untag",
            params={"repo": repo, "tag": tag},
            missing=ImageNotFound,
        )

    def _containers_using(self, image_id: str, *, running: bool = False) -> list[str]:
        filters: dict[str, list[str]] = {"ancestor": [image_id]}
        if running:
            filters["status"] = ["running", "paused"]
        rows = self._list("/containers/json", {"all": True, "filters": filters}, "container list")
        with map_errors("container list"):
            return [str(r["Id"]) for r in rows or () if str(r.get("ImageID", "")) == image_id]

    def image_save(self, ref: str, path: str) -> None:
        data = self._image_raw(ref)
        name = convert.engine_image_ref(ref)
        wanted = name if name in (data.get("RepoTags") or ()) else str(data["Id"])
        with map_errors("image save"):
            resp = self._request(
                "GET",
                f"/images/{_q(wanted)}/get",
                params={"format": "docker-archive"},
                timeout=None,
            )
            check(resp, missing=ImageNotFound)
            with resp, open(path, "wb") as out:
                for chunk in resp.iter_chunks():
                    out.write(chunk)
            ociarchive.normalize(path, rename=ociarchive.strip_localhost)

    def image_load(self, path: str) -> list[Image]:
        with map_errors("image load"), tempfile.TemporaryDirectory(prefix="ek-podman-") as tmp:
            staged = os.path.join(tmp, "image.tar")
            ociarchive.to_combined(path, staged, rename=ociarchive.add_localhost)
            with open(staged, "rb") as body:
                data = self._json(
                    "POST",
                    "/images/load",
                    body=body,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=None,
                    missing=ImageNotFound,
                    what="image load",
                )
            names = [str(n) for n in (data or {}).get("Names") or ()]
        seen: dict[str, Image] = {}
        for n in names:
            image = self.image_inspect(n)
            seen.setdefault(image.id, image)
        return sorted(seen.values(), key=lambda i: (i.tags, i.id))

    def image_pull(self, ref: str) -> Image:
        raise Unsupported(self.name, "image pull", "no registry is configured for this adapter")

    def image_push(self, ref: str) -> None:
        raise Unsupported(self.name, "image push", "no registry is configured for this adapter")

    def image_build(
        self, request: BuildRequest, *, progress: Callable[[str], None] | None = None
    ) -> Image:
        from enginekit.buildcontext import context_tar

        params: list[tuple[str, Any]] = [
            ("dockerfile", request.dockerfile),
            ("rm", True),
            ("forcerm", True),
            ("layers", False),
            ("pull", False),
        ]
        params += [("t", convert.engine_image_ref(t)) for t in request.tags]
        if request.build_args:
            params.append(("buildargs", dict(request.build_args)))
        if request.labels:
            params.append(("labels", dict(request.labels)))
        if request.target:
            params.append(("target", request.target))
        log = BuildLog(progress=progress)
        with map_errors("image build"), context_tar(request.context, request.dockerfile) as body:
            resp = self._request(
                "POST",
                "/build",
                params=params,
                body=body,
                headers={"Content-Type": "application/x-tar"},
                timeout=None,
            )
            check(resp, missing=ImageNotFound)
            with resp:
                for item in resp.iter_json():
                    log.feed(item)
        try:
            log.finish()
        except EngineError:
            self._remove_leftovers(log.committed)
            raise
        if log.committed[:-1]:
            self._remove_leftovers(log.committed[:-1])
        ref = request.tags[0] if request.tags else log.image_id
        if ref is None:
            raise EngineError("podman: the build ended without an image id")
        return self.image_inspect(ref)

    def _remove_leftovers(self, short_ids: list[str]) -> None:
        """Remove untagged images a build committed on its way (stage images)."""
        for short in reversed(short_ids):
            try:
                data = self._json("GET", f"/images/{_q(short)}/json", missing=ImageNotFound)
                if data.get("RepoTags") or self._containers_using(str(data["Id"])):
                    continue
                self._call("DELETE", f"/images/{_q(str(data['Id']))}", missing=ImageNotFound)
            except EngineError:
                continue

    # -- containers ----------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
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
            "resource_limits": _resources(spec),
        }
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
            body["stop_signal"] = convert.signal_number(spec.stop_signal)
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
            "POST", "/containers/create", json=body, missing=ImageNotFound, what="container create"
        )
        with map_errors("container create"):
            return str(data["Id"])

    def _resolve_in_container(self, cid: str, path: str) -> tuple[str, list[str]]:
        """``path`` with every symbolic link resolved inside the container.

        Returns the existing part (resolved) and the components that do not exist.
        """
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current = "/"
        hops = 0
        for i, part in enumerate(parts):
            if part == "..":
                current = posixpath.dirname(current) or "/"
                continue
            candidate = posixpath.join(current, part)
            stat = self.container_stat_path(cid, candidate)
            if stat is None:
                rest = posixpath.normpath("/".join(parts[i:]))
                if rest.startswith(".."):
                    # ".." past the missing part: resolve what it names instead.
                    return self._resolve_in_container(cid, posixpath.join(current, rest))
                return current, [p for p in rest.split("/") if p not in ("", ".")]
            if stat.is_symlink:
                hops += 1
                if hops > 40:
                    raise InvalidSpec(f"too many levels of symbolic links in {path!r}")
                target = stat.link_target
                current = (
                    posixpath.normpath(posixpath.join(current, target)) if target else candidate
                )
            else:
                current = candidate
        return current, []

    def _prepare_workdir(self, cid: str, image_id: str, workdir: str) -> str:
        """Make sure the working directory exists; return it free of links.

        A missing one is created as Docker does: owned by root, mode 0755
        (Podman's own ``create_working_dir`` gives it to the container's user).
        How a path resolves in a new container depends only on its image: it
        is worked out once per image (each look costs a mount of the
        container's file system) and remembered.
        """
        key = (image_id, workdir)
        with self._lock:
            known = self._workdirs.get(key)
        if known is None:
            known = self._resolve_in_container(cid, workdir)
            with self._lock:
                if len(self._workdirs) > 1024:
                    self._workdirs.clear()
                self._workdirs[key] = known
        existing, missing = known
        if not missing:
            return existing
        buf = io.BytesIO()
        now = int(time.time())
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for i in range(len(missing)):
                entry = tarfile.TarInfo("/".join(missing[: i + 1]))
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o755
                entry.mtime = now
                tar.addfile(entry)
        self._call(
            "PUT",
            f"/containers/{_q(cid)}/archive",
            params={"path": existing, "copyUIDGID": False},
            body=buf.getvalue(),
            headers={"Content-Type": "application/x-tar"},
        )
        return posixpath.join(existing, *missing)

    def container_start(self, id: str) -> None:
        self._call("POST", f"/containers/{_q(id)}/start", timeout=None)

    def _container_raw(self, ref: str) -> dict[str, Any]:
        data = self._json("GET", f"/containers/{_q(ref)}/json", what="container inspect")
        if not isinstance(data, dict):
            raise EngineError("podman: unexpected answer to container inspect")
        return data

    def container_inspect(self, ref: str) -> Container:
        data = self._container_raw(ref)
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
            and self._oom_killed(container)
        ):
            container = attrs.evolve(container, oom_killed=True)
        return container

    def _oom_killed(self, container: Container) -> bool:
        """OOM kill of an exited container, from its events (cached once final)."""
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
                with map_errors("events"):
                    resp = self._request(
                        "GET",
                        "/events",
                        params={
                            "stream": False,
                            "filters": {"container": [container.id], "type": ["container"]},
                        },
                    )
                    check(resp)
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
            resp = self._request(
                "GET",
                f"/containers/{_q(cid)}/logs",
                params={"stdout": False, "stderr": True, "tail": 1},
            )
            check(resp)
            with resp:
                frames = list(demux_frames(resp.iter_chunks()))
        except EngineError:
            return code
        if not frames:
            return code
        return init_exec_failure(frames[-1][1]) or code

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        filters: dict[str, list[str]] = {}
        if labels:
            filters["label"] = [k if v is None else f"{k}={v}" for k, v in labels.items()]
        if not all:
            # libpod's list without `all` leaves paused containers out.
            filters["status"] = ["running", "paused"]
        params: dict[str, Any] = {"all": True}
        if filters:
            params["filters"] = filters
        rows = self._list("/containers/json", params, "container list")
        with map_errors("container list"):
            ids = [
                str(r["Id"])
                for r in rows or ()
                if name is None or name in [str(n).lstrip("/") for n in r.get("Names") or ()]
            ]
        found = self._map_parallel(ids, self._container_or_none)
        out = [c for c in found if c is not None]
        if not all:
            out = [c for c in out if c.state in (ContainerState.RUNNING, ContainerState.PAUSED)]
        if labels:
            out = [c for c in out if _labels_match(c.labels, labels)]
        return sorted(out, key=lambda c: (c.created_at is None, c.created_at, c.id))

    def _container_or_none(self, cid: str) -> Container | None:
        try:
            return self.container_inspect(cid)
        except ContainerNotFound:
            return None

    def _map_parallel(self, keys: list[str], fn: Callable[[str], Any]) -> list[Any]:
        if len(keys) <= 2:
            return [fn(k) for k in keys]
        with ThreadPoolExecutor(max_workers=min(_LIST_WORKERS, len(keys))) as pool:
            return list(pool.map(fn, keys))

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        fast_until = time.monotonic() + _ALL_POLL
        delay = 0.005
        while True:
            data = self._container_raw(id)
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
                what="container wait",
            )
        except EngineTimeout as exc:
            raise EngineTimeout(f"container {id[:12]} did not exit within {timeout} s") from exc
        with map_errors("container wait"):
            result = int(code)
        return self._exit_code(id, result)

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
        if not stdout and not stderr:
            self._container_raw(id)  # ContainerNotFound still applies
            return iter(())
        params: dict[str, Any] = {
            "stdout": stdout,
            "stderr": stderr,
            "timestamps": True,
            "follow": follow,
        }
        if since is not None:
            params["since"] = f"{since:.9f}"
        if tail is not None and follow:
            params["tail"] = tail
        with map_errors("container logs"):
            resp = self._request(
                "GET",
                f"/containers/{_q(id)}/logs",
                params=params,
                timeout=None if follow else 60,
            )
            check(resp)
        return self._log_iter(resp, tail=None if follow else tail)

    def _log_iter(self, resp: Response, *, tail: int | None) -> Iterator[LogLine]:
        with resp:
            lines = log_lines(demux_frames(resp.iter_chunks()), timestamps=True)
            if tail is None:
                yield from lines
                return
            if tail == 0:
                return
            kept: list[LogLine] = []
            for line in lines:
                kept.append(line)
                if len(kept) > 2 * tail + 64:
                    del kept[:-tail]
            yield from kept[-tail:]

    def container_exec(
        self,
        id: str,
        command: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        data = self._container_raw(id)
        with map_errors("exec"):
            state = data.get("State") or {}
            if state.get("Status") != "running":
                raise Conflict(f"container {id[:12]} is {state.get('Status')}, not running")
            container = convert.container_from_inspect(data, engine=self.name)
            exec_env = dict(env or {})
            hostname = container.env.get("HOSTNAME", container.hostname)
            if "HOSTNAME" not in exec_env and hostname:
                # Docker's exec sees the container's HOSTNAME; Podman's does not.
                exec_env = {"HOSTNAME": hostname, **exec_env}
        body: dict[str, Any] = {
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": False,
            "Cmd": list(command),
        }
        if exec_env:
            body["Env"] = [f"{k}={v}" for k, v in exec_env.items()]
        if workdir is not None:
            body["WorkingDir"] = workdir
        if user is not None:
            body["User"] = user
        with map_errors("exec"):
            resp = self._request("POST", f"/containers/{_q(id)}/exec", json=body)
            if resp.status == 500:
                message = message_of(resp.read())
                err = error_for(500, message)
                # "can only create exec sessions on running containers"
                raise err if isinstance(err, NotFound) else Conflict(message)
            check(resp)
            exec_id = str(resp.json()["Id"])
            start = self._request(
                "POST",
                f"/exec/{_q(exec_id)}/start",
                json={"Detach": False, "Tty": False},
                timeout=None,
            )
            if not start.ok:
                message = message_of(start.read())
                state = self._container_raw(id).get("State") or {}
                if state.get("Status") != "running":
                    raise Conflict(message)
                # The process could not be started (e.g. an unknown user):
                # Docker reports that as exit code 126 with the reason.
                return ExecResult(exit_code=126, stdout=b"", stderr=message.encode() + b"\n")
            out, err_ = bytearray(), bytearray()
            with start:
                for stream, payload in demux_frames(start.iter_chunks()):
                    if stream == 1:
                        out += payload
                    elif stream == 2:
                        err_ += payload
            info = self._json("GET", f"/exec/{_q(exec_id)}/json", what="exec inspect")
            code = info.get("ExitCode")
            exit_code = int(code) if code is not None else -1
            stderr = bytes(err_)
            failed = exec_start_failure(exit_code, stderr)
            if failed is not None:
                exit_code, stderr = failed
            return ExecResult(exit_code=exit_code, stdout=bytes(out), stderr=stderr)

    def container_pause(self, id: str) -> None:
        self._call("POST", f"/containers/{_q(id)}/pause")

    def container_unpause(self, id: str) -> None:
        self._call("POST", f"/containers/{_q(id)}/unpause")

    def _note_signal(self, id: str) -> None:
        with self._lock:
            if len(self._signalled) > 4096:
                self._signalled.clear()
            self._signalled[id] = dt.datetime.now(dt.UTC)

    def container_stop(self, id: str, *, timeout: float) -> None:
        self._note_signal(id)
        self._call(
            "POST",
            f"/containers/{_q(id)}/stop",
            params={"timeout": max(0, math.ceil(timeout))},
            timeout=None,
        )

    def container_kill(self, id: str, *, signal: str) -> None:
        self._note_signal(id)
        self._call("POST", f"/containers/{_q(id)}/kill", params={"signal": signal})

    def container_restart(self, id: str, *, timeout: float) -> None:
        self._note_signal(id)
        self._call(
            "POST",
            f"/containers/{_q(id)}/restart",
            params={"t": max(0, math.ceil(timeout))},
            timeout=None,
        )

    def container_remove(self, id: str, *, force: bool = False) -> None:
        params: dict[str, Any] = {"force": bool(force), "v": True}
        if force:
            params["timeout"] = 0
        self._call("DELETE", f"/containers/{_q(id)}", params=params, timeout=None)

    # -- files -----------------------------------------------------------------
    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        stat = self._stat_raw(id, path)
        return stat[0] if stat is not None else None

    def _stat_raw(self, id: str, path: str) -> tuple[PathStat, int] | None:
        """The path's stat and its mtime (seconds), or None if absent."""
        with map_errors("stat path"):
            resp = self._request("HEAD", f"/containers/{_q(id)}/archive", params={"path": path})
            resp.read()
            if resp.status == 404:
                self._container_raw(id)  # ContainerNotFound if it is the container
                return None
            check(resp)
            header = resp.headers.get(_PATH_STAT_HEADER)
            if not header:
                raise EngineError("podman: no path stat in the answer")
            return convert.path_stat(header, path), convert.path_mtime(header)

    def _link_archive(self, id: str, path: str, stat: PathStat, mtime: int) -> IO[bytes]:
        """A tar holding the symbolic link ``path`` itself, as Docker sends it."""
        target = self._link_text(id, path, stat)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            entry = tarfile.TarInfo(stat.name)
            entry.type = tarfile.SYMTYPE
            entry.linkname = target
            entry.mode = 0o777
            entry.mtime = mtime
            tar.addfile(entry)
        buf.seek(0)
        return buf

    def _link_text(self, id: str, path: str, stat: PathStat) -> str:
        """What the link at ``path`` says (``readlink``).

        libpod reports the resolved target and, as the size, the length of
        the link's text: when the absolute target or the target relative to
        the link's folder has that length, that is the text. Otherwise the
        link's folder is read until the link is found.
        """
        folder = posixpath.dirname(path.rstrip("/")) or "/"
        absolute = stat.link_target
        relative = posixpath.relpath(absolute, folder) if absolute.startswith("/") else ""
        if absolute and len(absolute.encode()) == stat.size:
            return absolute
        if relative and len(relative.encode()) == stat.size:
            return relative
        with map_errors("get archive"):
            resp = self._request("GET", f"/containers/{_q(id)}/archive", params={"path": folder})
            check(resp)
            with resp, tarfile.open(fileobj=resp.fp, mode="r|") as tar:
                top = ""
                for member in tar:
                    if not top:
                        top = member.name.rstrip("/")
                        continue
                    if member.name == f"{top}/{stat.name}" and member.issym():
                        return member.linkname
        return absolute

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        stat = self.container_stat_path(id, path)
        if stat is None:
            raise NotFound(f"no such directory in the container: {path}")
        if not stat.is_dir:
            raise InvalidSpec(f"not a directory in the container: {path}")
        self._call(
            "PUT",
            f"/containers/{_q(id)}/archive",
            # Keep the tar's owners, as Docker does (libpod would chown
            # everything to the container's user).
            params={"path": path, "copyUIDGID": False},
            body=data,
            headers={"Content-Type": "application/x-tar"},
        )

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        stat = self._stat_raw(id, path)
        if stat is not None and stat[0].is_symlink:
            # libpod archives what a link points to; Docker (and the
            # contract) give the link itself.
            return self._link_archive(id, path, *stat)
        with map_errors("get archive"):
            resp = self._request("GET", f"/containers/{_q(id)}/archive", params={"path": path})
            if resp.status == 404:
                resp.read()
                self._container_raw(id)
                raise NotFound(f"no such path in the container: {path}")
            check(resp)
        return io.BufferedReader(_ArchiveStream(resp, self.address), buffer_size=65536)

    def container_stats(self, id: str) -> Stats:
        data = self._json(
            "GET",
            "/containers/stats",
            params={"containers": id, "stream": False},
            what="stats",
        )
        with map_errors("stats"):
            entries = data.get("Stats") or []
            if not entries:
                raise ContainerNotFound(f"no stats for container {id[:12]}")
            if self._host_memory is None:
                self.info()
            return convert.stats_from_libpod(entries[0], host_memory=self._host_memory)


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    limits: dict[str, Any] = {
        # Podman's default is 2048 tasks; Docker's (and the contract's) is no limit.
        "pids": {"limit": spec.pids_limit if spec.pids_limit is not None else -1},
    }
    if spec.memory is not None:
        # Swap equal to memory: no swap, so going over the limit is an OOM kill.
        limits["memory"] = {"limit": spec.memory, "swap": spec.memory}
    if spec.cpus is not None:
        period = 100_000
        limits["cpu"] = {"quota": max(1000, round(spec.cpus * period)), "period": period}
    return limits


def _name_matches(name: str, tags: list[str]) -> bool:
    if ":" in name.rsplit("/", 1)[-1]:
        return name in tags
    return any(t.rpartition(":")[0] == name for t in tags)


def _labels_match(have: Mapping[str, str], wanted: Mapping[str, str | None]) -> bool:
    for key, value in wanted.items():
        if key not in have:
            return False
        if value is not None and have[key] != value:
            return False
    return True
