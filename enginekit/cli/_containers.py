"""The container commands: ``run``, ``create``, ``start``, the lifecycle, ``ps``,
``inspect``, ``logs``, ``exec``, ``wait``, ``cp``, ``stats``, ``prune``."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from enginekit.errors import EngineError, NotFound

from ._app import UsageError, each
from ._args import command_of, connect, container_spec, parse_filters, parse_pairs
from ._format import ago, human_size, print_json, print_table
from ._show import ports_text, print_container, print_image

if TYPE_CHECKING:
    from enginekit import Container, ContainerSummary, Engine, Image, LogLine

__all__ = [
    "cmd_cp",
    "cmd_create",
    "cmd_exec",
    "cmd_inspect",
    "cmd_kill",
    "cmd_logs",
    "cmd_pause",
    "cmd_prune",
    "cmd_ps",
    "cmd_restart",
    "cmd_rm",
    "cmd_run",
    "cmd_start",
    "cmd_stats",
    "cmd_stop",
    "cmd_unpause",
    "cmd_wait",
]


def _write(stream: Any, data: bytes) -> None:
    stream.buffer.write(data)
    stream.buffer.flush()


def _pump(lines: Iterator[LogLine], *, timestamps: bool = False) -> None:
    """Copy log lines to our stdout/stderr, kept apart, as they come."""
    from enginekit import Stream

    for line in lines:
        target = sys.stderr if line.stream is Stream.STDERR else sys.stdout
        prefix = b""
        if timestamps and line.timestamp is not None:
            prefix = line.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode()
        _write(target, prefix + line.data)


def _attach(engine: Engine, container: Container | str, *, remove: bool) -> int:
    """Follow the container's output until it exits; its exit code.

    Ctrl-C stops it (and, with ``remove``, removes it) before leaving.
    """
    try:
        try:
            lines = engine.containers.stream_logs(container, follow=True)
            try:
                _pump(lines)
            finally:
                close = getattr(lines, "close", None)
                if close is not None:
                    close()
        except EngineError as exc:
            # A stream the interrupt broke off may fail on its way out: the
            # command still ends as the signal asked (and removes with --rm).
            from . import _app

            if _app.interrupt is None:
                raise
            raise type(_app.interrupt)() from exc
        return engine.containers.wait(container)
    except KeyboardInterrupt:
        with contextlib.suppress(EngineError):
            if not remove:
                engine.containers.stop(container, timeout=10)
        raise
    finally:
        if remove:
            with contextlib.suppress(NotFound):
                engine.containers.remove(container, force=True)


def cmd_run(args: argparse.Namespace) -> int:
    image, command, spec = container_spec(args)
    with connect(args) as engine:
        if args.detach:
            c = engine.containers.run(image, command, **spec)
            print(c.id)
            return 0
        created = engine.containers.create(image, command, **spec)
        try:
            engine.containers.start(created)
        except BaseException:
            if args.rm:
                with contextlib.suppress(EngineError):
                    engine.containers.remove(created, force=True)
            raise
        return _attach(engine, created, remove=args.rm)


def cmd_create(args: argparse.Namespace) -> int:
    image, command, spec = container_spec(args)
    with connect(args) as engine:
        print(engine.containers.create(image, command, **spec).id)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        if args.attach:
            if len(args.containers) != 1:
                raise UsageError("start -a takes one container")
            c = engine.containers.start(args.containers[0])
            return _attach(engine, c, remove=False)
        return each(args.containers, engine.containers.start)


def _known(engine: Engine, found: Sequence[ContainerSummary]) -> list[ContainerSummary]:
    """``found``, an exited container's exit code asked of ``get()`` where the
    engine's list did not say it (rare: one request each)."""
    from enginekit import ContainerState, ContainerSummary

    out = []
    for c in found:
        if c.state is ContainerState.EXITED and c.exit_code is None:
            try:
                c = ContainerSummary.of(engine.containers.get(c.id))
            except NotFound:
                continue
        out.append(c)
    return out


def _status(c: ContainerSummary) -> str:
    from enginekit import ContainerState

    if c.state is ContainerState.CREATED:
        return "Created"
    if c.state is ContainerState.EXITED:
        return f"Exited ({c.exit_code})"
    return "Up (Paused)" if c.state is ContainerState.PAUSED else "Up"


def cmd_ps(args: argparse.Namespace) -> int:
    """What the engine's own list says (``summaries()``: one request), newest first."""
    filters = parse_filters(args.filter, ("label", "name", "status"))
    with connect(args) as engine:
        found = engine.containers.summaries(
            all=args.all or "status" in filters,
            name=filters.get("name"),
            labels=filters.get("label"),
            state=filters.get("status"),
        )
        if not args.quiet:
            found = _known(engine, found)
    found.sort(key=lambda c: c.created_at or _dt.datetime.min.replace(tzinfo=_dt.UTC), reverse=True)
    if args.json:
        print_json(found)
        return 0
    if args.quiet:
        for c in found:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    now = _dt.datetime.now(_dt.UTC)
    print_table(
        ("CONTAINER ID", "IMAGE", "CREATED", "STATUS", "PORTS", "NAMES"),
        (
            (
                c.id if args.no_trunc else c.short_id,
                c.image,
                ago(c.created_at, now),
                _status(c),
                ports_text(c),
                c.name,
            )
            for c in found
        ),
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from enginekit.errors import ContainerNotFound, InvalidSpec

    found: list[Container | Image] = []
    with connect(args) as engine:
        for ref in args.refs:
            if args.type != "image":
                try:
                    found.append(engine.containers.get(ref))
                    continue
                except (ContainerNotFound, InvalidSpec):
                    if args.type == "container":
                        raise
            try:
                found.append(engine.images.get(ref))
            except NotFound:
                raise NotFound(f"no container or image {ref!r}") from None
    if args.json:
        print_json(found, show_env=args.show_env)
        return 0
    from enginekit import Container as _Container

    for n, obj in enumerate(found):
        if n:
            print()
        if isinstance(obj, _Container):
            print_container(obj, show_env=args.show_env)
        else:
            print_image(obj)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        lines = engine.containers.stream_logs(args.container, follow=args.follow, tail=args.tail)
        try:
            _pump(lines, timestamps=args.timestamps)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = command_of(args.command)
    if command is None:
        raise UsageError("exec needs a command")
    with connect(args) as engine:
        result = engine.containers.exec(
            args.container,
            command,
            env=parse_pairs(args.env, "env", from_env=True) or None,
            workdir=args.workdir,
            user=args.user,
        )
    _write(sys.stdout, result.stdout)
    _write(sys.stderr, result.stderr)
    return result.exit_code


def _simple(method: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        with connect(args) as engine:
            action = getattr(engine.containers, method)
            if method in ("stop", "restart"):
                return each(args.containers, lambda ref: action(ref, timeout=args.time))
            if method == "kill":
                return each(args.containers, lambda ref: action(ref, args.signal))
            if method == "remove":
                return each(args.containers, lambda ref: action(ref, force=args.force))
            return each(args.containers, action)

    return handler


cmd_pause = _simple("pause")
cmd_unpause = _simple("unpause")
cmd_stop = _simple("stop")
cmd_restart = _simple("restart")
cmd_kill = _simple("kill")
cmd_rm = _simple("remove")


def cmd_wait(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        for ref in args.containers:
            print(engine.containers.wait(ref, timeout=args.timeout), flush=True)
    return 0


def _split_cp(arg: str) -> tuple[str | None, str]:
    head, sep, tail = arg.partition(":")
    if sep and head and "/" not in head and not arg.startswith("."):
        return head, tail
    return None, arg


def cmd_cp(args: argparse.Namespace) -> int:
    src_c, src = _split_cp(args.source)
    dst_c, dst = _split_cp(args.dest)
    if (src_c is None) == (dst_c is None):
        raise UsageError(
            "cp copies between a container and the host: one of SRC and DEST must be CONTAINER:PATH"
        )
    with connect(args) as engine:
        if src_c is not None:
            engine.containers.copy_from(src_c, src, dst)
        else:
            assert dst_c is not None
            engine.containers.copy_to(dst_c, src, dst)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    rows: list[tuple[Container, Any]] = []
    with connect(args) as engine:
        for ref in args.containers:
            c = engine.containers.get(ref)
            rows.append((c, engine.containers.stats(c)))
    if args.json:
        from ._format import jsonable

        print_json([{"id": c.id, "name": c.name, **jsonable(s)} for c, s in rows])
        return 0
    print_table(
        ("CONTAINER ID", "NAME", "CPU TIME", "MEM USAGE / LIMIT", "MEM %", "PIDS"),
        (
            (
                c.short_id,
                c.name,
                f"{s.cpu_seconds:.2f}s",
                f"{human_size(s.memory_bytes)} / {human_size(s.memory_limit)}",
                f"{100 * s.memory_bytes / s.memory_limit:.2f}%" if s.memory_limit else "-",
                "-" if s.pids is None else str(s.pids),
            )
            for c, s in rows
        ),
    )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label",))
    if not args.force and not args.json and sys.stdin.isatty():
        answer = input("This removes every exited container. Continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    with connect(args) as engine:
        removed = engine.containers.prune(labels=filters.get("label"))
    if args.json:
        print_json(removed)
    else:
        print("Deleted Containers:" if removed else "Nothing to remove")
        for cid in removed:
            print(cid)
    return 0
