"""Go's ``path/filepath.Match`` on ``/``-separated names, as Docker matches COPY sources."""

from __future__ import annotations

from enginekit.errors import InvalidSpec


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
