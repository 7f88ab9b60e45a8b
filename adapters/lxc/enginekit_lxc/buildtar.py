"""ADD of a local tar archive: detection (plain, gzip, bzip2, xz) and safe extraction.

As Docker's classic builder: a file that is not a readable tar archive is copied
as it is; an archive is extracted into the destination keeping its owners, modes
and times (a hard link's own header applies to the file it names). Refused, as
breaking out of the destination: a member whose name is absolute or climbs out
with ``..``, a hard link to outside the archive, a relative symbolic link leading
out of the destination. Every write goes through :func:`~enginekit_lxc.fsops.scoped`.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO

from .fsops import CHUNK, CopyError, apply_meta, clean, clear, makedirs, scoped

__all__ = ["extract", "open_archive"]


def _decompressed(head: bytes, raw: IO[bytes]) -> IO[bytes]:
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    return raw


@contextlib.contextmanager
def open_archive(fd: int) -> Iterator[IO[bytes] | None]:
    """The decompressed stream of a tar archive (plain, gzip, bzip2, xz), or None if the
    file is no archive (it is then copied as it is, as Docker does)."""
    head = os.pread(fd, 6, 0)
    with os.fdopen(os.dup(fd), "rb") as raw, _decompressed(head, raw) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                ok = tar.next() is not None
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError):
            ok = False
    if not ok:
        yield None
        return
    with os.fdopen(os.dup(fd), "rb") as raw, _decompressed(head, raw) as stream:
        raw.seek(0)
        yield stream


def extract(root: str, dest_dir: str, stream: IO[bytes], name: str) -> None:
    """Extract a tar stream into ``dest_dir`` inside ``root`` (see the module docstring)."""
    dir_times: list[tuple[str, float]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                _extract_member(root, dest_dir, tar, member, name, dir_times)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise CopyError(f"{name}: broken archive: {exc}") from exc
    for host, mtime in reversed(dir_times):
        os.utime(host, (mtime, mtime), follow_symlinks=False)


def _member_path(raw: str, archive: str) -> str:
    if raw.startswith("/"):
        raise CopyError(f"{archive}: member {raw!r} has an absolute path")
    parts: list[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise CopyError(f"{archive}: member {raw!r} leads out of the destination")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _extract_member(
    root: str,
    dest_dir: str,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    archive: str,
    dir_times: list[tuple[str, float]],
) -> None:
    rel = _member_path(member.name, archive)
    if rel == "":
        return
    target = posixpath.join(dest_dir, rel)
    owner = (member.uid, member.gid)
    mode = member.mode
    if member.isdir():
        # As Docker: what is in the way, a link to a directory included, is replaced.
        makedirs(root, posixpath.dirname(target), (0, 0))
        host = scoped(root, target, follow_last=False)
        if os.path.islink(host) or (os.path.lexists(host) and not os.path.isdir(host)):
            clear(host, keep_dir=False)
        if not os.path.isdir(host):
            os.mkdir(host, 0o755)
        apply_meta(host, stat.S_IFDIR | mode, owner, None)
        dir_times.append((host, member.mtime))
        return
    makedirs(root, posixpath.dirname(target), (0, 0))
    host = scoped(root, target, follow_last=False)
    clear(host, keep_dir=False)
    if member.isreg():
        fobj = tar.extractfile(member)
        assert fobj is not None
        out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(out, "wb") as w:
            shutil.copyfileobj(fobj, w, CHUNK)
        mode |= stat.S_IFREG
    elif member.issym():
        if not member.linkname.startswith("/"):
            dest_rel = clean(dest_dir)
            joined = posixpath.normpath(posixpath.join("/", dest_rel, posixpath.dirname(rel),
                                                       member.linkname))  # fmt: skip
            inside = "/" + dest_rel if dest_rel else "/"
            if not (joined == inside or joined.startswith(inside.rstrip("/") + "/")):
                raise CopyError(
                    f"{archive}: symbolic link {rel!r} -> {member.linkname!r} "
                    "leads out of the destination"
                )
        os.symlink(member.linkname, host)
        mode = stat.S_IFLNK | 0o777
    elif member.islnk():
        link_rel = _member_path(member.linkname, archive)
        src = scoped(root, posixpath.join(dest_dir, link_rel), follow_last=False)
        if not os.path.isfile(src) or os.path.islink(src):
            raise CopyError(f"{archive}: hard link {rel!r} to a missing file {member.linkname!r}")
        os.link(src, host, follow_symlinks=False)
        # As Docker: the link's own header sets owner, mode and time of the file.
        mode |= stat.S_IFREG
    elif member.isfifo():
        os.mkfifo(host, 0o600)
        mode |= stat.S_IFIFO
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(host, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        mode |= kind
    else:
        return
    apply_meta(host, mode, owner, member.mtime)
