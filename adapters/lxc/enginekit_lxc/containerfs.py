"""A container's files: its root, live or mounted for the time of an operation,
and the copies in and out of it (the tar work is :mod:`enginekit_lxc.copyops`)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from enginekit.toolkit.errors import EngineError, InvalidSpec, NotFound
from enginekit.toolkit.models import PathStat

from . import copyops
from .fsroot import Root
from .monitor import mount_overlay, unmount
from .records import LIVE

if TYPE_CHECKING:
    from .driver import LxcDriver

__all__ = ["container_root", "get_archive", "put_archive", "stat_path"]


@contextlib.contextmanager
def container_root(driver: LxcDriver, id: str) -> Iterator[Root]:
    """The container's root: its live root while running, else its overlay
    mounted for the time of the operation."""
    meta = driver.records.meta(id)
    state, status = driver.records.state(id)
    if state in LIVE:
        try:
            root = Root(f"/proc/{status['pid']}/root")
        except FileNotFoundError:
            pass
        else:
            with root:
                yield root
            return
    store = driver.store
    with store.container_lock(id):
        cdir = store.dir(id)
        rootfs = os.path.join(cdir, "rootfs")
        mounted_here = False
        if not os.path.ismount(rootfs):
            try:
                mount_overlay(
                    driver.images.rootfs(meta["image_id"]),
                    os.path.join(cdir, "upper"),
                    os.path.join(cdir, "work"),
                    rootfs,
                )
            except OSError as exc:
                raise EngineError(f"cannot mount the container's rootfs: {exc.strerror}") from exc
            mounted_here = True
        try:
            with Root(rootfs) as root:
                yield root
        finally:
            if mounted_here:
                with contextlib.suppress(OSError):
                    unmount(rootfs)


def _os_error(exc: OSError, path: str) -> EngineError:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound(f"no such file or directory in the container: {path}")
    if exc.errno == errno.ELOOP:
        return InvalidSpec(f"too many levels of symbolic links: {path}")
    return EngineError(f"{path}: {exc.strerror}")


def stat_path(driver: LxcDriver, id: str, path: str) -> PathStat | None:
    with container_root(driver, id) as root:
        try:
            return copyops.stat_path(root, path)
        except OSError as exc:
            raise _os_error(exc, path) from exc


def put_archive(driver: LxcDriver, id: str, path: str, data: IO[bytes]) -> None:
    with container_root(driver, id) as root:
        try:
            copyops.put_archive(root, path, data)
        except OSError as exc:
            raise _os_error(exc, path) from exc


def get_archive(driver: LxcDriver, id: str, path: str) -> IO[bytes]:
    with container_root(driver, id) as root:
        try:
            return copyops.get_archive(root, path)
        except OSError as exc:
            raise _os_error(exc, path) from exc
