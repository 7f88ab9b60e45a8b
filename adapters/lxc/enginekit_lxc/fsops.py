"""Host-side file operations inside an unpacked root filesystem (a build's bundle).

Paths are container paths resolved with :func:`scoped`: symbolic links are
followed as a chroot would follow them (absolute targets from the root, ``..``
stopping at it), so no write ever leaves the root; the last component of a path
that is being replaced is not followed. The builder is the only writer of the
bundle while a step runs on the host, so nothing changes under these walks.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

__all__ = [
    "CHUNK",
    "CopyError",
    "apply_meta",
    "clean",
    "clear",
    "makedirs",
    "resolve_chown",
    "scoped",
    "write_fd",
]

MAX_LINKS = 255
CHUNK = 1 << 20


class CopyError(Exception):
    """A COPY/ADD that cannot be done (the builder turns it into ``BuildFailed``)."""


def clean(path: str) -> str:
    """A clean relative path ("" for the root)."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/".join(out)


def scoped(root: str, path: str, *, follow_last: bool = True) -> str:
    """The host path of ``path`` inside ``root``, symbolic links followed as a chroot
    would (absolute targets from ``root``, ``..`` stopping at it). A missing part
    is taken literally. With ``follow_last=False`` the last component is not followed."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if not parts and not follow_last:
            resolved.append(part)
            break
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise CopyError(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _lookup_id(root: str, db: str, name: str) -> int | None:
    try:
        with open(scoped(root, db), "rb") as f:
            data = f.read(4 << 20)
    except OSError:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def resolve_chown(root: str, spec: str) -> tuple[int, int]:
    """``--chown`` as Docker reads it: ``user[:group]``, names from the image's files."""
    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise CopyError(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    uid = int(user) if user.isdigit() else _lookup_id(root, "/etc/passwd", user)
    if uid is None:
        raise CopyError(f"unable to find user {user}: no matching entries in passwd file")
    gid = int(group) if group.isdigit() else _lookup_id(root, "/etc/group", group)
    if gid is None:
        raise CopyError(f"unable to find group {group}: no matching entries in group file")
    return uid, gid


def makedirs(root: str, path: str, owner: tuple[int, int]) -> str:
    """``mkdir -p`` of ``path`` inside ``root``; new directories 0755 with ``owner``.

    The path is resolved first (links followed inside ``root``); what is missing
    then is a plain chain of names, created one by one."""
    host = scoped(root, path)
    missing: list[str] = []
    probe = host
    while not os.path.isdir(probe):
        if os.path.lexists(probe):
            raise CopyError(f"cannot create directory {path}: a file is in the way")
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe or len(parent) < len(root):
            break
        probe = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue
        os.chown(directory, owner[0], owner[1], follow_symlinks=False)
        os.chmod(directory, 0o755)
    return host


def clear(host: str, *, keep_dir: bool) -> None:
    """Remove what is at ``host`` (never following it), keeping a directory if asked."""
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(host)
    else:
        os.unlink(host)


def apply_meta(host: str, mode: int, owner: tuple[int, int], mtime: float | None) -> None:
    os.chown(host, owner[0], owner[1], follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(host, stat.S_IMODE(mode))
    if mtime is not None:
        os.utime(host, (mtime, mtime), follow_symlinks=False)


def write_fd(src_fd: int, host: str) -> None:
    out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                n = os.copy_file_range(src_fd, out, CHUNK)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                with os.fdopen(os.dup(src_fd), "rb") as r, os.fdopen(os.dup(out), "wb") as w:
                    shutil.copyfileobj(r, w, CHUNK)
                break
            if n == 0:
                break
    finally:
        os.close(out)
