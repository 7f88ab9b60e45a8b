"""The build context as the tar Docker's client uploads."""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from typing import IO

from enginekit.errors import InvalidSpec

from .paths import _FILE_FLAGS, dockerfile_path, resolve_context
from .walk import ContextEntry, _plan, _walk


def context_tar(
    context: str,
    dockerfile: str = "Dockerfile",
    *,
    for_copy: bool = False,
    confined_links: bool = False,
) -> IO[bytes]:
    """The context as an uncompressed tar, as Docker's client uploads it.

    Written to an anonymous temporary file (gone when closed), rewound. Symbolic links
    are stored as links, their text unchanged whatever it names (inside, absolute,
    dangling or climbing out with ``..``); hard links within the context as hard
    links; modes and whole-second mtimes are kept; owner and group are 0 with no
    names. ``for_copy``: what COPY/ADD see (see :func:`iter_context`), for a builder
    that copies from it. ``confined_links``: for a builder whose extraction refuses
    a link climbing out of the context, the same tree written so that none does
    while it is extracted (:func:`enginekit.tarlinks.staged`).
    """
    root = resolve_context(context)
    rel = dockerfile_path(root, dockerfile)
    ignore, drop = _plan(root, rel, for_copy)
    out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            linked: dict[tuple[int, int], str] = {}
            for entry, st, dirfd, name in _walk(root, ignore):
                if entry.path not in drop:
                    _add(tar, entry, st, dirfd, name, linked)
        out.seek(0)
        if confined_links:
            from enginekit.tarlinks import staged

            out = staged(out, prefer=rel)
    except BaseException:
        out.close()
        raise
    return out


def _add(
    tar: tarfile.TarFile,
    entry: ContextEntry,
    st: os.stat_result,
    dirfd: int,
    name: str,
    linked: dict[tuple[int, int], str],
) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    mode = st.st_mode
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target or ""
    elif entry.kind == "file":
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in linked:
            info.type = tarfile.LNKTYPE
            info.linkname = linked[key]
            tar.addfile(info)
            return
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dirfd)
        except OSError as exc:
            raise InvalidSpec(
                f"cannot read {entry.path!r} in the build context: {exc.strerror}"
            ) from exc
        with os.fdopen(fd, "rb") as f:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != key or not stat.S_ISREG(now.st_mode):
                raise InvalidSpec(f"{entry.path!r} changed while the build context was read")
            info.type = tarfile.REGTYPE
            info.size = now.st_size
            try:
                tar.addfile(info, f)
            except OSError as exc:
                raise InvalidSpec(
                    f"{entry.path!r} changed while the build context was read"
                ) from exc
        if st.st_nlink > 1:
            linked[key] = entry.path
        return
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor = os.major(st.st_rdev)
        info.devminor = os.minor(st.st_rdev)
    else:  # pragma: no cover - nothing else exists on Linux
        return
    tar.addfile(info)
