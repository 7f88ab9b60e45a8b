"""Dockerfile text to instructions, with Docker's rules (see :mod:`enginekit.dockerfile`).

:func:`split_lines` reads parser directives and joins continued lines;
:func:`instruction` turns one logical line into an :class:`Instruction`, raising
:class:`~enginekit.errors.InvalidSpec` with the line number for anything Docker
refuses when parsing.
"""

from __future__ import annotations

import json
import re

import attrs

from enginekit.dockerlex import is_space as _is_space
from enginekit.errors import InvalidSpec

__all__ = [
    "KEYWORDS",
    "PORTABLE_KEYWORDS",
    "Instruction",
    "Line",
    "err",
    "instruction",
    "split_lines",
]

#: Instructions every enginekit engine builds the same way (CONTRACT.md).
PORTABLE_KEYWORDS: frozenset[str] = frozenset(
    {
        "FROM",
        "COPY",
        "ADD",
        "RUN",
        "ENV",
        "ARG",
        "WORKDIR",
        "USER",
        "LABEL",
        "CMD",
        "ENTRYPOINT",
        "EXPOSE",
    }
)

KEYWORDS: frozenset[str] = PORTABLE_KEYWORDS | {
    "SHELL",
    "STOPSIGNAL",
    "VOLUME",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
}

_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def err(lineno: int | None, message: str) -> InvalidSpec:
    if lineno is None:
        return InvalidSpec(f"Dockerfile: {message}")
    return InvalidSpec(f"Dockerfile line {lineno}: {message}")


@attrs.frozen(kw_only=True)
class Instruction:
    """One instruction as written (before substitution).

    ``args``: the JSON array's items (``json_form``), or the whitespace-separated words
    (FROM, COPY, ADD, EXPOSE, VOLUME), or the single text that follows the flags (RUN,
    CMD, ENTRYPOINT in shell form; WORKDIR, USER, STOPSIGNAL, MAINTAINER,
    HEALTHCHECK), or the ``k=v`` words (ENV, LABEL, ARG). ``pairs``: for ENV, LABEL and
    ARG, each name and raw value (None for an ARG without default). ``flags``: the
    ``--name=value`` flags in order. ``original``: the instruction's text with
    continuations joined (as Docker prints it in ``Step N/M : ...``). ``trigger``: the
    instruction an ONBUILD holds. ``escaped_end``: its last line ends with an escaped
    escape character (``trailing\\\\``), the end of the instruction for Docker, a
    continuation for Podman's builder.
    """

    keyword: str
    args: tuple[str, ...] = attrs.field(default=(), repr=False)
    flags: tuple[tuple[str, str], ...] = ()
    json_form: bool = False
    original: str = attrs.field(default="", repr=False)
    lineno: int = 0
    end_lineno: int = 0
    pairs: tuple[tuple[str, str | None], ...] = attrs.field(default=(), repr=False)
    trigger: Instruction | None = attrs.field(default=None, repr=False)
    escaped_end: bool = attrs.field(default=False, repr=False)

    def flag(self, name: str) -> str | None:
        """The value of flag ``--name`` (the last one given), or None."""
        value = None
        for key, val in self.flags:
            if key == name:
                value = val
        return value

    @property
    def portable(self) -> bool:
        """Whether every enginekit engine builds this instruction (CONTRACT.md's list)."""
        return self.keyword in PORTABLE_KEYWORDS


# =========================================================================== text -> lines


@attrs.frozen
class Line:
    text: str
    lineno: int
    end_lineno: int
    escaped_end: bool = False


def _lstrip_space(line: str) -> str:
    i = 0
    while i < len(line) and _is_space(line[i]):
        i += 1
    return line[i:]


def _is_comment(line: str) -> bool:
    return _lstrip_space(line).startswith("#")


def _continuation(escape: str) -> re.Pattern[str]:
    """Docker's rule: the escape character, then only blanks, at the end of a line
    continues it, unless the character before it is the escape character too
    (``trailing\\\\`` ends the line; so does ``\\\\\\``, as in Docker)."""
    esc = re.escape(escape)
    return re.compile(rf"(?<!{esc}){esc}[ \t]*$")


def split_lines(text: str) -> tuple[str, str | None, list[Line]]:
    """(escape, syntax, logical lines) of a Dockerfile's text."""
    if text.startswith("\ufeff"):
        text = text[1:]
    raw = [line.rstrip("\r\n") for line in text.split("\n")]
    escape = "\\"
    syntax: str | None = None
    seen: set[str] = set()
    directives_done = False
    continuation = _continuation("\\")
    escaped_end = False

    def directive(line: str, lineno: int) -> None:
        nonlocal directives_done, escape, syntax, continuation
        if directives_done:
            return
        m = _DIRECTIVE.match(line)
        if m is None:
            directives_done = True
            return
        key = m.group(1).lower()
        if key not in ("syntax", "escape", "check"):
            directives_done = True
            return
        if key in seen:
            raise err(lineno, f"only one {key} parser directive can be used")
        seen.add(key)
        value = m.group(2)
        if key == "escape":
            if value not in ("`", "\\"):
                raise err(lineno, f"invalid escape token {value!r} does not match ` or \\")
            escape = value
            continuation = _continuation(value)
        elif key == "syntax":
            syntax = value

    def trim_continuation(line: str) -> tuple[str, bool]:
        nonlocal escaped_end
        m = continuation.search(line)
        if m is None:
            escaped_end = re.search(re.escape(escape) + r"[ \t]*$", line) is not None
            return line, True
        return line[: m.start()], False

    lines: list[Line] = []
    i = 0
    while i < len(raw):
        escaped_end = False
        token = _lstrip_space(raw[i])
        i += 1
        directive(token, i)
        if _is_comment(token):
            token = ""
        start = i
        line, end = trim_continuation(token)
        if end and line == "":
            continue
        while not end and i < len(raw):
            nxt = raw[i]
            i += 1
            directive(nxt, i)
            if _is_comment(nxt):
                continue
            if _lstrip_space(nxt) == "":
                continue
            part, end = trim_continuation(nxt)
            line += part
        lines.append(Line(line, start, i, escaped_end and end))
    return escape, syntax, lines


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and _is_space(text[pos]):
        pos += 1
    return pos


def _scan_word(text: str, pos: int, escape: str, *, keep: bool) -> tuple[str, bool, int]:
    """One word of ``text`` from ``pos`` (not a blank) up to the blank that ends it.

    Returns ``(word, quoted, end)``: ``quoted`` when a quote was opened (the word
    counts even if empty), ``end`` the index of the ending blank (or the length).
    A blank inside quotes, or after the escape character, does not end the word;
    an escape character at the very end is dropped. ``keep=True`` is Docker's
    ``parseWords``: quotes and escape characters stay in the word, and nothing is
    escaped inside single quotes. ``keep=False`` is how Docker reads ``--flag``
    words: quotes and escape characters are removed, and the escape works inside
    either quote.
    """
    word: list[str] = []
    quote = ""  # the open quote, "" outside quotes
    quoted = False
    n = len(text)
    while pos < n:
        ch = text[pos]
        if not quote:
            if _is_space(ch):
                break
            if ch in ("'", '"'):
                quote, quoted = ch, True
                if keep:
                    word.append(ch)
                pos += 1
                continue
        elif ch == quote:
            quote = ""
            if keep:
                word.append(ch)
            pos += 1
            continue
        if ch == escape and (not keep or quote != "'"):
            pos += 1
            if pos == n:
                break
            if keep:
                word.append(ch)
            ch = text[pos]
        word.append(ch)
        pos += 1
    return "".join(word), quoted, pos


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Split the leading ``--flag`` words off an instruction's arguments (Docker's rules).

    Returns the rest of the line (from the first word not starting ``--``, or
    after a lone ``--``) and the flag words, quotes and ``\\`` escapes removed.
    """
    words: list[str] = []
    pos = _skip_blanks(line, 0)
    while pos < len(line):
        if not line.startswith("--", pos):
            return line[pos:], words
        word, quoted, pos = _scan_word(line, pos, "\\", keep=False)
        if word == "--":
            return line[pos:], words
        if quoted or word:
            words.append(word)
        pos = _skip_blanks(line, pos)
    return "", words


def _parse_words(rest: str, escape: str) -> list[str]:
    """Docker's ``parseWords``: split on blanks, keeping quotes and escapes in the words."""
    words: list[str] = []
    pos = _skip_blanks(rest, 0)
    while pos < len(rest):
        word, quoted, pos = _scan_word(rest, pos, escape, keep=True)
        if quoted or word:
            words.append(word)
        pos = _skip_blanks(rest, pos)
    return words


class _NotStrings(Exception):
    pass


def _parse_json(rest: str) -> list[str] | None:
    """A JSON array of strings, None if ``rest`` is not valid JSON array text."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None

    def no_constants(_name: str) -> object:
        raise ValueError("not JSON")

    try:
        value = json.loads(rest, parse_constant=no_constants)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStrings
    return value


# =========================================================================== lines -> instructions

_STRING = "string"
_BOOL = "bool"
_STRINGS = "strings"

_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": _STRING},
    "COPY": {
        "from": _STRING,
        "chown": _STRING,
        "chmod": _STRING,
        "link": _BOOL,
        "parents": _BOOL,
        "exclude": _STRINGS,
    },
    "ADD": {
        "chown": _STRING,
        "chmod": _STRING,
        "link": _BOOL,
        "checksum": _STRING,
        "keep-git-dir": _BOOL,
        "exclude": _STRINGS,
    },
    "RUN": {"mount": _STRINGS, "network": _STRING, "security": _STRING},
    "HEALTHCHECK": {
        "interval": _STRING,
        "timeout": _STRING,
        "start-period": _STRING,
        "start-interval": _STRING,
        "retries": _STRING,
    },
}

#: Flags Docker's BuildKit knows but enginekit's builders do not carry out.
_UNSUPPORTED_FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"link", "parents", "exclude"}),
    "ADD": frozenset({"link", "checksum", "keep-git-dir", "exclude"}),
    "RUN": frozenset({"mount", "network", "security"}),
}


def _parse_flags(keyword: str, words: list[str], lineno: int) -> tuple[tuple[str, str], ...]:
    known = _FLAGS.get(keyword, {})
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for word in words:
        if not word.startswith("--"):
            raise err(lineno, f"{keyword}: arguments must begin with '--': {word}")
        body = word[2:]
        has_value = "=" in body
        name, _, value = body.partition("=")
        kind = known.get(name)
        if kind is None:
            raise err(lineno, f"{keyword}: unknown flag: --{name}")
        if name in used and kind != _STRINGS:
            raise err(lineno, f"{keyword}: duplicate flag specified: --{name}")
        used.add(name)
        if kind == _BOOL:
            if has_value and value == "":
                raise err(lineno, f"{keyword}: missing a value on flag: --{name}")
            lower = value.lower()
            if lower not in ("", "true", "false"):
                raise err(lineno, f"{keyword}: expecting boolean value for flag --{name}")
            value = lower or "true"
        elif not has_value:
            raise err(lineno, f"{keyword}: missing a value on flag: --{name}")
        if name in _UNSUPPORTED_FLAGS.get(keyword, frozenset()):
            raise err(lineno, f"{keyword} --{name} is not supported by enginekit")
        out.append((name, value))
    return tuple(out)


def _name_val(keyword: str, rest: str, escape: str, lineno: int) -> list[tuple[str, str]]:
    words = _parse_words(rest, escape)
    if not words:
        raise err(lineno, f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2 or parts[1] == "":
            raise err(lineno, f"{keyword} must have two arguments")
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str]] = []
    for word in words:
        if "=" not in word:
            # An ENV word may be part of a value: never shown (values are secrets).
            shown = " a word" if keyword == "ENV" else f" {word!r}"
            raise err(
                lineno,
                f"{keyword}: syntax error - can't find = in{shown}. "
                "Must be of the form: name=value",
            )
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def instruction(line: Line, escape: str) -> Instruction:
    text = line.text.strip()
    parts = _WHITESPACE.split(text, maxsplit=1)
    word = parts[0]
    keyword = word.upper()
    lineno = line.lineno
    rest = ""
    flag_words: list[str] = []
    if len(parts) == 2:
        rest, flag_words = _extract_flags(parts[1])
        rest = rest.strip()
    if keyword not in KEYWORDS:
        raise err(lineno, f"unknown instruction: {word}")
    flags = _parse_flags(keyword, flag_words, lineno)
    common = {
        "keyword": keyword,
        "flags": flags,
        "original": text,
        "lineno": lineno,
        "end_lineno": line.end_lineno,
        "escaped_end": line.escaped_end,
    }

    def need(cond: bool, what: str = "at least one argument") -> None:
        if not cond:
            raise err(lineno, f"{keyword} requires {what}")

    try:
        if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
            if rest == "" and keyword in ("CMD", "ENTRYPOINT"):
                # Docker accepts both bare: CMD becomes the bare SHELL, ENTRYPOINT unset.
                return Instruction(**common)  # type: ignore[arg-type]
            need(rest != "")
            items = _parse_json(rest)
            if items is None:
                if keyword == "RUN":
                    _refuse_heredoc(keyword, rest, lineno)
                if keyword == "SHELL":
                    raise err(lineno, "SHELL requires the arguments to be in JSON form")
                return Instruction(args=(rest,), **common)  # type: ignore[arg-type]
            if keyword in ("RUN", "SHELL"):
                need(len(items) > 0)
            return Instruction(args=tuple(items), json_form=True, **common)  # type: ignore[arg-type]
        if keyword in ("COPY", "ADD", "VOLUME"):
            need(rest != "")
            items = _parse_json(rest)
            json_form = items is not None
            if items is None:
                if keyword != "VOLUME":
                    _refuse_heredoc(keyword, rest, lineno)
                items = _WHITESPACE.split(rest)
            if keyword != "VOLUME" and len(items) < 2:
                raise err(
                    lineno,
                    f"{keyword} requires at least two arguments, but only one was provided. "
                    "Destination could not be determined",
                )
            need(len(items) > 0)
            return Instruction(args=tuple(items), json_form=json_form, **common)  # type: ignore[arg-type]
    except _NotStrings:
        raise err(
            lineno, "when using JSON array syntax, arrays must be comprised of strings only"
        ) from None
    if keyword in ("FROM", "EXPOSE"):
        need(rest != "")
        words = _WHITESPACE.split(rest)
        if keyword == "FROM" and (
            len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as")
        ):
            raise err(lineno, "FROM requires either one or three arguments")
        return Instruction(args=tuple(words), **common)  # type: ignore[arg-type]
    if keyword in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER", "HEALTHCHECK"):
        need(rest != "", "exactly one argument" if keyword != "HEALTHCHECK" else "an argument")
        if keyword == "HEALTHCHECK":
            _check_healthcheck(rest, lineno)
        return Instruction(args=(rest,), **common)  # type: ignore[arg-type]
    if keyword in ("ENV", "LABEL"):
        pairs = _name_val(keyword, rest, escape, lineno)
        for key, _ in pairs:
            if key == "":
                raise err(lineno, f"{keyword} names can not be blank")
        return Instruction(
            args=tuple(_parse_words(rest, escape)),
            pairs=tuple(pairs),
            **common,  # type: ignore[arg-type]
        )
    if keyword == "ARG":
        words = _parse_words(rest, escape)
        need(len(words) > 0)
        arg_pairs: list[tuple[str, str | None]] = []
        for w in words:
            if "=" in w:
                key, _, value = w.partition("=")
                if key == "":
                    raise err(lineno, "ARG names can not be blank")
                arg_pairs.append((key, value))
            else:
                arg_pairs.append((w, None))
        return Instruction(args=tuple(words), pairs=tuple(arg_pairs), **common)  # type: ignore[arg-type]
    # ONBUILD
    need(rest != "")
    sub = instruction(Line(rest, line.lineno, line.end_lineno), escape)
    if sub.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise err(lineno, f"{sub.keyword} isn't allowed as an ONBUILD trigger")
    return Instruction(args=(rest,), trigger=sub, **common)  # type: ignore[arg-type]


#: A heredoc word as Docker's parser finds one (``<<EOF``, ``<<-"END"``, ``3<<EOF``).
_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")
_HEREDOC_BLANKS = re.compile(r"<<[ \t]+")


def _refuse_heredoc(keyword: str, rest: str, lineno: int) -> None:
    """Refuse a heredoc in RUN, COPY or ADD (shell form) with a clear message.

    Docker's parser takes a word starting ``<<`` (after an optional descriptor
    number; blanks after ``<<`` belong to the word) as a heredoc and reads the lines
    that follow as its content. enginekit's builders do not carry heredocs out, and
    reading those lines as instructions would fail on a line far from the cause.
    """
    if "<<" not in rest:
        return
    for word in _parse_words(_HEREDOC_BLANKS.sub("<<", rest), "\\"):
        m = _HEREDOC.match(word)
        if m is not None and m.group(3):
            raise err(
                lineno,
                f"{keyword}: heredocs ({word}) are not supported by enginekit; put the "
                "script or file in the build context and COPY it instead",
            )


def _check_healthcheck(rest: str, lineno: int) -> None:
    words = _WHITESPACE.split(rest, maxsplit=1)
    kind = words[0].upper()
    if kind == "NONE":
        if len(words) > 1:
            raise err(lineno, "HEALTHCHECK NONE takes no arguments")
        return
    if kind != "CMD" or len(words) < 2 or not words[1].strip():
        raise err(lineno, "HEALTHCHECK requires CMD followed by a command, or NONE")
    try:
        _parse_json(words[1])
    except _NotStrings:
        raise err(
            lineno, "when using JSON array syntax, arrays must be comprised of strings only"
        ) from None
