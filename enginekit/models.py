"""Value objects every adapter returns: frozen attrs classes of plain values.

A model is a snapshot: it has no link back to an engine and never reloads
itself; call ``get()`` again for a fresh one. Datetimes are aware UTC.
``raw`` holds the engine's own data for debugging: it is not compared, not
shown in ``repr`` and its shape is not part of the API.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from .capabilities import Capability

__all__ = [
    "BuildRequest",
    "Container",
    "ContainerSpec",
    "ContainerState",
    "ContainerSummary",
    "EngineInfo",
    "EngineStatus",
    "ExecResult",
    "FrozenDict",
    "Image",
    "ImageConfig",
    "LogLine",
    "Mount",
    "PathStat",
    "PortBinding",
    "Resources",
    "Stats",
    "Stream",
    "utc",
]

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """An immutable, hashable mapping (keys kept in sorted order when sortable)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        items = dict(data)
        if len(items) > 1:
            # try/except, not contextlib.suppress: made for every snapshot's
            # labels and env, and suppress costs as much as the sort.
            try:  # noqa: SIM105
                items = dict(sorted(items.items()))  # type: ignore[type-var,unused-ignore]
            except TypeError:  # keys that do not sort: kept in their order
                pass
        self._data: dict[K, V] = items
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


def _frozen(value: Mapping[Any, Any] | None) -> FrozenDict[Any, Any]:
    if isinstance(value, FrozenDict):
        return value
    return FrozenDict(value or {})


def _tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def _opt_tuple(value: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return tuple(value) if value is not None else None


def _sorted_tuple(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(sorted(value or ()))


def utc(value: _dt.datetime | None) -> _dt.datetime | None:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value is None or value.tzinfo is _dt.UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)


class ContainerState(enum.StrEnum):
    """The four states every engine's states map onto (see the per-engine tables).

    A ``str`` enum: ``state == "running"`` holds for ``ContainerState.RUNNING``.
    """

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    EXITED = "exited"

    def __repr__(self) -> str:
        return f"ContainerState.{self.name}"


class Stream(enum.StrEnum):
    """Which output a :class:`LogLine` came from (``Stream.STDOUT == "stdout"``)."""

    STDOUT = "stdout"
    STDERR = "stderr"

    def __repr__(self) -> str:
        return f"Stream.{self.name}"


@attrs.frozen
class PortBinding:
    """``container_port``/``protocol`` published on ``host_ip``:``host_port``."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = "127.0.0.1"
    host_port: int | None = None  # None or 0 in a spec: the engine picks a free port


@attrs.frozen
class Mount:
    """A bind mount of host ``source`` at ``target`` in the container."""

    source: str
    target: str
    read_only: bool = False


@attrs.frozen(kw_only=True)
class Resources:
    """Limits as applied: ``memory`` in bytes, ``cpus`` in CPUs, ``pids_limit`` in tasks."""

    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None


@attrs.frozen(kw_only=True)
class ImageConfig:
    """What a container made from the image runs by default."""

    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    cmd: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    env: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen, repr=False)
    workdir: str | None = None
    user: str | None = None
    exposed_ports: tuple[str, ...] = attrs.field(default=(), converter=_tuple)  # "80/tcp"
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    stop_signal: str | None = None


@attrs.frozen(kw_only=True)
class Image:
    """An image: ``id`` is ``sha256:`` + the 64-hex digest of its config."""

    id: str
    tags: tuple[str, ...] = attrs.field(default=(), converter=_sorted_tuple)
    created: _dt.datetime | None = attrs.field(default=None, converter=utc)
    size: int = 0
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    architecture: str = ""
    os: str = ""
    config: ImageConfig = attrs.field(factory=ImageConfig)
    engine: str = ""
    raw: Any = attrs.field(default=None, eq=False, repr=False, hash=False)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


@attrs.frozen(kw_only=True)
class _ContainerIdentity:
    """What a :class:`Container` and a :class:`ContainerSummary` both begin with."""

    id: str
    name: str
    image: str
    image_id: str = ""
    state: ContainerState
    exit_code: int | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state is ContainerState.RUNNING


@attrs.frozen(kw_only=True)
class Container(_ContainerIdentity):
    """A snapshot of a container (``get()`` again for a fresh one)."""

    oom_killed: bool = False
    created_at: _dt.datetime | None = attrs.field(default=None, converter=utc)
    started_at: _dt.datetime | None = attrs.field(default=None, converter=utc)
    finished_at: _dt.datetime | None = attrs.field(default=None, converter=utc)
    pid: int | None = None
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    command: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    entrypoint: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    env: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen, repr=False)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    ports: tuple[PortBinding, ...] = attrs.field(default=(), converter=_tuple)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=_tuple)
    resources: Resources = attrs.field(factory=Resources)
    network: str = "bridge"
    stop_signal: str | None = None
    engine: str = ""
    raw: Any = attrs.field(default=None, eq=False, repr=False, hash=False)


def _opt_ports(value: Iterable[PortBinding] | None) -> tuple[PortBinding, ...] | None:
    return tuple(value) if value is not None else None


@attrs.frozen(kw_only=True)
class ContainerSummary(_ContainerIdentity):
    """What the engine's own list says of a container, without inspecting each one.

    ``containers.summaries()`` gives these (one engine request where the engine
    lists; see CONTRACT.md). Every field means what it means on
    :class:`Container` and agrees with ``get()`` taken at the same moment,
    except where the engine's list says less:

    - ``exit_code`` is the exit code of an EXITED container where the list
      says it, else None (a ``get()`` then tells);
    - ``created_at`` may be to the whole second only (an engine whose list
      gives no finer);
    - ``ports`` is None where the list does not say them (a created or
      exited container, on an engine whose list shows only the ports bound
      while the container runs); a running or paused container's are always
      there.
    """

    created_at: _dt.datetime | None = attrs.field(default=None, converter=utc)
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    ports: tuple[PortBinding, ...] | None = attrs.field(default=(), converter=_opt_ports)
    engine: str = ""
    raw: Any = attrs.field(default=None, eq=False, repr=False, hash=False)

    @classmethod
    def of(cls, container: Container) -> ContainerSummary:
        """The summary of a full snapshot (every field known)."""
        return cls(
            id=container.id,
            name=container.name,
            image=container.image,
            image_id=container.image_id,
            state=container.state,
            exit_code=container.exit_code,
            created_at=container.created_at,
            labels=container.labels,
            ports=container.ports,
            engine=container.engine,
            raw=container.raw,
        )


@attrs.frozen
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def output(self) -> bytes:
        return self.stdout + self.stderr


@attrs.frozen
class LogLine:
    """One line of a container's output, ``data`` ending in ``\\n`` unless it is the last."""

    stream: Stream
    data: bytes
    timestamp: _dt.datetime | None = attrs.field(default=None, converter=utc)


@attrs.frozen
class Stats:
    cpu_seconds: float
    memory_bytes: int
    memory_limit: int | None = None
    pids: int | None = None


@attrs.frozen(kw_only=True)
class EngineInfo:
    """What the engine instance is, read at the time of the call.

    ``api_version`` is the API version enginekit speaks on this connection
    (negotiated once); ``min_api_version``/``max_api_version`` are what the
    engine offers, where it says. ``cgroup_version`` (1 or 2), ``rootless``
    and ``image_store`` (``"overlay2"``, ``"containerd"``, ``"overlay"``,
    ``"oci-dir"``, ...) describe the engine's host, not this machine; None or
    ``""`` where the engine does not say.
    """

    name: str
    version: str
    api_version: str = ""
    os: str = ""
    arch: str = ""
    storage_root: str = ""
    min_api_version: str = ""
    max_api_version: str = ""
    cgroup_version: int | None = None
    rootless: bool | None = None
    image_store: str = ""


@attrs.frozen(kw_only=True)
class EngineStatus:
    """One installed adapter, as ``enginekit.engines()`` reports it.

    For a reachable engine, ``info`` is its :class:`EngineInfo`,
    ``capabilities`` what this instance can do and ``unsupported`` why it
    cannot do the rest (capability -> reason).
    """

    name: str
    reachable: bool
    address: str | None = None
    version: str | None = None
    reason: str | None = None
    distribution: str | None = None
    info: EngineInfo | None = None
    capabilities: frozenset[Capability] = frozenset()
    unsupported: FrozenDict[Capability, str] = attrs.field(factory=FrozenDict, converter=_frozen)


@attrs.frozen(kw_only=True)
class PathStat:
    """A path inside a container, as ``Driver.container_stat_path`` sees it."""

    name: str
    size: int = 0
    is_dir: bool = False
    is_symlink: bool = False
    link_target: str = ""


@attrs.frozen(kw_only=True)
class ContainerSpec:
    """A validated, normalised container spec: what the core hands a Driver.

    Every field has been checked by ``enginekit.validate``: names, labels,
    env, paths and sizes are ones every supported engine can carry.
    """

    image: str
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    name: str | None = None
    env: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen, repr=False)
    workdir: str | None = None
    user: str | None = None
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    hostname: str | None = None
    ports: tuple[PortBinding, ...] = attrs.field(default=(), converter=_tuple)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=_tuple)
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    network: str = "bridge"
    stop_signal: str | None = None


@attrs.frozen(kw_only=True)
class BuildRequest:
    """A validated build: ``context`` is an absolute, resolved directory.

    ``dockerfile`` is relative to the context (checked to stay inside it);
    ``tags`` are normalised ``name:tag``.
    """

    context: str
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    build_args: FrozenDict[str, str] = attrs.field(
        factory=FrozenDict, converter=_frozen, repr=False
    )
    labels: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_frozen)
    target: str | None = None
