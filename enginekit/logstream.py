"""The iterator ``containers.stream_logs`` returns: the error contract over a
driver's log iterator, closable."""

from __future__ import annotations

from collections.abc import Iterator

from ._guard import _guard
from .models import LogLine

__all__ = ["_GuardedIterator"]


class _GuardedIterator(Iterator[LogLine]):
    """Applies the error contract to a driver's log iterator; closable."""

    def __init__(self, inner: Iterator[LogLine]) -> None:
        self._inner = inner

    def __iter__(self) -> _GuardedIterator:
        return self

    @_guard
    def __next__(self) -> LogLine:
        return next(self._inner)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> _GuardedIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
