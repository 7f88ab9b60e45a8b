"""The narrow interface an adapter implements: the Driver.

The core's :class:`~enginekit.engine.Engine` does everything that is the same
on every engine (validation, unit parsing, ref resolution, ``run`` = create +
start, returning fresh snapshots, deadlines, the error contract) and calls
these primitives. A Driver does no validation of its own and never sees a
user's raw input: every argument has been checked and normalised.

Rules every method follows:

* Ids passed in are full container ids (64 hex) as returned by
  :meth:`container_create` / :meth:`container_inspect`, except for
  :meth:`container_inspect` itself, which resolves a name, a full id or a
  unique id prefix of 12+ characters.
* Image refs passed in are ``sha256:<64 hex>`` ids, unique id prefixes, or
  normalised ``name:tag`` references (no ``localhost/``: an adapter whose
  engine prefixes local images adds and strips it itself).
* Errors: only ``enginekit.errors`` classes leave a driver; every engine
  exception is translated at the boundary with ``raise ... from exc``. A
  missing object is ``ContainerNotFound``/``ImageNotFound``; a state that
  forbids the operation is ``Conflict``; an engine that does not answer is
  ``EngineUnavailable``.
* Timestamps are aware UTC datetimes. Models carry ``engine=self.name``.
* Every container runs with an init as PID 1 (Docker ``--init``, Podman
  catatonit, ``lxc-init``), so a stop signal reaches commands that install no
  handler and ``stop`` gives ``128 + signal`` alike everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Protocol, runtime_checkable

from .capabilities import Capability
from .models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineInfo,
    ExecResult,
    Image,
    LogLine,
    PathStat,
    Stats,
)

__all__ = [
    "LIVE_STATES",
    "Driver",
    "DriverFactory",
    "ProgressCallback",
    "container_summaries",
    "labels_match",
    "listed",
    "summaries_from_rows",
]

ProgressCallback = Callable[[str], None]

#: The states ``container_list`` shows without ``all``.
LIVE_STATES = frozenset({ContainerState.RUNNING, ContainerState.PAUSED})


@runtime_checkable
class Driver(Protocol):
    """What an adapter provides. Thread-safe: one Driver serves many threads."""

    #: The adapter's name (``"docker"``, ``"podman"``, ``"lxc"``, ...).
    name: str
    #: What this engine *instance* can do; the core and the contract suite read it.
    #: May be a property that asks the engine once (lazily, thread-safe, cached:
    #: never in the constructor) from its version, cgroup layout, rootless mode and
    #: what its host has. The core raises ``Unsupported`` for an operation or a spec
    #: field needing a capability that is not here, before the driver is called:
    #: BUILD, IMAGE_SAVE, IMAGE_LOAD, PULL, PUSH, STATS, COPY, PAUSE (pause and
    #: unpause), EXEC, and in create/run PORTS, BIND_MOUNTS, MEMORY_LIMIT,
    #: CPU_LIMIT, PIDS_LIMIT and NETWORK_NONE/BRIDGE/HOST.
    capabilities: frozenset[Capability]
    #: Why each capability missing from ``capabilities`` is missing (one line
    #: each, e.g. ``"cgroup v2 without the memory controller delegated"``);
    #: shown in ``Unsupported`` and by ``enginekit engines``. Optional: the core
    #: reads ``getattr(driver, "unsupported", {})``.
    unsupported: Mapping[Capability, str]
    #: Where the driver connects (URL or path), for messages; never secrets.
    address: str

    # -- where the engine runs (optional) -------------------------------------
    # A driver whose engine may be on another host says so with these members;
    # the core reads them with getattr and defaults (enginekit.hostfacts), so a
    # driver of an engine on this machine needs none of them (they are not
    # declared here: a driver without them is still a Driver):
    #
    # * ``published_address: str``: the address a client reaches a port
    #   published by this engine at (the remote host's address; default
    #   ``"127.0.0.1"``). A port whose host side the user did not give arrives in
    #   ``container_create`` with this host ip, and ``container_inspect`` reports
    #   the ip the engine bound.
    # * ``host_cpus() -> int``: the CPUs of the engine's host, the most ``cpus``
    #   may be (default ``os.cpu_count()``). Asked once, then kept.
    # * ``host_path_exists(path: str) -> bool``: whether ``path`` exists on the
    #   engine's host (default ``os.path.exists``); a bind mount's source is
    #   looked for with it before anything is created. A driver that cannot tell
    #   answers True and maps the engine's refusal of a missing source to
    #   ``InvalidSpec``.

    # -- engine --------------------------------------------------------------
    def ping(self) -> None:
        """Cheap reachability check. Raises ``EngineUnavailable`` with a hint."""

    def info(self) -> EngineInfo:
        """Engine name, version, API version, OS, arch, storage root."""

    def close(self) -> None:
        """Release connections. Idempotent."""

    # -- images --------------------------------------------------------------
    def image_build(
        self, request: BuildRequest, *, progress: ProgressCallback | None = None
    ) -> Image:
        """Build ``request`` and return the final image, tagged with ``request.tags``.

        ``progress`` (if given) is called with each line of output as it
        happens (step headers such as ``"Step 2/5 : RUN ..."`` and the
        step's own output). ``request.labels`` are set on the final image.
        A failing step raises ``BuildFailed(step=, exit_code=, output=)``
        and leaves no container and no half-made image behind. The core has
        already checked that no COPY/ADD source escapes the context.
        """

    def image_inspect(self, ref: str) -> Image:
        """The image ``ref`` names. ``ImageNotFound`` if none."""

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        """Images as ``docker images`` shows them (no intermediate build images).

        ``name`` keeps images having a tag whose repository is ``name``
        (``name:tag`` keeps that tag only). ``labels`` keeps images carrying
        every key (and, where the value is not None, that value).
        """

    def image_tag(self, ref: str, new_ref: str) -> None:
        """Add tag ``new_ref`` (normalised ``name:tag``) to image ``ref``."""

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        """Remove an image (or, when ``ref`` is a tag of an image with several
        tags, only that tag). ``Conflict`` while a container uses it unless
        ``force`` (which then removes it anyway, as ``docker rmi -f``)."""

    def image_save(self, ref: str, path: str) -> None:
        """Write an OCI image archive (tar, docker-archive compatible) to ``path``."""

    def image_load(self, path: str) -> list[Image]:
        """Load every image in the archive at ``path``; return them."""

    def image_pull(self, ref: str) -> Image:
        """Pull from a registry (``Unsupported`` if not declared)."""

    def image_push(self, ref: str) -> None:
        """Push to a registry (``Unsupported`` if not declared)."""

    # -- containers ----------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        """Create (do not start) a container; return its full 64-hex id.

        ``ImageNotFound`` if ``spec.image`` is not local (nothing is pulled);
        ``Conflict`` if ``spec.name`` is taken. ``spec.command`` /
        ``spec.entrypoint`` None means the image's default. Ports bind on the
        given host ip; a host port of None/0 means any free port.
        """

    def container_start(self, id: str) -> None:
        """Start a CREATED or EXITED container. Starting a running one is a no-op."""

    def container_inspect(self, ref: str) -> Container:
        """Snapshot of the container ``ref`` (name, id, or 12+ char unique id
        prefix). ``ContainerNotFound`` if none. ``exit_code`` is None until the
        container has exited; ``pid`` is None unless running or paused."""

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        """Containers (running and paused only, unless ``all``), filtered by
        ``labels`` (as ``image_list``) and exact ``name``."""

    # ``container_summaries(*, all=False, labels=None, name=None) ->
    # list[ContainerSummary]`` (optional): the containers :meth:`container_list`
    # would give, as the engine's own list says them, in one request where the
    # engine lists. Not declared here (a driver without it is still a Driver):
    # the core calls :func:`container_summaries` below, which says the contract
    # and derives it from ``container_list`` for a driver that has none.

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        """Block until the container has exited; return its exit code.

        Returns at once for an exited container. ``EngineTimeout`` when
        ``timeout`` seconds pass (the container is untouched). Waiting for an
        hour must work: no transport timeout may cut it short. Waiting on a
        CREATED container waits for it to be started and exit.
        """

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
        """The container's output as lines, each with its stream and timestamp.

        Bytes come back unchanged: lines longer than any engine buffer (16
        KiB) are joined again, nothing is decoded. A line's ``data`` ends in
        ``b"\\n"`` except possibly the last. With ``follow`` the iterator ends
        when the container exits; closing the iterator releases everything.

        A follow can be closed from any thread: the iterator should also have
        ``abort()`` (:class:`enginekit.logstream.Abortable`), which wakes a
        ``next()`` blocked in another thread, after which the iterator ends.
        The core calls ``close()`` only while no thread is inside ``next()``
        (the reader calls it on its way out). Without ``abort`` such a follow
        ends at its next line. :class:`enginekit.logstream.ClosableLines`
        makes this iterator from a generator and an abort function.
        """

    def container_exec(
        self,
        id: str,
        command: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        """Run ``command`` in the running container; stdout and stderr apart.
        ``Conflict`` if the container is not running (paused included)."""

    def container_pause(self, id: str) -> None:
        """Freeze. ``Conflict`` if not running (paused, created, exited)."""

    def container_unpause(self, id: str) -> None:
        """Thaw a paused container. ``Conflict`` if it is not paused (the core
        turns that into a no-op for a running container)."""

    def container_stop(self, id: str, *, timeout: float) -> None:
        """Send the stop signal, then SIGKILL after ``timeout`` seconds; return
        once the container has exited, however long the engine call takes.
        A container that is not running (created, exited) is left as it is:
        return without error."""

    def container_kill(self, id: str, *, signal: str) -> None:
        """Send ``signal`` (e.g. ``"SIGKILL"``) to the container's main process
        (through its init). ``Conflict`` if not running (the core turns that
        into a no-op for an exited container; after SIGKILL it waits for the exit)."""

    def container_restart(self, id: str, *, timeout: float) -> None:
        """Stop (as ``container_stop``) then start again."""

    def container_remove(self, id: str, *, force: bool = False) -> None:
        """Remove the container and what the adapter stored for it.
        ``Conflict`` if running (or paused) and not ``force``."""

    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        """What ``path`` (absolute, in the container) is, or None if absent.
        Works on stopped containers too."""

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        """Extract the tar stream ``data`` into the existing directory ``path``."""

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        """A tar stream of ``path`` (file or folder; its basename as the top
        entry), as ``GET /containers/{id}/archive``. Works on stopped containers.
        ``NotFound`` if ``path`` does not exist. The core extracts it safely."""

    def container_stats(self, id: str) -> Stats:
        """One sample of CPU time, memory use and limit, and pids."""


DriverFactory = Callable[..., Driver]


def container_summaries(
    driver: Driver,
    *,
    all: bool = False,
    labels: Mapping[str, str | None] | None = None,
    name: str | None = None,
) -> list[ContainerSummary]:
    """The driver's ``container_summaries``, or the default derived from ``container_list``.

    The contract of a driver's own ``container_summaries`` (same arguments,
    already validated, as :meth:`Driver.container_list`): the same containers
    ``container_list`` gives (running and paused only, unless ``all``;
    ``labels`` and exact ``name`` as there), each a
    :class:`~enginekit.models.ContainerSummary` whose fields agree with
    ``container_inspect``'s, read from one engine request (the engine's list
    with its filters; the state filter is the core's). A field the list does
    not say reliably is left unknown as the model says (``exit_code`` and
    ``ports`` None; ``created_at`` may be to the second), never guessed. A
    container removed while the list is read is left out; nothing is created.

    The default, for a driver without one: :meth:`Driver.container_list`'s
    snapshots, summarised (every field known; as many requests as that takes).
    """
    own = getattr(driver, "container_summaries", None)
    if callable(own):
        found: list[ContainerSummary] = own(all=all, labels=labels, name=name)
        return found
    return [
        ContainerSummary.of(c) for c in driver.container_list(all=all, labels=labels, name=name)
    ]


def listed(
    item: Container | ContainerSummary,
    *,
    all: bool,
    labels: Mapping[str, str | None] | None,
    name: str | None,
) -> bool:
    """Whether ``container_list``'s filters keep ``item``: running or paused
    unless ``all``, named ``name`` exactly, carrying every key of ``labels``
    (and, where its value is not None, that value)."""
    if not all and item.state not in LIVE_STATES:
        return False
    if name is not None and item.name != name:
        return False
    return labels_match(item.labels, labels)


def labels_match(have: Mapping[str, str], wanted: Mapping[str, str | None] | None) -> bool:
    """Whether labels ``have`` carry every key of ``wanted`` (and, where its
    value is not None, that value): the ``labels`` filter of the Driver's lists."""
    for key, value in (wanted or {}).items():
        if key not in have or (value is not None and have[key] != value):
            return False
    return True


def summaries_from_rows(
    rows: Iterable[Mapping[str, Any]],
    summary_of: Callable[[Mapping[str, Any]], ContainerSummary | str],
    inspect_each: Callable[[list[str]], Sequence[Container | None]],
    *,
    all: bool,
    labels: Mapping[str, str | None] | None,
    name: str | None,
) -> list[ContainerSummary]:
    """``container_summaries`` of an engine whose list request answers rows.

    ``summary_of(row)`` reads one row of the list made with these filters: the
    container's summary, or its id where the row does not say enough (that
    container is then inspected, with the others of its kind, through
    ``inspect_each``, which gives None for one removed since). The summaries
    are filtered as ``container_list`` filters its snapshots (:func:`listed`),
    in the order of ``rows``.
    """
    found: list[ContainerSummary | None] = []
    unsaid: dict[int, str] = {}
    for row in rows:
        summary = summary_of(row)
        if isinstance(summary, str):
            unsaid[len(found)] = summary
            found.append(None)
        else:
            found.append(summary)
    if unsaid:
        inspected = inspect_each(list(unsaid.values()))
        for at, container in zip(unsaid, inspected, strict=True):
            found[at] = None if container is None else ContainerSummary.of(container)
    return [s for s in found if s is not None and listed(s, all=all, labels=labels, name=name)]
