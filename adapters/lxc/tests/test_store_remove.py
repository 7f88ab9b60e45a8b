"""Removing a container's directory while others still reach for it.

An exec or an inspect that meets a removal takes the container's lock
(``<id>/.lock``, opened with ``O_CREAT``) to write down its state: landing
while the directory was being emptied, it put a new ``.lock`` in it, the
directory could not be removed, and it stayed (seen on LXC 7).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from enginekit_lxc.store import ContainerStore, remove_tree

CID = "c" * 64


def _store(tmp_path: Path) -> ContainerStore:
    store = ContainerStore(str(tmp_path / "containers"))
    store.ensure()
    cdir = store.dir(CID)
    os.makedirs(os.path.join(cdir, "upper", "etc"))
    for name in ("meta.json", "status.json", "log", "upper/etc/x"):
        Path(cdir, name).write_bytes(b"{}")
    with store.container_lock(CID):
        pass
    return store


def _racing_rmdir(monkeypatch: pytest.MonkeyPatch, racer: Any) -> list[str]:
    """Make the first removal of a directory named after the container run
    ``racer`` (in another thread) just before it: the moment the directory
    has been emptied."""
    real = os.rmdir
    raced: list[str] = []

    def rmdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if CID in os.fsdecode(path) and not raced:
            raced.append(os.fsdecode(path))
            t = threading.Thread(target=racer)
            t.start()
            t.join(10)
        real(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    return raced


def test_a_lock_taken_during_the_delete_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)

    def racer() -> None:
        with store.container_lock(CID):
            pass

    raced = _racing_rmdir(monkeypatch, racer)
    store.delete(CID)
    assert raced, "the delete never removed the directory"
    assert sorted(os.listdir(store.root)) == ["names"]


def test_a_status_written_during_the_delete_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    failures: list[BaseException] = []

    def racer() -> None:
        try:
            store.write_status(CID, {"state": "exited"})
        except FileNotFoundError as exc:
            failures.append(exc)  # the directory is already gone: what it should see

    _racing_rmdir(monkeypatch, racer)
    store.delete(CID)
    assert sorted(os.listdir(store.root)) == ["names"]
    assert failures


def test_remove_tree_of_nothing_and_of_a_tree(tmp_path: Path) -> None:
    remove_tree(str(tmp_path / "absent"))
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_bytes(b"x")
    os.symlink("/etc", tree / "link")
    remove_tree(str(tree))
    assert os.listdir(tmp_path) == []
    assert os.path.isdir("/etc")
