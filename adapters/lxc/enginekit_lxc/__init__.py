"""enginekit adapter for LXC 5 to 7: application containers with the lxc-* tools.

``connect(address=None, **options)`` returns the :class:`~enginekit_lxc.driver.LxcDriver`
(no I/O happens until a method is called). ``address`` is the LXC path where
the LXC containers live (``lxc:///var/lib/lxc`` -> ``/var/lib/lxc``); options:
``storage_root`` (default ``/var/lib/enginekit/lxc``).

``lxc+ssh://[user@]host[:port][/lxcpath]`` (an address ``ssh://...``) is the
LXC of another host, through an agent the adapter brings there
(:class:`~enginekit_lxc.remote.RemoteLxcDriver`); options ``identity``,
``connect_timeout`` and ``ssh_config`` then go to ssh.

Importing the package imports nothing else (not even ``typing``): LXC's
start-host hook imports :mod:`enginekit_lxc.cgroups` through it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["connect"]


def connect(address: str | None = None, **options: Any) -> Any:
    """The LXC driver for ``address`` (an LXC path, or ``ssh://...`` for another
    host), without doing any I/O."""
    if address is not None and address.lower().startswith(("ssh://", "lxc+ssh://")):
        from .remote import RemoteLxcDriver

        return RemoteLxcDriver(address, **options)
    from .driver import LxcDriver

    return LxcDriver(address, **options)
