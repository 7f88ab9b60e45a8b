"""Evaluation of a parsed Dockerfile: substitution and the image state step by step.

See :meth:`enginekit.dockerfile.Dockerfile.evaluate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import attrs

from enginekit.dockerfile import (
    DEFAULT_PATH,
    PREDEFINED_ARGS,
    BuildState,
    Dockerfile,
    EvaluatedStage,
    Evaluation,
    Stage,
    Step,
    _join,
    _Pairs,
    _set_pair,
)
from enginekit.dockerlex import Lexer, SubstitutionError
from enginekit.dockerparse import Instruction
from enginekit.dockerparse import err as _err

__all__ = ["Evaluator"]


def _expand_at(
    word: str, env: Mapping[str, str], escape: str, ins: Instruction, strict: bool
) -> str:
    try:
        return Lexer(word, env, escape, strict).process_stop_on("", False)
    except SubstitutionError as exc:
        raise _err(ins.lineno, f"{ins.keyword}: {exc}") from None


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


class Evaluator:
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

    def words(self, word: str, env: Mapping[str, str], ins: Instruction) -> list[str]:
        """``word`` substituted and split at blanks (Docker's ``ProcessWords``)."""
        try:
            return Lexer(word, env, self.esc, self.strict).words()
        except SubstitutionError as exc:
            raise _err(ins.lineno, f"{ins.keyword}: {exc}") from None

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
                # Docker splits each word again after substitution: EXPOSE $PORTS
                # with PORTS="80 443" exposes both.
                for spec in self.words(word, env, ins):
                    for p in _ports(spec, ins):
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
