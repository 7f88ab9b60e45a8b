"""Dockerfile parsing, substitution and evaluation (no engine needed).

Expected values marked "Docker 20.10" were checked by building the same Dockerfile
with Docker 20.10's builder on this project's machines and reading the image config.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enginekit.dockerfile import (
    DEFAULT_PATH,
    PORTABLE_KEYWORDS,
    BuildState,
    Dockerfile,
    Evaluation,
    expand,
    parse,
)
from enginekit.dockerparse import _extract_flags, _parse_words
from enginekit.errors import InvalidSpec

PATH = f"PATH={DEFAULT_PATH}"


def final(text: str, build_args: dict[str, str] | None = None, **kw: object) -> BuildState:
    return parse(text).evaluate(build_args, **kw).state  # type: ignore[arg-type]


def env_list(state: BuildState) -> list[str]:
    return [f"{k}={v}" for k, v in state.env]


# =========================================================================== lines and directives


def test_directives() -> None:
    df = parse("# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM scratch\n")
    assert df.syntax == "docker/dockerfile:1"
    assert df.escape == "`"


def test_directive_after_comment_is_a_comment() -> None:
    df = parse("# a comment\n# escape=`\nFROM scratch\n")
    assert df.escape == "\\"


def test_directive_after_unknown_directive_is_a_comment() -> None:
    assert parse("# unknown=x\n# escape=`\nFROM scratch\n").escape == "\\"


def test_directive_after_blank_line_is_a_comment() -> None:
    assert parse("\n# escape=`\nFROM scratch\n").escape == "\\"


def test_directive_errors() -> None:
    with pytest.raises(InvalidSpec, match="only one escape"):
        parse("# escape=`\n# escape=\\\nFROM scratch\n")
    with pytest.raises(InvalidSpec, match="invalid escape token"):
        parse("# escape=x\nFROM scratch\n")


def test_continuations_comments_and_blank_lines() -> None:
    df = parse(
        "FROM scratch\n"
        "RUN echo a \\\n"
        "  # a comment inside\n"
        "\n"
        "    && echo b \\   \n"
        "  && echo c\n"
        "   # indented comment\n"
        "\tRUN   echo   d   \r\n"
    )
    runs = df.stages[0].instructions
    assert [i.args for i in runs] == [
        ("echo a     && echo b   && echo c",),
        ("echo   d",),
    ]
    assert (runs[0].lineno, runs[0].end_lineno) == (2, 6)
    assert runs[1].lineno == 8


def test_backtick_continuation() -> None:
    df = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo x\n")
    assert df.stages[0].instructions[0].args == ("dir c:\\   && echo x",)


def test_continuation_at_end_of_file() -> None:
    df = parse("FROM scratch\nRUN echo a \\")
    assert df.stages[0].instructions[0].args == ("echo a",)


def test_escaped_escape_at_end_of_line_is_not_a_continuation() -> None:
    # Docker's rule: the escape at the end of a line continues it unless the character
    # before it is the escape too ("trailing\\\\" ends the line, as does "\\\\\\").
    df = parse("FROM scratch\nENV C trailing\\\\\nENV D=1\nRUN echo \\\\\\\nUSER 1\n")
    body = df.stages[0].instructions
    assert [i.keyword for i in body] == ["ENV", "ENV", "RUN", "USER"]
    assert body[0].pairs == (("C", "trailing\\\\"),)
    assert body[2].args == ("echo \\\\\\",)
    state = final("FROM scratch\nENV C trailing\\\\\nENV D=1\n", strict=False)
    assert (state.env_dict["C"], state.env_dict["D"]) == ("trailing\\", "1")
    # A line holding only the escape still continues.
    df = parse("FROM scratch\nRUN echo a \\\n\\\n  b\n")
    assert df.stages[0].instructions[0].args == ("echo a   b",)
    df = parse("# escape=`\nFROM scratch\nRUN echo ``\nUSER 1\n")
    assert [i.keyword for i in df.stages[0].instructions] == ["RUN", "USER"]


@pytest.mark.parametrize(
    "text",
    [
        "FROM scratch\nENV C trailing\\\\\nENV D=1\n",
        "FROM scratch\nRUN echo a \\\n  b\\\\  \nUSER 1\n",
        "FROM scratch\nRUN echo \\\\\\\nUSER 1\n",
        "# escape=`\nFROM scratch\nRUN echo ``\nUSER 1\n",
        "FROM scratch\nONBUILD RUN echo \\\\\nUSER 1\n",
    ],
)
def test_escaped_escape_at_end_of_line_is_refused_in_strict_mode(text: str) -> None:
    # Podman's builder takes any escape at the end of a line as a continuation: the
    # engines would build different images, so strict evaluation refuses the line.
    lineno = text.count("\n") - 1
    with pytest.raises(InvalidSpec, match=rf"line {lineno}: the line ends with an escaped"):
        parse(text).evaluate()
    parse(text).evaluate(strict=False)
    quoted = final('FROM scratch\nENV C="trailing\\\\"\nENV D=1\n')
    assert quoted.env_dict["C"] == "trailing\\"


@pytest.mark.parametrize(
    "body",
    [
        "RUN <<EOF\necho hi\nEOF",
        "RUN cat <<-'END' > /f\n\thello\n\tEND",
        "RUN cat << EOF\nx\nEOF",
        "RUN 3<<EOF cat <&3\nx\nEOF",
        'COPY <<"EOF" /etc/motd\nhello\nEOF',
        "ADD <<EOF /x\nhello\nEOF",
        "ONBUILD RUN <<EOF\necho hi\nEOF",
    ],
)
def test_heredocs_are_refused_clearly(body: str) -> None:
    with pytest.raises(InvalidSpec, match=r"line 2: .*heredoc.*not supported") as info:
        parse(f"FROM scratch\n{body}\n")
    assert "unknown instruction" not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "RUN echo a<<b",
        "RUN cat <<< word",
        'RUN echo "<<EOF"',
        "RUN echo '<< EOF'",
        'RUN ["sh", "-c", "cat <<EOF"]',
        "RUN echo \\<<EOF",
        "ENV A=<<EOF",
    ],
)
def test_text_that_is_no_heredoc_passes(body: str) -> None:
    assert len(parse(f"FROM scratch\n{body}\n").stages[0].instructions) == 1


def test_expose_splits_words_after_substitution() -> None:
    # Docker (classic builder and BuildKit) and Podman: EXPOSE $PORTS exposes each word.
    s = final('FROM scratch\nENV PORTS="80 443"\nEXPOSE $PORTS 53/udp\n')
    assert s.exposed_ports == ("53/udp", "80/tcp", "443/tcp")
    step = parse('FROM scratch\nARG P="8080 9090/udp"\nEXPOSE $P $NOPE\n').evaluate().steps[-1]
    assert step.args == ("8080/tcp", "9090/udp")
    with pytest.raises(InvalidSpec, match="invalid port '80 443'"):
        final('FROM scratch\nENV PORTS="80 443"\nEXPOSE "$PORTS"\n')


def test_bom_and_crlf() -> None:
    df = parse("\ufeffFROM scratch\r\nENV A=1\r\n")
    assert df.stages[0].instructions[0].pairs == (("A", "1"),)


def test_keywords_are_case_insensitive() -> None:
    df = parse("from scratch as Build\nrUn echo\n")
    assert df.stages[0].name == "build"
    assert df.stages[0].instructions[0].keyword == "RUN"


# =========================================================================== instructions


def test_run_forms() -> None:
    df = parse(
        "FROM scratch\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "RUN echo $HOME && exit 0\n"
        'SHELL ["/bin/bash", "-euc"]\n'
        "RUN echo hi\n"
        'RUN [ -f /x ] || echo "not json"\n'
        'RUN ["broken", ]\n'
    )
    steps = df.evaluate().steps
    runs = [s for s in steps if s.keyword == "RUN"]
    assert runs[0].args == ("/bin/busybox", "--install", "-s", "/bin")
    assert runs[0].instruction.json_form
    assert runs[1].args == ("/bin/sh", "-c", "echo $HOME && exit 0")  # no substitution
    assert runs[2].args == ("/bin/bash", "-euc", "echo hi")
    assert runs[3].args == ("/bin/bash", "-euc", '[ -f /x ] || echo "not json"')
    # Text that is not a valid JSON array is shell form, as in Docker.
    assert runs[4].args == ("/bin/bash", "-euc", '["broken", ]')


def test_run_env_has_args_and_env() -> None:
    ev = parse("FROM scratch\nARG A=1\nARG B=2\nENV B=env\nRUN true\n").evaluate(
        {"HTTP_PROXY": "http://proxy", "UNDECLARED": "x"}
    )
    run = ev.steps[-1]
    env = dict(run.env)
    assert env["A"] == "1"
    assert env["B"] == "env"
    assert env["HTTP_PROXY"] == "http://proxy"  # predefined, needs no ARG
    assert "UNDECLARED" not in env
    assert "A" not in ev.state.env_dict  # ARGs never reach the image


def test_json_must_hold_strings() -> None:
    with pytest.raises(InvalidSpec, match=r"line 2.*strings only"):
        parse('FROM scratch\nCMD ["a", 1]\n')
    with pytest.raises(InvalidSpec, match="strings only"):
        parse('FROM scratch\nCOPY ["a", null]\n')


def test_shell_requires_json() -> None:
    with pytest.raises(InvalidSpec, match="JSON"):
        parse("FROM scratch\nSHELL /bin/bash -c\n")


def test_copy_and_add() -> None:
    df = parse(
        "FROM scratch\n"
        "COPY --chown=1:2 --chmod=0755 a b /dst/\n"
        'COPY ["with space", "/x y/"]\n'
        "ADD --chown=app a.tar.gz /\n"
    )
    c1, c2, a1 = df.stages[0].instructions
    assert c1.args == ("a", "b", "/dst/")
    assert c1.flags == (("chown", "1:2"), ("chmod", "0755"))
    assert c1.flag("chown") == "1:2"
    assert c2.json_form and c2.args == ("with space", "/x y/")
    assert a1.keyword == "ADD" and a1.flag("chown") == "app"
    steps = df.evaluate(strict=False).steps
    assert steps[1].sources == ("a", "b")
    assert steps[1].flags == (("chown", "1:2"), ("chmod", "0755"))
    assert steps[1].dest == "/dst/"
    assert steps[2].sources == ("with space",)


def test_copy_substitution_and_dest_path() -> None:
    ev = parse(
        "FROM scratch\nARG U=1000\nENV D=data\nWORKDIR /app\n"
        "COPY --chown=$U:$U src/$D ./$D/\nCOPY x .\nCOPY y /abs\n"
    ).evaluate()
    c1, c2, c3 = ev.steps[-3:]
    assert c1.flags == (("chown", "1000:1000"),)
    assert c1.sources == ("src/data",)
    assert c1.dest_path == "/app/data/"
    assert c2.dest_path == "/app"
    assert c3.dest_path == "/abs"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("COPY a", "at least two arguments"),
        ('COPY ["a"]', "at least two arguments"),
        ("COPY", "requires"),
        ("COPY --link a /", "not supported"),
        ("COPY --exclude=x a /", "not supported"),
        ("RUN --mount=type=cache,target=/x true", "not supported"),
        ("RUN --network=none true", "not supported"),
        ("COPY --bogus a /", "unknown flag"),
        ("COPY --chown a /", "missing a value"),
        ("COPY --chown=1 --chown=2 a /", "duplicate flag"),
        ("WORKDIR --x=1 /a", "unknown flag"),
        ("COPY --chmod=755 a /", "--chmod is not supported by every engine"),
        ("ENV", "at least one argument"),
        ("ENV A", "two arguments"),
        ("ENV A=1 B", "can't find ="),
        ("ENV =x", "blank"),
        ("LABEL =x", "blank"),
        ("ARG", "at least one argument"),
        ("ARG =x", "blank"),
        ("RUN", "requires"),
        ("RUN []", "requires"),
        ("WORKDIR", "requires"),
        ("USER", "requires"),
        ("EXPOSE", "requires"),
        ("EXPOSE 80/icmp", "invalid port"),
        ("EXPOSE http", "invalid port"),
        ("EXPOSE 70000", "invalid port range"),
        ("STOPSIGNAL SIGNOPE", "invalid signal"),
        ("STOPSIGNAL 0", "invalid signal"),
        ("VOLUME", "requires"),
        ("HEALTHCHECK", "requires"),
        ("HEALTHCHECK echo", "CMD"),
        ("ONBUILD", "requires"),
        ("ONBUILD ONBUILD RUN x", "isn't allowed"),
        ("ONBUILD FROM x", "isn't allowed"),
        ("ONBUILD BOGUS", "unknown instruction"),
        ("BOGUS x", "unknown instruction: BOGUS"),
        ("ENV A=${B", "missing '}'"),
        ("ENV A=${B-x}", "not supported by every engine"),
        ("WORKDIR $EMPTY", "non-empty"),
        ("ADD --chmod=644 a /", "--chmod is not supported by every engine"),
    ],
)
def test_instruction_errors(body: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=r"line 2\b") as info:
        parse(f"FROM scratch\n{body}\n").evaluate({})
    assert message in str(info.value)


def test_env_forms() -> None:
    # Docker 20.10
    state = final(
        "FROM scratch\nENV A=1 B=\"two words\" C='$A' D=$A\\ x\n"
        'ENV E $A and "more"  words\nENV A=2 F=$A\n'
    )
    assert env_list(state) == [
        PATH,
        "A=2",
        "B=two words",
        "C=$A",
        "D= x",
        "E=1 and more  words",
        "F=1",
    ]


@pytest.mark.parametrize(
    ("text", "build_args", "env"),
    [
        # Docker 20.10, every one of them
        (
            "ARG G=glob\nFROM scratch\nENV X=${G:-unset}\nARG G\nENV Y=$G\n",
            {},
            ["X=unset", "Y=glob"],
        ),
        ("ARG G=glob\nFROM scratch\nARG G\nENV Y=$G\n", {"G": "cli"}, ["Y=cli"]),
        (
            "FROM scratch\nARG A=def\nENV A=env\nENV B=$A\nARG C\nENV D=${C:-none}\n",
            {"C": "given", "UNDECLARED": "x"},
            ["A=env", "B=env", "D=given"],
        ),
        ("FROM scratch\nARG X=1 Y=$X\nENV Y=$Y\n", {}, ["Y="]),
        ("FROM scratch\nENV A=1\nENV A=2 B=$A\n", {}, ["A=2", "B=1"]),
        ('FROM scratch\nENV A="${B:-\\"q\\"}" C=${D:+x}y\n', {}, ['A="q"', "C=y"]),
        ("FROM scratch\nENV A=a\\\n  b=c\n", {}, ["A=a", "b=c"]),
        ('FROM scratch\nENV A="multi\\\nline"\n', {}, ["A=multiline"]),
        (
            "FROM scratch\nENV U=\u00fcn\u00ef c\u00f6d\u00e9=\u2713\n",
            {},
            ["U=\u00fcn\u00ef", "c\u00f6d\u00e9=\u2713"],
        ),
        ("FROM scratch\nENV A=' spaced '  B=\"\"\n", {}, ["A= spaced ", "B="]),
        (
            '# escape=`\nFROM scratch\nENV A=c:\\path B=x`"y C=`$A\n',
            {},
            ["A=c:\\path", 'B=x"y', "C=$A"],
        ),
        ("FROM scratch\nARG A\nENV B=${A:-unset}\n", {}, ["B=unset"]),
        ("ARG V=1\nFROM scratch\nENV B=${V:-not-redeclared}\n", {}, ["B=not-redeclared"]),
        ("ARG V=1\nFROM scratch\nARG V=2\nENV B=$V\n", {"V": "cli"}, ["B=cli"]),
        ("ARG V=1\nFROM scratch\nARG V=2\nENV B=$V\n", {}, ["B=2"]),
    ],
)
def test_arg_and_env_scoping(text: str, build_args: dict[str, str], env: list[str]) -> None:
    assert env_list(final(text, build_args)) == [PATH, *env]


def test_workdir() -> None:
    # Docker 20.10
    assert final("FROM scratch\nWORKDIR /a\nWORKDIR b/\nWORKDIR ../c\n").workdir == "/a/c"
    assert final("FROM scratch\nENV W=/w\nWORKDIR $W/x/\n").workdir == "/w/x/"
    assert final("FROM scratch\nWORKDIR rel\n").workdir == "/rel"
    assert final("FROM scratch\n").workdir == ""


def test_chmod_outside_strict_mode() -> None:
    with pytest.raises(InvalidSpec, match="invalid --chmod"):
        parse("FROM scratch\nCOPY --chmod=999 a /\n").evaluate(strict=False)


def test_user_cmd_entrypoint() -> None:
    # Docker 20.10
    s = final('FROM scratch\nUSER 1000:1000\nCMD ["a", "b"]\nENTRYPOINT ["e"]\n')
    assert (s.user, s.cmd, s.entrypoint) == ("1000:1000", ("a", "b"), ("e",))
    # An ENTRYPOINT clears a CMD the stage inherited.
    s = final('FROM scratch AS base\nCMD ["a"]\nFROM base\nENTRYPOINT e1 $X\n')
    assert (s.cmd, s.entrypoint) == (None, ("/bin/sh", "-c", "e1 $X"))
    s = final('FROM scratch\nCMD ["a"]\nENTRYPOINT ["e"]\n')
    assert s.cmd == ("a",)
    s = final('FROM scratch\nSHELL ["/bin/bash", "-xc"]\nCMD echo $HOME\n')
    assert s.cmd == ("/bin/bash", "-xc", "echo $HOME")
    assert final("FROM scratch\nCMD []\n").cmd == ()
    # Docker 20.10 and Podman: a bare CMD is the bare shell; a bare ENTRYPOINT unsets it.
    assert final("FROM scratch\nCMD\n").cmd == ("/bin/sh", "-c")
    s = final('FROM scratch\nCMD ["x"]\nENTRYPOINT ["e"]\nENTRYPOINT\n')
    assert (s.cmd, s.entrypoint) == (("x",), None)
    assert final("FROM scratch\nUSER 1\nUSER $EMPTY\n").user == ""  # Docker 20.10 accepts it


def test_expose_label_stopsignal_volume() -> None:
    # Docker 20.10
    s = final("FROM scratch\nEXPOSE 80 53/udp 8000-8002/tcp\nENV P=9000\nEXPOSE $P/UDP\n")
    assert s.exposed_ports == ("53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "9000/udp")
    s = final('FROM scratch\nLABEL a=1 "b c"="d e" f=$NOPE\nLABEL legacy value with spaces\n')
    assert s.labels_dict == {"a": "1", "b c": "d e", "f": "", "legacy": "value with spaces"}
    s = final('FROM scratch\nSTOPSIGNAL SIGINT\nVOLUME /data ["/x"]\n')
    assert (s.stop_signal, s.volumes) == ("SIGINT", ("/data", "[/x]"))
    s = final('FROM scratch\nVOLUME ["/a", "/b"]\nSTOPSIGNAL 9\n')
    assert (s.stop_signal, s.volumes) == ("9", ("/a", "/b"))
    assert final("FROM scratch\nSTOPSIGNAL term\n").stop_signal == "term"


def test_healthcheck_onbuild_maintainer_parse() -> None:
    df = parse(
        "FROM scratch\nHEALTHCHECK --interval=5s CMD true\nHEALTHCHECK NONE\n"
        "ONBUILD RUN echo hi\nMAINTAINER someone <a@b>\n"
    )
    hc, _hc2, ob, mt = df.stages[0].instructions
    assert hc.flag("interval") == "5s" and hc.args == ("CMD true",)
    assert ob.trigger is not None and ob.trigger.keyword == "RUN"
    s = df.evaluate().state
    assert s.healthcheck == ("NONE",)
    assert s.onbuild == ("RUN echo hi",)
    assert s.maintainer == "someone <a@b>"
    assert [i.keyword for i in df.non_portable()] == [
        "HEALTHCHECK",
        "HEALTHCHECK",
        "ONBUILD",
        "MAINTAINER",
    ]
    assert not mt.portable


def test_portable_keywords() -> None:
    assert {
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
    } == PORTABLE_KEYWORDS


# =========================================================================== stages


MULTI = """\
ARG BASE=scratch
FROM ${BASE} AS deps
COPY a /a
FROM scratch AS unused
RUN exit 1
FROM deps AS build
ARG BASE
ENV B=$BASE
FROM scratch AS final
COPY --from=build /a /a
COPY --from=0 /a /b
COPY --from=some/image:tag /x /x
"""


def test_stages() -> None:
    df = parse(MULTI)
    assert [(s.index, s.name, s.base) for s in df.stages] == [
        (0, "deps", "${BASE}"),
        (1, "unused", "scratch"),
        (2, "build", "deps"),
        (3, "final", "scratch"),
    ]
    assert [i.pairs for i in df.global_args] == [(("BASE", "scratch"),)]


def test_needed_stages_for_the_default_target() -> None:
    ev = parse(MULTI).evaluate()
    assert ev.target == 3
    assert ev.needed == (0, 2, 3)
    assert ev.skipped == (1,)
    assert [s.index for s in ev.stages] == [0, 2, 3]
    copies = [s for s in ev.stages[-1].steps if s.keyword == "COPY"]
    assert [(c.from_stage, c.from_image) for c in copies] == [
        (2, None),
        (0, None),
        (None, "some/image:tag"),
    ]
    build = ev.stages[1]
    assert build.base_stage == 0
    assert build.state.env_dict["B"] == "scratch"


def test_all_stages_as_the_classic_builder() -> None:
    # Docker 20.10's classic builder builds an unused stage (and fails on it); Podman
    # skips it.
    ev = parse(MULTI).evaluate(skip_unused=False)
    assert [s.index for s in ev.stages] == [0, 1, 2, 3]
    assert ev.needed == (0, 2, 3)
    assert [s.number for s in ev.steps] == list(range(1, 12))


def test_target_selects_the_last_stage() -> None:
    ev = parse(MULTI).evaluate(target="BUILD")
    assert ev.target == 2
    assert ev.needed == (0, 2)
    ev = parse(MULTI).evaluate(target="unused")
    assert ev.needed == (1,)
    assert ev.skipped == (0,)


def test_unknown_target() -> None:
    with pytest.raises(InvalidSpec, match="target stage 'nope'"):
        parse(MULTI).evaluate(target="nope")


def test_step_numbers_and_text() -> None:
    ev = parse("FROM scratch\nENV A=1\nRUN echo  hi\n").evaluate()
    assert [(s.number, s.text) for s in ev.steps] == [
        (1, "FROM scratch"),
        (2, "ENV A=1"),
        (3, "RUN echo  hi"),
    ]


def test_global_args_in_from() -> None:
    ev = parse("ARG TAG=1\nARG IMG=busybox:${TAG}\nFROM $IMG\n").evaluate({"TAG": "2"})
    assert ev.stages[0].base == "busybox:2"
    assert ev.steps[0].from_image == "busybox:2"


def test_base_config_supplies_the_image_env() -> None:
    base = BuildState(env=(("HOME", "/root"), ("PATH", "/bin")), workdir="/w", cmd=("sh",))
    seen: list[str] = []

    def config(ref: str) -> BuildState:
        seen.append(ref)
        return base

    ev = parse('FROM img:1\nENV X=$HOME\nENTRYPOINT ["e"]\n').evaluate(base_config=config)
    assert seen == ["img:1"]
    assert env_list(ev.state) == ["HOME=/root", "PATH=/bin", "X=/root"]
    assert ev.state.workdir == "/w"
    assert ev.state.cmd is None  # ENTRYPOINT clears the inherited CMD


def test_scratch_gets_the_default_path() -> None:
    assert env_list(final("FROM scratch\n")) == [PATH]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no instructions"),
        ("# only a comment\n", "no instructions"),
        ("ARG A=1\n", "no FROM"),
        ("ENV A=1\nFROM scratch\n", "before the first FROM"),
        ("FROM\n", "requires"),
        ("FROM a b\n", "one or three"),
        ("FROM a AS\n", "one or three"),
        ("FROM a FOR b\n", "one or three"),
        ("FROM a AS 1bad\n", "invalid name"),
        ("FROM a AS x\nFROM b AS X\n", "duplicate name"),
        ("FROM --platform=linux/arm64 scratch\n", "--platform is not supported"),
        ("ARG E=\nFROM $E\n", "should not be blank"),
        ("FROM scratch AS a\nFROM scratch\nCOPY --from=1 /a /a\n", "later stage"),
        ("FROM scratch AS a\nCOPY --from=b /a /a\nFROM scratch AS b\n", "not an earlier stage"),
        ("FROM a AS a\n", "not an earlier stage"),
    ],
)
def test_dockerfile_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("-", r"\-")):
        parse(text).evaluate()


def test_errors_carry_the_line_number() -> None:
    with pytest.raises(InvalidSpec, match="line 4"):
        parse("FROM scratch\nRUN a \\\n  b\nBOGUS\n")


def test_parse_is_pure_and_values_are_frozen() -> None:
    df = parse(MULTI)
    assert parse(MULTI) == df
    with pytest.raises(AttributeError):
        df.stages = ()  # type: ignore[misc]
    assert isinstance(df, Dockerfile)
    assert isinstance(df.evaluate(), Evaluation)


def test_repr_hides_env_values() -> None:
    ev = parse("FROM scratch\nENV SECRET=hunter2\nRUN true\n").evaluate()
    for obj in (ev, ev.state, *ev.steps, *ev.stages, parse("FROM scratch\nENV S=hunter2\n")):
        assert "hunter2" not in repr(obj)


@pytest.mark.parametrize(
    "text",
    [
        'FROM scratch\nENV A="hunter2\n',
        "FROM scratch\nENV A=x hunter2\n",
        "FROM scratch\nENV A=${hunter2\n",
    ],
)
def test_env_errors_do_not_echo_values(text: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse(text).evaluate()
    assert "hunter2" not in str(info.value)


# =========================================================================== properties

_key = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_value = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00\n\r"), max_size=30
)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


@given(st.dictionaries(_key, _value, min_size=1, max_size=5))
def test_env_round_trip(env: dict[str, str]) -> None:
    line = " ".join(f"{k}={_quote(v)}" for k, v in env.items())
    state = final(f"FROM scratch\nENV {line}\n")
    assert {k: v for k, v in state.env if k in env} == env


@given(st.dictionaries(_key, _value, min_size=1, max_size=5))
def test_label_round_trip(labels: dict[str, str]) -> None:
    line = " ".join(f"{_quote(k)}={_quote(v)}" for k, v in labels.items())
    assert final(f"FROM scratch\nLABEL {line}\n").labels_dict == labels


@given(_key, _value)
def test_build_arg_round_trip(name: str, value: str) -> None:
    state = final(f"FROM scratch\nARG {name}\nENV OUT=${{{name}}}\n", {name: value})
    assert state.env_dict["OUT"] == value


@given(_value)
def test_single_quotes_keep_text(value: str) -> None:
    if "'" in value:
        return
    assert expand(f"'{value}'", {"A": "x"}) == value


def test_import_pulls_in_no_engine_library() -> None:
    code = (
        "import sys, enginekit.dockerfile\n"
        "bad = [m for m in ('docker', 'podman', 'lxc', 'requests', 'httpx', 'urllib3')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# =========================================================================== the word scanner
# One scanner reads both the leading --flag words and the words of ARG/ENV/LABEL;
# the two differ only where Docker's two readers differ.


@pytest.mark.parametrize(
    ("line", "rest", "flags"),
    [
        ('--chown="a b" x /', "x /", ["--chown=a b"]),
        ("--chown=a\\ b x /", "x /", ["--chown=a b"]),
        # In a flag the escape works inside single quotes too, and quotes are removed.
        ("--chown='a\\'b' x /", "x /", ["--chown=a'b"]),
        ("--x=''  y", "y", ["--x="]),
        ("  --from=b\t/a /a", "/a /a", ["--from=b"]),
        # A lone -- ends the flags; what follows is the rest, blanks and all.
        ("--a -- --b c", " --b c", ["--a"]),
        ("--a --", "", ["--a"]),
        # A word not starting with -- ends them, even a lone escape character.
        ("--a \\", "\\", ["--a"]),
        ("--a\\", "", ["--a"]),
        ("-x --a", "-x --a", []),
        ("", "", []),
    ],
)
def test_flag_words(line: str, rest: str, flags: list[str]) -> None:
    assert _extract_flags(line) == (rest, flags)


@pytest.mark.parametrize(
    ("text", "backslash", "backtick"),
    [
        ("a=\"x y\" b='c\\ d'", ['a="x y"', "b='c\\ d'"], ['a="x y"', "b='c\\ d'"]),
        ("a\\ b", ["a\\ b"], ["a\\", "b"]),
        ("a`  b", ["a`", "b"], ["a` ", "b"]),
        # An escape character at the very end is dropped; an empty quoted word is kept.
        ("a \\", ["a"], ["a", "\\"]),
        ("'' x", ["''", "x"], ["''", "x"]),
        # Nothing is escaped inside single quotes; in double quotes the escape stays.
        ("'a\\'", ["'a\\'"], ["'a\\'"]),
        ('"a\\"b"', ['"a\\"b"'], ['"a\\"b"']),
        (" \t ", [], []),
    ],
)
def test_words_keep_quotes_and_escapes(
    text: str, backslash: list[str], backtick: list[str]
) -> None:
    assert _parse_words(text, "\\") == backslash
    assert _parse_words(text, "`") == backtick
