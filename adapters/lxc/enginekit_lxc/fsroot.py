"""Paths inside a container's root file system, never escaping it.

Every lookup goes through ``openat2(2)`` with ``RESOLVE_IN_ROOT``: the kernel
resolves each component (``..`` clamped at the root, absolute symlinks taken
relative to the root) atomically, so neither a symlink in an image nor a
container changing its files meanwhile can lead a host-side operation out of
the root. ``RESOLVE_NO_MAGICLINKS`` also refuses ``/proc/self/...`` style links.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat
import struct

__all__ = [
    "Root",
    "open_in_root",
]

_SYS_OPENAT2 = 437  # the same number on every architecture
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """``openat2(root_fd, path, flags, mode, RESOLVE_IN_ROOT)``; raises ``OSError``."""
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    buf = ctypes.create_string_buffer(how, len(how))
    rel = os.fsencode(path.lstrip("/") or ".")
    # EAGAIN: the lookup raced with a mount or rename somewhere on the host
    # (the kernel cannot then vouch for the confinement); try again.
    for _ in range(1000):
        fd = _libc.syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(root_fd),
            ctypes.c_char_p(rel),
            buf,
            ctypes.c_size_t(len(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(err, os.strerror(err), path)


def _split(path: str) -> tuple[str, str]:
    """(parent, basename) of a normalised absolute container path."""
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts:
        return "/", ""
    return "/" + "/".join(parts[:-1]), parts[-1]


class Root:
    """An open directory taken as ``/`` (a rootfs on the host, or ``/proc/PID/root``)."""

    def __init__(self, host_path: str) -> None:
        self.host_path = host_path
        self.fd = os.open(host_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str, flags: int, mode: int = 0) -> int:
        return open_in_root(self.fd, path, flags, mode)

    def parent(self, path: str) -> tuple[int, str]:
        """An ``O_PATH`` fd of ``path``'s parent directory (resolved inside the
        root) and the last component, which is not followed."""
        parent, name = _split(posixpath.normpath("/" + path))
        return self.open(parent, os.O_PATH | os.O_DIRECTORY), name

    def lstat(self, path: str) -> os.stat_result:
        """``lstat`` of ``path`` inside the root (the last component not followed)."""
        fd = self.open(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            return os.stat(fd)
        finally:
            os.close(fd)

    def stat(self, path: str) -> os.stat_result:
        fd = self.open(path, os.O_PATH)
        try:
            return os.stat(fd)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        fd = self.open(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            return os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)

    def read_bytes(self, path: str, *, limit: int = 1 << 20) -> bytes:
        fd = self.open(path, os.O_RDONLY | os.O_NOCTTY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def which(self, name: str, path_env: str, cwd: str = "/") -> str | None:
        """Where ``name`` is found as the container would find it (Docker's
        LookPath inside the root): a name with a ``/`` is taken as it is;
        else the first executable regular file in ``path_env``'s directories."""
        if "/" in name:
            return name
        for entry in path_env.split(":"):
            base = entry or "."
            candidate = posixpath.join(
                base if base.startswith("/") else posixpath.join(cwd, base), name
            )
            try:
                st = self.stat(candidate)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return candidate if entry.startswith("/") else posixpath.join(entry or ".", name)
        return None

    def makedirs(self, path: str, mode: int = 0o755, *, uid: int = 0, gid: int = 0) -> None:
        """``mkdir -p`` inside the root; new directories get ``uid``:``gid``."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        current = "/"
        for part in parts:
            nxt = current.rstrip("/") + "/" + part
            try:
                fd = self.open(nxt, os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                pfd = self.open(current, os.O_PATH | os.O_DIRECTORY)
                try:
                    # mkdirat needs a real directory fd, not O_PATH.
                    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
                finally:
                    os.close(pfd)
                try:
                    try:
                        os.mkdir(part, mode, dir_fd=dfd)
                        os.chown(part, uid, gid, dir_fd=dfd, follow_symlinks=False)
                    except FileExistsError:
                        pass
                finally:
                    os.close(dfd)
                fd = self.open(nxt, os.O_PATH | os.O_DIRECTORY)
            os.close(fd)
            current = nxt
