"""Adapter discovery: installed distributions registering entry points.

An adapter registers, in group ``enginekit.adapters``, an entry point named
after the engine whose object is a callable::

    connect(address: str | None = None, **options) -> Driver

``address`` is the engine's own address with the ``NAME+`` prefix taken off
the URL (``docker+unix:///var/run/docker.sock`` -> ``unix:///var/run/docker.sock``,
``lxc:///var/lib/lxc`` -> ``/var/lib/lxc``), or None for the adapter's default
(which honours that engine's usual variables such as ``DOCKER_HOST``). The
callable must do no I/O: reachability is checked with ``Driver.ping()``.
Entry points are read once, lazily; an adapter is imported only when used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import EngineError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .driver import Driver

__all__ = ["GROUP", "adapter_names", "load_adapter"]

GROUP = "enginekit.adapters"

# Built-in adapters first in this order when choosing the first reachable one.
_PREFERRED = ("docker", "podman", "lxc")

_lock = threading.Lock()
_cache: dict[str, EntryPoint] | None = None


def _entry_points() -> dict[str, EntryPoint]:
    global _cache
    with _lock:
        if _cache is None:
            from importlib.metadata import entry_points  # costly: only when needed

            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=GROUP):
                found.setdefault(ep.name, ep)
            _cache = found
        return _cache


def adapter_names() -> list[str]:
    """Installed adapters: the built-in ones in preferred order, then the rest sorted."""
    names = set(_entry_points())
    return [n for n in _PREFERRED if n in names] + sorted(names - set(_PREFERRED))


def distribution_of(name: str) -> str | None:
    ep = _entry_points().get(name)
    dist = getattr(ep, "dist", None) if ep is not None else None
    return getattr(dist, "name", None)


def load_adapter(name: str) -> Callable[..., Driver]:
    """The connect callable of adapter ``name``; ``EngineError`` if not installed."""
    ep = _entry_points().get(name)
    if ep is None:
        installed = ", ".join(adapter_names()) or "none"
        raise EngineError(
            f"no enginekit adapter named {name!r} is installed (installed: {installed}); "
            f"install enginekit-{name}"
        )
    obj: Any = ep.load()
    if not callable(obj):
        raise EngineError(f"adapter {name!r}: entry point {ep.value!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _reset_cache() -> None:
    """For tests that install adapters at run time."""
    global _cache
    with _lock:
        _cache = None
