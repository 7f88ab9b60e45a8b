"""``enginekit compare``: one container on several engines, what each saw, side by side."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
import uuid
from typing import Any

import enginekit
from enginekit.errors import Conflict, EngineError, EngineUnavailable, NotFound

from ._app import UsageError
from ._args import command_of, parse_pairs

__all__ = ["COMPARED", "compare"]

#: The fields that must agree; timings are shown but never compared.
COMPARED = ("state", "exit code", "stdout", "stderr", "error")
LABEL = "enginekit.compare"
_MAX_LINES = 20


def _chosen(args: argparse.Namespace) -> list[str]:
    names = list(dict.fromkeys(args.compare_engines))
    if not names and args.engine:
        names = [args.engine]
    if not names:
        statuses = enginekit.engines()
        names = [s.name for s in statuses if s.reachable]
        if not names:
            why = "; ".join(f"{s.name}: {s.reason}" for s in statuses) or "no adapter installed"
            raise EngineUnavailable(f"no engine is reachable to compare ({why})")
    return names


def _image_ref(ref: str) -> str:
    """The name a build is tagged with, as the engines show it (``app`` -> ``app:latest``)."""
    return enginekit.Reference.parse(ref).familiar


def _one(name: str, args: argparse.Namespace, run_id: str, index: int) -> dict[str, Any]:
    """Build (if asked), run and collect on engine ``name``; remove all it made."""
    labels = {LABEL: run_id}
    seen: dict[str, Any] = {}
    image = _image_ref(args.image) if args.build else args.image
    built = False
    try:
        with enginekit.connect(name) as engine:
            try:
                if args.build:
                    if engine.images.exists(image):
                        raise Conflict(
                            f"image {image} already exists on {name}; compare --build removes "
                            "what it builds, so give a tag that is not in use"
                        )
                    t0 = time.perf_counter()
                    engine.images.build(args.build, dockerfile=args.file, tag=image, labels=labels)
                    built = True
                    seen["build time"] = time.perf_counter() - t0
                spec: dict[str, Any] = {"labels": labels, "name": f"ekcmp-{run_id}-{index}"}
                env = parse_pairs(args.env, "env", from_env=True)
                if env:
                    spec["env"] = env
                if args.workdir:
                    spec["workdir"] = args.workdir
                if args.user:
                    spec["user"] = args.user
                t0 = time.perf_counter()
                c = engine.containers.run(image, command_of(args.command), **spec)
                engine.containers.wait(c, timeout=args.timeout)
                seen["run time"] = time.perf_counter() - t0
                c = engine.containers.get(c)
                seen["state"] = c.state.name
                seen["exit code"] = c.exit_code
                seen["stdout"] = engine.containers.logs(c, stderr=False)
                seen["stderr"] = engine.containers.logs(c, stdout=False)
            finally:
                for leftover in engine.containers.list(all=True, labels=labels):
                    with contextlib.suppress(NotFound):
                        engine.containers.remove(leftover, force=True)
                if built:
                    with contextlib.suppress(NotFound):
                        engine.images.remove(image, force=True)
    except EngineError as exc:
        seen["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return seen


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}s"
    if isinstance(value, bytes):
        if not value:
            return "(empty)"
        text = value.decode("utf-8", "backslashreplace")
        if not text.endswith("\n"):
            text += " [no newline at end]"
        return text.removesuffix("\n")
    return str(value)


def _fit(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 1)] + "…"


def _render(names: list[str], results: dict[str, dict[str, Any]], differ: list[str]) -> None:
    tty = sys.stdout.isatty()
    red, dim, bold, reset = ("\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m") if tty else ("",) * 4
    fields = [
        f for f in (*COMPARED, "build time", "run time") if any(f in r for r in results.values())
    ]
    label_w = max(len(f) for f in fields) + 4
    cells = {f: {n: _text(results[n].get(f)).split("\n") for n in names} for f in fields}
    for f in fields:
        for n in names:
            lines = cells[f][n]
            if tty and len(lines) > _MAX_LINES:
                cells[f][n] = [*lines[:_MAX_LINES], f"… {len(lines) - _MAX_LINES} more lines"]
    natural = {
        n: max([len(n), *(len(line) for f in fields for line in cells[f][n])]) for n in names
    }
    col_w: int | None = None
    widths = natural
    if tty:
        total = shutil.get_terminal_size((120, 24)).columns
        col_w = max((total - label_w) // len(names) - 2, 12)
        widths = {n: min(col_w, natural[n]) for n in names}
    sys.stdout.write(
        " " * label_w + "  ".join(bold + n.ljust(widths[n]) + reset for n in names).rstrip() + "\n"
    )
    for f in fields:
        mark = "≠ " if f in differ else "  "
        colour = red if f in differ else (dim if f.endswith("time") else "")
        height = max(len(cells[f][n]) for n in names)
        for i in range(height):
            label = (mark + f) if i == 0 else ""
            parts = []
            for n in names:
                line = cells[f][n][i] if i < len(cells[f][n]) else ""
                parts.append(
                    colour + _fit(line, col_w).ljust(widths[n]) + (reset if colour else "")
                )
            sys.stdout.write(label.ljust(label_w) + "  ".join(parts).rstrip() + "\n")
    if differ:
        sys.stdout.write(f"{red}engines differ in: {', '.join(differ)}{reset}\n")
    else:
        sys.stdout.write(f"all {len(names)} engines agree ({', '.join(names)})\n")


def compare(args: argparse.Namespace) -> int:
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    names = _chosen(args)
    run_id = uuid.uuid4().hex[:12]
    results: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        if not args.json:
            sys.stderr.write(f"running on {name}...\n")
            sys.stderr.flush()
        results[name] = _one(name, args, run_id, index)
    differ = [
        f
        for f in COMPARED
        # An error is never agreement, even when every engine fails alike.
        if len({repr(results[n].get(f)) for n in names}) > 1
        or (f == "error" and any("error" in r for r in results.values()))
    ]
    if args.json:
        from ._format import print_json

        print_json({"engines": results, "same": not differ, "differences": differ})
    else:
        _render(names, results, differ)
    return 1 if differ else 0
