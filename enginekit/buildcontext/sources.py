"""Checks made before any build: every COPY/ADD source is sent and stays in the context."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from enginekit.errors import InvalidSpec

from .dockerignore import DockerIgnore
from .gomatch import go_match, has_wildcards
from .paths import _inside, clean_path, dockerfile_path, resolve_context
from .walk import ContextEntry, _plan, _walk

if TYPE_CHECKING:
    from enginekit.dockerfile import BuildState, Dockerfile, Evaluation

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
