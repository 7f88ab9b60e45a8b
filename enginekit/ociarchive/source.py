"""Reading the files of an archive (a tar, compressed or not) or an OCI layout directory.

Nothing is extracted by its member name: members are read in place, and an
unsafe name, a link leading outside or a device member make the archive
invalid.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from ..errors import InvalidSpec
from .media import _CHUNK, _JSON_LIMIT

_LINK_DEPTH = 40


class _Source(Protocol):
    """Read access to the files of an archive or a layout directory, by path."""

    def has(self, name: str) -> bool: ...

    def open(self, name: str) -> IO[bytes]: ...

    def size(self, name: str) -> int: ...


def _clean_member(name: str) -> str | None:
    """A member name as a clean relative path (None for the root); InvalidSpec if unsafe."""
    if "\x00" in name:
        raise InvalidSpec("archive member name contains a NUL byte")
    if name.startswith("/"):
        raise InvalidSpec(f"archive member has an absolute name: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidSpec(f"archive member name contains '..': {name!r}")
    return "/".join(parts) or None


class _TarSource:
    """Members of a plain (uncompressed) tar, read in place, links resolved inside it."""

    def __init__(self, path: str) -> None:
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidSpec(f"not an image archive (not a tar file): {path}") from exc
        except OSError as exc:
            raise InvalidSpec(f"cannot read image archive {path}: {exc.strerror}") from exc
        self._files: dict[str, tarfile.TarInfo] = {}
        self._links: dict[str, str] = {}
        try:
            self._index()
        except BaseException:
            self._tar.close()
            raise

    def _index(self) -> None:
        try:
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSpec("image archive is truncated or corrupt") from exc
        if not members:
            raise InvalidSpec("not an image archive: empty tar")
        for member in members:
            name = _clean_member(member.name)
            if name is None:
                continue
            if member.isdir():
                self._files.pop(name, None)
                continue
            if member.issym():
                if member.linkname.startswith("/"):
                    raise InvalidSpec(f"archive link {name!r} points to an absolute path")
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.linkname)
                )
                if target == ".." or target.startswith("../") or target == ".":
                    raise InvalidSpec(f"archive link {name!r} points outside the archive")
                self._links[name] = target
                self._files.pop(name, None)
            elif member.islnk():
                target_name = _clean_member(member.linkname)
                if target_name is None:
                    raise InvalidSpec(f"archive hard link {name!r} has no target")
                self._links[name] = target_name
                self._files.pop(name, None)
            elif member.isreg():
                self._files[name] = member
                self._links.pop(name, None)
            else:
                raise InvalidSpec(f"archive member {name!r} is not a file, directory or link")

    def _resolve(self, name: str) -> tarfile.TarInfo:
        path = _clean_member(name)
        if path is None:
            raise InvalidSpec(f"archive path {name!r} names no file")
        for _ in range(_LINK_DEPTH):
            member = self._files.get(path)
            if member is not None:
                return member
            parts = path.split("/")
            for i in range(len(parts), 0, -1):
                target = self._links.get("/".join(parts[:i]))
                if target is not None:
                    path = posixpath.normpath(posixpath.join(target, *parts[i:]))
                    if path == ".." or path.startswith("../"):
                        raise InvalidSpec(f"archive path {name!r} leads outside the archive")
                    break
            else:
                raise InvalidSpec(f"image archive has no file {name!r}")
        raise InvalidSpec(f"too many levels of links resolving {name!r} in the archive")

    def has(self, name: str) -> bool:
        try:
            self._resolve(name)
        except InvalidSpec:
            return False
        return True

    def open(self, name: str) -> IO[bytes]:
        stream = self._tar.extractfile(self._resolve(name))
        if stream is None:  # pragma: no cover - _resolve returns regular files only
            raise InvalidSpec(f"archive member {name!r} is not a file")
        return stream

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def close(self) -> None:
        self._tar.close()


class _DirSource:
    """Files of an OCI layout directory; nothing outside it is ever opened."""

    def __init__(self, root: str) -> None:
        self._root = os.path.realpath(root)
        if not os.path.isdir(self._root):
            raise InvalidSpec(f"not an OCI layout directory: {root}")

    def _path(self, name: str) -> str:
        clean = _clean_member(name)
        if clean is None:
            raise InvalidSpec(f"layout path {name!r} names no file")
        real = os.path.realpath(os.path.join(self._root, clean))
        if os.path.commonpath([real, self._root]) != self._root:
            raise InvalidSpec(f"layout path {name!r} leads outside the layout")
        return real

    def has(self, name: str) -> bool:
        try:
            return os.path.isfile(self._path(name))
        except InvalidSpec:
            return False

    def open(self, name: str) -> IO[bytes]:
        path = self._path(name)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise InvalidSpec(f"OCI layout has no readable file {name!r}") from exc

    def size(self, name: str) -> int:
        try:
            return os.path.getsize(self._path(name))
        except OSError as exc:
            raise InvalidSpec(f"OCI layout has no readable file {name!r}") from exc


@contextlib.contextmanager
def _open_archive(path: str) -> Iterator[_TarSource]:
    """Open an archive as a :class:`_TarSource`, decompressing a compressed one first."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except IsADirectoryError as exc:
        raise InvalidSpec(f"not an image archive (a directory): {path}") from exc
    except OSError as exc:
        raise InvalidSpec(f"cannot read image archive {path}: {exc.strerror}") from exc
    opener: Callable[[str], Any] | None = None
    if magic.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif magic.startswith(b"BZh"):
        opener = bz2.open
    elif magic.startswith(b"\xfd7zXZ\x00"):
        opener = lzma.open
    if opener is None:
        source = _TarSource(path)
        try:
            yield source
        finally:
            source.close()
        return
    with tempfile.TemporaryDirectory(prefix="enginekit-archive-") as tmp:
        plain = os.path.join(tmp, "archive.tar")
        try:
            with opener(path) as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise InvalidSpec(f"compressed image archive is corrupt: {path}") from exc
        source = _TarSource(plain)
        try:
            yield source
        finally:
            source.close()


def _read_small(source: _Source, name: str, what: str) -> bytes:
    if source.size(name) > _JSON_LIMIT:
        raise InvalidSpec(f"{what} {name!r} is too large")
    with source.open(name) as fh:
        return fh.read()
