"""The contract suite's tests, to be imported into a test module of your own.

``from enginekit.testing.suite import *`` brings every ``Test*`` class of
every ``test_*`` module of this package into the importing module, where
pytest collects them (as SQLAlchemy's dialect suite is used). The classes use
the plugin's fixtures (``engine``, ``labels``, ``base_image``, ...), so they
run once per engine chosen with ``--engine``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__all__: list[str] = []


def _collect() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for attr, value in vars(module).items():
            if (
                attr.startswith("Test")
                and isinstance(value, type)
                and value.__module__ == module.__name__
            ):
                if attr in found:
                    raise ImportError(
                        f"enginekit.testing.suite: two test classes named {attr} "
                        f"({found[attr].__module__} and {module.__name__})"
                    )
                found[attr] = value
    return found


globals().update(_collect())
__all__ += sorted(name for name in globals() if name.startswith("Test"))
