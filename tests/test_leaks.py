"""enginekit.testing.leaks against real processes, sockets and directories of this machine."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enginekit.testing import leaks


class _Engine:
    """What leaks reads of an Engine: its address and its driver."""

    def __init__(self, address: str, driver: Any = None) -> None:
        self.address = address
        self.driver = driver if driver is not None else object()


def _fake_id() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()


def _spawn(procs: list[subprocess.Popen[bytes]], script: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    procs.append(p)
    time.sleep(0.3)  # the forks are made
    return p


def test_remote_addresses_are_not_local() -> None:
    for address in ("tcp://127.0.0.1:2375", "ssh://host", "http://localhost:8080", "npipe:x"):
        assert not leaks.is_local(_Engine(address))  # type: ignore[arg-type]


def test_a_socket_nobody_listens_on_is_not_local(tmp_path: Path) -> None:
    assert not leaks.is_local(_Engine(f"unix://{tmp_path}/none.sock"))  # type: ignore[arg-type]


def test_a_visible_listener_and_a_directory_are_local(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        assert leaks.is_local(_Engine(f"unix://{path}"))  # type: ignore[arg-type]
    assert leaks.is_local(_Engine(str(tmp_path)))  # type: ignore[arg-type]


def test_a_process_naming_the_container_is_left_until_it_ends(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    cid, other = _fake_id(), _fake_id()
    eng: Any = _Engine(str(tmp_path))
    p = _spawn(procs, f"sleep 30; : {cid}")
    found = leaks.scan(eng, [cid, other])
    assert [(f.kind, f.container) for f in found] == [("process", cid)]
    assert f"pid {p.pid}" in found[0].detail and found[0].overdue()
    assert leaks.problems(_engine_with_no_containers(str(tmp_path)), [cid], settle=0.5)
    os.killpg(p.pid, 9)
    p.wait()
    assert leaks.leftovers(eng, [cid], settle=5) == ([], [])


def test_an_exec_conmon_in_its_exit_delay_waits_then_is_overdue(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    cid = _fake_id()
    eng: Any = _Engine(str(tmp_path))
    # A conmon in its exit-command delay: a copy of itself forked (same command line).
    args = f"conmon -c {cid} --exit-delay 300"
    _spawn(procs, f"exec -a /usr/bin/conmon sh -c '(sleep 30; true) & wait' {args}")
    overdue, waiting = leaks.leftovers(eng, [cid], settle=0)
    assert overdue == [] and len(waiting) == 2
    for item in waiting:
        assert item.ends_at is not None and 290 < item.ends_at - time.time() <= 300
        assert item.overdue(now=item.ends_at + leaks.GRACE + 1)


def test_a_conmon_without_its_forked_copy_is_overdue(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    cid = _fake_id()
    eng: Any = _Engine(str(tmp_path))
    _spawn(
        procs, f"exec -a /usr/bin/conmon sh -c 'sleep 30; true' conmon -c {cid} --exit-delay 300"
    )
    overdue, waiting = leaks.leftovers(eng, [cid], settle=0)
    assert len(overdue) == 1 and waiting == []


def test_lxc_directories_are_found(tmp_path: Path) -> None:
    cid = _fake_id()
    lxcpath = tmp_path / "lxc"
    storage = tmp_path / "storage"
    (lxcpath / f"ek-{cid[:16]}").mkdir(parents=True)
    (storage / "containers" / cid).mkdir(parents=True)
    (lxcpath / f"ek-{_fake_id()[:16]}").mkdir()  # another container's: not ours
    driver = type("D", (), {"lxcpath": str(lxcpath), "storage_root": str(storage)})()
    found = leaks.scan(_Engine(str(lxcpath), driver), [cid])  # type: ignore[arg-type]
    assert sorted(f.detail for f in found if f.kind == "directory") == sorted(
        [str(lxcpath / f"ek-{cid[:16]}"), str(storage / "containers" / cid)]
    )


def test_track_records_created_ids() -> None:
    class Driver:
        def container_create(self, spec: object) -> str:
            return "c" * 64

    eng: Any = _Engine("/", Driver())
    ids = leaks.track(eng)
    assert leaks.track(eng) is ids  # tracked once
    assert eng.driver.container_create(None) == "c" * 64
    assert ids == {"c" * 64}


class _NoContainers:
    """The ``containers`` service of an engine without any (for problems())."""

    def list(self, *, all: bool = False) -> list[object]:
        return []


def _engine_with_no_containers(path: str) -> Any:
    eng = _Engine(path)
    eng.containers = _NoContainers()  # type: ignore[attr-defined]
    return eng
