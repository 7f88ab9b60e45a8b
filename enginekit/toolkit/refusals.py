"""How every engine words what it refused (``enginekit.refusals``): a start for a
missing user, group or working directory, a host port in use; an adapter
recognises its engine's words and raises these."""

from __future__ import annotations

from enginekit.refusals import *  # noqa: F403
from enginekit.refusals import __all__ as _names

__all__ = list(_names)
