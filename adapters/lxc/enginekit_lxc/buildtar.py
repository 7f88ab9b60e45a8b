"""ADD of a local tar archive: detection (plain, gzip, bzip2, xz) and safe extraction.

As Docker's builder: a file that is not a readable tar archive is copied as it
is; an archive is extracted into the destination keeping its owners, modes and
times (a hard link's own header applies to the file it names). Docker (and Podman)
extract in a chroot at the destination, and so does this module, on paths: the
destination is ``/`` for every name. A member named absolutely or climbing out with
``..`` lands under the destination; a symbolic link is kept as written, whatever it
points at; a link met on a member's way is followed inside the destination only,
and a member behind a link that leads to nothing (``lnk -> /abs`` then
``lnk/file``, ``/abs`` missing under the destination) fails the build, as on
Docker. Nothing is ever written outside the destination.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO

from enginekit.toolkit.archives import decompressed

from .fsops import CHUNK, MAX_LINKS, CopyError, apply_meta, clean, clear, scoped

__all__ = ["extract", "open_archive"]


@contextlib.contextmanager
def open_archive(fd: int) -> Iterator[IO[bytes] | None]:
    """The decompressed stream of a tar archive (plain, gzip, bzip2, xz), or None if the
    file is no archive (it is then copied as it is, as Docker does)."""
    head = os.pread(fd, 6, 0)
    with os.fdopen(os.dup(fd), "rb") as raw, decompressed(head, raw) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                ok = tar.next() is not None
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError):
            ok = False
    if not ok:
        yield None
        return
    with os.fdopen(os.dup(fd), "rb") as raw, decompressed(head, raw) as stream:
        raw.seek(0)
        yield stream


def extract(root: str, dest_dir: str, stream: IO[bytes], name: str) -> None:
    """Extract a tar stream into ``dest_dir`` inside ``root`` (see the module docstring)."""
    droot = scoped(root, dest_dir)
    dir_times: list[tuple[str, float]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                _extract_member(droot, tar, member, name, dir_times)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise CopyError(f"{name}: broken archive: {exc}") from exc
    for host, mtime in reversed(dir_times):
        os.utime(host, (mtime, mtime), follow_symlinks=False)


def _parent(droot: str, rel: str, archive: str, member: str, *, create: bool = True) -> str:
    """The host directory ``rel`` (a clean path) names under ``droot``, the root of
    the extraction, walked as Docker's extraction walks it inside its chroot:
    symbolic links are followed with ``droot`` as ``/`` (``..`` stops there); a
    missing name of the member's own path is created (0755, root's); a name a link
    leads to must exist, and must be a directory (a file behind ``lnk -> /abs``
    fails the build, as on Docker). ``create=False`` creates nothing (a hard link's
    target must exist)."""
    todo: list[tuple[str, bool]] = [(p, False) for p in rel.split("/") if p]
    resolved: list[str] = []
    links = 0
    while todo:
        part, via_link = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(droot, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            if via_link or not create:
                raise CopyError(
                    f"{archive}: cannot extract {member!r}: a symbolic link on its way "
                    "leads to nothing (no such file or directory)"
                ) from None
            os.mkdir(candidate, 0o755)
            os.chown(candidate, 0, 0, follow_symlinks=False)
            os.chmod(candidate, 0o755)
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise CopyError(f"{archive}: too many levels of symbolic links in {member!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            todo = [(p, True) for p in target.split("/") if p] + todo
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise CopyError(f"{archive}: cannot extract {member!r}: not a directory on its way")
        resolved.append(part)
    return os.path.join(droot, *resolved)


def _extract_member(
    droot: str,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    archive: str,
    dir_times: list[tuple[str, float]],
) -> None:
    # Docker extracts in a chroot at the destination: a name is taken from "/" there
    # (an absolute name, or one climbing out with "..", lands under the destination).
    rel = clean(member.name)
    if rel == "":
        return
    host = os.path.join(
        _parent(droot, posixpath.dirname(rel), archive, rel), posixpath.basename(rel)
    )
    owner = (member.uid, member.gid)
    mode = member.mode
    if member.isdir():
        # As Docker: what is in the way, a link to a directory included, is replaced.
        if os.path.islink(host) or (os.path.lexists(host) and not os.path.isdir(host)):
            clear(host, keep_dir=False)
        if not os.path.isdir(host):
            os.mkdir(host, 0o755)
        apply_meta(host, stat.S_IFDIR | mode, owner, None)
        dir_times.append((host, member.mtime))
        return
    clear(host, keep_dir=False)
    if member.isreg():
        fobj = tar.extractfile(member)
        assert fobj is not None
        out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(out, "wb") as w:
            shutil.copyfileobj(fobj, w, CHUNK)
        mode |= stat.S_IFREG
    elif member.issym():
        # Kept as written, as Docker keeps it: a link is never followed out of the
        # image (later writes resolve links inside the rootfs).
        os.symlink(member.linkname, host)
        mode = stat.S_IFLNK | 0o777
    elif member.islnk():
        link_rel = clean(member.linkname)
        src = os.path.join(
            _parent(droot, posixpath.dirname(link_rel), archive, rel, create=False),
            posixpath.basename(link_rel),
        )
        if not link_rel or not os.path.lexists(src) or stat.S_ISDIR(os.lstat(src).st_mode):
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
