"""What the adapter keeps per container, on disk, shared by every process.

Layout under ``<storage_root>/containers/``::

    .lock                 flock: names, address allocation
    names/<name>          the id of the container called <name> (O_EXCL: names are unique)
    <id>/meta.json        what was created (never changes after create)
    <id>/status.json      the run state, written atomically by the driver and the monitor
    <id>/monitor.lock     held (flock) by the live monitor: liveness without pids
    <id>/log              framed output (see ``enginekit_lxc.logfile``)
    <id>/upper, work      the container's overlay layer on the image's rootfs
    <id>/rootfs           where that overlay is mounted on the host while needed

This module uses the standard library only: the monitor imports it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ContainerStore", "atomic_write", "read_json", "remove_tree"]

META = "meta.json"
STATUS = "status.json"
_READ = 1 << 16
MONITOR_LOCK = "monitor.lock"
LOG = "log"


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file whole."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


class ContainerStore:
    """The containers directory of one storage root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.names = os.path.join(root, "names")
        self._held = threading.local()

    def ensure(self) -> None:
        os.makedirs(self.names, mode=0o700, exist_ok=True)

    def dir(self, id: str) -> str:
        return os.path.join(self.root, id)

    def path(self, id: str, name: str) -> str:
        return f"{self.root}/{id}/{name}"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The store-wide lock (names, network addresses)."""
        self.ensure()
        fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def container_lock(self, id: str) -> Iterator[None]:
        """A per-container lock (start, recovery, mounts for copies); re-entrant
        within a thread, exclusive between threads and processes."""
        held: dict[str, int] = self._held.__dict__.setdefault("ids", {})
        if held.get(id):
            held[id] += 1
            try:
                yield
            finally:
                held[id] -= 1
            return
        try:
            fd = os.open(self.path(id, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            yield  # removed meanwhile: nothing left to protect
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held[id] = 1
            yield
        finally:
            held.pop(id, None)
            os.close(fd)

    # -- names ---------------------------------------------------------------
    def claim_name(self, name: str, id: str) -> bool:
        """Record ``name`` for ``id``; False if another live container has it."""
        path = os.path.join(self.names, name)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                owner = self.name_owner(name)
                if owner is not None and os.path.isdir(self.dir(owner)):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # a stale claim left by a crash
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(id)
            return True
        return False

    def name_owner(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.names, name)) as fh:
                return fh.read().strip() or None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                return None
            raise

    def release_name(self, name: str, id: str) -> None:
        if self.name_owner(name) == id:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.names, name))

    # -- containers ----------------------------------------------------------
    def ids(self) -> list[str]:
        try:
            entries = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [e for e in entries if len(e) == 64 and os.path.isfile(self.path(e, META))]

    def exists(self, id: str) -> bool:
        return os.path.isfile(self.path(id, META))

    def read_meta(self, id: str) -> dict[str, Any]:
        data: dict[str, Any] = read_json(self.path(id, META))
        return data

    def read_status(self, id: str) -> dict[str, Any]:
        fd = os.open(f"{self.root}/{id}/{STATUS}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            # 64 KiB at a time: a read of 1 MiB made Python allocate 1 MiB for
            # every status read (a third of a list's time), the file a few KiB.
            raw = os.read(fd, _READ)
            while len(raw) % _READ == 0 and raw:
                more = os.read(fd, _READ)
                if not more:
                    break
                raw += more
        finally:
            os.close(fd)
        data: dict[str, Any] = json.loads(raw)
        return data

    def write_status(self, id: str, status: dict[str, Any]) -> None:
        atomic_write(self.path(id, STATUS), json.dumps(status).encode())

    def write_meta(self, id: str, meta: dict[str, Any]) -> None:
        atomic_write(self.path(id, META), json.dumps(meta).encode())

    def monitor_alive(self, id: str) -> bool:
        """True while a monitor holds the container's monitor lock."""
        try:
            fd = os.open(self.path(id, MONITOR_LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def await_monitor(self, id: str) -> None:
        """Block until no monitor holds the container's monitor lock."""
        try:
            fd = os.open(self.path(id, MONITOR_LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)

    def delete(self, id: str) -> None:
        """Remove the container's directory, so that nothing can bring it back.

        It is first renamed away (one atomic step): a thread or process that
        opens ``<id>/.lock`` (``O_CREAT``) or writes a status at that moment
        finds no directory, instead of putting a file into one being emptied
        (which then stays, with that file). The renamed tree is then removed.
        """
        remove_tree(self.dir(id))


def remove_tree(path: str) -> None:
    """Remove the directory ``path`` and everything in it, also while others
    still try to create files in it: it is renamed to a hidden sibling first
    (``.removing-<name>-<pid>-<n>``), which is then removed (twice if a
    writer that already held it got a file in)."""
    parent, name = os.path.split(path.rstrip("/"))
    doomed = os.path.join(parent, f".removing-{name}-{os.getpid()}-{threading.get_ident()}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    except OSError:
        doomed = path  # cannot rename (busy, another file system): remove in place
    for _ in range(3):
        shutil.rmtree(doomed, ignore_errors=True)
        if not os.path.lexists(doomed):
            return
