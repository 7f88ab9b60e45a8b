"""The ``enginekit`` subcommands, each on the public :class:`~enginekit.Engine` API."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import enginekit
from enginekit.errors import EngineError, NotFound

from ._app import UsageError
from ._format import ago, duration, human_size, print_json, print_table, quote_command

if TYPE_CHECKING:
    from enginekit import Container, Engine, Image, LogLine

__all__ = ["dispatch", "parse_filters", "parse_pairs", "parse_ports"]

Handler = Callable[[argparse.Namespace], int]


# -- argument helpers ----------------------------------------------------------
def parse_pairs(items: Sequence[str], what: str, *, from_env: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` items; a bare ``KEY`` is ``""`` (labels) or, with
    ``from_env``, our own value of that variable (left out when we have none)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"{what} {item.split('=', 1)[0]!r} needs a name: KEY=VALUE")
        if eq:
            out[key] = value
        elif from_env:
            if key in os.environ:
                out[key] = os.environ[key]
        else:
            out[key] = ""
    return out


def parse_filters(items: Sequence[str], allowed: Sequence[str]) -> dict[str, Any]:
    """``--filter`` values: ``label`` (repeatable: a dict), others single values."""
    labels: dict[str, str | None] = {}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise UsageError(f"bad filter {item!r}: use {', '.join(k + '=...' for k in allowed)}")
        if key == "label":
            lkey, leq, lvalue = value.partition("=")
            labels[lkey] = lvalue if leq else None
        else:
            out[key] = value
    if labels:
        out["label"] = labels
    return out


def parse_ports(items: Sequence[str]) -> dict[str, tuple[str | None, int | None]]:
    """``-p`` as docker takes it: ``PORT``, ``HOST:PORT``, ``IP:HOST:PORT``,
    ``IP::PORT``, each with an optional ``/tcp`` or ``/udp``. Without an IP the
    host side is None: the engine's published address (127.0.0.1 for an engine
    on this machine, the engine host's address for a remote one)."""
    out: dict[str, tuple[str | None, int | None]] = {}
    for item in items:
        spec, _, proto = item.partition("/")
        parts = spec.rsplit(":", 2) if spec.count(":") <= 2 else []
        ip: str | None = None
        host = ""
        if len(parts) == 1:
            cport = parts[0]
        elif len(parts) == 2:
            host, cport = parts
        elif len(parts) == 3:
            given, host, cport = parts
            ip = given.strip("[]") or None
        else:
            raise UsageError(f"bad port {item!r}: use [IP:][HOSTPORT:]PORT[/tcp|udp]")
        if not cport.isdigit() or (host and not host.isdigit()):
            raise UsageError(f"bad port {item!r}: use [IP:][HOSTPORT:]PORT[/tcp|udp]")
        out[f"{cport}/{proto or 'tcp'}"] = (ip, int(host) if host else None)
    return out


def _spec(args: argparse.Namespace) -> tuple[str, list[str] | None, dict[str, Any]]:
    spec: dict[str, Any] = {}
    if args.name:
        spec["name"] = args.name
    env = parse_pairs(args.env, "env", from_env=True)
    if env:
        spec["env"] = env
    labels = parse_pairs(args.label, "label")
    if labels:
        spec["labels"] = labels
    for key in ("workdir", "user", "hostname", "network", "stop_signal", "cpus", "pids_limit"):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    if args.memory is not None:
        spec["memory"] = args.memory
    if args.entrypoint is not None:
        spec["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    if args.publish:
        spec["ports"] = parse_ports(args.publish)
    if args.volume:
        mounts = []
        for item in args.volume:
            src, sep, rest = item.partition(":")
            if not sep:
                raise UsageError(f"bad volume {item!r}: use SRC:DST[:ro]")
            mounts.append(f"{os.path.abspath(src)}:{rest}")
        spec["mounts"] = mounts
    command = _command_of(args.command)
    return args.image, command, spec


def _command_of(words: Sequence[str]) -> list[str] | None:
    argv = list(words)
    if argv and argv[0] == "--":
        argv = argv[1:]
    return argv or None


def _connect(args: argparse.Namespace) -> Engine:
    return enginekit.connect(getattr(args, "engine", None))


# -- engines ---------------------------------------------------------------------
def _capabilities_text(names: set[str], every: set[str]) -> str:
    if names == every:
        return "all"
    missing = sorted(every - names)
    if len(missing) <= len(names):
        return "all but " + ", ".join(missing)
    return ", ".join(sorted(names))


def cmd_engines(args: argparse.Namespace) -> int:
    from enginekit.capabilities import ALL_CAPABILITIES

    from ._format import jsonable

    every = {c.value for c in ALL_CAPABILITIES}
    targets = list(getattr(args, "targets", None) or [])
    if not targets and getattr(args, "engine", None):
        targets = [args.engine]
    rows: list[dict[str, Any]] = []
    for status in enginekit.engines(*targets):
        info = status.info
        rows.append(
            {
                "name": status.name,
                "reachable": status.reachable,
                "address": status.address,
                "version": status.version,
                "api_version": info.api_version if info else None,
                "cgroup_version": info.cgroup_version if info else None,
                "rootless": info.rootless if info else None,
                "image_store": (info.image_store or None) if info else None,
                "reason": status.reason,
                "distribution": status.distribution,
                "capabilities": sorted(c.value for c in status.capabilities),
                "unsupported": {k.value: v for k, v in sorted(status.unsupported.items())},
                "info": jsonable(info) if info else None,
            }
        )
    from ._endpoints import endpoint_rows, print_endpoints

    named = endpoint_rows(targets)
    for i, row in enumerate(rows):
        by_name = not targets or "://" not in targets[i]
        row["endpoints"] = [e for e in named if by_name and e["engine"] == row["name"]]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no enginekit adapter is installed (pip install enginekit-docker)")
        return 0

    def dash(value: object) -> str:
        if value is None or value == "":
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    print_table(
        (
            "NAME",
            "REACHABLE",
            "VERSION",
            "API",
            "CGROUP",
            "ROOTLESS",
            "STORE",
            "ADDRESS",
            "CAPABILITIES",
            "REASON",
        ),
        (
            (
                r["name"],
                "yes" if r["reachable"] else "no",
                dash(r["version"]),
                dash(r["api_version"]),
                "v" + str(r["cgroup_version"]) if r["cgroup_version"] else "-",
                dash(r["rootless"]),
                dash(r["image_store"]),
                r["address"] or "-",
                _capabilities_text(set(r["capabilities"]), every) if r["capabilities"] else "-",
                " ".join((r["reason"] or "").split()),
            )
            for r in rows
        ),
    )
    for r in rows:
        for cap, why in r["unsupported"].items():
            print(f"  {r['name']}: no {cap}: {' '.join(why.split())}")
    print_endpoints(named)
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        info = engine.info()
        if args.json:
            from ._format import jsonable

            print_json(
                {
                    "enginekit": enginekit.__version__,
                    "engine": jsonable(info),
                    "address": engine.address,
                }
            )
            return 0
        _kv(
            [
                ("enginekit", enginekit.__version__),
                ("engine", info.name),
                ("version", info.version),
                ("api version", info.api_version or "-"),
                ("address", engine.address),
                ("os/arch", f"{info.os}/{info.arch}"),
                ("storage", info.storage_root or "-"),
            ]
        )
    return 0


# -- images ----------------------------------------------------------------------
# Build output lines that stay on screen; the rest share one rewritten line.
_KEPT = ("Step ", "STEP ", "[", "Successfully ")


def _columns(stream: Any) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 100


class _Progress:
    """Build output as it happens: every line on a pipe; on a terminal, step
    headers stay and a step's own output shows on one line that is rewritten."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.pending = False

    def __call__(self, line: str) -> None:
        text = line.rstrip("\n")
        if not self.tty:
            self.stream.write(text + "\n")
        elif text.startswith(_KEPT):
            self._clear()
            self.stream.write(text + "\n")
        else:
            width = max(_columns(self.stream) - 4, 20)
            shown = text.replace("\r", " ").replace("\t", " ")
            shown = shown if len(shown) <= width else shown[: width - 1] + "…"
            self.stream.write("\r\x1b[K  \x1b[2m" + shown + "\x1b[0m")
            self.pending = True
        self.stream.flush()

    def _clear(self) -> None:
        if self.pending:
            self.stream.write("\r\x1b[K")
            self.pending = False

    def done(self) -> None:
        self._clear()
        self.stream.flush()


def cmd_build(args: argparse.Namespace) -> int:
    progress = None if args.quiet else _Progress(sys.stderr)
    with _connect(args) as engine:
        try:
            image = engine.images.build(
                args.context,
                dockerfile=args.file,
                tags=list(args.tag),
                build_args=parse_pairs(args.build_arg, "build-arg"),
                labels=parse_pairs(args.label, "label"),
                target=args.target,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.done()
    if args.json:
        print_json(image)
    else:
        print(image.id)
    return 0


def _image_rows(images: Sequence[Image]) -> Iterator[tuple[str, ...]]:
    for img in images:
        created = ago(img.created)
        for tag in img.tags or ("<none>:<none>",):
            repo, _, t = tag.rpartition(":")
            yield (repo, t, img.short_id, created, human_size(img.size))


def cmd_images(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label",))
    with _connect(args) as engine:
        images = engine.images.list(name=args.name, labels=filters.get("label"))
    images.sort(key=lambda i: i.created or _dt.datetime.min.replace(tzinfo=_dt.UTC), reverse=True)
    if args.json:
        print_json(images)
    elif args.quiet:
        for img in images:
            print(img.short_id)
    else:
        print_table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), _image_rows(images))
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        return _each(
            args.images,
            lambda ref: engine.images.remove(ref, force=args.force),
            done="Untagged/deleted: {}",
        )


def cmd_image(args: argparse.Namespace) -> int:
    sub = args.image_command
    if sub in ("rm", "remove"):
        return cmd_rmi(args)
    if sub in ("ls", "list"):
        return cmd_images(args)
    with _connect(args) as engine:
        if sub == "save":
            engine.images.save(args.image, args.output)
            return 0
        if sub == "load":
            loaded = engine.images.load(args.input)
            if args.json:
                print_json(loaded)
            else:
                for img in loaded:
                    print(f"Loaded image: {', '.join(img.tags) or img.id}")
            return 0
        if sub == "tag":
            engine.images.tag(args.source, args.target)
            return 0
        if sub == "inspect":
            images = [engine.images.get(ref) for ref in args.images]
            if args.json:
                print_json(images)
            else:
                for n, img in enumerate(images):
                    if n:
                        print()
                    _print_image(img)
            return 0
    raise UsageError(f"unknown image command {sub!r}")  # pragma: no cover


def cmd_pull(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        print(engine.images.pull(args.image).id)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        engine.images.push(args.image)
    return 0


def _each(refs: Sequence[str], action: Callable[[str], object], *, done: str = "{}") -> int:
    """Apply ``action`` to every ref (as docker does: go on after a failure);
    the exit code is the first failure's."""
    from ._app import _error, exit_code_for

    code = 0
    for ref in refs:
        try:
            action(ref)
        except EngineError as exc:
            _error(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            code = code or exit_code_for(exc)
        else:
            print(done.format(ref))
    return code


# -- containers --------------------------------------------------------------------
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
        lines = engine.containers.stream_logs(container, follow=True)
        try:
            _pump(lines)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
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
    image, command, spec = _spec(args)
    with _connect(args) as engine:
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
    image, command, spec = _spec(args)
    with _connect(args) as engine:
        print(engine.containers.create(image, command, **spec).id)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        if args.attach:
            if len(args.containers) != 1:
                raise UsageError("start -a takes one container")
            c = engine.containers.start(args.containers[0])
            return _attach(engine, c, remove=False)
        return _each(args.containers, engine.containers.start)


def _fresh(engine: Engine, found: Sequence[Container]) -> list[Container]:
    out = []
    for c in found:
        with contextlib.suppress(NotFound):
            out.append(engine.containers.get(c))
    return out


def _status(c: Container, now: _dt.datetime) -> str:
    from enginekit import ContainerState

    if c.state is ContainerState.CREATED:
        return "Created"
    if c.state is ContainerState.EXITED:
        return f"Exited ({c.exit_code}) {ago(c.finished_at, now)}"
    up = "Up " + duration((now - c.started_at).total_seconds()) if c.started_at else "Up"
    return up + " (Paused)" if c.state is ContainerState.PAUSED else up


def _ports(c: Container) -> str:
    return ", ".join(
        f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.protocol}"
        if p.host_port
        else f"{p.container_port}/{p.protocol}"
        for p in c.ports
    )


def cmd_ps(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label", "name", "status"))
    with _connect(args) as engine:
        found = engine.containers.list(
            all=args.all or "status" in filters,
            name=filters.get("name"),
            labels=filters.get("label"),
            state=filters.get("status"),
        )
        if not args.quiet:
            # A listing may be a sparse snapshot on some engines: show full ones.
            found = _fresh(engine, found)
    found.sort(key=lambda c: c.created_at or _dt.datetime.min.replace(tzinfo=_dt.UTC), reverse=True)
    if args.json:
        print_json(found)
        return 0
    if args.quiet:
        for c in found:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    now = _dt.datetime.now(_dt.UTC)
    width = None if args.no_trunc else 20
    print_table(
        ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"),
        (
            (
                c.id if args.no_trunc else c.short_id,
                c.image,
                quote_command([*c.entrypoint, *c.command], width),
                ago(c.created_at, now),
                _status(c, now),
                _ports(c),
                c.name,
            )
            for c in found
        ),
    )
    return 0


def _kv(rows: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def _fmt_time(t: _dt.datetime | None) -> str:
    return t.isoformat().replace("+00:00", "Z") if t is not None else "-"


def _pairs(mapping: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "-"


def _print_container(c: Container, *, show_env: bool) -> None:
    from ._format import HIDDEN

    env = {k: (v if show_env else HIDDEN) for k, v in c.env.items()}
    r = c.resources
    _kv(
        [
            ("id", c.id),
            ("name", c.name),
            ("engine", c.engine),
            ("image", f"{c.image} ({c.image_id or '-'})"),
            ("state", c.state.name + (" (OOM-killed)" if c.oom_killed else "")),
            ("exit code", "-" if c.exit_code is None else c.exit_code),
            ("created", _fmt_time(c.created_at)),
            ("started", _fmt_time(c.started_at)),
            ("finished", _fmt_time(c.finished_at)),
            ("pid", c.pid or "-"),
            ("entrypoint", quote_command(c.entrypoint, None) if c.entrypoint else "-"),
            ("command", quote_command(c.command, None) if c.command else "-"),
            ("workdir", c.workdir or "-"),
            ("user", c.user or "-"),
            ("hostname", c.hostname or "-"),
            ("network", c.network),
            ("labels", _pairs(c.labels)),
            ("env", _pairs(env)),
            ("ports", _ports(c) or "-"),
            (
                "mounts",
                ", ".join(f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in c.mounts)
                or "-",
            ),
            ("memory", human_size(r.memory) if r.memory else "-"),
            ("cpus", r.cpus if r.cpus else "-"),
            ("pids limit", r.pids_limit or "-"),
            ("stop signal", c.stop_signal or "-"),
        ]
    )


def _print_image(img: Image) -> None:
    cfg = img.config
    _kv(
        [
            ("id", img.id),
            ("engine", img.engine),
            ("tags", ", ".join(img.tags) or "-"),
            ("created", _fmt_time(img.created)),
            ("size", f"{human_size(img.size)} ({img.size} bytes)"),
            ("os/arch", f"{img.os or '-'}/{img.architecture or '-'}"),
            ("labels", _pairs(img.labels)),
            ("entrypoint", quote_command(cfg.entrypoint, None) if cfg.entrypoint else "-"),
            ("cmd", quote_command(cfg.cmd, None) if cfg.cmd else "-"),
            ("workdir", cfg.workdir or "-"),
            ("user", cfg.user or "-"),
            ("env", ", ".join(cfg.env) or "-"),
            ("exposed ports", ", ".join(cfg.exposed_ports) or "-"),
        ]
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    from enginekit.errors import ContainerNotFound, InvalidSpec

    found: list[Container | Image] = []
    with _connect(args) as engine:
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
            _print_container(obj, show_env=args.show_env)
        else:
            _print_image(obj)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
        lines = engine.containers.stream_logs(args.container, follow=args.follow, tail=args.tail)
        try:
            _pump(lines, timestamps=args.timestamps)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = _command_of(args.command)
    if command is None:
        raise UsageError("exec needs a command")
    with _connect(args) as engine:
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


def _simple(method: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        with _connect(args) as engine:
            action = getattr(engine.containers, method)
            if method in ("stop", "restart"):
                return _each(args.containers, lambda ref: action(ref, timeout=args.time))
            if method == "kill":
                return _each(args.containers, lambda ref: action(ref, args.signal))
            if method == "remove":
                return _each(args.containers, lambda ref: action(ref, force=args.force))
            return _each(args.containers, action)

    return handler


def cmd_wait(args: argparse.Namespace) -> int:
    with _connect(args) as engine:
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
    with _connect(args) as engine:
        if src_c is not None:
            engine.containers.copy_from(src_c, src, dst)
        else:
            assert dst_c is not None
            engine.containers.copy_to(dst_c, src, dst)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    rows: list[tuple[Container, Any]] = []
    with _connect(args) as engine:
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
    with _connect(args) as engine:
        removed = engine.containers.prune(labels=filters.get("label"))
    if args.json:
        print_json(removed)
    else:
        print("Deleted Containers:" if removed else "Nothing to remove")
        for cid in removed:
            print(cid)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ._compare import compare

    return compare(args)


HANDLERS: dict[str, Handler] = {
    "engines": cmd_engines,
    "version": cmd_version,
    "build": cmd_build,
    "images": cmd_images,
    "image": cmd_image,
    "rmi": cmd_rmi,
    "pull": cmd_pull,
    "push": cmd_push,
    "run": cmd_run,
    "create": cmd_create,
    "start": cmd_start,
    "ps": cmd_ps,
    "inspect": cmd_inspect,
    "logs": cmd_logs,
    "exec": cmd_exec,
    "pause": _simple("pause"),
    "unpause": _simple("unpause"),
    "stop": _simple("stop"),
    "restart": _simple("restart"),
    "kill": _simple("kill"),
    "rm": _simple("remove"),
    "wait": cmd_wait,
    "cp": cmd_cp,
    "stats": cmd_stats,
    "prune": cmd_prune,
    "compare": cmd_compare,
}


def dispatch(args: argparse.Namespace) -> int:
    return HANDLERS[args.command_name](args)
