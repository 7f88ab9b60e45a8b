#!/usr/bin/env python3
"""Container listing: enginekit's ``summaries()`` and ``list()`` against raw requests.

Run::

    python benchmarks/bench_listing.py --engine docker --engine podman --engine lxc [-n 30] [--json]

Per engine, ``--containers`` (200) labelled containers are created (created
state; LXC: ``--lxc-containers``, 200 too) and measured side by side, the
variants of a case interleaved in one loop with their order rotating (as
``bench_engines.py`` does: medians, ratios of medians, paired ratios):

- ``summaries``: ``summaries()``, i.e. ``containers.summaries(all=True,
  labels=...)``, against the ``raw list`` request (Docker ``GET
  /containers/json``, Podman ``GET /libpod/containers/json``, with the same
  label filter). Goal: within 1.3x.
- ``list``: ``list()``, i.e. ``containers.list(all=True, labels=...)``,
  against ``raw list+inspects``: the raw list request plus a raw inspect of
  every container listed, sent from as many threads (each with its own
  keep-alive connection) as the adapter inspects at once
  (``driver.list_workers``). Goal: within 1.3x. The raw list alone is shown
  beside it, for scale.
- LXC has no engine API: its floor is the adapter's own records read
  directly (the container directory listed, each ``meta.json`` and
  ``status.json`` parsed), one thread; the same two goals are printed
  against that floor.

Everything made carries ``enginekit.bench=<runid>`` and is removed at the
end, also on failure, Ctrl-C or SIGTERM; leftovers make the exit status 1.
A goal missed is printed as MISSED.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_engines import (
    Case,
    RawUnix,
    build_context,
    close_all,
    ratio_goals,
    report,
    run_benches,
)

#: (case, variant, limit, base): each engine's listing goals.
GOALS: list[tuple[str, str, float, str]] = [
    ("summaries", "summaries()", 1.3, "raw list"),
    ("list", "list()", 1.3, "raw list+inspects"),
]
DEFAULT_WORKERS = 8


def socket_path(address: str) -> str:
    """The unix socket an engine address names (this benchmark speaks to sockets only)."""
    if address.startswith("unix://"):
        return address[len("unix://") :]
    if address.startswith("/"):
        return address
    raise SystemExit(f"bench_listing: {address} is not a unix socket (run it on a local engine)")


class ParallelRaw:
    """Raw requests from ``workers`` threads, each with its own keep-alive connection."""

    def __init__(self, path: str, prefix: str, workers: int) -> None:
        self.path = path
        self.prefix = prefix
        self.workers = workers
        self._local = threading.local()
        self._made: list[RawUnix] = []
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(workers)

    def _raw(self) -> RawUnix:
        raw: RawUnix | None = getattr(self._local, "raw", None)
        if raw is None:
            raw = self._local.raw = RawUnix(self.path, self.prefix)
            with self._lock:
                self._made.append(raw)
        return raw

    def get_all(self, paths: list[str]) -> list[Any]:
        return list(self.pool.map(lambda p: self._raw().request("GET", p), paths))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for raw in self._made:
            raw.close()


class Listing:
    """``count`` labelled containers (created state) of a busybox image built
    through enginekit, listed by enginekit and by the engine's floor
    (:meth:`floors`: the raw list, and the raw list plus inspects)."""

    def __init__(self, name: str, runid: str, count: int) -> None:
        self.name = name
        self.count = count
        self.labels = {"enginekit.bench": runid}
        self.set_labels = {**self.labels, "enginekit.bench.set": "listing"}
        self.image = f"enginekit-bench-listing:{runid}"
        self.engine: Any = None
        self.notes: list[str] = []

    def setup(self) -> list[Case]:
        import enginekit

        self.engine = engine = enginekit.connect(self.name)
        with build_context() as ctx:
            engine.images.build(ctx, tag=self.image, labels=self.labels)
        for _ in range(self.count):
            engine.containers.create(
                self.image, ["/bin/busybox", "true"], labels=self.set_labels, network="none"
            )
        raw_list, raw_inspects = self.floors()
        summaries = Case("summaries", "raw list")
        summaries.add("summaries()", self._enginekit("summaries"))
        summaries.add("raw list", raw_list)
        listing = Case("list", "raw list+inspects")
        listing.add("list()", self._enginekit("list"))
        if raw_inspects is not raw_list:
            listing.add("raw list", raw_list)
        listing.add("raw list+inspects", raw_inspects)
        return [summaries, listing]

    def floors(self) -> tuple[Callable[[], object], Callable[[], object]]:
        """The raw list, and the raw list plus an inspect of each container."""
        raise NotImplementedError

    def _enginekit(self, method: str) -> Callable[[], None]:
        call = getattr(self.engine.containers, method)

        def go() -> None:
            found = call(all=True, labels=self.set_labels)
            assert len(found) == self.count, len(found)

        return go

    def cleanup(self) -> list[str]:
        return remove_labelled(self.engine, self.labels, self.image)


class HttpListing(Listing):
    """Docker or Podman: raw requests on the engine's socket."""

    def __init__(self, name: str, runid: str, count: int, workers: int | None) -> None:
        super().__init__(name, runid, count)
        self.workers = workers
        self.raw: RawUnix | None = None
        self.parallel: ParallelRaw | None = None

    def floors(self) -> tuple[Callable[[], object], Callable[[], object]]:
        info = self.engine.info()
        prefix = f"/v{info.api_version}" + ("/libpod" if self.name == "podman" else "")
        path = socket_path(self.engine.address)
        workers = self.workers or int(getattr(self.engine.driver, "list_workers", DEFAULT_WORKERS))
        self.notes.append(
            f"{self.name} {info.version}, API {info.api_version}; {self.count} created "
            f"containers; raw inspects from {workers} threads (the adapter's list_workers)"
        )
        self.raw = raw = RawUnix(path, prefix)
        self.parallel = parallel = ParallelRaw(path, prefix, workers)
        filters = json.dumps({"label": [f"{k}={v}" for k, v in self.set_labels.items()]})
        query = [("all", "true"), ("filters", filters)]

        def raw_list() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = raw.request("GET", "/containers/json", query=query)
            assert len(found) == self.count, len(found)
            return found

        def raw_list_inspect() -> None:
            entries = raw_list()
            inspected = parallel.get_all([f"/containers/{e['Id']}/json" for e in entries])
            assert len(inspected) == self.count

        return raw_list, raw_list_inspect

    def cleanup(self) -> list[str]:
        close_all(self.raw, self.parallel)
        return super().cleanup()


class LxcListing(Listing):
    """LXC has no API: its floor reads the adapter's records (one thread)."""

    def floors(self) -> tuple[Callable[[], object], Callable[[], object]]:
        info = self.engine.info()
        self.notes.append(
            f"LXC {info.version}; {self.count} created containers; the floor reads the "
            "adapter's records (meta.json, status.json) directly, one thread"
        )
        # Benchmark-only introspection: where the adapter keeps its records.
        driver: Any = self.engine.driver
        root = str(driver.store.root)

        def records() -> None:
            found = []
            for entry in os.listdir(root):
                if len(entry) != 64:
                    continue
                with open(os.path.join(root, entry, "meta.json"), "rb") as fh:
                    meta = json.load(fh)
                labels = meta.get("labels") or {}
                if any(labels.get(k) != v for k, v in self.set_labels.items()):
                    continue
                with open(os.path.join(root, entry, "status.json"), "rb") as fh:
                    found.append((meta, json.load(fh)))
            assert len(found) == self.count, len(found)

        return records, records


def remove_labelled(engine: Any, labels: dict[str, str], image: str) -> list[str]:
    """Remove every container carrying ``labels``, then ``image``; what could not be."""
    if engine is None:
        return []
    problems: list[str] = []
    try:
        for _ in range(3):
            left = engine.containers.summaries(all=True, labels=labels)
            if not left:
                break
            for c in left:
                try:
                    engine.containers.remove(c.id, force=True)
                except Exception as exc:
                    problems.append(f"container {c.id[:12]}: {exc}")
        if engine.containers.summaries(all=True, labels=labels):
            problems.append("some labelled containers could not be removed")
        if engine.images.exists(image):
            engine.images.remove(image, force=True)
    except Exception as exc:
        problems.append(f"cleanup: {type(exc).__name__}: {exc}")
    close_all(engine)
    return problems


def goal_lines(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The listing goals of every engine measured."""
    return ratio_goals(results, [(engine, *goal) for engine in results for goal in GOALS])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        choices=("docker", "podman", "lxc"),
        default=[],
        help="engine to measure (repeatable; default docker and podman)",
    )
    parser.add_argument("-n", "--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--containers", type=int, default=200, help="docker and podman")
    parser.add_argument("--lxc-containers", type=int, default=200)
    parser.add_argument(
        "--workers", type=int, default=None, help="threads of the raw inspects (the adapter's)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    engines = args.engine or ["docker", "podman"]
    runid = uuid.uuid4().hex[:12]
    counts = {name: args.lxc_containers if name == "lxc" else args.containers for name in engines}

    def make(name: str) -> Callable[[], Listing]:
        if name == "lxc":
            return lambda: LxcListing(name, runid, counts[name])
        return lambda: HttpListing(name, runid, counts[name], args.workers)

    try:
        results, failed, leftovers = run_benches(
            [make(name) for name in engines],
            runid,
            args.iterations,
            args.warmup,
            progress=not args.json,
        )
    except KeyboardInterrupt:
        return 130
    for name, entry in results.items():
        entry["containers"] = counts[name]
    report(runid, results, None, goal_lines(results), as_json=args.json)
    return 1 if failed or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
