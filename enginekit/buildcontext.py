"""The build context: what is sent to a builder, and the checks made before any build.

The rules are those of Docker's client (the classic builder's tar upload):

- ``.dockerignore`` (:func:`load_dockerignore`): one pattern a line; a line whose
  first character is ``#`` is a comment; surrounding blanks are trimmed; a leading
  ``!`` makes an exception; each pattern is cleaned (``a//b/../c`` -> ``a/c``) and a
  leading ``/`` dropped. Patterns use Go's ``filepath.Match`` syntax (``*`` and ``?``
  never cross ``/``, ``[...]`` classes with ``^`` negation, ``\\`` escapes) plus ``**``
  (any number of directories, including none). A path is excluded when it, or one of
  its parent directories, matches; the last matching pattern wins.
- The walk (:func:`iter_context`) visits names in byte order, never follows a
  symbolic link and skips an excluded directory unless an exception pattern names
  something under it literally (``!dir/keep``); the excluded directory itself is then
  not sent, only what is re-included below it. Sockets are never sent. The Dockerfile
  and ``.dockerignore`` are always sent; Docker's builder then deletes them from what
  COPY/ADD see when ``.dockerignore`` excludes them (``for_copy=True`` gives that view).
- :func:`context_tar` writes that walk as an uncompressed tar: symbolic links stored
  as links with their text unchanged (whatever they point to: Docker's builder
  extracts the context in a chroot and takes them all), hard links as links, modes
  and whole-second mtimes kept, owner 0:0.
- :func:`check_sources` and :func:`validate_build` refuse, before anything is built, a
  COPY/ADD source that is missing, ignored, or leaves the context (``..``, an absolute
  path, a symbolic link pointing out), and a remote ``ADD``.

Nothing here reads outside the context directory: directories and files are opened
relative to their parent's descriptor with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Literal

import attrs

from enginekit import validate
from enginekit.errors import InvalidSpec

if TYPE_CHECKING:
    from enginekit.dockerfile import BuildState, Dockerfile, Evaluation

__all__ = [
    "ContextEntry",
    "DockerIgnore",
    "check_sources",
    "clean_path",
    "context_tar",
    "dockerfile_path",
    "go_match",
    "has_wildcards",
    "iter_context",
    "load_dockerignore",
    "parse_dockerignore",
    "resolve_context",
    "validate_build",
]

EntryKind = Literal["file", "dir", "symlink", "other"]


# --------------------------------------------------------------------------- paths


def clean_path(path: str) -> str:
    """Lexically clean a slash-separated path as Go's ``path.Clean`` does."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


# --------------------------------------------------------------------------- Go filepath.Match


class _BadPattern(Exception):
    pass


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise _BadPattern
    return r, rest


def _match_chunk(chunk: str, s: str) -> str | None:
    """Match ``chunk`` at the start of ``s``; the rest of ``s`` or None. Validates fully."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk.startswith("^"):
                negated = True
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= r <= hi and r != "":
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        elif c == "\\":
            chunk = chunk[1:]
            if not chunk:
                raise _BadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if not failed:
                if c != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def go_match(pattern: str, name: str) -> bool:
    """Go's ``path/filepath.Match`` on ``/``-separated names.

    Raises :class:`InvalidSpec` for a malformed pattern (as Go returns ``ErrBadPattern``).
    """
    try:
        return _go_match(pattern, name)
    except _BadPattern:
        raise InvalidSpec(f"malformed pattern {pattern!r}") from None


def _go_match(pattern: str, name: str) -> bool:
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and chunk == "":
            return "/" not in name
        t = _match_chunk(chunk, name)
        if t is not None and (len(t) == 0 or len(pattern) > 0):
            name = t
            continue
        if star:
            i = 0
            found = False
            while i < len(name) and name[i] != "/":
                t = _match_chunk(chunk, name[i + 1 :])
                if t is not None:
                    if len(pattern) == 0 and len(t) > 0:
                        i += 1
                        continue
                    name = t
                    found = True
                    break
                i += 1
            if found:
                continue
        # Validate the rest of the pattern before answering no.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return len(name) == 0


def has_wildcards(path: str) -> bool:
    """Whether ``path`` holds an unescaped ``*``, ``?`` or ``[`` (a glob)."""
    i = 0
    while i < len(path):
        c = path[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?[":
            return True
        i += 1
    return False


# --------------------------------------------------------------------------- .dockerignore

_REGEX_ESCAPE = set(".+()|{}$")


@attrs.frozen
class _Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool
    kind: Literal["exact", "prefix", "suffix", "regexp"]
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def _compile(text: str, exclusion: bool) -> _Pattern:
    reg = "^"
    kind: Literal["exact", "prefix", "suffix", "regexp"] = "exact"
    i = 0
    n = len(text)
    first = True
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg += ".*"
                        kind = "regexp"
                else:
                    reg += "(.*/)?"
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                reg += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            reg += "[^/]"
            kind = "regexp"
        elif ch in _REGEX_ESCAPE:
            reg += "\\" + ch
        elif ch == "\\":
            if i < n:
                reg += "\\" + text[i]
                i += 1
                kind = "regexp"
            else:
                reg += "\\\\"
        elif ch in "[]":
            reg += ch
            kind = "regexp"
        else:
            reg += ch
        first = False
    regex: re.Pattern[str] | None = None
    if kind == "regexp":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                regex = re.compile(reg + "$", re.DOTALL)
        except re.error:
            raise InvalidSpec(f".dockerignore: malformed pattern {text!r}") from None
    return _Pattern(text, exclusion, kind, regex)


class DockerIgnore:
    """A compiled list of ``.dockerignore`` patterns, matched as Docker's client does."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        compiled: list[_Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = clean_path(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise InvalidSpec('.dockerignore: illegal exclusion pattern: "!"')
                p = p[1:]
            try:
                _go_match(p, ".")
            except _BadPattern:
                raise InvalidSpec(f".dockerignore: malformed pattern {raw!r}") from None
            compiled.append(_compile(p, exclusion))
        self._compiled = tuple(compiled)
        self.has_exclusions = any(p.exclusion for p in compiled)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is excluded (it or a parent matches)."""
        path = clean_path(path)
        if path == ".":
            return False
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parents = parent.split("/")
        matched = False
        for pat in self._compiled:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parent != ".":
                for i in range(len(parents)):
                    if pat.match("/".join(parents[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pat.exclusion
        return matched

    def may_descend(self, directory: str) -> bool:
        """Whether excluded ``directory`` must still be walked (an exception names a path in it)."""
        if not self.has_exclusions:
            return False
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self._compiled)

    def with_kept(self, *paths: str) -> DockerIgnore:
        """These patterns plus an exception for each of ``paths`` that they exclude."""
        extra = [f"!{p}" for p in paths if self.matches(p)]
        if not extra:
            return self
        return DockerIgnore([*self.patterns, *extra])


def parse_dockerignore(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file's text (see the module docstring)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    patterns: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        invert = p.startswith("!")
        if invert:
            p = p[1:].strip()
        if p:
            p = clean_path(p)
            if len(p) > 1 and p.startswith("/"):
                p = p[1:]
        patterns.append(("!" + p) if invert else p)
    return patterns


def load_dockerignore(context: str) -> list[str]:
    """The patterns of ``CONTEXT/.dockerignore`` (none if it does not exist)."""
    root = resolve_context(context)
    dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fd = os.open(".dockerignore", _FILE_FLAGS, dir_fd=dirfd)
        except FileNotFoundError:
            return []
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise InvalidSpec(f"cannot read .dockerignore in {root}: {exc.strerror}") from exc
            # A symbolic link: followed only while it stays inside the context.
            real = os.path.realpath(os.path.join(root, ".dockerignore"))
            if not _inside(root, real):
                raise InvalidSpec(
                    ".dockerignore is a symbolic link pointing outside the build context"
                ) from None
            if not os.path.exists(real):
                return []
            fd = os.open(real, _FILE_FLAGS & ~os.O_NOFOLLOW)
    finally:
        os.close(dirfd)
    return parse_dockerignore(_read_regular(fd, ".dockerignore"))


def _read_regular(fd: int, name: str) -> str:
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSpec(f"{name} is not a regular file")
        chunks: list[bytes] = []
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the walk

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@attrs.frozen(kw_only=True)
class ContextEntry:
    """One name sent in the build context.

    ``path`` is relative to the context, ``/``-separated, without a trailing slash;
    ``mode`` is the full ``st_mode``; ``mtime`` whole seconds; ``link_target`` the
    text of a symbolic link (never followed).
    """

    path: str
    kind: EntryKind
    mode: int
    size: int = 0
    mtime: int = 0
    link_target: str | None = None


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def resolve_context(context: str) -> str:
    """The absolute, symlink-resolved context directory (``InvalidSpec`` unless it is one)."""
    if not isinstance(context, str | os.PathLike) or not os.fspath(context):
        raise InvalidSpec("build context must be a directory path")
    path = validate.host_path(context, "build context")
    real = os.path.realpath(os.path.abspath(path))
    if not os.path.isdir(real):
        raise InvalidSpec(f"build context {path!r} is not an existing directory")
    return real


def dockerfile_path(context: str, dockerfile: str = "Dockerfile") -> str:
    """``dockerfile`` as a clean path relative to the context (``InvalidSpec`` if outside/missing).

    A relative ``dockerfile`` is relative to the context; an absolute one must lie in it.
    The file must be a regular file (a symbolic link to one inside the context is accepted).
    """
    if not isinstance(dockerfile, str) or not dockerfile:
        raise InvalidSpec("dockerfile must be a non-empty path relative to the context")
    validate.host_path(dockerfile, "dockerfile")
    root = resolve_context(context)
    if os.path.isabs(dockerfile):
        head, tail = os.path.split(os.path.abspath(dockerfile))
        real_head = os.path.realpath(head)
        if not _inside(root, real_head):
            raise InvalidSpec(f"dockerfile {dockerfile!r} is outside the build context {root}")
        rel = clean_path(os.path.relpath(os.path.join(real_head, tail), root))
    else:
        rel = clean_path(dockerfile.replace(os.sep, "/"))
    if rel == "." or rel == ".." or rel.startswith("../"):
        raise InvalidSpec(f"dockerfile {dockerfile!r} is outside the build context {root}")
    real = os.path.realpath(os.path.join(root, rel))
    if not _inside(root, real):
        raise InvalidSpec(
            f"dockerfile {dockerfile!r} leads outside the build context (symbolic link)"
        )
    if not os.path.isfile(real):
        raise InvalidSpec(f"dockerfile {rel!r} not found in the build context {root}")
    return rel


def _kind(mode: int) -> EntryKind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _walk(
    root: str, ignore: DockerIgnore
) -> Iterator[tuple[ContextEntry, os.stat_result, int, str]]:
    """Yield (entry, lstat, parent dir fd, name) in Docker's order; fds valid until next()."""
    try:
        rootfd = os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidSpec(f"cannot open build context {root}: {exc.strerror}") from exc
    try:
        yield from _walk_dir(rootfd, "", ignore)
    finally:
        os.close(rootfd)


def _walk_dir(
    dirfd: int, prefix: str, ignore: DockerIgnore
) -> Iterator[tuple[ContextEntry, os.stat_result, int, str]]:
    try:
        names = sorted(os.listdir(dirfd), key=os.fsencode)
    except OSError as exc:
        raise InvalidSpec(
            f"cannot list {prefix.rstrip('/') or '.'!r} in the build context: {exc.strerror}"
        ) from exc
    for name in names:
        rel = prefix + name
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InvalidSpec(f"cannot stat {rel!r} in the build context: {exc.strerror}") from exc
        is_dir = stat.S_ISDIR(st.st_mode)
        emit = True
        if ignore.matches(rel):
            if not is_dir or not ignore.may_descend(rel):
                continue
            emit = False
        if stat.S_ISSOCK(st.st_mode):
            continue
        if emit:
            kind = _kind(st.st_mode)
            target: str | None = None
            if kind == "symlink":
                try:
                    target = os.readlink(name, dir_fd=dirfd)
                except OSError as exc:
                    raise InvalidSpec(
                        f"cannot read link {rel!r} in the build context: {exc.strerror}"
                    ) from exc
            entry = ContextEntry(
                path=rel,
                kind=kind,
                mode=st.st_mode,
                size=st.st_size if kind == "file" else 0,
                mtime=int(st.st_mtime),
                link_target=target,
            )
            yield entry, st, dirfd, name
        if is_dir:
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
            except OSError as exc:
                raise InvalidSpec(
                    f"cannot open {rel!r} in the build context: {exc.strerror}"
                ) from exc
            try:
                yield from _walk_dir(sub, rel + "/", ignore)
            finally:
                os.close(sub)


def _plan(root: str, dockerfile_rel: str, for_copy: bool) -> tuple[DockerIgnore, frozenset[str]]:
    """The ignore rules to walk with, and the paths to leave out of the walk."""
    patterns = DockerIgnore(load_dockerignore(root))
    ignore = patterns.with_kept(".dockerignore", dockerfile_rel)
    drop: frozenset[str] = frozenset()
    if for_copy:
        drop = frozenset(p for p in (".dockerignore", dockerfile_rel) if patterns.matches(p))
    return ignore, drop


def iter_context(
    context: str, dockerfile: str = "Dockerfile", *, for_copy: bool = False
) -> Iterator[ContextEntry]:
    """The files, directories and links sent for a build, in Docker's order.

    ``.dockerignore`` applied; the Dockerfile and ``.dockerignore`` are always sent.
    With ``for_copy``, the view that COPY/ADD see instead: Docker's builder deletes the
    Dockerfile and ``.dockerignore`` from the context it received when
    ``.dockerignore`` excludes them.
    """
    root = resolve_context(context)
    rel = dockerfile_path(root, dockerfile)
    ignore, drop = _plan(root, rel, for_copy)
    for entry, _st, _fd, _name in _walk(root, ignore):
        if entry.path not in drop:
            yield entry


# --------------------------------------------------------------------------- the tar


def context_tar(
    context: str,
    dockerfile: str = "Dockerfile",
    *,
    for_copy: bool = False,
    confined_links: bool = False,
) -> IO[bytes]:
    """The context as an uncompressed tar, as Docker's client uploads it.

    Written to an anonymous temporary file (gone when closed), rewound. Symbolic links
    are stored as links, their text unchanged whatever it names (inside, absolute,
    dangling or climbing out with ``..``); hard links within the context as hard
    links; modes and whole-second mtimes are kept; owner and group are 0 with no
    names. ``for_copy``: what COPY/ADD see (see :func:`iter_context`), for a builder
    that copies from it. ``confined_links``: for a builder whose extraction refuses
    a link climbing out of the context, the same tree written so that none does
    while it is extracted (:func:`enginekit.tarlinks.staged`).
    """
    root = resolve_context(context)
    rel = dockerfile_path(root, dockerfile)
    ignore, drop = _plan(root, rel, for_copy)
    out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            linked: dict[tuple[int, int], str] = {}
            for entry, st, dirfd, name in _walk(root, ignore):
                if entry.path not in drop:
                    _add(tar, entry, st, dirfd, name, linked)
        out.seek(0)
        if confined_links:
            from enginekit.tarlinks import staged

            out = staged(out, prefer=rel)
    except BaseException:
        out.close()
        raise
    return out


def _add(
    tar: tarfile.TarFile,
    entry: ContextEntry,
    st: os.stat_result,
    dirfd: int,
    name: str,
    linked: dict[tuple[int, int], str],
) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    mode = st.st_mode
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target or ""
    elif entry.kind == "file":
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in linked:
            info.type = tarfile.LNKTYPE
            info.linkname = linked[key]
            tar.addfile(info)
            return
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dirfd)
        except OSError as exc:
            raise InvalidSpec(
                f"cannot read {entry.path!r} in the build context: {exc.strerror}"
            ) from exc
        with os.fdopen(fd, "rb") as f:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != key or not stat.S_ISREG(now.st_mode):
                raise InvalidSpec(f"{entry.path!r} changed while the build context was read")
            info.type = tarfile.REGTYPE
            info.size = now.st_size
            try:
                tar.addfile(info, f)
            except OSError as exc:
                raise InvalidSpec(
                    f"{entry.path!r} changed while the build context was read"
                ) from exc
        if st.st_nlink > 1:
            linked[key] = entry.path
        return
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor = os.major(st.st_rdev)
        info.devminor = os.minor(st.st_rdev)
    else:  # pragma: no cover - nothing else exists on Linux
        return
    tar.addfile(info)


# --------------------------------------------------------------------------- source checks

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MAX_LINKS = 40


class _Sent:
    """What the walk sends: each entry by path, plus the directories implied above them."""

    def __init__(self, root: str, ignore: DockerIgnore, drop: frozenset[str]) -> None:
        self.entries: dict[str, ContextEntry] = {}
        self.dirs: set[str] = {"."}
        for entry, _st, _fd, _name in _walk(root, ignore):
            if entry.path in drop:
                continue
            self.entries[entry.path] = entry
            parent = entry.path
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                if parent in self.dirs:
                    break
                self.dirs.add(parent)

    def __contains__(self, path: str) -> bool:
        return path in self.entries or path in self.dirs

    def paths(self) -> list[str]:
        return sorted(set(self.entries) | (self.dirs - {"."}))


def _resolve_source(root: str, rel: str, sent: _Sent, what: str) -> str:
    """Follow ``rel`` through the context's symbolic links; the resolved relative path.

    Raises ``InvalidSpec`` when it leaves the context, does not exist, or is not sent.
    """
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    cur = ""
    links = 0
    last_link: str | None = None
    while todo:
        part = todo.pop(0)
        if part == "..":
            if not cur:
                via = f" through the symbolic link {last_link!r}" if last_link else ""
                raise InvalidSpec(f"{what} leads outside the build context{via}")
            cur = cur.rsplit("/", 1)[0] if "/" in cur else ""
            continue
        cand = f"{cur}/{part}" if cur else part
        full = os.path.join(root, cand)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            raise InvalidSpec(f"{what}: no such file or directory in the build context") from None
        except OSError as exc:
            raise InvalidSpec(f"{what}: cannot be read: {exc.strerror}") from exc
        if not stat.S_ISLNK(st.st_mode):
            if todo and not stat.S_ISDIR(st.st_mode):
                raise InvalidSpec(f"{what}: {cand!r} is not a directory")
            cur = cand
            continue
        if cand not in sent:
            raise InvalidSpec(f"{what}: {cand!r} is excluded by .dockerignore")
        links += 1
        if links > _MAX_LINKS:
            raise InvalidSpec(f"{what}: too many levels of symbolic links")
        target = os.readlink(full)
        if target.startswith("/"):
            real = os.path.realpath(full)
            if not _inside(root, real):
                raise InvalidSpec(
                    f"{what} leads outside the build context through the symbolic link {cand!r}"
                )
            rest = os.path.relpath(real, root)
            cur = "" if rest == "." else rest.replace(os.sep, "/")
            continue
        last_link = cand
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    resolved = cur or "."
    if resolved not in sent:
        raise InvalidSpec(f"{what}: {resolved!r} is excluded by .dockerignore")
    return resolved


def _check_added_archive(root: str, resolved: str, sent: _Sent, what: str) -> None:
    """An ``ADD`` source file that is a tar archive: refuse what engines extract
    differently (:mod:`enginekit.addarchive`)."""
    entry = sent.entries.get(resolved)
    if entry is None or entry.kind != "file":
        return
    from enginekit.addarchive import check_archive

    check_archive(os.path.join(root, resolved), what)


def check_sources(
    context: str,
    dockerfile: str,
    parsed: Dockerfile,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    evaluation: Evaluation | None = None,
) -> None:
    """Refuse, with ``InvalidSpec``, every COPY/ADD source (without ``--from``) that fails.

    Sources are taken after ARG/ENV substitution and glob expansion (Go's
    ``filepath.Match`` over the paths sent). A source fails when it is a remote URL
    (ADD), an absolute path, leaves the context through ``..`` or a symbolic link
    whose real target is outside, matches nothing, or is excluded by
    ``.dockerignore``, or is a tar archive given to ADD that engines extract
    differently (:mod:`enginekit.addarchive`); and several sources need a
    destination ending in ``/``.
    """
    root = resolve_context(context)
    rel_df = dockerfile_path(root, dockerfile)
    ev = evaluation if evaluation is not None else parsed.evaluate(build_args, target)
    sent = _Sent(root, *_plan(root, rel_df, True))
    all_paths: list[str] | None = None
    for step in ev.steps:
        if step.keyword not in ("COPY", "ADD") or step.flag("from") is not None:
            continue
        count = 0
        # Messages quote each source as written: substituted, it may show an ARG or
        # ENV value (a secret passed as a build argument).
        written = step.instruction.args[:-1]
        if len(written) != len(step.sources):
            written = step.sources
        for source, as_written in zip(step.sources, written, strict=True):
            what = (
                f"{step.keyword} source {as_written!r} (Dockerfile line {step.instruction.lineno})"
            )
            if _URL.match(source) or source.startswith("git@"):
                if step.keyword == "ADD":
                    raise InvalidSpec(
                        f"{what}: remote ADD sources are not supported (no network access)"
                    )
                raise InvalidSpec(f"{what}: no such file or directory in the build context")
            if source.startswith("/"):
                raise InvalidSpec(
                    f"{what} is an absolute path: sources are paths relative to the build context"
                )
            rel = clean_path(source)
            if rel == ".." or rel.startswith("../"):
                raise InvalidSpec(f"{what} leads outside the build context")
            if has_wildcards(rel):
                if all_paths is None:
                    all_paths = sent.paths()
                matches = [p for p in all_paths if go_match(rel, p)]
                if not matches:
                    raise InvalidSpec(f"{what}: no source files were specified (nothing matches)")
                for match in matches:
                    resolved = _resolve_source(root, match, sent, what)
                    if step.keyword == "ADD":
                        _check_added_archive(root, resolved, sent, what)
                count += len(matches)
            else:
                resolved = _resolve_source(root, rel, sent, what)
                if step.keyword == "ADD":
                    _check_added_archive(root, resolved, sent, what)
                count += 1
        if count > 1 and not step.dest.endswith("/"):
            raise InvalidSpec(
                f"{step.keyword} (Dockerfile line {step.instruction.lineno}): with more than one "
                "source file, the destination must be a directory and end with a /"
            )


def validate_build(
    context: str,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    *,
    base_config: Callable[[str], BuildState | None] | None = None,
) -> Dockerfile:
    """Check a build before any engine sees it; the parsed Dockerfile.

    The context must be an existing directory, the Dockerfile a file inside it; the
    Dockerfile must parse, ``target`` name a stage, substitution succeed and every
    COPY/ADD source of every stage up to the target pass :func:`check_sources`.
    Everything else raises ``InvalidSpec``.
    """
    from enginekit.dockerfile import parse_file

    root = resolve_context(context)
    rel = dockerfile_path(root, dockerfile)
    parsed = parse_file(os.path.join(root, rel))
    parsed.stage_index(target)
    # Every stage up to the target: Docker's classic builder builds them all.
    evaluation = parsed.evaluate(build_args, target, base_config=base_config, skip_unused=False)
    check_sources(root, rel, parsed, evaluation=evaluation)
    return parsed
