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

Reading them is part of every command's start-up, and ``importlib.metadata``
alone takes longer to import than the rest of a command's own work: the
distributions on ``sys.path`` are read here directly, as ``importlib.metadata``
finds them (``*.dist-info`` and ``*.egg-info`` folders, the first distribution
of a name winning, the first entry point of a name winning). When
``importlib.metadata`` could find distributions this reading does not see (a
zip file on ``sys.path``, an import hook that finds distributions of its own),
it is asked instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import EngineError

if TYPE_CHECKING:
    from .driver import Driver

__all__ = ["GROUP", "adapter_names", "distribution_of", "load_adapter"]

GROUP = "enginekit.adapters"

# Built-in adapters first in this order when choosing the first reachable one.
_PREFERRED = ("docker", "podman", "lxc")


class _Entry:
    """One entry point of the group: ``name = module:attr`` of a distribution."""

    __slots__ = ("_dist_name", "_meta", "name", "value")

    def __init__(
        self, name: str, value: str, *, meta: str | None = None, dist_name: str | None = None
    ) -> None:
        self.name = name
        self.value = value
        self._meta = meta  # the distribution's metadata folder, its name read when asked
        self._dist_name = dist_name

    @property
    def dist_name(self) -> str | None:
        if self._dist_name is None and self._meta is not None:
            self._dist_name = _metadata_name(self._meta)
        return self._dist_name

    def load(self) -> Any:
        """The object named, as ``importlib.metadata.EntryPoint.load`` finds it."""
        target = self.value.split("[", 1)[0].strip()  # extras ([...]) name no object
        module, _, attrs = target.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, part)
        return obj


_lock = threading.Lock()
_cache: dict[str, _Entry] | None = None


def _normalize(name: str) -> str:
    """A distribution name as ``importlib.metadata`` compares them (PEP 503, ``_``)."""
    out: list[str] = []
    for ch in name.lower():
        if ch in "-_.":
            if not out or out[-1] != "_":
                out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _metadata_name(meta: str) -> str | None:
    """The ``Name:`` of a distribution's ``METADATA`` (or an egg's ``PKG-INFO``)."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta, filename), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break  # end of the headers
                    key, sep, value = line.partition(":")
                    if sep and key.strip().lower() == "name":
                        return value.strip() or None
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _sections(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``name = value`` pairs of section ``[group]`` of an ``entry_points.txt``."""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line.strip("[]") == group
            continue
        name, eq, value = line.partition("=")
        if inside and eq:
            yield name.strip(), value.strip()


def _read_entry_points(path: list[Any]) -> list[_Entry] | None:
    """The group's entry points of the distributions in the folders of ``path``, in
    ``importlib.metadata``'s order; None when only it can tell."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return None  # a hook of its own may find distributions
    seen: set[str] = set()
    found: list[_Entry] = []
    for entry in path:
        try:
            root = os.fsdecode(entry) or "."
            children = os.listdir(root)
        except NotADirectoryError:
            return None  # a zip file: importlib.metadata reads inside it
        except (OSError, TypeError, ValueError):
            continue
        # Grouped by name in the order first seen, as importlib.metadata's lookup does.
        by_name: dict[str, list[str]] = {}
        egg = os.path.basename(root).lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                name = _normalize(low.rpartition(".")[0].partition("-")[0])
                by_name.setdefault(name, []).append(child)
            elif egg and low == "egg-info":
                return None  # an unpacked egg: its naming rules are importlib.metadata's
        for name, metas in by_name.items():
            for child in metas:
                if name in seen:
                    continue
                seen.add(name)
                meta = os.path.join(root, child)
                try:
                    with open(os.path.join(meta, "entry_points.txt"), encoding="utf-8") as fh:
                        text = fh.read()
                except (OSError, UnicodeDecodeError):
                    continue
                found.extend(_Entry(n, v, meta=meta) for n, v in _sections(text, GROUP))
    return found


def _from_importlib() -> list[_Entry]:
    from importlib.metadata import entry_points

    return [
        _Entry(ep.name, ep.value, dist_name=getattr(getattr(ep, "dist", None), "name", None))
        for ep in entry_points(group=GROUP)
    ]


def _entry_points() -> dict[str, _Entry]:
    global _cache
    with _lock:
        if _cache is None:
            entries = _read_entry_points(list(sys.path))
            if entries is None:
                entries = _from_importlib()
            found: dict[str, _Entry] = {}
            for ep in entries:
                found.setdefault(ep.name, ep)
            _cache = found
        return _cache


def adapter_names() -> list[str]:
    """Installed adapters: the built-in ones in preferred order, then the rest sorted."""
    names = set(_entry_points())
    return [n for n in _PREFERRED if n in names] + sorted(names - set(_PREFERRED))


def distribution_of(name: str) -> str | None:
    """The name of the distribution that installed adapter ``name`` (None if unknown)."""
    ep = _entry_points().get(name)
    return ep.dist_name if ep is not None else None


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
