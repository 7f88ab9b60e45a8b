"""Copies into and out of a container's root, confined to it.

Every path is resolved by the kernel inside the root (see :mod:`fsroot`), and
every entry is then reached relative to an open directory with
``O_NOFOLLOW``: a symlink in the container is archived as a symlink and never
followed to the host, and an archive's entries cannot be written outside
the destination through ``..`` or links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile
import tempfile
from typing import IO

from enginekit.toolkit.errors import Conflict, InvalidSpec, NotFound
from enginekit.toolkit.models import PathStat

from .fsroot import Root

__all__ = ["get_archive", "put_archive", "stat_path"]


def stat_path(root: Root, path: str) -> PathStat | None:
    norm = posixpath.normpath("/" + path)
    try:
        st = root.lstat(norm)
    except (FileNotFoundError, NotADirectoryError):
        return None
    is_link = stat.S_ISLNK(st.st_mode)
    target = ""
    if is_link:
        with contextlib.suppress(OSError):
            target = root.readlink(norm)
    return PathStat(
        name=posixpath.basename(norm) or "/",
        size=st.st_size,
        is_dir=stat.S_ISDIR(st.st_mode),
        is_symlink=is_link,
        link_target=target,
    )


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def _add_tree(
    tar: tarfile.TarFile,
    dir_fd: int,
    name: str,
    arcname: str,
    links: dict[tuple[int, int], str],
) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    info = _info(arcname, st)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type = tarfile.LNKTYPE
            info.linkname = links[key]
            tar.addfile(info)
            return
        links[key] = arcname
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as fh:
            info.size = os.fstat(fd).st_size
            tar.addfile(info, fh)
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        fd = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
        )
        try:
            for entry in sorted(os.listdir(fd)):
                _add_tree(tar, fd, entry, f"{arcname}/{entry}", links)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(name, dir_fd=dir_fd)
        tar.addfile(info)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    # sockets are skipped, as Docker does


def get_archive(root: Root, path: str) -> IO[bytes]:
    """A tar stream of ``path`` (not followed if a symlink), basename on top."""
    norm = posixpath.normpath("/" + path)
    try:
        parent_fd, name = root.parent(norm)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(f"no such file or directory in the container: {path}") from exc
    out = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned open
    try:
        # openat() needs a directory opened for reading, not O_PATH.
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            arcname = name or "."
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, dfd, name or ".", arcname, {})
        finally:
            os.close(dfd)
    except (FileNotFoundError, NotADirectoryError) as exc:
        out.close()
        raise NotFound(f"no such file or directory in the container: {path}") from exc
    except BaseException:
        out.close()
        raise
    finally:
        os.close(parent_fd)
    out.seek(0)
    return out


def _clean_member(name: str) -> list[str] | None:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _open_dir(root: Root, path: str) -> int:
    pfd = root.open(path, os.O_PATH | os.O_DIRECTORY)
    try:
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
    finally:
        os.close(pfd)


def _remove_existing(dfd: int, name: str, keep_dir: bool) -> None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        raise Conflict(f"cannot overwrite directory {name!r} with a non-directory")
    os.unlink(name, dir_fd=dfd)


def put_archive(root: Root, path: str, data: IO[bytes]) -> None:
    """Extract the tar stream ``data`` into the existing directory ``path``."""
    dest = posixpath.normpath("/" + path)
    try:
        st = root.stat(dest)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(f"no such directory in the container: {path}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidSpec(f"not a directory in the container: {path}")
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=data, mode="r|*") as tar:
        for member in tar:
            parts = _clean_member(member.name)
            if not parts:
                continue  # "." or an escaping name: nothing to write
            target = posixpath.join(dest, *parts)
            parent = posixpath.dirname(target)
            base = parts[-1]
            root.makedirs(parent)
            dfd = _open_dir(root, parent)
            try:
                if member.isdir():
                    _remove_existing(dfd, base, keep_dir=True)
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(base, 0o700, dir_fd=dfd)
                    dirs.append((target, member))
                    continue
                _remove_existing(dfd, base, keep_dir=False)
                if member.isreg():
                    fd = os.open(
                        base,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                        0o600,
                        dir_fd=dfd,
                    )
                    src = tar.extractfile(member)
                    with os.fdopen(fd, "wb") as fh:
                        if src is not None:
                            while chunk := src.read(1 << 20):
                                fh.write(chunk)
                elif member.issym():
                    os.symlink(member.linkname, base, dir_fd=dfd)
                elif member.islnk():
                    lparts = _clean_member(member.linkname)
                    if not lparts:
                        continue
                    src_parent_fd, src_name = root.parent(posixpath.join(dest, *lparts))
                    try:
                        os.link(
                            src_name,
                            base,
                            src_dir_fd=src_parent_fd,
                            dst_dir_fd=dfd,
                            follow_symlinks=False,
                        )
                    finally:
                        os.close(src_parent_fd)
                elif member.isfifo():
                    os.mkfifo(base, 0o600, dir_fd=dfd)
                elif member.ischr() or member.isblk():
                    kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                    os.mknod(
                        base,
                        kind | 0o600,
                        os.makedev(member.devmajor, member.devminor),
                        dir_fd=dfd,
                    )
                else:
                    continue
                _apply_meta(dfd, base, member)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise NotFound(f"cannot write {target}: {exc.strerror}") from exc
                raise
            finally:
                os.close(dfd)
    for target, member in reversed(dirs):
        parent = posixpath.dirname(target)
        dfd = _open_dir(root, parent)
        try:
            _apply_meta(dfd, posixpath.basename(target), member)
        finally:
            os.close(dfd)


def _apply_meta(dfd: int, name: str, member: tarfile.TarInfo) -> None:
    with contextlib.suppress(OSError):
        os.chown(name, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)
    if not member.issym():
        with contextlib.suppress(OSError):
            os.chmod(name, member.mode & 0o7777, dir_fd=dfd)
    with contextlib.suppress(OSError, NotImplementedError):
        os.utime(name, (member.mtime, member.mtime), dir_fd=dfd, follow_symlinks=False)
