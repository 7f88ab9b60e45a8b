"""The models a driver takes and returns (``enginekit.models``): frozen attrs
classes, aware UTC datetimes, frozen mappings (:class:`FrozenDict`)."""

from __future__ import annotations

from enginekit.models import *  # noqa: F403
from enginekit.models import __all__ as _names

__all__ = list(_names)
