"""Docker's shell lexer: quotes, escapes and ``$`` substitution in Dockerfile words.

The rules are those of Docker's builder (moby/buildkit's ``shell`` package, which
Docker's classic builder uses too): ``$V``, ``${V}``, ``${V:-w}``, ``${V-w}``,
``${V:+w}``, ``${V+w}``, ``${V:?w}``, ``${V?w}``, ``${V#p}``, ``${V##p}``, ``${V%p}``,
``${V%%p}``, ``${V/p/r}``, ``${V//p/r}``; ``${V:#p}`` and ``${V:%p}`` are refused
("unsupported modifier"); single quotes keep text literal, double quotes keep
everything but ``$`` and escapes, the escape character makes the next character
literal; quotes are removed.

:func:`expand` gives one word (Docker's ``ProcessWord``); :func:`expand_words` splits
the result at blanks as Docker's ``ProcessWords`` does for EXPOSE: blanks written in
the text and blanks that a substitution brings separate words, quoted text and
escaped characters never do, and an empty result is no word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from enginekit.errors import InvalidSpec

__all__ = ["Lexer", "SubstitutionError", "expand", "expand_words", "is_space"]


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace``."""
    if ch in "\t\n\v\f\r \x85\xa0":
        return True
    return ord(ch) > 0xFF and unicodedata.category(ch) in ("Zs", "Zl", "Zp")


class SubstitutionError(Exception):
    pass


_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class Lexer:
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
            raise SubstitutionError(
                f"unexpected end of statement while looking for matching {stop}"
            )
        return "".join(out)

    def words(self) -> list[str]:
        """The whole text as words (Docker's ``ProcessWords``): blanks written in the
        text and blanks a ``$`` substitution brings separate words; quoted text and
        escaped characters are kept whole; empty words are dropped."""
        words: list[str] = []
        buf: list[str] = []
        in_word = False

        def add_char(ch: str) -> None:
            nonlocal in_word
            if is_space(ch):
                text = "".join(buf)
                if in_word and text:
                    words.append(text)
                    buf.clear()
                    in_word = False
            else:
                buf.append(ch)
                in_word = True

        def add_raw(text: str) -> None:
            nonlocal in_word
            buf.append(text)
            in_word = True

        while self.peek() != "":
            ch = self.peek()
            if ch == "$":
                for c in self.dollar():
                    add_char(c)
            elif ch == "'":
                add_raw(self.single_quote())
            elif ch == '"':
                add_raw(self.double_quote())
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        add_raw(ch)
                    ch = self.next()
                    if ch == "":
                        break
                    add_raw(ch)
                else:
                    add_char(ch)
        if "".join(buf):
            words.append("".join(buf))
        return words

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == "":
                raise SubstitutionError(
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
                raise SubstitutionError(
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
            raise SubstitutionError("syntax error: missing '}'")
        if p in "{}:":
            raise SubstitutionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if ch == "":
            raise SubstitutionError("syntax error: missing '}'")
        mod = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            mod += ch
            if ch in ("#", "%"):
                # Docker refuses ${V:#p}, ${V:##p}, ${V:%p} and ${V:%%p}.
                raise SubstitutionError(f"unsupported modifier ({mod}) in substitution")
        if self.strict and mod not in (":-", ":+", ":?", "?"):
            raise SubstitutionError(
                f"${{{name}{mod}...}} is not supported by every engine's builder "
                "(Docker 20.10's and Podman's refuse it: missing ':' in substitution); "
                "use ${NAME:-word}, ${NAME:+word} or ${NAME:?message}"
            )
        if null_is_unset or ch in ("+", "-", "?", "#", "%"):
            try:
                word = self.process_stop_on("}", ch in ("#", "%"))
            except SubstitutionError:
                if self.peek() == "":
                    raise SubstitutionError("syntax error: missing '}'") from None
                raise
            value, is_set = self.lookup(name)
            empty = not is_set or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else value
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                if not is_set:
                    raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise SubstitutionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            if ch in ("#", "%"):
                greedy = word.startswith(ch)
                if greedy:
                    word = word[1:]
                if ch == "%":
                    return _trim_suffix(word, value, greedy)
                return _trim_prefix(word, value, greedy)
            raise SubstitutionError(f"unsupported modifier ({mod}) in substitution")
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern = self.process_stop_on("/", True)
            except SubstitutionError:
                if self.peek() == "":
                    raise SubstitutionError("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement = self.process_stop_on("}", True)
            except SubstitutionError:
                if self.peek() == "":
                    raise SubstitutionError("syntax error: missing '}'") from None
                raise
            value, _ = self.lookup(name)
            rx = _shell_pattern(pattern, greedy=True, anchored=False)
            if replace_all:
                return rx.sub(lambda _m: replacement, value)
            m = rx.search(value)
            if m is not None:
                value = value[: m.start()] + replacement + value[m.end() :]
            return value
        raise SubstitutionError(f"unsupported modifier ({mod}) in substitution")


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
                raise SubstitutionError(f"invalid pattern ({pattern}) in substitution")
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
        return Lexer(word, env, escape, strict).process_stop_on("", False)
    except SubstitutionError as exc:
        raise InvalidSpec(f"bad substitution: {exc}") from None


def expand_words(
    word: str, env: Mapping[str, str], *, escape: str = "\\", strict: bool = False
) -> list[str]:
    """Substitute variables in ``word`` and split the result into words, as Docker's
    builder does for EXPOSE (``EXPOSE $PORTS`` with ``PORTS="80 443"`` is two ports).

    Raises ``InvalidSpec`` as :func:`expand` does.
    """
    try:
        return Lexer(word, env, escape, strict).words()
    except SubstitutionError as exc:
        raise InvalidSpec(f"bad substitution: {exc}") from None
