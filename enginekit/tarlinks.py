"""Symbolic links that lead out of the folder a tar is extracted in.

The rule, the same on every engine: a symbolic link in what is sent (a build
context, a ``copy_to`` source) is sent and written as a link, its text unchanged,
whatever it names: a path inside, an absolute path, nothing, or a path that
climbs out with ``..``. Its target is never followed, on the host or in the
container; following it is the business of whoever uses the link later (a
COPY source that leads out of the context through a link is refused before the
build, see :mod:`enginekit.buildcontext`).

Some engines extract such tars with a check that refuses a relative link whose
text, joined to the link's folder, leads lexically out of the folder they
extract in ("invalid symlink"): Docker's ``PUT /containers/{id}/archive``
(moby's archive package up to go-archive 0.2, Docker 20.10 to 28 at least) and
Podman's build context before 5.8.2 (``archive.Untar``, no chroot). Two
rewritings of a tar make such an extractor write exactly what the plain tar
describes:

- :func:`from_ancestor` (``copy_to``): extract in an ancestor folder high enough
  for every link to stay inside it, the names prefixed with the way down;
- :func:`staged` (a build context, whose extraction folder is fixed): each such
  link is written first below a staging folder deep enough, then hard-linked
  to its place (a hard link to a symbolic link is that link again); the staging
  folder is named as a file of the tar that comes last and replaces it.

A tar without such links is sent unchanged.
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

__all__ = ["climb", "deepest_climb", "from_ancestor", "rebased", "staged"]

_STAGE = "0"
_NAMES = ("path", "linkpath")


def climb(name: str, linkname: str) -> int:
    """How many folders above the archive's root the link ``name -> linkname`` leads.

    0 for a link that stays inside (lexically, as Go's ``filepath.Join`` cleans
    it) or is absolute (extractors join those to the link's folder: inside).
    """
    if not linkname or linkname.startswith("/"):
        return 0
    parts = [p for p in name.split("/") if p not in ("", ".")][:-1] + linkname.split("/")
    kept = 0
    up = 0
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if kept:
                kept -= 1
            else:
                up += 1
        else:
            kept += 1
    return up


def _seekable(src: IO[bytes], stack: contextlib.ExitStack) -> IO[bytes]:
    """``src`` rewound, or a spooled copy of it when it cannot seek."""
    try:
        if src.seekable():
            src.seek(0)
            return src
    except (OSError, ValueError):
        pass
    copy = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
    shutil.copyfileobj(src, copy)
    copy.seek(0)
    return copy


def _members(src: IO[bytes]) -> list[tarfile.TarInfo]:
    """The headers of the tar ``src`` (rewound before and after)."""
    src.seek(0)
    with tarfile.open(fileobj=src, mode="r:") as tar:
        members = tar.getmembers()
    src.seek(0)
    return members


def deepest_climb(members: list[tarfile.TarInfo]) -> int:
    """The most folders any symbolic link of ``members`` climbs above the root."""
    return max((climb(m.name, m.linkname) for m in members if m.issym()), default=0)


def rebased(src: IO[bytes], prefix: str) -> IO[bytes]:
    """A copy of the tar ``src`` with every name (and hard link target) below ``prefix``.

    An anonymous temporary file, rewound; the caller closes it.
    """
    prefix = prefix.strip("/")
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            src.seek(0)
            with tarfile.open(fileobj=src, mode="r:") as old:
                for member in old:
                    data = old.extractfile(member) if member.isreg() else None
                    # A pax "path" or "linkpath" record would win over the new name.
                    member.pax_headers = {
                        k: v for k, v in member.pax_headers.items() if k not in _NAMES
                    }
                    member.name = posixpath.join(prefix, member.name.lstrip("/"))
                    if member.islnk():
                        member.linkname = posixpath.join(prefix, member.linkname.lstrip("/"))
                    tar.addfile(member, data)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


@contextlib.contextmanager
def from_ancestor(
    path: str, src: IO[bytes], resolve: Callable[[str], str] | None = None
) -> Iterator[tuple[str, IO[bytes]]]:
    """Where to extract the tar ``src`` meant for the folder ``path``, and what to send.

    Unchanged when no link climbs out of ``path``. Otherwise the folder as many
    levels up as the deepest link climbs (at most ``/``), and the tar with the
    way down prefixed to its names: extracted there, the same files and links
    land in the same places. ``resolve`` (called only then) gives ``path`` free of
    symbolic links, so that the way down goes through real folders only.
    """
    with contextlib.ExitStack() as stack:
        body = _seekable(src, stack)
        up = deepest_climb(_members(body))
        if not up:
            yield path, body
            return
        folder = posixpath.normpath(resolve(path) if resolve is not None else path)
        parts = [p for p in folder.split("/") if p]
        keep = max(len(parts) - up, 0)
        base = "/" + "/".join(parts[:keep])
        prefix = "/".join(parts[keep:])
        if not prefix:
            yield base, body
            return
        yield base, stack.enter_context(rebased(body, prefix))


def _host(members: list[tarfile.TarInfo], climbing: set[str], prefer: str | None) -> str | None:
    """A member the staging folder can be named after: not a folder, not a link
    that climbs out, named once in the tar (``prefer`` if it qualifies)."""
    counts: dict[str, int] = {}
    for m in members:
        counts[m.name] = counts.get(m.name, 0) + 1
    names = [
        m.name for m in members if not m.isdir() and m.name not in climbing and counts[m.name] == 1
    ]
    if prefer in names:
        return prefer
    return names[0] if names else None


def staged(src: IO[bytes], prefer: str | None = None) -> IO[bytes]:
    """The build context tar ``src`` rewritten so no symbolic link in it climbs out
    of the extraction folder when it is written, extracted to the same tree.

    Each climbing link is first written at ``HOST/0/.../NAME`` (as many ``0`` as
    the deepest link climbs), then its place gets a hard link to it; ``HOST`` is a
    file of the tar (``prefer``, the Dockerfile, when it can be), written last:
    the extractor removes the staging folder to write it (Docker's and Podman's
    archive packages replace anything that is not a folder with the member).
    Returns ``src`` itself (rewound) when nothing climbs out, or when the tar has
    no file to name the staging folder after; else a new temporary file (``src``
    is then closed).
    """
    members = _members(src)
    up = deepest_climb(members)
    if not up:
        return src
    climbing = {m.name for m in members if m.issym() and climb(m.name, m.linkname)}
    host = _host(members, climbing, prefer)
    if host is None:
        return src
    stage = posixpath.join(host, *([_STAGE] * up))
    last = {host} | {m.name for m in members if m.islnk() and m.linkname == host}
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for member in members:
                if member.name in climbing:
                    tar.addfile(_clone(member, posixpath.join(stage, member.name)))
            src.seek(0)
            with tarfile.open(fileobj=src, mode="r:") as old:
                deferred: list[tarfile.TarInfo] = []
                for member in old:
                    if member.name in last:
                        deferred.append(member)
                    elif member.name in climbing:
                        hard = _clone(member, member.name)
                        hard.type = tarfile.LNKTYPE
                        hard.linkname = posixpath.join(stage, member.name)
                        tar.addfile(hard)
                    else:
                        tar.addfile(member, old.extractfile(member) if member.isreg() else None)
                # The file the staging folder is named after, then hard links to it.
                for member in sorted(deferred, key=lambda m: m.islnk()):
                    tar.addfile(member, old.extractfile(member) if member.isreg() else None)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    src.close()
    return out


def _clone(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = member.type
    info.linkname = member.linkname
    info.mode = member.mode
    info.mtime = member.mtime
    info.uid, info.gid = member.uid, member.gid
    info.uname, info.gname = member.uname, member.gname
    info.pax_headers = {
        k: v for k, v in member.pax_headers.items() if k not in ("path", "linkpath", "size")
    }
    return info
