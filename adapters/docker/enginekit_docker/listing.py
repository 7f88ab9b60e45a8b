"""``container_summaries`` on Docker: the container list read as it is.

``container_list`` inspects each container the list request names
(:meth:`.api.Api._list_entries`, one ``GET /containers/json`` with the
filters); a summary is read from the list's own entry
(:func:`.convert.summary_from_list`), so listing any number of containers
costs that one request. An entry that does not say the image as asked (its
name has moved to another image) is inspected instead, alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from enginekit.toolkit.driver import LIVE_STATES
from enginekit.toolkit.models import ContainerSummary

from . import convert

if TYPE_CHECKING:
    from .api import Api

__all__ = ["summaries"]


def summaries(
    api: Api,
    *,
    all: bool,
    labels: Mapping[str, str | None] | None,
    name: str | None,
) -> list[ContainerSummary]:
    """What ``container_list`` gives, from the list alone (see the module)."""
    entries = api._list_entries(all=all, labels=labels, name=name)
    found: list[ContainerSummary | None] = []
    unnamed: dict[int, str] = {}
    with api._map_errors("list"):
        for entry in entries:
            summary = convert.summary_from_list(entry)
            if summary is None:
                unnamed[len(found)] = str(entry["Id"])
            found.append(summary)
    if unnamed:
        inspected = api._inspect_each(list(unnamed.values()))
        for at, container in zip(unnamed, inspected, strict=True):
            found[at] = None if container is None else ContainerSummary.of(container)
    return [
        s
        for s in found
        if s is not None and (not name or s.name == name) and (all or s.state in LIVE_STATES)
    ]
