"""Reliability: one ``Engine`` used from many threads at once, and nothing left after.

- ``THREADS`` threads each run ``CYCLES`` cycles of run / wait / logs / remove on
  one Engine: every cycle's exit code and both streams are its own; afterwards no
  container of the test is left (listed by its label), the run's images are those
  of before, no process of the test's containers is alive on this machine, and,
  once that Engine is closed, this process has the threads it had before and its
  open file descriptors are back within ``FD_SLACK``.
- Threads listing and inspecting (``list``, ``get``, ``logs``) while other
  threads make and remove containers: the only error is ``ContainerNotFound``,
  from ``get`` or ``logs`` of a listed container removed meanwhile (a ``list``
  never fails because a container went away during it; nothing but
  ``enginekit.errors`` ever leaves).

A fresh Engine (``enginekit.connect(engine_name)``) is used, so that its pooled
connections can be counted and closed without touching the session's.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import enginekit
from enginekit.errors import ContainerNotFound

if TYPE_CHECKING:
    from enginekit import Engine

#: Threads running containers at once, and run/wait/logs/remove cycles each.
THREADS = 8
CYCLES = 5
#: Observer threads in the churn test, and how long the churn lasts (cycles of each maker).
OBSERVERS = 4
MAKERS = 3
MAKER_CYCLES = 6
#: Open file descriptors allowed above the count before (pytest's own, a log file).
FD_SLACK = 2
WAIT = 60.0
JOIN = 120.0
SETTLE = 10.0
TOKEN_LABEL = "enginekit.test.load"


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settled(check: Callable[[], bool], seconds: float = SETTLE) -> bool:
    """``check()`` holds now or within ``seconds`` (threads and sockets take a moment)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _processes_holding(token: str) -> list[int]:
    """Pids on this machine whose command line holds ``token``."""
    found = []
    needle = token.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry))
    return found


def _run_threads(target: Callable[[int], None], count: int, name: str) -> list[str]:
    """Run ``target(i)`` in ``count`` threads; the failures (tracebacks) they raised."""
    failures: list[str] = []
    lock = threading.Lock()

    def wrapped(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            with lock:
                failures.append(f"{name}-{i}: " + "".join(traceback.format_exception(exc)))

    threads = [
        threading.Thread(target=wrapped, args=(i,), name=f"{name}-{i}") for i in range(count)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        pytest.fail(f"threads still running after {JOIN}s: {stuck}", pytrace=False)
    return failures


def _image_state(engine: Engine, labels: dict[str, str]) -> set[tuple[str, tuple[str, ...]]]:
    return {(i.id, i.tags) for i in engine.images.list(labels=labels)}


class TestReliabilityLoad:
    def test_threads_running_containers_leave_nothing(
        self, engine_name: str, base_image: str, labels: dict[str, str]
    ) -> None:
        token = f"ekload-{uuid.uuid4().hex[:12]}"
        mine = {**labels, TOKEN_LABEL: token}
        threads_before = threading.active_count()
        fds_before = _fds()
        eng = enginekit.connect(engine_name)
        try:
            images_before = _image_state(eng, labels)
            results: dict[tuple[int, int], tuple[int, bytes, bytes]] = {}

            def cycles(i: int) -> None:
                for j in range(CYCLES):
                    code = (i * CYCLES + j) % 7
                    script = f"echo out-{i}-{j}; echo err-{i}-{j} >&2; exit {code}; : {token}"
                    c = eng.containers.run(base_image, ["sh", "-c", script], labels=mine)
                    try:
                        got = eng.containers.wait(c, timeout=WAIT)
                        out = eng.containers.logs(c, stderr=False)
                        err = eng.containers.logs(c, stdout=False)
                    finally:
                        eng.containers.remove(c, force=True)
                    results[i, j] = (got, out, err)

            started = time.monotonic()
            failures = _run_threads(cycles, THREADS, "cycles")
            took = time.monotonic() - started
            assert failures == [], "\n".join(failures)
            wrong = {
                key: got
                for key, got in results.items()
                if got
                != (
                    (key[0] * CYCLES + key[1]) % 7,
                    f"out-{key[0]}-{key[1]}\n".encode(),
                    f"err-{key[0]}-{key[1]}\n".encode(),
                )
            }
            assert len(results) == THREADS * CYCLES and wrong == {}, (
                f"cycles with another's exit code or output ({took:.1f}s): {wrong}"
            )
            assert eng.containers.list(all=True, labels=mine) == []
            assert _image_state(eng, labels) == images_before
            assert _settled(lambda: not _processes_holding(token)), (
                f"processes of removed containers still alive: {_processes_holding(token)}"
            )
        finally:
            eng.close()
        assert _settled(lambda: threading.active_count() <= threads_before), (
            f"threads: {threading.active_count()} after, {threads_before} before: "
            f"{[t.name for t in threading.enumerate()]}"
        )
        assert _settled(lambda: _fds() <= fds_before + FD_SLACK), (
            f"open file descriptors: {_fds()} after, {fds_before} before"
        )

    def test_inspecting_while_containers_come_and_go(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        token = f"ekchurn-{uuid.uuid4().hex[:12]}"
        mine = {**labels, TOKEN_LABEL: token}
        done = threading.Event()
        seen = {"listed": 0, "inspected": 0, "gone": 0}
        count = threading.Lock()

        def make(i: int) -> None:
            try:
                for j in range(MAKER_CYCLES):
                    c = engine.containers.run(
                        base_image, ["sh", "-c", f"echo {i}-{j}; sleep 0.2"], labels=mine
                    )
                    if j % 2:
                        engine.containers.wait(c, timeout=WAIT)
                    engine.containers.remove(c, force=True)
            finally:
                if i == 0:
                    done.set()

        def observe(i: int) -> None:
            while not done.is_set():
                listed = engine.containers.list(all=True, labels=mine)
                for c in listed:
                    assert c.labels.get(TOKEN_LABEL) == token, c
                    try:
                        again = engine.containers.get(c.id)
                        if i % 2:
                            engine.containers.logs(again)
                    except ContainerNotFound:
                        with count:
                            seen["gone"] += 1
                        continue
                    assert again.id == c.id
                    with count:
                        seen["inspected"] += 1
                with count:
                    seen["listed"] += 1

        errors: list[str] = []
        observers = threading.Thread(
            target=lambda: errors.extend(_run_threads(observe, OBSERVERS, "observe")),
            name="observers",
        )
        observers.start()
        try:
            errors += _run_threads(make, MAKERS, "make")
        finally:
            done.set()
            observers.join(JOIN)
        assert not observers.is_alive(), "observers still running"
        assert errors == [], "\n".join(errors)
        assert seen["listed"] > 0 and seen["inspected"] > 0, seen
        assert engine.containers.list(all=True, labels=mine) == []
