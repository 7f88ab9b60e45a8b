"""The ``enginekit`` subcommands, each on the public :class:`~enginekit.Engine` API.

Each command's module is imported only when that command runs: ``_engines``
(``engines``, ``version``), ``_images`` (the image commands), ``_containers``
(the container commands), ``_compare``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

__all__ = ["HANDLERS", "dispatch", "handler_of"]

Handler = Callable[[argparse.Namespace], int]

#: Command name -> (module of this package, function in it).
HANDLERS: dict[str, tuple[str, str]] = {
    "engines": ("_engines", "cmd_engines"),
    "version": ("_engines", "cmd_version"),
    **{
        name: ("_images", f"cmd_{name}")
        for name in ("build", "images", "image", "rmi", "pull", "push")
    },
    **{
        name: ("_containers", f"cmd_{name}")
        for name in (
            "run",
            "create",
            "start",
            "ps",
            "inspect",
            "logs",
            "exec",
            "pause",
            "unpause",
            "stop",
            "restart",
            "kill",
            "rm",
            "wait",
            "cp",
            "stats",
            "prune",
        )
    },
    "compare": ("_compare", "compare"),
}


def handler_of(command: str) -> Handler:
    """The function that runs ``command`` (its module imported now)."""
    module, name = HANDLERS[command]
    handler: Handler = getattr(importlib.import_module(f".{module}", __package__), name)
    return handler


def dispatch(args: argparse.Namespace) -> int:
    return handler_of(args.command_name)(args)
