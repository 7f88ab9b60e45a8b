"""A build context's tar unpacked by the ``lxc+ssh://`` agent (see :mod:`enginekit_lxc.agent`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from typing import IO

from enginekit.toolkit.errors import InvalidSpec

__all__ = ["extract_context"]

_CHUNK = 1 << 20


def _clean_parts(name: str) -> list[str]:
    if name.startswith("/") or "\0" in name:
        raise InvalidSpec("the build context holds an absolute name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidSpec("the build context holds a name with '..'")
    return parts


def _real_dirs(root: str, parts: list[str]) -> str:
    """``root/parts...`` made of directories (never through a symbolic link)."""
    path = root
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise InvalidSpec("the build context writes through a link or a file")
        if not os.path.lexists(path):
            os.mkdir(path, 0o755)
    return path


def extract_context(stream: IO[bytes], dest: str) -> None:
    """A build context's tar (:func:`enginekit.buildcontext.context_tar`) into
    ``dest``: modes and mtimes kept, symbolic links as links (their text
    unchanged), hard links only to files extracted before, nothing written
    outside ``dest`` or through a link."""
    dirs: list[tuple[str, int, int]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                parts = _clean_parts(member.name)
                if not parts:
                    continue
                parent = _real_dirs(dest, parts[:-1])
                path = os.path.join(parent, parts[-1])
                if member.isdir():
                    _real_dirs(dest, parts)
                    dirs.append((path, member.mode & 0o7777, int(member.mtime)))
                    continue
                if os.path.lexists(path):
                    raise InvalidSpec(f"the build context holds {member.name!r} twice")
                if member.isreg():
                    src = tar.extractfile(member)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        if src is not None:
                            shutil.copyfileobj(src, out, _CHUNK)
                    os.chmod(path, member.mode & 0o7777)
                    os.utime(path, (member.mtime, member.mtime))
                elif member.issym():
                    os.symlink(member.linkname, path)
                    with contextlib.suppress(OSError, NotImplementedError):
                        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
                elif member.islnk():
                    target = os.path.join(dest, *_clean_parts(member.linkname))
                    if os.path.islink(target) or not os.path.isfile(target):
                        raise InvalidSpec("the build context holds a hard link to nothing in it")
                    os.link(target, path, follow_symlinks=False)
                # devices, fifos and sockets are not part of a build context
    except tarfile.TarError as exc:
        raise InvalidSpec(f"the build context arrived unreadable ({exc})") from exc
    for path, mode, mtime in reversed(dirs):
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
