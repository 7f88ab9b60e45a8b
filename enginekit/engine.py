"""The facade users hold: :class:`Engine`, with ``images`` and ``containers``.

Everything that is the same on every engine lives here, once: input
validation (:mod:`enginekit.validate`), unit parsing, resolution of container
refs, ``run`` as create + start, fresh snapshots after each operation,
idempotence (``stop``/``kill`` of an exited container, ``unpause`` of a
running one), the docker-cp rules of ``copy_to``/``copy_from`` and the error
contract. A :class:`~enginekit.driver.Driver` below only has primitives.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import attrs

from . import validate
from ._guard import _guard
from .capabilities import Capability
from .driver import container_summaries
from .errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidSpec,
    NotFound,
    Unsupported,
)
from .logstream import LogStream
from .models import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineInfo,
    ExecResult,
    Image,
    Stats,
)

if TYPE_CHECKING:
    from .driver import Driver, ProgressCallback

__all__ = ["ContainerService", "Engine", "ImageService"]

P = ParamSpec("P")
R = TypeVar("R")

_FULL_ID = re.compile(r"[0-9a-f]{64}")
_SPEC_CAPABILITIES = {
    "published ports": Capability.PORTS,
    "bind mounts": Capability.BIND_MOUNTS,
    "a memory limit": Capability.MEMORY_LIMIT,
    "a CPU limit": Capability.CPU_LIMIT,
    "a pids limit": Capability.PIDS_LIMIT,
}
_NETWORK_CAPABILITIES = {
    "none": Capability.NETWORK_NONE,
    "bridge": Capability.NETWORK_BRIDGE,
    "host": Capability.NETWORK_HOST,
}
_KILL_WAIT = 30.0


def _format_ts(ts: _dt.datetime | None) -> bytes:
    if ts is None:
        return b""
    return ts.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z ").encode()


_Listed = TypeVar("_Listed", Container, ContainerSummary)


@attrs.frozen
class _ListQuery:
    """The filters of ``list()`` and ``summaries()``, checked once, the same way."""

    all: bool
    name: str | None
    labels: Mapping[str, str | None] | None
    state: ContainerState | None

    @classmethod
    def of(
        cls,
        all: bool,
        name: str | None,
        labels: Mapping[str, str | None] | None,
        state: ContainerState | str | None,
    ) -> _ListQuery:
        wanted = validate.container_state(state)
        if name is not None:
            validate.name(name)
        needs_all = bool(all) or wanted in (ContainerState.CREATED, ContainerState.EXITED)
        return cls(needs_all, name, validate.label_filter(labels), wanted)

    def keep(self, found: builtins.list[_Listed]) -> builtins.list[_Listed]:
        """``found`` in the wanted state (all of it without a state filter)."""
        if self.state is None:
            return found
        return [c for c in found if c.state is self.state]


class Engine:
    """A connection to one engine. Thread-safe; a context manager (``close()``).

    Get one with :func:`enginekit.connect`.
    """

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self.images = ImageService(self)
        self.containers = ContainerService(self)

    @property
    def name(self) -> str:
        """The adapter's name: ``"docker"``, ``"podman"``, ``"lxc"``..."""
        return self._driver.name

    @property
    def driver(self) -> Driver:
        """The adapter's driver: engine-specific extras live there (not portable)."""
        return self._driver

    @property
    def address(self) -> str:
        return self._driver.address

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this engine instance can do, detected once (at the first use of
        the connection) from its version, cgroup layout, rootless mode and host."""
        return self._capabilities()

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        """Why each capability this instance lacks is missing (capability -> reason)."""
        return self._unsupported()

    @_guard
    def _capabilities(self) -> frozenset[Capability]:
        return frozenset(self._driver.capabilities)

    @_guard
    def _unsupported(self) -> Mapping[Capability, str]:
        from .models import FrozenDict

        reasons = getattr(self._driver, "unsupported", None) or {}
        caps = self._capabilities()
        return FrozenDict(
            {Capability(k): str(v) for k, v in reasons.items() if Capability(k) not in caps}
        )

    @_guard
    def info(self) -> EngineInfo:
        return self._driver.info()

    @_guard
    def ping(self) -> None:
        """Raise ``EngineUnavailable`` unless the engine answers."""
        self._driver.ping()

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Engine {self.name} at {self.address}>"

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self._capabilities():
            reason = self._unsupported().get(capability)
            raise Unsupported(self.name, operation, reason, capability=capability)

    def _require_spec(self, spec: ContainerSpec) -> None:
        """Every capability a container spec needs, checked before anything is created."""
        for needed, field in (
            (bool(spec.ports), "published ports"),
            (bool(spec.mounts), "bind mounts"),
            (spec.memory is not None, "a memory limit"),
            (spec.cpus is not None, "a CPU limit"),
            (spec.pids_limit is not None, "a pids limit"),
        ):
            if needed:
                self._require(_SPEC_CAPABILITIES[field], field)
        self._require(_NETWORK_CAPABILITIES[spec.network], f'network "{spec.network}"')


class ImageService:
    """``engine.images``: build, inspect, list, tag, remove, save, load, pull, push."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._driver = engine._driver

    @_guard
    def build(
        self,
        context: str | os.PathLike[str],
        *,
        dockerfile: str = "Dockerfile",
        tag: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        target: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Image:
        """Build the Dockerfile in ``context``; return the image.

        Sources that escape the context, a missing context or Dockerfile and
        syntax errors are ``InvalidSpec`` before anything is built; a failing
        step is ``BuildFailed`` and leaves nothing behind.
        """
        from .buildcontext import validate_build

        self._engine._require(Capability.BUILD, "build")
        if isinstance(tags, str):
            raise InvalidSpec("tags must be a list of str; use tag= for one")
        if not isinstance(tags, list | tuple):
            raise InvalidSpec(f"tags must be a list of str, not {type(tags).__name__}")
        all_tags = ([tag] if tag is not None else []) + list(tags)
        normal = tuple(dict.fromkeys(validate.image_ref(t, "tag") for t in all_tags))
        for t in normal:
            if t.startswith("sha256:") or ":" not in t:
                raise InvalidSpec(f"tag {t!r} must be name:tag")
        args = validate.build_args(build_args)
        lbls = validate.labels(labels)
        if target is not None and (not isinstance(target, str) or not target):
            raise InvalidSpec("target must be a stage name")
        if progress is not None and not callable(progress):
            raise InvalidSpec("progress must be callable")
        if not isinstance(dockerfile, str) or not dockerfile:
            raise InvalidSpec("dockerfile must be a path relative to the context")
        validate.host_path(dockerfile, "dockerfile")
        ctx = os.path.realpath(validate.host_path(context, "build context"))
        validate_build(ctx, dockerfile, dict(args), target=target)
        from .models import BuildRequest

        request = BuildRequest(
            context=ctx,
            dockerfile=dockerfile,
            tags=normal,
            build_args=args,
            labels=lbls,
            target=target,
        )
        return self._driver.image_build(request, progress=progress)

    @_guard
    def get(self, ref: str) -> Image:
        return self._driver.image_inspect(validate.image_ref(ref))

    @_guard
    def exists(self, ref: str) -> bool:
        try:
            self._driver.image_inspect(validate.image_ref(ref))
        except ImageNotFound:
            return False
        return True

    @_guard
    def list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> builtins.list[Image]:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise InvalidSpec("name must be a non-empty str")
            if ":" in name.rsplit("/", 1)[-1]:
                name = validate.image_ref(name, "name")
            else:
                validate.image_ref(name, "name")
        return self._driver.image_list(name=name, labels=validate.label_filter(labels))

    @_guard
    def tag(self, ref: str, new_ref: str) -> Image:
        src = validate.image_ref(ref)
        dst = validate.image_ref(new_ref, "new_ref")
        if dst.startswith("sha256:") or ":" not in dst:
            raise InvalidSpec("new_ref must be name:tag")
        self._driver.image_tag(src, dst)
        return self._driver.image_inspect(dst)

    @_guard
    def remove(self, ref: str, *, force: bool = False) -> None:
        self._driver.image_remove(validate.image_ref(ref), force=bool(force))

    @_guard
    def save(self, ref: str, path: str | os.PathLike[str]) -> None:
        """Write ``ref`` as an OCI image archive (also loadable by ``docker load``)."""
        self._engine._require(Capability.IMAGE_SAVE, "image save")
        image = validate.image_ref(ref)
        dest = os.path.abspath(validate.host_path(path, "save path"))
        if os.path.isdir(dest):
            raise InvalidSpec("save path is a directory; give a file path")
        if not os.path.isdir(os.path.dirname(dest)):
            raise InvalidSpec("the folder of the save path does not exist")
        partial = dest + ".partial"
        try:
            self._driver.image_save(image, partial)
            os.replace(partial, dest)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    @_guard
    def load(self, path: str | os.PathLike[str]) -> builtins.list[Image]:
        self._engine._require(Capability.IMAGE_LOAD, "image load")
        src = os.path.abspath(validate.host_path(path, "load path"))
        if not os.path.isfile(src):
            raise InvalidSpec("load path is not a file")
        return self._driver.image_load(src)

    @_guard
    def pull(self, ref: str) -> Image:
        """Pull ``registry/name:tag``. A ref naming no registry is ``ImageNotFound``
        at once: enginekit never reaches out to a public registry by default."""
        self._engine._require(Capability.PULL, "pull")
        image = validate.image_ref(ref)
        if validate.registry_of(ref) is None:
            raise ImageNotFound(
                f"images.pull: {ref} names no registry (give registry/name:tag)", ref=ref
            )
        return self._driver.image_pull(image)

    @_guard
    def push(self, ref: str) -> None:
        """Push ``registry/name:tag`` (a local image tagged with that name)."""
        self._engine._require(Capability.PUSH, "push")
        image = validate.image_ref(ref)
        if validate.registry_of(ref) is None:
            raise InvalidSpec(f"push: {ref} names no registry (tag it registry/name:tag first)")
        self._driver.image_push(image)


class ContainerService:
    """``engine.containers``: the container lifecycle and everything around it.

    ``ref`` is a :class:`Container`, a full id, a unique id prefix of 12+
    characters, or a name.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._driver = engine._driver

    # -- refs ----------------------------------------------------------------
    def _inspect(self, ref: str) -> Container:
        container = self._driver.container_inspect(ref)
        if container.name != ref and container.id != ref and len(ref) < 12:
            # Engines resolve short id prefixes differently: accept 12+ only.
            raise ContainerNotFound(f"no container named {ref!r} (id prefixes need 12+ characters)")
        return container

    def _id(self, ref: Container | str) -> str:
        if isinstance(ref, Container):
            return ref.id
        text = validate.container_ref(ref)
        if _FULL_ID.fullmatch(text):
            return text
        return self._inspect(text).id

    # -- lifecycle -----------------------------------------------------------
    @_guard
    def create(self, image: str, command: list[str] | None = None, **spec: Any) -> Container:
        """Create a container (state CREATED) from ``image``; see CONTRACT.md for ``spec``."""
        checked = validate.container_spec(image, command, spec, host=self._driver)
        self._engine._require_spec(checked)
        cid = self._driver.container_create(checked)
        return self._driver.container_inspect(cid)

    @_guard
    def start(self, ref: Container | str) -> Container:
        cid = self._id(ref)
        self._driver.container_start(cid)
        return self._driver.container_inspect(cid)

    @_guard
    def run(self, image: str, command: list[str] | None = None, **spec: Any) -> Container:
        """Create and start; if the start fails the container is removed again."""
        checked = validate.container_spec(image, command, spec, host=self._driver)
        self._engine._require_spec(checked)
        cid = self._driver.container_create(checked)
        try:
            self._driver.container_start(cid)
        except BaseException:
            with contextlib.suppress(EngineError):
                self._driver.container_remove(cid, force=True)
            raise
        return self._driver.container_inspect(cid)

    @_guard
    def get(self, ref: Container | str) -> Container:
        if isinstance(ref, Container):
            return self._driver.container_inspect(ref.id)
        return self._inspect(validate.container_ref(ref))

    @_guard
    def list(
        self,
        *,
        all: bool = False,
        name: str | None = None,
        labels: Mapping[str, str | None] | None = None,
        state: ContainerState | str | None = None,
    ) -> builtins.list[Container]:
        """Full snapshots (running and paused only, unless ``all``), filtered."""
        query = _ListQuery.of(all, name, labels, state)
        found = self._driver.container_list(all=query.all, labels=query.labels, name=query.name)
        return query.keep(found)

    @_guard
    def summaries(
        self,
        *,
        all: bool = False,
        name: str | None = None,
        labels: Mapping[str, str | None] | None = None,
        state: ContainerState | str | None = None,
    ) -> builtins.list[ContainerSummary]:
        """What ``list()`` gives, as the engine's own list says it: one engine
        request where the engine lists (see :class:`ContainerSummary` for the
        fields that list may not say). The same filters, checked the same way."""
        query = _ListQuery.of(all, name, labels, state)
        found = container_summaries(
            self._driver, all=query.all, labels=query.labels, name=query.name
        )
        return query.keep(found)

    @_guard
    def wait(self, ref: Container | str, *, timeout: float | None = None) -> int:
        """Block until the container exits; its exit code. ``EngineTimeout`` after ``timeout``."""
        limit = validate.timeout(timeout)
        return self._driver.container_wait(self._id(ref), timeout=limit)

    @_guard
    def pause(self, ref: Container | str) -> Container:
        self._engine._require(Capability.PAUSE, "pause")
        cid = self._id(ref)
        self._driver.container_pause(cid)
        return self._driver.container_inspect(cid)

    @_guard
    def unpause(self, ref: Container | str) -> Container:
        self._engine._require(Capability.PAUSE, "unpause")
        cid = self._id(ref)
        try:
            self._driver.container_unpause(cid)
        except Conflict:
            current = self._driver.container_inspect(cid)
            if current.state is ContainerState.RUNNING:
                return current
            raise
        return self._driver.container_inspect(cid)

    @_guard
    def stop(self, ref: Container | str, *, timeout: float = 10) -> Container:
        """Stop signal, then SIGKILL after ``timeout`` s. A no-op when already exited."""
        limit = validate.timeout(timeout)
        cid = self._id(ref)
        try:
            self._driver.container_stop(cid, timeout=limit if limit is not None else 10.0)
        except Conflict:
            current = self._driver.container_inspect(cid)
            if current.state in (ContainerState.EXITED, ContainerState.CREATED):
                return current
            raise
        return self._driver.container_inspect(cid)

    @_guard
    def kill(self, ref: Container | str, signal: str | int = "SIGKILL") -> Container:
        """Send ``signal``; with SIGKILL, return once the container has exited."""
        sig = validate.signal_name(signal)
        cid = self._id(ref)
        try:
            self._driver.container_kill(cid, signal=sig)
        except Conflict:
            current = self._driver.container_inspect(cid)
            if current.state is ContainerState.EXITED:
                return current
            raise
        if sig == "SIGKILL":
            self._driver.container_wait(cid, timeout=_KILL_WAIT)
        return self._driver.container_inspect(cid)

    @_guard
    def restart(self, ref: Container | str, *, timeout: float = 10) -> Container:
        limit = validate.timeout(timeout)
        cid = self._id(ref)
        self._driver.container_restart(cid, timeout=limit if limit is not None else 10.0)
        return self._driver.container_inspect(cid)

    @_guard
    def remove(self, ref: Container | str, *, force: bool = False) -> None:
        self._driver.container_remove(self._id(ref), force=bool(force))

    @_guard
    def prune(self, *, labels: Mapping[str, str | None] | None = None) -> builtins.list[str]:
        """Remove exited containers (with ``labels``, if given); their ids."""
        removed = []
        for c in container_summaries(self._driver, all=True, labels=validate.label_filter(labels)):
            if c.state is ContainerState.EXITED:
                try:
                    self._driver.container_remove(c.id, force=False)
                except NotFound:
                    continue
                removed.append(c.id)
        return removed

    # -- inside the container -------------------------------------------------
    @_guard
    def exec(
        self,
        ref: Container | str,
        command: builtins.list[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | int | None = None,
    ) -> ExecResult:
        """Run ``command`` in the running container. ``Conflict`` unless running."""
        self._engine._require(Capability.EXEC, "exec")
        argv = validate.argv(command)
        env_ = validate.env(env)
        wd = None if workdir is None else validate.abs_path(workdir, "workdir")
        usr = None if user is None else validate.user(user)
        return self._driver.container_exec(self._id(ref), argv, env=env_, workdir=wd, user=usr)

    @_guard
    def logs(
        self,
        ref: Container | str,
        *,
        stdout: bool = True,
        stderr: bool = True,
        timestamps: bool = False,
        tail: int | None = None,
    ) -> bytes:
        """Everything the container wrote so far (selected streams, in order), unchanged."""
        lines = self._lines(ref, stdout, stderr, False, tail)
        if timestamps:
            return b"".join(_format_ts(line.timestamp) + line.data for line in lines)
        return b"".join(line.data for line in lines)

    @_guard
    def stream_logs(
        self,
        ref: Container | str,
        *,
        follow: bool = True,
        stdout: bool = True,
        stderr: bool = True,
        tail: int | None = None,
    ) -> LogStream:
        """Lines as :class:`LogLine`; with ``follow``, until the container exits.

        Close the stream (``.close()``, or use it in ``with``) to stop early, at
        any time and from any thread: a ``for`` loop over it, blocked in another
        thread too, then simply ends (see :mod:`enginekit.logstream`).
        """
        return self._lines(ref, stdout, stderr, follow, tail)

    def _lines(
        self, ref: Container | str, stdout: bool, stderr: bool, follow: bool, tail: int | None
    ) -> LogStream:
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise InvalidSpec("tail must be an int >= 0")
        cid = self._id(ref)
        inner = self._driver.container_logs(
            cid, stdout=bool(stdout), stderr=bool(stderr), follow=bool(follow), tail=tail
        )
        return LogStream(inner)

    @_guard
    def stats(self, ref: Container | str) -> Stats:
        self._engine._require(Capability.STATS, "stats")
        return self._driver.container_stats(self._id(ref))

    # -- copying -------------------------------------------------------------
    @_guard
    def copy_to(
        self, ref: Container | str, host_path: str | os.PathLike[str], container_path: str
    ) -> None:
        """Copy a host file or folder into the container, with ``docker cp``'s rules."""
        from . import archive

        self._engine._require(Capability.COPY, "copy_to")
        host = validate.host_path(host_path, "host_path")
        archive.copy_to(self._driver, self._id(ref), host, container_path)

    @_guard
    def copy_from(
        self, ref: Container | str, container_path: str, host_path: str | os.PathLike[str]
    ) -> None:
        """Copy a container file or folder to the host, never writing outside ``host_path``."""
        from . import archive

        self._engine._require(Capability.COPY, "copy_from")
        host = validate.host_path(host_path, "host_path")
        archive.copy_from(self._driver, self._id(ref), container_path, host)
