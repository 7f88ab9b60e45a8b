"""Variable substitution in Dockerfiles: Docker's shell lexer (no engine needed).

Expected values follow Docker's builder (moby/buildkit's shell lexer; Docker 20.10's
classic builder uses the same package).
"""

from __future__ import annotations

import pytest

from enginekit.dockerfile import expand, expand_words
from enginekit.errors import InvalidSpec

# =========================================================================== substitution

ENV = {"A": "hello", "E": "", "P": "/usr/local/bin", "SP": "a b"}


@pytest.mark.parametrize(
    ("word", "result"),
    [
        ("$A", "hello"),
        ("${A}", "hello"),
        ("${A}x", "hellox"),
        ("$Ax", ""),  # the name is "Ax"
        ("$A-x", "hello-x"),
        ("pre${A}post", "prehellopost"),
        ("$NOPE", ""),
        ("${NOPE}", ""),
        ("${NOPE:-def}", "def"),
        ("${E:-def}", "def"),
        ("${A:-def}", "hello"),
        ("${A:+alt}", "alt"),
        ("${E:+alt}", ""),
        ("${NOPE:+alt}", ""),
        ("${NOPE:-$A}", "hello"),
        ("${NOPE:-${A}-x}", "hello-x"),
        ('${NOPE:-"x y"}', "x y"),
        ("${A?err}", "hello"),
        ("${A:?err}", "hello"),
        ("'$A'", "$A"),
        ('"$A"', "hello"),
        ('"$A x"', "hello x"),
        ("\\$A", "$A"),
        ('"\\$A"', "$A"),
        ('"a\\"b"', 'a"b'),
        ('"a\\b"', "a\\b"),  # in double quotes the escape only escapes $ " and itself
        ("'a\\b'", "a\\b"),
        ("a\\ b", "a b"),
        ("a\\", "a"),  # a trailing escape is dropped
        ('a"b c"d', "ab cd"),
        ("a'b c'd", "ab cd"),
        ("$", "$"),
        ("a$", "a$"),
        ("$$", ""),  # "$$" reads the special parameter "$" (unset)
        ("$1x", "x"),
        ("$SP", "a b"),
        ("caf\u00e9 $A \u2603", "caf\u00e9 hello \u2603"),
    ],
)
def test_expand(word: str, result: str) -> None:
    assert expand(word, ENV) == result


@pytest.mark.parametrize(
    ("word", "result"),
    [
        ("${NOPE-def}", "def"),
        ("${E-def}", ""),
        ("${NOPE+alt}", ""),
        ("${E+alt}", "alt"),
        ("${P#*/}", "usr/local/bin"),
        ("${P##*/}", "bin"),
        ("${P%/*}", "/usr/local"),
        ("${P%%/*}", ""),
        ("${P/usr/opt}", "/opt/local/bin"),
        ("${A//l/L}", "heLLo"),
        ("${A/x/y}", "hello"),
    ],
)
def test_expand_modern_forms(word: str, result: str) -> None:
    assert expand(word, ENV) == result
    # Docker 20.10's and Podman's builders refuse these: strict mode does too.
    with pytest.raises(InvalidSpec, match="not supported by every engine"):
        expand(word, ENV, strict=True)


@pytest.mark.parametrize(
    "word",
    ["${", "${A", "${}", "${:-x}", "${A:-x", "'open", '"open', "${NOPE?}", "${E:?}", "${A x}"],
)
def test_expand_errors(word: str) -> None:
    with pytest.raises(InvalidSpec):
        expand(word, ENV)


def test_expand_error_messages() -> None:
    with pytest.raises(InvalidSpec, match="NOPE: is not allowed to be unset"):
        expand("${NOPE?}", ENV)
    with pytest.raises(InvalidSpec, match="E: custom"):
        expand("${E:?custom}", ENV)


def test_expand_backtick_escape() -> None:
    assert expand("`$A", ENV, escape="`") == "$A"
    assert expand("c:\\path", ENV, escape="`") == "c:\\path"
    assert expand('"x`"y"', ENV, escape="`") == 'x"y'


@pytest.mark.parametrize(
    "word", ["${P:#}", "${P:##}", "${P:%}", "${P:%%}", "${P:#*/}", "${P:##*/}", "${P:%/*}"]
)
def test_colon_before_trim_is_refused(word: str) -> None:
    # Docker's lexer refuses ':' before '#' or '%' ("unsupported modifier (:#) in
    # substitution"); so does enginekit, in strict mode and out of it.
    for strict in (False, True):
        with pytest.raises(InvalidSpec, match=r"unsupported modifier \(:[#%]\)"):
            expand(word, ENV, strict=strict)


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("$SP", ["a", "b"]),
        ('"$SP"', ["a b"]),
        ("x$SP", ["xa", "b"]),
        ("'$SP' $A", ["$SP", "hello"]),
        ("a\\ b", ["a b"]),
        ("$E", []),
        ('""', []),
        ("${NOPE:-1 2}", ["1", "2"]),
        ("  $A  ", ["hello"]),
    ],
)
def test_expand_words(word: str, words: list[str]) -> None:
    # Docker's ProcessWords: the word is split at blanks after substitution; quoted
    # text and escaped characters stay whole; an empty result is no word.
    assert expand_words(word, ENV) == words
