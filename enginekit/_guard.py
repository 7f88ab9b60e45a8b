"""The error contract's last line, applied to every public method of the facade."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .errors import EngineError

__all__ = ["_guard"]

P = ParamSpec("P")
R = TypeVar("R")


def _guard(method: Callable[P, R]) -> Callable[P, R]:
    """The error contract's last line: only ``EngineError`` leaves the facade.

    Adapters translate their engine's exceptions; anything that still slips
    through becomes an ``EngineError`` whose message names the operation only
    (the original, which may quote input, stays as ``__cause__``).
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (EngineError, StopIteration, GeneratorExit):
            raise
        except Exception as exc:
            raise EngineError(f"unexpected {type(exc).__name__} in {method.__qualname__}") from exc

    return wrapper
