"""``enginekit engines`` and ``enginekit version``: which engines there are, and what
they say of themselves."""

from __future__ import annotations

import argparse
from typing import Any

import enginekit

from ._args import connect
from ._format import jsonable, print_json, print_kv, print_table

__all__ = ["cmd_engines", "cmd_version"]


def _capabilities_text(names: set[str], every: set[str]) -> str:
    if names == every:
        return "all"
    missing = sorted(every - names)
    if len(missing) <= len(names):
        return "all but " + ", ".join(missing)
    return ", ".join(sorted(names))


def cmd_engines(args: argparse.Namespace) -> int:
    from enginekit.capabilities import ALL_CAPABILITIES

    every = {c.value for c in ALL_CAPABILITIES}
    targets = list(getattr(args, "targets", None) or [])
    if not targets and getattr(args, "engine", None):
        targets = [args.engine]
    rows: list[dict[str, Any]] = []
    for status in enginekit.engines(*targets):
        info = status.info
        rows.append(
            {
                "name": status.name,
                "reachable": status.reachable,
                "address": status.address,
                "version": status.version,
                "api_version": info.api_version if info else None,
                "cgroup_version": info.cgroup_version if info else None,
                "rootless": info.rootless if info else None,
                "image_store": (info.image_store or None) if info else None,
                "reason": status.reason,
                "distribution": status.distribution,
                "capabilities": sorted(c.value for c in status.capabilities),
                "unsupported": {k.value: v for k, v in sorted(status.unsupported.items())},
                "info": jsonable(info) if info else None,
            }
        )
    from ._endpoints import endpoint_rows, print_endpoints

    named = endpoint_rows(targets)
    for i, row in enumerate(rows):
        by_name = not targets or "://" not in targets[i]
        row["endpoints"] = [e for e in named if by_name and e["engine"] == row["name"]]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no enginekit adapter is installed (pip install enginekit-docker)")
        return 0

    def dash(value: object) -> str:
        if value is None or value == "":
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    print_table(
        (
            "NAME",
            "REACHABLE",
            "VERSION",
            "API",
            "CGROUP",
            "ROOTLESS",
            "STORE",
            "ADDRESS",
            "CAPABILITIES",
            "REASON",
        ),
        (
            (
                r["name"],
                "yes" if r["reachable"] else "no",
                dash(r["version"]),
                dash(r["api_version"]),
                "v" + str(r["cgroup_version"]) if r["cgroup_version"] else "-",
                dash(r["rootless"]),
                dash(r["image_store"]),
                r["address"] or "-",
                _capabilities_text(set(r["capabilities"]), every) if r["capabilities"] else "-",
                " ".join((r["reason"] or "").split()),
            )
            for r in rows
        ),
    )
    for r in rows:
        for cap, why in r["unsupported"].items():
            print(f"  {r['name']}: no {cap}: {' '.join(why.split())}")
    print_endpoints(named)
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        info = engine.info()
        if args.json:
            print_json(
                {
                    "enginekit": enginekit.__version__,
                    "engine": jsonable(info),
                    "address": engine.address,
                }
            )
            return 0
        print_kv(
            [
                ("enginekit", enginekit.__version__),
                ("engine", info.name),
                ("version", info.version),
                ("api version", info.api_version or "-"),
                ("address", engine.address),
                ("os/arch", f"{info.os}/{info.arch}"),
                ("storage", info.storage_root or "-"),
            ]
        )
    return 0
