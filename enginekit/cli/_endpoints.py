"""``enginekit engines``: the engines Docker contexts and Podman connections name.

Each one is probed at once, in parallel, none waited for longer than
:data:`enginekit.config.PROBE_TIMEOUT` seconds; one that does not answer in
time is shown as not reachable, saying so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._format import print_table

__all__ = ["endpoint_rows", "print_endpoints"]


def endpoint_rows(targets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per engine named by the configuration of the adapters in ``targets``
    (adapter names; URLs are passed over), or of every installed adapter."""
    from enginekit.config import endpoint_statuses, endpoints
    from enginekit.errors import EngineError

    names = [t for t in targets if "://" not in t]
    if targets and not names:
        return []
    groups: list[tuple[str, ...]] = [(n,) for n in names] or [()]
    found = []
    for which in groups:
        try:
            found += endpoints(*which)
        except EngineError:
            continue  # the adapter row already says why it cannot be used
    statuses = endpoint_statuses(found)
    return [
        {
            "engine": e.engine,
            "name": e.name,
            "url": e.url,
            "current": e.current,
            "source": e.source,
            "reachable": s.reachable,
            "version": s.version,
            "reason": s.reason,
        }
        for e, s in zip(found, statuses, strict=True)
    ]


_ID = re.compile(r"/([0-9a-f]{12})[0-9a-f]{52}/")


def _short(source: str) -> str:
    """A context's store path with its 64-digit id cut to 12 digits (as Docker shows ids)."""
    return _ID.sub(r"/\1…/", source)


def print_endpoints(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    print()
    print_table(
        ("ENGINE", "NAME", "CURRENT", "URL", "REACHABLE", "VERSION", "SOURCE", "REASON"),
        (
            (
                r["engine"],
                r["name"] or "-",
                "*" if r["current"] else "",
                r["url"],
                "yes" if r["reachable"] else "no",
                r["version"] or "-",
                _short(r["source"]) or "-",
                " ".join((r["reason"] or "").split()),
            )
            for r in rows
        ),
    )
