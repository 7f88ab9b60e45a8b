"""COPY and ADD for the LXC builder: files into an unpacked rootfs, with Docker's rules.

Sources come from the build context (only what ``iter_context`` yields: the
``.dockerignore`` applies, nothing outside the context is opened: every open is
``openat2(RESOLVE_IN_ROOT)`` under the context) or from another rootfs
(``COPY --from``). Destinations are resolved inside the target rootfs the way a
chroot would see them (:func:`~enginekit_lxc.fsops.scoped`): an image's symbolic
links are followed within it and never lead a write out of it. As Docker: a
single file's destination that is a link is followed (inside the rootfs); what
a directory copy meets at its own names is replaced.

Docker's rules kept here: a source directory copies its *contents*; a
destination ending in ``/``, or an existing directory, receives sources under
their base names; several sources need a destination ending in ``/``; wildcards
are Go's ``filepath.Match``; owner 0:0 unless ``--chown`` (``user[:group]``,
names looked up in the image's ``/etc/passwd`` and ``/etc/group``; no group means
the group of the same name or number), ``COPY --from`` keeps the owners it
finds; modes and modification times are kept, except that setting owners
drops set-user-ID and set-group-ID bits (the kernel does so on Docker's
``chown``); directories created on the way are 0755. ``ADD`` of a local tar
archive extracts it (:mod:`enginekit_lxc.buildtar`).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from typing import Protocol

import attrs

from enginekit.toolkit.build import ContextEntry, go_match, has_wildcards, iter_context
from enginekit.toolkit.errors import InvalidSpec

from .buildtar import extract, open_archive
from .fsops import (
    MAX_LINKS,
    CopyError,
    apply_meta,
    clean,
    clear,
    makedirs,
    resolve_chown,
    scoped,
    write_fd,
)
from .fsroot import open_in_root

__all__ = [
    "ContextSource",
    "CopyError",
    "RootfsSource",
    "SourceEntry",
    "copy_sources",
    "resolve_chown",
    "scoped",
]


@attrs.frozen(kw_only=True)
class SourceEntry:
    """One name in a source tree; ``path`` is ``/``-separated, relative to the source root."""

    path: str
    kind: str  # "file", "dir", "symlink", "other"
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: float = 0
    link_target: str = ""
    rdev: int = 0


class Source(Protocol):
    def lookup(self, pattern: str) -> list[SourceEntry]:
        """Top-level matches of a COPY source (globs expanded, top symlinks followed)."""

    def children(self, entry: SourceEntry) -> Iterator[SourceEntry]:
        """Everything below directory ``entry``, parents before children."""

    def open(self, entry: SourceEntry) -> int:
        """A read-only fd of regular file ``entry``."""


# --------------------------------------------------------------------------- sources


class ContextSource:
    """The build context, as the builder is allowed to see it."""

    def __init__(self, root: str, dockerfile: str) -> None:
        self.root = root
        self._entries: dict[str, ContextEntry] = {e.path: e for e in iter_context(root, dockerfile)}
        # A directory that .dockerignore excludes while an exception keeps something
        # below it is not itself sent: it arrives as a plain 0755 directory.
        for path in list(self._entries):
            parent = path.rpartition("/")[0]
            while parent and parent not in self._entries:
                self._entries[parent] = ContextEntry(
                    path=parent, kind="dir", mode=stat.S_IFDIR | 0o755
                )
                parent = parent.rpartition("/")[0]
        self._kids: dict[str, list[str]] = {}
        for path in sorted(self._entries, key=os.fsencode):
            parent = path.rpartition("/")[0]
            self._kids.setdefault(parent, []).append(path)
        self._fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _entry(self, path: str) -> SourceEntry:
        if path == "":
            st = os.stat(self._fd)
            return SourceEntry(path="", kind="dir", mode=st.st_mode, mtime=int(st.st_mtime))
        e = self._entries[path]
        return SourceEntry(
            path=e.path, kind=e.kind, mode=e.mode, mtime=e.mtime, link_target=e.link_target or ""
        )

    def _resolve(self, path: str) -> str:
        """``path`` with its symbolic links followed inside the context (``..`` and
        absolute targets stop at the context's root), as Docker resolves a source."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            entry = self._entries.get("/".join([*done, part]))
            if entry is not None and entry.kind == "symlink":
                hops += 1
                if hops > MAX_LINKS:
                    raise CopyError(f"too many levels of symbolic links in {path!r}")
                target = entry.link_target or ""
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return "/".join(done)

    def lookup(self, pattern: str) -> list[SourceEntry]:
        check_inside(pattern.lstrip("/"))
        cleaned = clean(pattern)
        hits = (
            sorted(p for p in self._entries if go_match(cleaned, p))
            if has_wildcards(cleaned)
            else [cleaned]
        )
        out: list[SourceEntry] = []
        for hit in hits:
            real = self._resolve(hit)
            if real != "" and real not in self._entries:
                if hit == cleaned and not has_wildcards(cleaned) and hit not in self._entries:
                    return []  # not in the context (or excluded): the caller says so
                raise CopyError(f"{pattern}: symbolic link to a file not in the build context")
            entry = self._entry(real)
            # The name a file lands under is the one written, not the link's target.
            out.append(attrs.evolve(entry, path=hit) if entry.kind != "dir" else entry)
        return out

    def children(self, entry: SourceEntry) -> Iterator[SourceEntry]:
        for path in self._kids.get(entry.path, []):
            child = self._entry(path)
            yield child
            if child.kind == "dir":
                yield from self.children(child)

    def open(self, entry: SourceEntry) -> int:
        real = self._resolve(entry.path)
        try:
            fd = open_in_root(self._fd, real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise CopyError(
                f"cannot read {entry.path!r} in the build context: {exc.strerror}"
            ) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CopyError(f"{entry.path!r} changed while the build read it")
        return fd


class RootfsSource:
    """Another stage's or image's root filesystem (``COPY --from``)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _entry(self, rel: str, host: str) -> SourceEntry:
        st = os.lstat(host)
        mode = st.st_mode
        kind = (
            "file" if stat.S_ISREG(mode)
            else "dir" if stat.S_ISDIR(mode)
            else "symlink" if stat.S_ISLNK(mode)
            else "other"
        )  # fmt: skip
        return SourceEntry(
            path=rel,
            kind=kind,
            mode=mode,
            uid=st.st_uid,
            gid=st.st_gid,
            mtime=st.st_mtime,
            link_target=os.readlink(host) if kind == "symlink" else "",
            rdev=st.st_rdev,
        )

    def lookup(self, pattern: str) -> list[SourceEntry]:
        cleaned = clean(pattern)
        if has_wildcards(cleaned):
            parent, _, base = cleaned.rpartition("/")
            if has_wildcards(parent):
                raise CopyError(f"{pattern}: wildcards only in the last path component")
            pdir = scoped(self.root, parent)
            try:
                names = sorted(os.listdir(pdir))
            except OSError:
                names = []
            rels = [f"{parent}/{n}" if parent else n for n in names if go_match(base, n)]
        else:
            rels = [cleaned]
        out: list[SourceEntry] = []
        for rel in rels:
            host = scoped(self.root, rel)
            if not os.path.lexists(host):
                continue
            entry = self._entry(clean(os.path.relpath(host, self.root)), host)
            out.append(attrs.evolve(entry, path=rel) if entry.kind != "dir" else entry)
        return out

    def children(self, entry: SourceEntry) -> Iterator[SourceEntry]:
        base = os.path.join(self.root, entry.path) if entry.path else self.root
        try:
            names = sorted(os.listdir(base))
        except OSError as exc:
            raise CopyError(f"cannot list {entry.path or '/'}: {exc.strerror}") from exc
        for name in names:
            rel = f"{entry.path}/{name}" if entry.path else name
            child = self._entry(rel, os.path.join(self.root, rel))
            yield child
            if child.kind == "dir":
                yield from self.children(child)

    def open(self, entry: SourceEntry) -> int:
        host = scoped(self.root, entry.path)
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CopyError(f"{entry.path!r} is not a regular file")
        return fd


def _put_entry(
    root: str,
    dest: str,
    entry: SourceEntry,
    source: Source,
    owner: tuple[int, int],
    dir_times: list[tuple[str, float]],
    *,
    parent_owner: tuple[int, int],
    reown: bool,
    follow_last: bool = False,
) -> None:
    """Write one source entry at absolute container path ``dest`` (replacing what is
    there; an existing directory stays and takes the entry's metadata). Missing
    parent directories are made 0755 with ``parent_owner``.

    ``reown``: the copy sets owners (a context source, ``--chown``): Docker then
    changes the owner after the mode, and the kernel drops set-user-ID and
    set-group-ID bits on that ``chown``; done the same way here.
    ``follow_last``: a symbolic link at ``dest`` is followed (inside ``root``) and
    its target written, as Docker does for the destination of a single file."""
    parent = posixpath.dirname(dest) or "/"
    makedirs(root, parent, parent_owner)
    host = scoped(root, dest, follow_last=follow_last)
    if follow_last:
        # The link may lead where directories are still missing.
        makedirs(root, "/" + os.path.relpath(os.path.dirname(host), root), parent_owner)
    if entry.kind == "dir":
        if os.path.islink(host) or (os.path.lexists(host) and not os.path.isdir(host)):
            clear(host, keep_dir=False)
        if not os.path.isdir(host):
            os.mkdir(host, 0o755)
        apply_meta(host, entry.mode, owner, None)
        if reown:
            os.chown(host, owner[0], owner[1], follow_symlinks=False)
        dir_times.append((host, entry.mtime))
        return
    clear(host, keep_dir=False)
    if entry.kind == "file":
        fd = source.open(entry)
        try:
            write_fd(fd, host)
        finally:
            os.close(fd)
    elif entry.kind == "symlink":
        os.symlink(entry.link_target, host)
    elif stat.S_ISFIFO(entry.mode):
        os.mkfifo(host, 0o600)
    elif stat.S_ISCHR(entry.mode) or stat.S_ISBLK(entry.mode):
        os.mknod(host, entry.mode, entry.rdev)
    else:
        return  # sockets are never copied
    apply_meta(host, entry.mode, owner, entry.mtime)
    if reown:
        os.chown(host, owner[0], owner[1], follow_symlinks=False)


def _copy_tree(
    root: str,
    dest_dir: str,
    top: SourceEntry,
    source: Source,
    owner: tuple[int, int] | None,
) -> None:
    """Copy the contents of directory ``top`` into ``dest_dir``.

    As Docker: ``dest_dir`` itself is created 0755 (with the ``--chown`` owner) if
    missing, and does not take ``top``'s metadata."""
    dir_times: list[tuple[str, float]] = []
    makedirs(root, dest_dir.rstrip("/") or "/", owner or (0, 0))
    prefix = top.path + "/" if top.path else ""
    for child in source.children(top):
        rel = child.path[len(prefix) :]
        target = posixpath.join(dest_dir, rel)
        _put_entry(root, target, child, source, owner or (child.uid, child.gid), dir_times,
                   parent_owner=owner or (0, 0), reown=owner is not None)  # fmt: skip
    for host, mtime in reversed(dir_times):
        os.utime(host, (mtime, mtime), follow_symlinks=False)


# --------------------------------------------------------------------------- COPY / ADD


def copy_sources(
    root: str,
    source: Source,
    sources: Sequence[str],
    dest: str,
    *,
    chown: tuple[int, int] | None,
    add: bool = False,
) -> None:
    """Do one COPY (or ADD): ``sources`` from ``source`` to absolute ``dest`` in ``root``.

    ``chown`` None keeps the owners of ``source``'s entries (a context's are 0:0).
    """
    matches: list[SourceEntry] = []
    for pattern in sources:
        found = source.lookup(pattern)
        if not found:
            raise CopyError(
                f"file not found in build context or excluded by .dockerignore: {pattern}"
            )
        matches.extend(found)
    dest_is_dir = dest.endswith("/")
    if len(matches) > 1 and not dest_is_dir:
        raise CopyError(
            "When using COPY with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    for entry in matches:
        if entry.kind == "dir":
            _copy_tree(root, dest, entry, source, chown)
            continue
        if add and entry.kind == "file":
            fd = source.open(entry)
            try:
                with open_archive(fd) as stream:
                    if stream is not None:
                        makedirs(root, dest, (0, 0))
                        extract(root, dest, stream, entry.path)
                        continue
            finally:
                os.close(fd)
        target = dest
        if dest_is_dir or os.path.isdir(scoped(root, dest)):
            target = posixpath.join(dest, posixpath.basename(entry.path))
        owner = chown if chown is not None else (entry.uid, entry.gid)
        _put_entry(root, target, entry, source, owner, [], parent_owner=chown or (0, 0),
                   reown=chown is not None, follow_last=True)  # fmt: skip


def check_inside(path: str) -> None:
    """Refuse a context source that climbs out with ``..`` (the core checks first)."""
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise InvalidSpec(f"COPY/ADD source {path!r} is outside the build context")
        elif part not in ("", "."):
            depth += 1
