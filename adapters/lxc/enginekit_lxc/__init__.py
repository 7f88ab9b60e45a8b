"""enginekit adapter for LXC 5: application containers with the lxc-* tools.

``connect(address=None, **options)`` returns the :class:`~enginekit_lxc.driver.LxcDriver`
(no I/O happens until a method is called). ``address`` is the LXC path where
the LXC containers live (``lxc:///var/lib/lxc`` -> ``/var/lib/lxc``); options:
``storage_root`` (default ``/var/lib/enginekit/lxc``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["connect"]


def connect(address: str | None = None, **options: Any) -> Any:
    """The LXC driver for ``address`` (an LXC path), without doing any I/O."""
    from .driver import LxcDriver

    return LxcDriver(address, **options)
