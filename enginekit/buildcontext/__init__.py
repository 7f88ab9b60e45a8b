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

from .dockerignore import DockerIgnore, load_dockerignore, parse_dockerignore
from .gomatch import go_match, has_wildcards
from .paths import clean_path, dockerfile_path, resolve_context
from .sources import check_sources, validate_build
from .tar import context_tar
from .walk import ContextEntry, iter_context

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
