"""Dockerfile parsing and evaluation, with Docker's rules.

:func:`parse` turns a Dockerfile's text into a :class:`Dockerfile` (stages of
:class:`Instruction`), raising :class:`~enginekit.errors.InvalidSpec` with the line
number for anything Docker refuses when parsing. :meth:`Dockerfile.evaluate` then
walks the stages a target needs, substitutes variables as Docker's builder does and
returns each step with the image state after it, so that a builder which executes
steps itself (LXC) does exactly what Docker would.

The text rules are Docker's:

- parser directives (``# escape=`` and ``# syntax=``) only in the leading comment
  block; a comment, blank line or instruction ends it; an unknown directive ends it;
- a line whose first non-blank character is ``#`` is a comment, also inside a
  continued instruction; the escape character (``\\`` or `````) at the end of a line,
  followed only by blanks, continues the instruction; continued lines keep their
  leading blanks; blank continuation lines are skipped;
- instruction names are case-insensitive; ``--flag=value`` words follow the name;
- RUN, CMD, ENTRYPOINT, SHELL take a JSON array of strings (exec form) or text (shell
  form: the SHELL in effect runs it); text that is not a valid JSON array is shell
  form, as in Docker; COPY, ADD, VOLUME take a JSON array or whitespace-separated
  words, the last being the destination;
- ENV and LABEL take ``k=v`` words (quotes and escapes kept for substitution), or the
  legacy ``KEY value with spaces`` form; ARG takes ``NAME`` or ``NAME=default`` words.

Variable substitution (:func:`expand`) is Docker's shell lexer: ``$V``, ``${V}``,
``${V:-w}``, ``${V-w}``, ``${V:+w}``, ``${V+w}``, ``${V:?w}``, ``${V?w}``, ``${V#p}``,
``${V##p}``, ``${V%p}``, ``${V%%p}``, ``${V/p/r}``, ``${V//p/r}``; single quotes keep
text literal, double quotes keep everything but ``$`` and escapes, the escape
character makes the next character literal; quotes are removed. It applies to FROM
(global ARGs only), COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE, STOPSIGNAL,
VOLUME and to COPY/ADD flags, never to RUN, CMD, ENTRYPOINT or SHELL (their shell does
it at run time).

Scope: an ARG before the first FROM is global and usable in FROM lines; inside a stage
it must be declared again (``ARG NAME``) to be used, and then takes the global value.
A build argument overrides an ARG's default; a build argument that no ARG declares is
ignored. ENV wins over ARG of the same name.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping

import attrs

from enginekit.errors import InvalidSpec

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "KEYWORDS",
    "PORTABLE_KEYWORDS",
    "PREDEFINED_ARGS",
    "BuildState",
    "Dockerfile",
    "EvaluatedStage",
    "Evaluation",
    "Instruction",
    "Stage",
    "Step",
    "expand",
    "parse",
    "parse_file",
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

DEFAULT_SHELL: tuple[str, ...] = ("/bin/sh", "-c")

#: The PATH Docker and Podman add to a stage whose base image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Build arguments Docker accepts without an ARG (seen by RUN only).
PREDEFINED_ARGS: frozenset[str] = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def _err(lineno: int | None, message: str) -> InvalidSpec:
    if lineno is None:
        return InvalidSpec(f"Dockerfile: {message}")
    return InvalidSpec(f"Dockerfile line {lineno}: {message}")


def _is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace``."""
    if ch in "\t\n\v\f\r \x85\xa0":
        return True
    return ord(ch) > 0xFF and unicodedata.category(ch) in ("Zs", "Zl", "Zp")


# =========================================================================== shell lexer


class _SubstitutionError(Exception):
    pass


_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _Lexer:
    """Docker's word processing: quotes, escapes and ``$`` substitution on one word."""

    def __init__(
        self, text: str, env: Mapping[str, str], escape: str, strict: bool = False
    ) -> None:
        self.s = text
        self.i = 0
        self.env = env
        self.escape = escape
        self.strict = strict
        self.raw_escapes = False

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        if self.i >= len(self.s):
            return ""
        ch = self.s[self.i]
        self.i += 1
        return ch

    def process_stop_on(self, stop: str, raw_escapes: bool) -> str:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._process_stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _process_stop_on(self, stop: str) -> str:
        out: list[str] = []
        while self.peek() != "":
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self.next()
                    if ch == "":
                        break
                out.append(ch)
        if stop:
            raise _SubstitutionError(
                f"unexpected end of statement while looking for matching {stop}"
            )
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == "":
                raise _SubstitutionError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            p = self.peek()
            if p == "":
                raise _SubstitutionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if p == '"':
                self.next()
                return "".join(out)
            if p == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if nxt == "":
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek() != "":
            ch = self.peek()
            if not out and ch.isdecimal():
                while self.peek() != "" and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            return self.lookup(name)[0]
        self.next()
        p = self.peek()
        if p == "":
            raise _SubstitutionError("syntax error: missing '}'")
        if p in "{}:":
            raise _SubstitutionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if ch == "":
            raise _SubstitutionError("syntax error: missing '}'")
        mod = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            mod += ch
        if self.strict and mod not in (":-", ":+", ":?", "?"):
            raise _SubstitutionError(
                f"${{{name}{mod}...}} is not supported by every engine's builder "
                "(Docker 20.10's and Podman's refuse it: missing ':' in substitution); "
                "use ${NAME:-word}, ${NAME:+word} or ${NAME:?message}"
            )
        if null_is_unset or ch in ("+", "-", "?", "#", "%"):
            try:
                word = self.process_stop_on("}", ch in ("#", "%"))
            except _SubstitutionError:
                if self.peek() == "":
                    raise _SubstitutionError("syntax error: missing '}'") from None
                raise
            value, is_set = self.lookup(name)
            empty = not is_set or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else value
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                if not is_set:
                    raise _SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise _SubstitutionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            if ch in ("#", "%"):
                greedy = word.startswith(ch)
                if greedy:
                    word = word[1:]
                if ch == "%":
                    return _trim_suffix(word, value, greedy)
                return _trim_prefix(word, value, greedy)
            raise _SubstitutionError(f"unsupported modifier ({mod}) in substitution")
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern = self.process_stop_on("/", True)
            except _SubstitutionError:
                if self.peek() == "":
                    raise _SubstitutionError("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement = self.process_stop_on("}", True)
            except _SubstitutionError:
                if self.peek() == "":
                    raise _SubstitutionError("syntax error: missing '}'") from None
                raise
            value, _ = self.lookup(name)
            rx = _shell_pattern(pattern, greedy=True, anchored=False)
            if replace_all:
                return rx.sub(lambda _m: replacement, value)
            m = rx.search(value)
            if m is not None:
                value = value[: m.start()] + replacement + value[m.end() :]
            return value
        raise _SubstitutionError(f"unsupported modifier ({mod}) in substitution")


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(".*" if greedy else ".*?")
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue
            nxt = pattern[i] if i < len(pattern) else ""
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise _SubstitutionError(f"invalid pattern ({pattern}) in substitution")
            out.append("\\" + nxt)
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _shell_pattern(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end() :] if m is not None else value


def _reverse_pattern(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(reversed(out))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\", strict: bool = False) -> str:
    """Substitute variables in ``word`` and remove its quotes, as Docker's builder does.

    Raises ``InvalidSpec`` for a malformed substitution (``${``, ``${V?msg}`` unset, ...).
    ``strict`` also refuses the forms that the builders of Docker 20.10 and Podman 4
    refuse (all but ``${V:-w}``, ``${V:+w}``, ``${V:?m}`` and ``${V?m}``).
    """
    try:
        return _Lexer(word, env, escape, strict).process_stop_on("", False)
    except _SubstitutionError as exc:
        raise InvalidSpec(f"bad substitution: {exc}") from None


def _expand_at(
    word: str, env: Mapping[str, str], escape: str, ins: Instruction, strict: bool
) -> str:
    try:
        return _Lexer(word, env, escape, strict).process_stop_on("", False)
    except _SubstitutionError as exc:
        raise _err(ins.lineno, f"{ins.keyword}: {exc}") from None


# =========================================================================== model


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
    instruction an ONBUILD holds.
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


@attrs.frozen(kw_only=True)
class Stage:
    """A build stage: its FROM and the instructions after it.

    ``name`` is the ``AS`` name, lower-cased (Docker's stage names are
    case-insensitive); ``base`` the FROM's image as written (before substitution).
    """

    index: int
    name: str | None
    base: str
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]


_Pairs = tuple[tuple[str, str], ...]


def _set_pair(pairs: _Pairs, key: str, value: str) -> _Pairs:
    out = list(pairs)
    for i, (k, _) in enumerate(out):
        if k == key:
            out[i] = (key, value)
            return tuple(out)
    out.append((key, value))
    return tuple(out)


@attrs.frozen(kw_only=True)
class BuildState:
    """The image configuration as a build goes (also what a base image brings).

    ``env`` keeps Docker's order (a new name is appended, a changed one keeps its
    place); ``args`` are the ARG values in scope (build time only, never in the image);
    ``workdir`` is ``""`` until set (Docker's default ``/``); ``cmd``/``entrypoint`` None
    when unset; ``exposed_ports`` sorted ``"80/tcp"`` strings; ``cmd_set`` whether this
    stage set CMD (an ENTRYPOINT clears a CMD inherited from the base).
    """

    env: _Pairs = attrs.field(default=(), repr=False)
    args: _Pairs = attrs.field(default=(), repr=False)
    workdir: str = ""
    user: str = ""
    labels: _Pairs = ()
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str | None = None
    volumes: tuple[str, ...] = ()
    healthcheck: tuple[str, ...] | None = None
    onbuild: tuple[str, ...] = ()
    maintainer: str | None = None
    cmd_set: bool = False

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def substitution_env(self) -> dict[str, str]:
        """What ``$NAME`` sees: ARGs in scope, then ENV (which wins)."""
        out = dict(self.args)
        out.update(self.env)
        return out

    def run_env(self) -> _Pairs:
        """The environment of a RUN step: ENV, plus ARGs that no ENV of that name hides."""
        env_names = {k for k, _ in self.env}
        return tuple((k, v) for k, v in self.args if k not in env_names) + self.env


@attrs.frozen(kw_only=True)
class Step:
    """One evaluated instruction: substituted arguments and the state after it.

    ``args`` by keyword: FROM ``(base,)``; COPY/ADD the sources then the destination
    (see ``sources``, ``dest``, ``dest_path``); RUN the argv (shell form wrapped in the
    SHELL); CMD/ENTRYPOINT/SHELL the argv; WORKDIR the absolute directory; USER,
    STOPSIGNAL, MAINTAINER ``(value,)``; EXPOSE the ``"port/proto"`` list; VOLUME the
    paths; ENV/LABEL/ARG are in ``pairs``. ``flags`` are substituted. ``from_stage``:
    the stage a FROM or ``COPY --from`` refers to (else ``from_image`` for a COPY
    ``--from`` image). ``state`` is the image state after the step; ``env`` is the
    environment a RUN step runs with.
    """

    number: int
    stage: int
    instruction: Instruction
    keyword: str
    args: tuple[str, ...] = attrs.field(default=(), repr=False)
    pairs: _Pairs = attrs.field(default=(), repr=False)
    flags: tuple[tuple[str, str], ...] = ()
    from_stage: int | None = None
    from_image: str | None = None
    state: BuildState = attrs.field(factory=BuildState, repr=False)
    env: _Pairs = attrs.field(default=(), repr=False)

    def flag(self, name: str) -> str | None:
        value = None
        for key, val in self.flags:
            if key == name:
                value = val
        return value

    @property
    def sources(self) -> tuple[str, ...]:
        """COPY/ADD sources, substituted (globs not expanded)."""
        return self.args[:-1]

    @property
    def dest(self) -> str:
        """COPY/ADD destination as written, substituted."""
        return self.args[-1]

    @property
    def dest_path(self) -> str:
        """COPY/ADD destination made absolute against WORKDIR (a trailing ``/`` kept)."""
        dest = self.args[-1]
        if dest.startswith("/"):
            return dest
        joined = _join("/", self.state.workdir or "/", dest)
        if dest.endswith("/") and not joined.endswith("/"):
            joined += "/"
        return joined

    @property
    def text(self) -> str:
        """The instruction as Docker prints it in a step header."""
        return self.instruction.original


@attrs.frozen(kw_only=True)
class EvaluatedStage:
    """A stage as it will be built: its base and its steps (FROM first)."""

    index: int
    name: str | None
    base: str
    base_stage: int | None
    steps: tuple[Step, ...]
    state: BuildState = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class Evaluation:
    """The stages to build, in order, each with its evaluated steps.

    ``target`` is the index of the last stage (the image); ``needed`` the indices of
    the stages it needs (the target and every stage it uses through FROM or
    ``COPY --from``); ``skipped`` the others before the target; ``stages`` the needed
    ones, or every stage up to the target with ``evaluate(skip_unused=False)``.
    """

    target: int
    needed: tuple[int, ...]
    skipped: tuple[int, ...]
    stages: tuple[EvaluatedStage, ...]
    global_args: _Pairs = attrs.field(repr=False)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for stage in self.stages for step in stage.steps)

    @property
    def state(self) -> BuildState:
        """The final image's state."""
        return self.stages[-1].state


def _join(*parts: str) -> str:
    path = "/".join(parts)
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


# =========================================================================== text -> lines


@attrs.frozen
class _Line:
    text: str
    lineno: int
    end_lineno: int


def _lstrip_space(line: str) -> str:
    i = 0
    while i < len(line) and _is_space(line[i]):
        i += 1
    return line[i:]


def _is_comment(line: str) -> bool:
    return _lstrip_space(line).startswith("#")


def _split_lines(text: str) -> tuple[str, str | None, list[_Line]]:
    """(escape, syntax, logical lines) of a Dockerfile's text."""
    if text.startswith("\ufeff"):
        text = text[1:]
    raw = [line.rstrip("\r\n") for line in text.split("\n")]
    escape = "\\"
    syntax: str | None = None
    seen: set[str] = set()
    directives_done = False
    continuation = re.compile(r"\\[ \t]*$")

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
            raise _err(lineno, f"only one {key} parser directive can be used")
        seen.add(key)
        value = m.group(2)
        if key == "escape":
            if value not in ("`", "\\"):
                raise _err(lineno, f"invalid escape token {value!r} does not match ` or \\")
            escape = value
            continuation = re.compile(re.escape(value) + r"[ \t]*$")
        elif key == "syntax":
            syntax = value

    def trim_continuation(line: str) -> tuple[str, bool]:
        m = continuation.search(line)
        if m is None:
            return line, True
        return line[: m.start()], False

    lines: list[_Line] = []
    i = 0
    while i < len(raw):
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
        lines.append(_Line(line, start, i))
    return escape, syntax, lines


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Split the leading ``--flag`` words off an instruction's arguments (Docker's rules)."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if _is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if _is_space(ch):
                phase = in_spaces
                if word == "--":
                    return line[pos:], words
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word += ch
            pos += 1
            continue
        # in a quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word += ch
        pos += 1
    return "", words


def _parse_words(rest: str, escape: str) -> list[str]:
    """Docker's ``parseWords``: split on blanks, keeping quotes and escapes in the words."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if _is_space(ch):
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if _is_space(ch):
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word += ch
            ch = rest[pos]
        word += ch
        pos += 1
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
            raise _err(lineno, f"{keyword}: arguments must begin with '--': {word}")
        body = word[2:]
        has_value = "=" in body
        name, _, value = body.partition("=")
        kind = known.get(name)
        if kind is None:
            raise _err(lineno, f"{keyword}: unknown flag: --{name}")
        if name in used and kind != _STRINGS:
            raise _err(lineno, f"{keyword}: duplicate flag specified: --{name}")
        used.add(name)
        if kind == _BOOL:
            if has_value and value == "":
                raise _err(lineno, f"{keyword}: missing a value on flag: --{name}")
            lower = value.lower()
            if lower not in ("", "true", "false"):
                raise _err(lineno, f"{keyword}: expecting boolean value for flag --{name}")
            value = lower or "true"
        elif not has_value:
            raise _err(lineno, f"{keyword}: missing a value on flag: --{name}")
        if name in _UNSUPPORTED_FLAGS.get(keyword, frozenset()):
            raise _err(lineno, f"{keyword} --{name} is not supported by enginekit")
        out.append((name, value))
    return tuple(out)


def _name_val(keyword: str, rest: str, escape: str, lineno: int) -> list[tuple[str, str]]:
    words = _parse_words(rest, escape)
    if not words:
        raise _err(lineno, f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2 or parts[1] == "":
            raise _err(lineno, f"{keyword} must have two arguments")
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str]] = []
    for word in words:
        if "=" not in word:
            # An ENV word may be part of a value: never shown (values are secrets).
            shown = " a word" if keyword == "ENV" else f" {word!r}"
            raise _err(
                lineno,
                f"{keyword}: syntax error - can't find = in{shown}. "
                "Must be of the form: name=value",
            )
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def _instruction(line: _Line, escape: str) -> Instruction:
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
        raise _err(lineno, f"unknown instruction: {word}")
    flags = _parse_flags(keyword, flag_words, lineno)
    common = {
        "keyword": keyword,
        "flags": flags,
        "original": text,
        "lineno": lineno,
        "end_lineno": line.end_lineno,
    }

    def need(cond: bool, what: str = "at least one argument") -> None:
        if not cond:
            raise _err(lineno, f"{keyword} requires {what}")

    try:
        if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
            if rest == "" and keyword in ("CMD", "ENTRYPOINT"):
                # Docker accepts both bare: CMD becomes the bare SHELL, ENTRYPOINT unset.
                return Instruction(**common)  # type: ignore[arg-type]
            need(rest != "")
            items = _parse_json(rest)
            if items is None:
                if keyword == "SHELL":
                    raise _err(lineno, "SHELL requires the arguments to be in JSON form")
                return Instruction(args=(rest,), **common)  # type: ignore[arg-type]
            if keyword in ("RUN", "SHELL"):
                need(len(items) > 0)
            return Instruction(args=tuple(items), json_form=True, **common)  # type: ignore[arg-type]
        if keyword in ("COPY", "ADD", "VOLUME"):
            need(rest != "")
            items = _parse_json(rest)
            json_form = items is not None
            if items is None:
                items = _WHITESPACE.split(rest)
            if keyword != "VOLUME" and len(items) < 2:
                raise _err(
                    lineno,
                    f"{keyword} requires at least two arguments, but only one was provided. "
                    "Destination could not be determined",
                )
            need(len(items) > 0)
            return Instruction(args=tuple(items), json_form=json_form, **common)  # type: ignore[arg-type]
    except _NotStrings:
        raise _err(
            lineno, "when using JSON array syntax, arrays must be comprised of strings only"
        ) from None
    if keyword in ("FROM", "EXPOSE"):
        need(rest != "")
        words = _WHITESPACE.split(rest)
        if keyword == "FROM" and (
            len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as")
        ):
            raise _err(lineno, "FROM requires either one or three arguments")
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
                raise _err(lineno, f"{keyword} names can not be blank")
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
                    raise _err(lineno, "ARG names can not be blank")
                arg_pairs.append((key, value))
            else:
                arg_pairs.append((w, None))
        return Instruction(args=tuple(words), pairs=tuple(arg_pairs), **common)  # type: ignore[arg-type]
    # ONBUILD
    need(rest != "")
    sub = _instruction(_Line(rest, line.lineno, line.end_lineno), escape)
    if sub.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise _err(lineno, f"{sub.keyword} isn't allowed as an ONBUILD trigger")
    return Instruction(args=(rest,), trigger=sub, **common)  # type: ignore[arg-type]


def _check_healthcheck(rest: str, lineno: int) -> None:
    words = _WHITESPACE.split(rest, maxsplit=1)
    kind = words[0].upper()
    if kind == "NONE":
        if len(words) > 1:
            raise _err(lineno, "HEALTHCHECK NONE takes no arguments")
        return
    if kind != "CMD" or len(words) < 2 or not words[1].strip():
        raise _err(lineno, "HEALTHCHECK requires CMD followed by a command, or NONE")
    try:
        _parse_json(words[1])
    except _NotStrings:
        raise _err(
            lineno, "when using JSON array syntax, arrays must be comprised of strings only"
        ) from None


# =========================================================================== the Dockerfile


@attrs.frozen(kw_only=True)
class Dockerfile:
    """A parsed Dockerfile: global ARGs (before the first FROM) and stages.

    ``escape`` is the escape character in effect (``# escape=``); ``syntax`` the
    ``# syntax=`` directive if any (enginekit's builders do not fetch frontends).
    """

    stages: tuple[Stage, ...]
    global_args: tuple[Instruction, ...] = ()
    escape: str = "\\"
    syntax: str | None = None

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        """Every instruction, in order (global ARGs, then each stage's FROM and body)."""
        out = list(self.global_args)
        for stage in self.stages:
            out.append(stage.from_instruction)
            out.extend(stage.instructions)
        return tuple(out)

    def non_portable(self) -> tuple[Instruction, ...]:
        """Instructions outside CONTRACT.md's list (an engine may refuse them)."""
        return tuple(i for i in self.instructions if not i.portable)

    def stage_index(self, target: str | None) -> int:
        """The index of stage ``target`` (an ``AS`` name, case-insensitive); last if None."""
        if target is None:
            return len(self.stages) - 1
        wanted = target.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage.index
        raise InvalidSpec(f"target stage {target!r} could not be found in the Dockerfile")

    def evaluate(
        self,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        *,
        base_config: Callable[[str], BuildState | None] | None = None,
        strict: bool = True,
        skip_unused: bool = True,
    ) -> Evaluation:
        """Substitute and walk the stages ``target`` needs, as Docker's builder would.

        ``base_config(image)`` gives the configuration of a base image (its ENV,
        WORKDIR, USER, CMD, ...) so that substitution sees the image's ENV; without
        it, or when it returns None, a base image starts empty like ``scratch``.
        Raises ``InvalidSpec`` (with the line) for a bad substitution, a blank base, a
        stage reference to a later stage, an unknown target, a bad EXPOSE/STOPSIGNAL.
        ``strict`` (the default) refuses what some engine's builder here refuses (the
        substitution forms of :func:`expand`, ``COPY/ADD --chmod``), so that every engine
        builds alike.

        ``skip_unused`` (BuildKit's and Podman's way) evaluates only the stages the
        target needs; ``skip_unused=False`` evaluates every stage up to the target, as
        Docker's classic builder (Docker 20.10 without BuildKit) builds them, so that a
        failing unused stage fails the build there. ``needed`` is the same either way.
        """
        evaluator = _Evaluator(self, dict(build_args or {}), base_config, strict)
        return evaluator.run(target, skip_unused)


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile's text (see the module docstring); ``InvalidSpec`` on errors."""
    escape, syntax, lines = _split_lines(text)
    if not lines:
        raise _err(None, "the Dockerfile has no instructions")
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: Instruction | None = None
    body: list[Instruction] = []
    names: set[str] = set()

    def close() -> None:
        if current is None:
            return
        words = current.args
        name = words[2].lower() if len(words) == 3 else None
        stages.append(
            Stage(
                index=len(stages),
                name=name,
                base=words[0],
                from_instruction=current,
                instructions=tuple(body),
            )
        )

    for line in lines:
        ins = _instruction(line, escape)
        if ins.keyword == "FROM":
            close()
            body = []
            current = ins
            if len(ins.args) == 3:
                name = ins.args[2].lower()
                if not _STAGE_NAME.match(name):
                    raise _err(ins.lineno, f"invalid name for build stage: {ins.args[2]!r}")
                if name in names:
                    raise _err(ins.lineno, f"duplicate name {ins.args[2]!r}")
                names.add(name)
            continue
        if current is None:
            if ins.keyword != "ARG":
                raise _err(ins.lineno, f"{ins.keyword} before the first FROM")
            global_args.append(ins)
            continue
        body.append(ins)
    if current is None:
        raise _err(None, "no build stage: the Dockerfile has no FROM")
    close()
    return Dockerfile(
        stages=tuple(stages), global_args=tuple(global_args), escape=escape, syntax=syntax
    )


def parse_file(path: str) -> Dockerfile:
    """Parse the Dockerfile at ``path`` (UTF-8, undecodable bytes kept as surrogates)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidSpec(f"cannot read Dockerfile {path!r}: {exc.strerror}") from exc
    return parse(data.decode("utf-8", "surrogateescape"))


# =========================================================================== evaluation

_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/([A-Za-z]+))?$")
_CHMOD = re.compile(r"^[0-7]{3,4}$")


def _ports(spec: str, ins: Instruction) -> list[str]:
    m = _PORT.match(spec)
    proto = (m.group(3) or "tcp").lower() if m else ""
    if m is None or proto not in ("tcp", "udp", "sctp"):
        raise _err(ins.lineno, f"EXPOSE: invalid port {spec!r} (PORT[-PORT][/tcp|udp|sctp])")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if not 0 <= lo <= hi <= 65535:
        raise _err(ins.lineno, f"EXPOSE: invalid port range {spec!r}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def _check_signal(value: str, ins: Instruction) -> None:
    import signal

    if value.isdigit():
        if int(value) > 0:
            return
    else:
        name = value.upper().removeprefix("SIG")
        if ("SIG" + name) in signal.Signals.__members__:
            return
        m = re.match(r"^RTM(IN|AX)([+-]\d+)?$", name)
        if m:
            return
    raise _err(ins.lineno, f"STOPSIGNAL: invalid signal {value!r}")


class _Evaluator:
    def __init__(
        self,
        df: Dockerfile,
        build_args: dict[str, str],
        base_config: Callable[[str], BuildState | None] | None,
        strict: bool,
    ) -> None:
        self.strict = strict
        self.df = df
        self.esc = df.escape
        self.build_args = build_args
        self.base_config = base_config
        self.meta: dict[str, str] = {}
        self.number = 0

    def x(self, word: str, env: Mapping[str, str], ins: Instruction) -> str:
        return _expand_at(word, env, self.esc, ins, self.strict)

    # -- stage references -----------------------------------------------------
    def stage_ref(self, ref: str, current: int, ins: Instruction) -> int | None:
        if ref.isdigit() and ins.keyword == "COPY":
            index = int(ref)
            if index >= current:
                raise _err(ins.lineno, f"COPY --from={ref} refers to the current or a later stage")
            return index
        wanted = ref.lower()
        for stage in self.df.stages:
            if stage.name == wanted:
                if stage.index >= current:
                    raise _err(
                        ins.lineno,
                        f"{ins.keyword} refers to stage {ref!r}, which is not an earlier stage",
                    )
                return stage.index
        return None

    def run(self, target: str | None, skip_unused: bool) -> Evaluation:
        df = self.df
        target_index = df.stage_index(target)
        for ins in df.global_args:
            self.apply_meta(ins)
        bases: dict[int, tuple[str, int | None]] = {}
        deps: dict[int, set[int]] = {}
        copy_from: dict[tuple[int, int], tuple[str, int | None]] = {}
        for stage in df.stages[: target_index + 1]:
            ins = stage.from_instruction
            base = self.x(stage.base, self.meta, ins)
            if base == "":
                raise _err(ins.lineno, f"base name ({stage.base}) should not be blank")
            base_stage = self.stage_ref(base, stage.index, ins)
            bases[stage.index] = (base, base_stage)
            deps[stage.index] = set() if base_stage is None else {base_stage}
            for pos, body in enumerate(stage.instructions):
                ref = body.flag("from") if body.keyword == "COPY" else None
                if ref is None:
                    continue
                ref_x = self.x(ref, self.meta, body)
                if ref_x == "":
                    raise _err(body.lineno, "COPY --from must not be empty")
                ref_stage = self.stage_ref(ref_x, stage.index, body)
                copy_from[(stage.index, pos)] = (ref_x, ref_stage)
                if ref_stage is not None:
                    deps[stage.index].add(ref_stage)
        needed: set[int] = set()
        todo = [target_index]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            todo.extend(deps[i])
        order = sorted(needed) if skip_unused else list(range(target_index + 1))
        done: dict[int, EvaluatedStage] = {}
        for index in order:
            done[index] = self.stage(df.stages[index], bases[index], copy_from, done)
        return Evaluation(
            target=target_index,
            needed=tuple(sorted(needed)),
            skipped=tuple(i for i in range(target_index + 1) if i not in needed),
            stages=tuple(done[i] for i in order),
            global_args=tuple(self.meta.items()),
        )

    def apply_meta(self, ins: Instruction) -> None:
        resolved: list[tuple[str, str | None]] = []
        for key_raw, default in ins.pairs:
            key = self.x(key_raw, self.meta, ins)
            resolved.append((key, None if default is None else self.x(default, self.meta, ins)))
        for key, default in resolved:
            if key in self.build_args:
                self.meta[key] = self.build_args[key]
            elif default is not None:
                self.meta[key] = default

    def initial(
        self, base: str, base_stage: int | None, done: Mapping[int, EvaluatedStage]
    ) -> BuildState:
        if base_stage is not None:
            state = done[base_stage].state
        elif base == "scratch" or self.base_config is None:
            state = BuildState()
        else:
            state = self.base_config(base) or BuildState()
        env = state.env
        if not any(k == "PATH" for k, _ in env):
            env = (*env, ("PATH", DEFAULT_PATH))
        return attrs.evolve(state, env=env, args=(), cmd_set=False)

    def next_number(self) -> int:
        self.number += 1
        return self.number

    def stage(
        self,
        stage: Stage,
        base_info: tuple[str, int | None],
        copy_from: Mapping[tuple[int, int], tuple[str, int | None]],
        done: Mapping[int, EvaluatedStage],
    ) -> EvaluatedStage:
        base, base_stage = base_info
        state = self.initial(base, base_stage, done)
        steps = [
            Step(
                number=self.next_number(),
                stage=stage.index,
                instruction=stage.from_instruction,
                keyword="FROM",
                args=(base,),
                from_stage=base_stage,
                from_image=None if base_stage is not None else base,
                state=state,
            )
        ]
        for pos, ins in enumerate(stage.instructions):
            step = self.step(ins, state, stage.index, copy_from.get((stage.index, pos)))
            state = step.state
            steps.append(step)
        return EvaluatedStage(
            index=stage.index,
            name=stage.name,
            base=base,
            base_stage=base_stage,
            steps=tuple(steps),
            state=state,
        )

    def step(
        self,
        ins: Instruction,
        state: BuildState,
        stage_index: int,
        from_ref: tuple[str, int | None] | None,
    ) -> Step:
        kw = ins.keyword
        env = state.substitution_env()
        args: tuple[str, ...] = ins.args
        pairs: _Pairs = ()
        flags = ins.flags
        from_stage: int | None = None
        from_image: str | None = None
        run_env: _Pairs = ()
        new = state
        if kw == "ENV":
            pairs = tuple((self.x(k, env, ins), self.x(v or "", env, ins)) for k, v in ins.pairs)
            merged = state.env
            for k, v in pairs:
                if k == "":
                    raise _err(ins.lineno, "ENV names can not be blank")
                merged = _set_pair(merged, k, v)
            new = attrs.evolve(state, env=merged)
        elif kw == "ARG":
            resolved = [
                (self.x(k, env, ins), None if d is None else self.x(d, env, ins))
                for k, d in ins.pairs
            ]
            scope = state.args
            out: list[tuple[str, str]] = []
            for k, d in resolved:
                value: str | None
                if k in self.build_args:
                    value = self.build_args[k]
                elif d is not None:
                    value = d
                else:
                    value = self.meta.get(k)
                if value is not None:
                    scope = _set_pair(scope, k, value)
                    out.append((k, value))
            pairs = tuple(out)
            new = attrs.evolve(state, args=scope)
        elif kw == "LABEL":
            pairs = tuple((self.x(k, env, ins), self.x(v or "", env, ins)) for k, v in ins.pairs)
            labels = state.labels
            for k, v in pairs:
                if k == "":
                    raise _err(ins.lineno, "LABEL names can not be blank")
                labels = _set_pair(labels, k, v)
            new = attrs.evolve(state, labels=labels)
        elif kw == "WORKDIR":
            wd = self.x(ins.args[0], env, ins)
            if wd == "":
                raise _err(ins.lineno, "WORKDIR requires a non-empty path")
            if not wd.startswith("/"):
                wd = _join("/", state.workdir or "/", wd)
            args = (wd,)
            new = attrs.evolve(state, workdir=wd)
        elif kw == "USER":
            user = self.x(ins.args[0], env, ins)
            args = (user,)
            new = attrs.evolve(state, user=user)
        elif kw == "EXPOSE":
            ports: set[str] = set(state.exposed_ports)
            listed: list[str] = []
            for word in ins.args:
                for p in _ports(self.x(word, env, ins), ins):
                    listed.append(p)
                    ports.add(p)
            args = tuple(listed)
            new = attrs.evolve(state, exposed_ports=tuple(sorted(ports, key=_port_key)))
        elif kw == "STOPSIGNAL":
            sig = self.x(ins.args[0], env, ins)
            _check_signal(sig, ins)
            args = (sig,)
            new = attrs.evolve(state, stop_signal=sig)
        elif kw == "VOLUME":
            vols = tuple(self.x(v, env, ins) for v in ins.args)
            if any(v.strip() == "" for v in vols):
                raise _err(ins.lineno, "VOLUME specified can not be an empty string")
            args = vols
            merged_vols = state.volumes + tuple(v for v in vols if v not in state.volumes)
            new = attrs.evolve(state, volumes=merged_vols)
        elif kw == "SHELL":
            new = attrs.evolve(state, shell=ins.args)
        elif kw in ("CMD", "ENTRYPOINT", "RUN"):
            argv = ins.args if ins.json_form else (*state.shell, *ins.args[:1])
            args = argv
            if kw == "CMD":
                new = attrs.evolve(state, cmd=argv, cmd_set=True)
            elif kw == "ENTRYPOINT":
                entrypoint = argv if ins.json_form or ins.args else None
                cmd = state.cmd if state.cmd_set else None
                new = attrs.evolve(state, entrypoint=entrypoint, cmd=cmd)
            else:
                run_env = state.run_env()
                names = {k for k, _ in run_env}
                extra = tuple(
                    (k, v)
                    for k, v in self.build_args.items()
                    if k in PREDEFINED_ARGS and k not in names
                )
                run_env = extra + run_env
        elif kw in ("COPY", "ADD"):
            args = tuple(self.x(a, env, ins) for a in ins.args)
            if any(a == "" for a in args):
                raise _err(ins.lineno, f"{kw}: a source or destination is empty")
            xflags: list[tuple[str, str]] = []
            for name, value in ins.flags:
                if name == "from":
                    assert from_ref is not None
                    value, from_stage = from_ref
                    if from_stage is None:
                        from_image = value
                else:
                    value = self.x(value, env, ins)
                    if name == "chmod" and self.strict:
                        raise _err(
                            ins.lineno,
                            f"{kw} --chmod is not supported by every engine's builder "
                            "(Docker 20.10's refuses it without BuildKit)",
                        )
                    if name == "chmod" and not _CHMOD.match(value):
                        raise _err(ins.lineno, f"{kw}: invalid --chmod value {value!r}")
                    if name == "chown" and value == "":
                        raise _err(ins.lineno, f"{kw}: empty --chown value")
                xflags.append((name, value))
            flags = tuple(xflags)
        elif kw == "HEALTHCHECK":
            new = attrs.evolve(state, healthcheck=ins.args)
        elif kw == "ONBUILD":
            new = attrs.evolve(state, onbuild=(*state.onbuild, ins.args[0]))
        elif kw == "MAINTAINER":
            author = self.x(ins.args[0], env, ins)
            args = (author,)
            new = attrs.evolve(state, maintainer=author)
        else:  # pragma: no cover - the parser knows no other keyword
            raise _err(ins.lineno, f"unknown instruction: {kw}")
        return Step(
            number=self.next_number(),
            stage=stage_index,
            instruction=ins,
            keyword=kw,
            args=args,
            pairs=pairs,
            flags=flags,
            from_stage=from_stage,
            from_image=from_image,
            state=new,
            env=run_env,
        )


def _port_key(port: str) -> tuple[int, str]:
    number, _, proto = port.partition("/")
    return int(number), proto
