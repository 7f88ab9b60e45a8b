"""``copy_to`` and ``copy_from`` with ``docker cp``'s rules, the same on every engine.

Drivers move tar streams (``container_put_archive`` / ``container_get_archive``);
this module checks both paths before any engine call (``InvalidSpec``: a container
path must be absolute; neither may hold a NUL character), decides where things go
and extracts on the host safely:

* into a destination folder that exists, the source keeps its name; otherwise
  it is copied to that very path (a ``SRC/.`` source copies a folder's contents);
* symbolic links go both ways as links, their text unchanged, whatever they name
  (inside, absolute, nothing, or climbing out with ``..``): their targets are
  never read, on the host or in the container. An engine whose extraction
  refuses a link climbing out of the destination gets the tar from an ancestor
  folder (:func:`enginekit.tarlinks.from_ancestor`, Docker's adapter);
* on the host nothing is ever written outside ``host_path``: member names with
  ``..`` or absolute names are refused (``InvalidSpec``), symbolic links are
  created as links and never followed, a host symlink met on the way is
  replaced rather than written through, and devices are skipped;
* extraction goes to a staging folder beside the destination first, so a
  refused archive leaves nothing behind.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from typing import IO, TYPE_CHECKING

from . import validate
from .errors import InvalidSpec, NotFound

if TYPE_CHECKING:
    from .driver import Driver

__all__ = ["copy_from", "copy_to", "safe_extract"]


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def copy_to(driver: Driver, cid: str, host_path: str, container_path: str) -> None:
    validate.abs_path(container_path, "container_path")
    host_path = validate.host_path(host_path, "host_path")
    contents_only = host_path.rstrip("/").endswith("/.") or host_path == "."
    src = os.path.abspath(host_path)
    if not os.path.lexists(src):
        raise InvalidSpec("host_path does not exist")
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    dst = posixpath.normpath(container_path)
    target = driver.container_stat_path(cid, dst)
    if target is not None and target.is_dir:
        parent, name = dst, os.path.basename(src)
    else:
        if container_path.endswith("/") and target is None:
            raise NotFound(f"no folder {container_path!r} in the container")
        if target is not None and src_is_dir:
            raise InvalidSpec("cannot copy a folder onto a file")
        parent, name = posixpath.dirname(dst) or "/", posixpath.basename(dst)
        above = driver.container_stat_path(cid, parent)
        if above is None or not above.is_dir:
            raise NotFound(f"no folder {parent!r} in the container")
        contents_only = False
    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if contents_only and src_is_dir:
                for entry in sorted(os.listdir(src)):
                    tar.add(os.path.join(src, entry), arcname=entry, filter=_root_owned)
            else:
                tar.add(src, arcname=name, filter=_root_owned)
        buf.seek(0)
        driver.container_put_archive(cid, parent, buf)


def copy_from(driver: Driver, cid: str, container_path: str, host_path: str) -> None:
    validate.abs_path(container_path, "container_path")
    host_path = validate.host_path(host_path, "host_path")
    src = posixpath.normpath(container_path)
    contents_only = container_path.rstrip("/").endswith("/.")
    dest = os.path.abspath(host_path)
    if os.path.isdir(dest) and not contents_only:
        dest_dir, rename = dest, None
    elif os.path.isdir(dest):
        dest_dir, rename = dest, ""
    else:
        dest_dir, rename = os.path.dirname(dest), os.path.basename(dest)
        if not os.path.isdir(dest_dir):
            raise InvalidSpec("the folder of host_path does not exist")
        if host_path.endswith("/"):
            raise InvalidSpec("host_path ends with '/' but is not an existing folder")
    info = driver.container_stat_path(cid, src)
    if info is None:
        raise NotFound(f"no file or folder {container_path!r} in the container")
    if rename and info.is_dir and os.path.lexists(dest) and not os.path.isdir(dest):
        raise InvalidSpec("cannot copy a folder onto a file")
    stream = driver.container_get_archive(cid, src)
    try:
        safe_extract(stream, dest_dir, rename=rename)
    finally:
        stream.close()


def _clean_name(name: str) -> list[str]:
    if name.startswith("/") or "\0" in name:
        raise InvalidSpec("the archive has an absolute member name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidSpec("the archive has a member name with '..'")
    return parts


def safe_extract(stream: IO[bytes], dest_dir: str, *, rename: str | None = None) -> None:
    """Extract a tar stream under ``dest_dir`` without writing anywhere else.

    ``rename``: None keeps the archive's top-level name; a name replaces it;
    ``""`` drops it (the top folder's contents land in ``dest_dir``).
    """
    staging = tempfile.mkdtemp(prefix=".enginekit-cp-", dir=dest_dir)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                parts = _clean_name(member.name)
                if not parts:
                    continue
                if rename is not None:
                    parts = ([rename] if rename else []) + parts[1:]
                    if not parts:
                        continue
                path = os.path.join(staging, *parts)
                _ensure_dirs(staging, parts[:-1])
                if member.isdir():
                    if os.path.lexists(path) and not os.path.isdir(path):
                        os.unlink(path)
                    os.makedirs(path, exist_ok=True)
                    os.chmod(path, (member.mode & 0o777) | 0o700)
                elif member.isreg():
                    src = tar.extractfile(member)
                    if src is None:
                        continue
                    if os.path.lexists(path):
                        os.unlink(path)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(src, out)
                    os.chmod(path, member.mode & 0o777)
                    os.utime(path, (member.mtime, member.mtime))
                elif member.issym():
                    if os.path.lexists(path):
                        os.unlink(path)
                    os.symlink(member.linkname, path)
                elif member.islnk():
                    link_parts = _clean_name(member.linkname)
                    if rename is not None:
                        link_parts = ([rename] if rename else []) + link_parts[1:]
                    target = os.path.join(staging, *link_parts)
                    if not os.path.isfile(target) or os.path.islink(target):
                        raise InvalidSpec("the archive has a hard link to outside itself")
                    if os.path.lexists(path):
                        os.unlink(path)
                    os.link(target, path)
                # devices, fifos and sockets are not copied to the host

        _merge(staging, dest_dir)
    except tarfile.TarError as exc:
        raise InvalidSpec("the engine sent an unreadable archive") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ensure_dirs(root: str, parts: list[str]) -> None:
    path = root
    for part in parts:
        path = os.path.join(path, part)
        st = os.lstat(path) if os.path.lexists(path) else None
        if st is not None and stat.S_ISDIR(st.st_mode):
            continue
        if st is not None:
            os.unlink(path)  # a link or file where a folder belongs: never write through it
        os.mkdir(path, 0o755)


def _merge(staging: str, dest_dir: str) -> None:
    """Move what was staged into ``dest_dir``, replacing files, merging folders."""
    for entry in os.listdir(staging):
        src = os.path.join(staging, entry)
        dst = os.path.join(dest_dir, entry)
        src_is_dir = os.path.isdir(src) and not os.path.islink(src)
        if src_is_dir and os.path.isdir(dst) and not os.path.islink(dst):
            _merge(src, dst)
            shutil.copystat(src, dst, follow_symlinks=False)
            continue
        if os.path.lexists(dst):
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            else:
                os.unlink(dst)
        os.rename(src, dst)
