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

#: The commands of each module of this package (``cmd_NAME`` runs ``NAME``).
_MODULES = {
    "_engines": "engines version",
    "_images": "build images image pull push rmi",
    "_containers": "run create start ps inspect logs exec pause unpause stop restart kill rm "
    "wait cp stats prune",
}

#: Command name -> (module of this package, function in it).
HANDLERS: dict[str, tuple[str, str]] = {
    **{
        name: (module, f"cmd_{name}")
        for module, names in _MODULES.items()
        for name in names.split()
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
