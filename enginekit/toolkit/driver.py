"""The Driver contract, and a base driver with what derives from other primitives.

:class:`Driver` (``enginekit.driver``) is what an adapter provides; its
docstrings are the contract, and the contract suite
(``enginekit.testing.suite``) checks it against a live engine.
:class:`BaseDriver` implements what can be worked out from the rest, so an
adapter writes only what its engine does in its own way (and may still
override any default with a faster or more exact one):

=============================  =================================================
default                        derived from
=============================  =================================================
``unsupported``                nothing missing said (say why for each capability
                               not declared)
``ping()``                     ``info()``
``close()``                    nothing to release
``container_restart()``        ``container_stop()``, then ``container_start()``
``container_list()``           ``_container_ids()`` (the engine's own list, its
                               filters as far as it has them), each inspected
                               (``list_workers`` at once); one gone meanwhile is
                               left out; the filters applied again to the snapshots
``container_wait()``           ``container_inspect()`` polled until EXITED
``container_exists()``,        ``container_inspect()``, ``image_inspect()``
``image_exists()``
the optional operations        ``Unsupported`` (build, save, load, pull, push,
                               exec, pause, unpause, stats, copy in and out):
                               the core calls them only for a declared capability
=============================  =================================================

And for an adapter's own use: :meth:`BaseDriver._once` (a value asked of the
engine once, on first need, however many threads ask), :func:`labels_match`
and :func:`label_filters`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from enginekit.capabilities import ALL_CAPABILITIES, Capability
from enginekit.driver import (
    LIVE_STATES,
    Driver,
    DriverFactory,
    ProgressCallback,
    container_summaries,
    labels_match,
    listed,
    summaries_from_rows,
)
from enginekit.errors import ContainerNotFound, EngineTimeout, ImageNotFound, Unsupported
from enginekit.models import (
    Container,
    ContainerState,
    Image,
)

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = [
    "ALL_CAPABILITIES",
    "LIVE_STATES",
    "BaseDriver",
    "Capability",
    "Driver",
    "DriverFactory",
    "LabelFilter",
    "ProgressCallback",
    "container_summaries",
    "label_filters",
    "labels_match",
    "listed",
    "summaries_from_rows",
]

T = TypeVar("T")
K = TypeVar("K")

#: The ``labels`` filter of the Driver's lists: every key, and where not None that value.
LabelFilter = Mapping[str, str | None] | None

_NOTHING_MISSING: Mapping[Capability, str] = MappingProxyType({})
_WAIT_POLL_MAX = 0.1


def label_filters(labels: Mapping[str, str | None] | None) -> list[str]:
    """``{"k": "v", "k2": None}`` -> ``["k=v", "k2"]``, the ``label`` filter of
    the Docker and libpod APIs."""
    return [k if v is None else f"{k}={v}" for k, v in (labels or {}).items()]


def _needs(capability: Capability, operation: str) -> Callable[..., Any]:
    """The default of an optional operation: ``Unsupported``. The core calls it
    only when ``capability`` is declared, and a driver that declares it has
    its own."""

    def unsupported(self: BaseDriver, *args: Any, **kwargs: Any) -> Any:
        raise Unsupported(self.name, operation, capability=capability.value)

    unsupported.__doc__ = (
        f"``Unsupported``: a driver that declares ``{capability.name}`` has its own."
    )
    return unsupported


class BaseDriver:
    """Defaults for the :class:`Driver` methods that derive from others (see the module).

    A subclass sets ``name``, ``address`` and ``capabilities`` and implements
    the primitives: ``info``, the image operations it has, ``container_create``,
    ``start``, ``inspect``, ``stop``, ``kill``, ``remove``, ``logs`` and either
    ``_container_ids`` or ``container_list``. Its ``__init__`` calls
    ``super().__init__()``.
    """

    #: The adapter's name, in messages and on models (``engine=``).
    name: str
    #: How many inspects the default ``container_list`` runs at once.
    list_workers = 8

    def __init__(self) -> None:
        self._kept: dict[str, Any] = {}
        self._kept_lock = threading.RLock()

    def _once(self, key: str, make: Callable[[], T]) -> T:
        """``make()``'s value under ``key``: made on first need (never in the
        constructor), once however many threads ask at once, then kept."""
        kept = self._kept
        if key in kept:
            found: T = kept[key]
            return found
        with self._kept_lock:
            if key not in kept:
                kept[key] = make()
            found = kept[key]
        return found

    def _forget(self, key: str) -> None:
        """Make the value kept under ``key`` again on next need."""
        with self._kept_lock:
            self._kept.pop(key, None)

    # The optional operations: Unsupported unless the driver has its own.
    image_build = _needs(Capability.BUILD, "build")
    image_save = _needs(Capability.IMAGE_SAVE, "image save")
    image_load = _needs(Capability.IMAGE_LOAD, "image load")
    image_pull = _needs(Capability.PULL, "pull")
    image_push = _needs(Capability.PUSH, "push")
    container_exec = _needs(Capability.EXEC, "exec")
    container_pause = _needs(Capability.PAUSE, "pause")
    container_unpause = _needs(Capability.PAUSE, "pause")
    container_stats = _needs(Capability.STATS, "stats")
    container_stat_path = _needs(Capability.COPY, "copy")
    container_put_archive = _needs(Capability.COPY, "copy")
    container_get_archive = _needs(Capability.COPY, "copy")

    # -- engine -----------------------------------------------------------------
    @property
    def unsupported(self) -> Mapping[Capability, str]:
        """Why each capability not declared is missing (none said here)."""
        return _NOTHING_MISSING

    def info(self) -> Any:
        raise NotImplementedError

    def ping(self) -> None:
        """Reachable when ``info()`` answers."""
        self.info()

    def close(self) -> None:
        """The workers of the lists let go (:meth:`_workers`); a subclass that holds
        more releases it and calls this too."""
        self._stop_workers()

    # -- images -------------------------------------------------------------------
    def image_inspect(self, ref: str) -> Image:
        raise NotImplementedError

    def image_exists(self, ref: str) -> bool:
        """Whether ``image_inspect(ref)`` finds an image."""
        try:
            self.image_inspect(ref)
        except ImageNotFound:
            return False
        return True

    # -- containers ---------------------------------------------------------------
    def container_inspect(self, ref: str) -> Container:
        raise NotImplementedError

    def container_start(self, id: str) -> None:
        raise NotImplementedError

    def container_stop(self, id: str, *, timeout: float) -> None:
        raise NotImplementedError

    def container_exists(self, ref: str) -> bool:
        """Whether ``container_inspect(ref)`` finds a container."""
        return self._container_or_none(ref) is not None

    def _container_or_none(self, ref: str) -> Container | None:
        """``container_inspect(ref)``, or None when there is no such container."""
        try:
            return self.container_inspect(ref)
        except ContainerNotFound:
            return None

    def container_restart(self, id: str, *, timeout: float) -> None:
        """``container_stop`` (a stopped container is left as it is), then ``container_start``."""
        self.container_stop(id, timeout=timeout)
        self.container_start(id)

    def _container_ids(self, *, all: bool, labels: LabelFilter, name: str | None) -> Sequence[str]:
        """The ids of the containers the engine lists for these filters, in the
        order to show them; more than match is fine (the snapshots are filtered
        again), fewer is not."""
        raise NotImplementedError

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        """Each container :meth:`_container_ids` lists, as ``container_inspect``
        gives it, in that order (see the module)."""
        found = self._inspect_each(self._container_ids(all=all, labels=labels, name=name))
        return [c for c in found if c is not None and listed(c, all=all, labels=labels, name=name)]

    def _inspect_each(self, ids: Sequence[str]) -> list[Container | None]:
        """``container_inspect`` of each id (``list_workers`` at once), None for
        one that is gone; in the order of ``ids``."""
        return self._each(self._container_or_none, ids)

    def _each(self, fn: Callable[[K], T], keys: Sequence[K]) -> list[T]:
        """``fn`` of each key, ``list_workers`` at once, in the order of ``keys``.

        The driver's workers (:meth:`_workers`) run them; ``fn`` must not call
        ``_each`` itself (it would wait for workers busy waiting for it).
        """
        if len(keys) <= 1:
            return [fn(k) for k in keys]
        return list(self._workers().map(fn, keys))

    def _workers(self) -> Executor:
        """The driver's ``list_workers`` threads: started on first need, as
        many as a call needs, and kept (a pool made for each list paid for its
        threads' start every time: a third of a list of 200 on a busy
        machine) until :meth:`close`."""

        def start() -> Executor:
            # Imported here: concurrent.futures (and the logging it imports) is
            # not needed to start, and a one-request listing never needs it.
            from concurrent.futures import ThreadPoolExecutor

            return ThreadPoolExecutor(
                self.list_workers, thread_name_prefix=f"enginekit-{self.name}"
            )

        return self._once("workers", start)

    def _stop_workers(self) -> None:
        """Let the workers of :meth:`_each` go (started again if needed later)."""
        with self._kept_lock:
            workers = self._kept.pop("workers", None)
        if workers is not None:
            workers.shutdown(wait=False, cancel_futures=True)

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        """``container_inspect`` polled (5 ms at first, then less often) until EXITED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            container = self.container_inspect(id)
            if container.state is ContainerState.EXITED:
                return container.exit_code if container.exit_code is not None else 0
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise EngineTimeout(
                    f"{self.name} wait: container {id[:12]} did not exit within {timeout} s"
                )
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - now)))
            pause = min(pause * 1.5, _WAIT_POLL_MAX)
