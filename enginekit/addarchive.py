"""``ADD`` of a local tar archive: what every engine extracts alike, checked before a build.

Docker's builder extracts a local tar archive given to ``ADD`` (plain, gzip,
bzip2 or xz), and the engines enginekit drives agree on most of it: a member's
absolute name is taken from the destination (``/abs/x`` lands at ``DEST/abs/x``),
``a/../b`` is ``b``, a symbolic link is stored as written, a member below a link
to a directory of the archive lands in that directory. They part on the rest:

====================================================  ==============  ================  ==========
member                                                Docker 20.10,   Docker's BuildKit  enginekit
                                                      Podman, LXC     (Docker 23+)
====================================================  ==============  ================  ==========
name climbing out (``../x``, ``a/../../x``)             under DEST      refused            refused
hard link to a name climbing out                      under DEST      refused            refused
below a link to an absolute path (``lnk -> /etc``)    fails unless    creates the        refused
                                                      DEST/etc exists target in DEST
below a link climbing out (``lnk -> ../..``)          under DEST      refused            refused
below a link to a directory the archive lacks         fails           creates it         refused
====================================================  ==============  ================  ==========

:func:`check_archive` refuses, with :class:`~enginekit.errors.InvalidSpec` and
before anything is built, an archive holding a member of the last four kinds
(a name or hard link climbing out; a member below a symbolic link of the archive
that is absolute, climbs out, or does not lead to a directory the archive made
before it), so that every engine builds the same image or none does. A file that
is not a readable tar archive is copied as it is and is not looked into.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from typing import IO

from enginekit.errors import InvalidSpec

__all__ = ["check_archive", "decompressed"]

_MAX_LINKS = 40
_REFUSED = (
    "engines extract it differently (Docker 20.10 and Podman resolve it inside the "
    "destination, Docker's BuildKit refuses it or creates what is missing): refused on "
    "every engine"
)


def decompressed(head: bytes, raw: IO[bytes]) -> IO[bytes]:
    """``raw`` decompressed as its first bytes ``head`` say (gzip, bzip2, xz; else as is),
    as Docker recognises a local tar that ADD extracts."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    return raw


_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def _clean(name: str) -> list[str] | None:
    """A member name as parts below the destination; None if it climbs out with ``..``
    (an absolute name is taken from the destination, as every engine does)."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return parts


class _Archive:
    """What the members so far made: directories and symbolic links, by path."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.dirs: set[str] = {""}
        self.links: dict[str, str] = {}

    def refuse(self, member: str, why: str) -> InvalidSpec:
        return InvalidSpec(f"{self.what}: the archive's member {member!r} {why}: {_REFUSED}")

    def resolve(self, parts: list[str], member: str) -> list[str]:
        """``parts`` with every symbolic link of the archive on the way (not the last
        part) replaced by the directory it leads to; refuses the kinds above."""
        hops = 0
        i = 0
        while i < len(parts) - 1:
            prefix = "/".join(parts[: i + 1])
            target = self.links.get(prefix)
            if target is None:
                i += 1
                continue
            hops += 1
            if hops > _MAX_LINKS:
                raise self.refuse(member, "lies below too many levels of symbolic links")
            if target.startswith("/"):
                raise self.refuse(
                    member, f"lies below the symbolic link {prefix!r} to an absolute path"
                )
            base = "/".join(parts[:i])
            resolved = _clean(f"{base}/{target}" if base else target)
            if resolved is None:
                raise self.refuse(
                    member, f"lies below the symbolic link {prefix!r}, which climbs out with '..'"
                )
            if "/".join(resolved) not in self.dirs:
                raise self.refuse(
                    member,
                    f"lies below the symbolic link {prefix!r}, which leads to no directory "
                    "made by the archive before it",
                )
            parts = resolved + parts[i + 1 :]
            i = 0
        return parts

    def add(self, member: tarfile.TarInfo) -> None:
        parts = _clean(member.name)
        if parts is None:
            raise self.refuse(member.name, "climbs out of the destination with '..'")
        if not parts:
            return
        parts = self.resolve(parts, member.name)
        if member.islnk():
            target = _clean(member.linkname)
            if target is None:
                raise self.refuse(member.name, "is a hard link to a name climbing out with '..'")
            self.resolve(target, member.name)
        path = "/".join(parts)
        for i in range(1, len(parts)):
            self.dirs.add("/".join(parts[:i]))
        self.links.pop(path, None)
        self.dirs.discard(path)
        if member.issym():
            self.links[path] = member.linkname
        elif member.isdir():
            self.dirs.add(path)


def check_archive(path: str, what: str) -> None:
    """Refuse (``InvalidSpec``) the ``ADD`` source at ``path`` if it is a tar archive
    that engines extract differently (see the module docstring). ``what`` names the
    source in the message. A file that is no tar archive passes; so does the broken
    tail of one (the engines' own extraction reports it)."""
    archive = _Archive(what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidSpec(f"{what}: cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        try:
            with decompressed(head, raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    archive.add(member)
        except InvalidSpec:
            raise
        except _ERRORS:
            return  # no archive (copied as it is), or a broken one
