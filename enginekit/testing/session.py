"""The state of one contract-suite run: its id, the chosen engines, and cleanup.

Every container and image a suite test makes carries the label
``enginekit.test.run=<run id>``; :meth:`SuiteRun.purge` removes everything so
labelled from every engine the run connected to, and reports what it could
not remove, and what the run's removed containers left on this machine (the
engine's helper processes, mounts, LXC directories: :mod:`.leaks`, for an
engine that runs here). Nothing here imports an adapter: engines are connected lazily,
with ``enginekit.connect(name)``, the first time a test needs one.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enginekit import Engine

__all__ = ["ENV_ENGINES", "RUN_LABEL", "SuiteRun", "parse_engine_choice"]

#: The label every container and image of a suite run carries; its value is the run id.
RUN_LABEL = "enginekit.test.run"
#: Comma-separated engines to run the suite on when no ``--engine`` is given.
ENV_ENGINES = "ENGINEKIT_TEST_ENGINES"

# How often purge() goes over the labelled images: an image can only go once the
# images built on it (which the engine may count as its children) are gone.
_IMAGE_PASSES = 5


def parse_engine_choice(
    options: Iterable[str] | None, environ: dict[str, str] | None = None
) -> list[str]:
    """The engines chosen: every ``--engine`` value, else ``ENGINEKIT_TEST_ENGINES``.

    Values are engine names or URLs; duplicates are dropped, order is kept.
    """
    env = os.environ if environ is None else environ
    chosen = [v.strip() for v in (options or ()) if v.strip()]
    if not chosen:
        chosen = [v.strip() for v in env.get(ENV_ENGINES, "").split(",") if v.strip()]
    return list(dict.fromkeys(chosen))


class EngineNotReachable(Exception):
    """An engine chosen for the run could not be connected to."""


class SuiteRun:
    """One pytest session's view of the engines under test."""

    def __init__(self, engine_names: list[str], *, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.engine_names = engine_names
        self._engines: dict[str, Engine] = {}
        self._failures: dict[str, str] = {}
        self._created: dict[str, set[str]] = {}  # container ids, by engine (leaks.track)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.base_images: dict[str, str] = {}

    # -- labels and names ------------------------------------------------------
    @property
    def labels(self) -> dict[str, str]:
        """The label set every object of this run carries (a fresh dict each time)."""
        return {RUN_LABEL: self.run_id}

    @property
    def base_image_ref(self) -> str:
        return f"enginekit-test/busybox:{self.run_id}"

    def make_name(self, suffix: str = "") -> str:
        """A name no other object of any run uses: ``ekt-<run id>-<n>[-suffix]``."""
        with self._lock:
            n = next(self._counter)
        name = f"ekt-{self.run_id}-{n}"
        return f"{name}-{suffix}" if suffix else name

    # -- engines ---------------------------------------------------------------
    @property
    def connected(self) -> dict[str, Engine]:
        """The engines connected so far, by the name they were chosen with."""
        return dict(self._engines)

    def engine(self, name: str) -> Engine:
        """The engine chosen as ``name``, connected on first use.

        An engine that cannot be reached raises :class:`EngineNotReachable`
        (each time it is asked for): the run fails, it is never skipped.
        """
        with self._lock:
            if name in self._engines:
                return self._engines[name]
            if name in self._failures:
                raise EngineNotReachable(self._failures[name])
            import enginekit

            try:
                eng = enginekit.connect(name)
                eng.info()  # a round trip: connect() alone may do no I/O
            except Exception as exc:
                msg = (
                    f"engine {name!r} was chosen for the contract suite but cannot be used: "
                    f"{type(exc).__name__}: {exc}"
                )
                self._failures[name] = msg
                raise EngineNotReachable(msg) from exc
            from . import leaks

            self._created[name] = leaks.track(eng)
            self._engines[name] = eng
            return eng

    def created(self, name: str) -> set[str]:
        """The ids of every container created through the engine chosen as
        ``name`` so far (a copy)."""
        return set(self._created.get(name, ()))

    # -- cleanup ---------------------------------------------------------------
    def purge_containers(self, eng: Engine, keep: Iterable[str] = ()) -> list[str]:
        """Force-remove this run's containers on ``eng`` except ``keep`` (ids).

        Returns the problems met (empty when all went).
        """
        from enginekit.errors import EngineError, NotFound

        problems: list[str] = []
        keep_ids = set(keep)
        try:
            found = eng.containers.list(all=True, labels=self.labels)
        except EngineError as exc:
            return [f"listing containers: {type(exc).__name__}: {exc}"]
        for c in found:
            if c.id in keep_ids:
                continue
            try:
                eng.containers.remove(c.id, force=True)
            except NotFound:
                pass
            except EngineError as exc:
                problems.append(f"removing container {c.name} ({c.short_id}): {exc}")
        return problems

    def purge_images(self, eng: Engine) -> list[str]:
        from enginekit.errors import EngineError, NotFound

        problems: dict[str, str] = {}
        for _ in range(_IMAGE_PASSES):
            try:
                found = eng.images.list(labels=self.labels)
            except EngineError as exc:
                return [f"listing images: {type(exc).__name__}: {exc}"]
            if not found:
                return []
            problems = {}
            for img in found:
                try:
                    eng.images.remove(img.id, force=True)
                except NotFound:
                    pass
                except EngineError as exc:
                    problems[img.id] = f"removing image {img.id} {list(img.tags)}: {exc}"
        return list(problems.values())

    def leftovers(self, eng: Engine) -> list[str]:
        """What still carries this run's label on ``eng``."""
        from enginekit.errors import EngineError

        out: list[str] = []
        try:
            out += [
                f"container {c.name} ({c.short_id}, {c.state.name})"
                for c in eng.containers.list(all=True, labels=self.labels)
            ]
            out += [f"image {i.id} {list(i.tags)}" for i in eng.images.list(labels=self.labels)]
        except EngineError as exc:
            out.append(f"cannot list what is left: {type(exc).__name__}: {exc}")
        return out

    def helpers_left(self, eng: Engine, name: str) -> list[str]:
        """What the run's removed containers left on this machine (see :mod:`.leaks`)."""
        from . import leaks

        try:
            return leaks.problems(eng, self.created(name))
        except Exception as exc:  # the check must not hide the rest of the report
            return [f"looking for helpers left: {type(exc).__name__}: {exc}"]

    def purge(self) -> dict[str, list[str]]:
        """Remove every container, then every image, of this run from every
        connected engine, close the engines, and return, per engine, what is
        left or went wrong (an empty dict when everything went)."""
        report: dict[str, list[str]] = {}
        with self._lock:
            engines = dict(self._engines)
            self._engines.clear()
        for name, eng in engines.items():
            problems = self.purge_containers(eng)
            problems += self.purge_images(eng)
            left = self.leftovers(eng)
            if left:
                problems += [f"left behind: {x}" for x in left]
            problems += self.helpers_left(eng, name)
            try:
                eng.close()
            except Exception as exc:
                problems.append(f"closing: {type(exc).__name__}: {exc}")
            if problems:
                report[name] = problems
        self.base_images.clear()
        return report
