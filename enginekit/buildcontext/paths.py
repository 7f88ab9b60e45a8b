"""Paths in a build context: Go's ``path.Clean``, the context directory, the Dockerfile's place."""

from __future__ import annotations

import os

from enginekit import validate
from enginekit.errors import InvalidSpec

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
