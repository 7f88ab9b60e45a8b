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
  followed only by blanks, continues the instruction unless the character before it
  is the escape character too (``ENV C trailing\\\\`` ends there; Podman's builder
  reads it as a continuation, so strict evaluation refuses such a line); continued
  lines keep their leading blanks; blank continuation lines are skipped;
- instruction names are case-insensitive; ``--flag=value`` words follow the name;
- RUN, CMD, ENTRYPOINT, SHELL take a JSON array of strings (exec form) or text (shell
  form: the SHELL in effect runs it); text that is not a valid JSON array is shell
  form, as in Docker; COPY, ADD, VOLUME take a JSON array or whitespace-separated
  words, the last being the destination;
- ENV and LABEL take ``k=v`` words (quotes and escapes kept for substitution), or the
  legacy ``KEY value with spaces`` form; ARG takes ``NAME`` or ``NAME=default`` words;
- a heredoc (``RUN <<EOF``, ``COPY <<EOF /dst``: a shell-form word starting ``<<``)
  is refused with a message saying so: enginekit's builders do not carry them out.

Variable substitution (:func:`expand`) is Docker's shell lexer: ``$V``, ``${V}``,
``${V:-w}``, ``${V-w}``, ``${V:+w}``, ``${V+w}``, ``${V:?w}``, ``${V?w}``, ``${V#p}``,
``${V##p}``, ``${V%p}``, ``${V%%p}``, ``${V/p/r}``, ``${V//p/r}`` (``${V:#p}`` and
``${V:%p}`` are refused, as Docker refuses them); single quotes keep
text literal, double quotes keep everything but ``$`` and escapes, the escape
character makes the next character literal; quotes are removed. It applies to FROM
(global ARGs only), COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE, STOPSIGNAL,
VOLUME and to COPY/ADD flags, never to RUN, CMD, ENTRYPOINT or SHELL (their shell does
it at run time). EXPOSE splits each word again after substitution
(:func:`expand_words`: ``EXPOSE $PORTS`` with ``PORTS="80 443"`` exposes both).

The work is split: :mod:`enginekit.dockerlex` (the shell lexer),
:mod:`enginekit.dockerparse` (text to instructions), this module (the model and
:func:`parse`) and :mod:`enginekit.dockereval` (evaluation).

Scope: an ARG before the first FROM is global and usable in FROM lines; inside a stage
it must be declared again (``ARG NAME``) to be used, and then takes the global value.
A build argument overrides an ARG's default; a build argument that no ARG declares is
ignored. ENV wins over ARG of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import attrs

from enginekit.dockerlex import expand, expand_words
from enginekit.dockerparse import KEYWORDS, PORTABLE_KEYWORDS, Instruction, instruction, split_lines
from enginekit.dockerparse import err as _err
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
    "expand_words",
    "parse",
    "parse_file",
]


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
        substitution forms of :func:`expand`, ``COPY/ADD --chmod``) or reads otherwise (a
        line ending with an escaped escape character, ``trailing\\\\``: Docker ends the
        instruction there, Podman's builder continues it), so that every engine builds
        alike.

        ``skip_unused`` (BuildKit's and Podman's way) evaluates only the stages the
        target needs; ``skip_unused=False`` evaluates every stage up to the target, as
        Docker's classic builder (Docker 20.10 without BuildKit) builds them, so that a
        failing unused stage fails the build there. ``needed`` is the same either way.
        """
        from enginekit.dockereval import Evaluator

        if strict:
            for ins in self.instructions:
                if ins.escaped_end:
                    raise _err(
                        ins.end_lineno,
                        f"the line ends with an escaped {self.escape}: Docker's builder ends "
                        "the instruction there, Podman's continues it on the next line; quote "
                        f'the value (ENV A="...{self.escape}{self.escape}") or end the line '
                        "with another character",
                    )
        evaluator = Evaluator(self, dict(build_args or {}), base_config, strict)
        return evaluator.run(target, skip_unused)


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile's text (see the module docstring); ``InvalidSpec`` on errors."""
    escape, syntax, lines = split_lines(text)
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
        ins = instruction(line, escape)
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
