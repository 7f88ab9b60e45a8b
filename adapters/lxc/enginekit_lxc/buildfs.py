"""COPY and ADD for the LXC builder: files into an unpacked rootfs, with Docker's rules.

Sources come from the build context (only what ``iter_context`` yields: the
``.dockerignore`` applies, nothing outside the context is opened: every open is
``openat2(RESOLVE_IN_ROOT)`` under the context) or from another rootfs
(``COPY --from``). Destinations are resolved inside the target rootfs the way a
chroot would see them (:func:`scoped`): an image's symbolic links are followed
within it and never lead a write out of it; the last component is replaced, not
followed.

Docker's rules kept here: a source directory copies its *contents*; a
destination ending in ``/``, or an existing directory, receives sources under
their base names; several sources need a destination ending in ``/``; wildcards
are Go's ``filepath.Match``; owner 0:0 unless ``--chown`` (``user[:group]``,
names looked up in the image's ``/etc/passwd`` and ``/etc/group``; no group means
the group of the same name or number), ``COPY --from`` keeps the owners it
finds; modes and modification times are kept; directories created on the way
are 0755. ``ADD`` of a local tar archive (plain, gzip, bzip2 or xz) extracts it
into the destination, keeping the archive's owners and modes; a member whose
name is absolute or climbs out with ``..``, a hard link to outside the
archive, and a relative symbolic link leading out of the destination are
refused.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from typing import IO, Protocol

import attrs

from enginekit.buildcontext import ContextEntry, go_match, has_wildcards, iter_context
from enginekit.errors import InvalidSpec

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

_MAX_LINKS = 255
_CHUNK = 1 << 20


class CopyError(Exception):
    """A COPY/ADD that cannot be done (the builder turns it into ``BuildFailed``)."""


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


def _clean(path: str) -> str:
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
                if hops > _MAX_LINKS:
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
        clean = _clean(pattern)
        hits = (
            sorted(p for p in self._entries if go_match(clean, p))
            if has_wildcards(clean)
            else [clean]
        )
        out: list[SourceEntry] = []
        for hit in hits:
            real = self._resolve(hit)
            if real != "" and real not in self._entries:
                if hit == clean and not has_wildcards(clean) and hit not in self._entries:
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
        clean = _clean(pattern)
        if has_wildcards(clean):
            parent, _, base = clean.rpartition("/")
            if has_wildcards(parent):
                raise CopyError(f"{pattern}: wildcards only in the last path component")
            pdir = scoped(self.root, parent)
            try:
                names = sorted(os.listdir(pdir))
            except OSError:
                names = []
            rels = [f"{parent}/{n}" if parent else n for n in names if go_match(base, n)]
        else:
            rels = [clean]
        out: list[SourceEntry] = []
        for rel in rels:
            host = scoped(self.root, rel)
            if not os.path.lexists(host):
                continue
            entry = self._entry(_clean(os.path.relpath(host, self.root)), host)
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


# --------------------------------------------------------------------------- target side


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
            if links > _MAX_LINKS:
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


def _makedirs(root: str, path: str, owner: tuple[int, int]) -> str:
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


def _clear(host: str, *, keep_dir: bool) -> None:
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


def _apply_meta(host: str, mode: int, owner: tuple[int, int], mtime: float | None) -> None:
    os.chown(host, owner[0], owner[1], follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(host, stat.S_IMODE(mode))
    if mtime is not None:
        os.utime(host, (mtime, mtime), follow_symlinks=False)


def _write_fd(src_fd: int, host: str) -> None:
    out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                n = os.copy_file_range(src_fd, out, _CHUNK)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                with os.fdopen(os.dup(src_fd), "rb") as r, os.fdopen(os.dup(out), "wb") as w:
                    shutil.copyfileobj(r, w, _CHUNK)
                break
            if n == 0:
                break
    finally:
        os.close(out)


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
) -> None:
    """Write one source entry at absolute container path ``dest`` (replacing what is
    there; an existing directory stays and takes the entry's metadata). Missing
    parent directories are made 0755 with ``parent_owner``.

    ``reown``: the copy sets owners (a context source, ``--chown``): Docker then
    changes the owner after the mode, and the kernel drops set-user-ID and
    set-group-ID bits on that ``chown``; done the same way here."""
    parent = posixpath.dirname(dest) or "/"
    _makedirs(root, parent, parent_owner)
    host = scoped(root, dest, follow_last=False)
    if entry.kind == "dir":
        if os.path.islink(host) or (os.path.lexists(host) and not os.path.isdir(host)):
            _clear(host, keep_dir=False)
        if not os.path.isdir(host):
            os.mkdir(host, 0o755)
        _apply_meta(host, entry.mode, owner, None)
        if reown:
            os.chown(host, owner[0], owner[1], follow_symlinks=False)
        dir_times.append((host, entry.mtime))
        return
    _clear(host, keep_dir=False)
    if entry.kind == "file":
        fd = source.open(entry)
        try:
            _write_fd(fd, host)
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
    _apply_meta(host, entry.mode, owner, entry.mtime)
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
    _makedirs(root, dest_dir.rstrip("/") or "/", owner or (0, 0))
    prefix = top.path + "/" if top.path else ""
    for child in source.children(top):
        rel = child.path[len(prefix) :]
        target = posixpath.join(dest_dir, rel)
        _put_entry(root, target, child, source, owner or (child.uid, child.gid), dir_times,
                   parent_owner=owner or (0, 0), reown=owner is not None)  # fmt: skip
    for host, mtime in reversed(dir_times):
        os.utime(host, (mtime, mtime), follow_symlinks=False)


# --------------------------------------------------------------------------- ADD archives


def _decompressed(head: bytes, raw: IO[bytes]) -> IO[bytes]:
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    return raw


@contextlib.contextmanager
def _open_archive(fd: int) -> Iterator[IO[bytes] | None]:
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


def _extract(root: str, dest_dir: str, stream: IO[bytes], name: str) -> None:
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
        host = scoped(root, target)
        if os.path.lexists(host) and not os.path.isdir(host):
            _clear(host, keep_dir=False)
        if not os.path.isdir(host):
            _makedirs(root, target, (0, 0))
        _apply_meta(host, stat.S_IFDIR | mode, owner, None)
        dir_times.append((host, member.mtime))
        return
    _makedirs(root, posixpath.dirname(target), (0, 0))
    host = scoped(root, target, follow_last=False)
    _clear(host, keep_dir=False)
    if member.isreg():
        fobj = tar.extractfile(member)
        assert fobj is not None
        out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(out, "wb") as w:
            shutil.copyfileobj(fobj, w, _CHUNK)
        mode |= stat.S_IFREG
    elif member.issym():
        if not member.linkname.startswith("/"):
            dest_rel = _clean(dest_dir)
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
    _apply_meta(host, mode, owner, member.mtime)


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
                with _open_archive(fd) as stream:
                    if stream is not None:
                        _makedirs(root, dest, (0, 0))
                        _extract(root, dest, stream, entry.path)
                        continue
            finally:
                os.close(fd)
        target = dest
        if dest_is_dir or os.path.isdir(scoped(root, dest)):
            target = posixpath.join(dest, posixpath.basename(entry.path))
        owner = chown if chown is not None else (entry.uid, entry.gid)
        _put_entry(root, target, entry, source, owner, [], parent_owner=chown or (0, 0),
                   reown=chown is not None)  # fmt: skip


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
