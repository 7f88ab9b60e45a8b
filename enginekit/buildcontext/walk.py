"""The walk of a build context: what is sent, in Docker's order, never following a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Literal

import attrs

from enginekit.errors import InvalidSpec

from .dockerignore import DockerIgnore, load_dockerignore
from .paths import _DIR_FLAGS, dockerfile_path, resolve_context

EntryKind = Literal["file", "dir", "symlink", "other"]


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
