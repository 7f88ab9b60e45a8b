"""Command-line arguments into the API's: ``KEY=VALUE`` pairs, filters, ports,
a container's spec, the engine to connect to."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._app import UsageError

if TYPE_CHECKING:
    from enginekit import Engine

__all__ = [
    "command_of",
    "connect",
    "container_spec",
    "parse_filters",
    "parse_pairs",
    "parse_ports",
]


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


def container_spec(args: argparse.Namespace) -> tuple[str, list[str] | None, dict[str, Any]]:
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
    command = command_of(args.command)
    return args.image, command, spec


def command_of(words: Sequence[str]) -> list[str] | None:
    argv = list(words)
    if argv and argv[0] == "--":
        argv = argv[1:]
    return argv or None


def connect(args: argparse.Namespace) -> Engine:
    """The engine ``--engine`` names (or the one configured or found)."""
    import enginekit

    return enginekit.connect(getattr(args, "engine", None))
