"""``.dockerignore``: reading the file, and matching its patterns as Docker's client does."""

from __future__ import annotations

import errno
import os
import re
import stat
import warnings
from collections.abc import Sequence
from typing import Literal

import attrs

from enginekit.errors import InvalidSpec

from .gomatch import _BadPattern, _go_match
from .paths import _FILE_FLAGS, _inside, clean_path, resolve_context

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
    """The patterns of a ``.dockerignore`` file's text (see :mod:`enginekit.buildcontext`)."""
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
