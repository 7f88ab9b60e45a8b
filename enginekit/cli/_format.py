"""Output helpers of the ``enginekit`` command: tables, JSON, human units."""

from __future__ import annotations

import datetime as _dt
import enum
import json
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = [
    "ago",
    "duration",
    "human_size",
    "iso_time",
    "jsonable",
    "pairs_text",
    "print_json",
    "print_kv",
    "print_table",
    "quote_command",
]

HIDDEN = "<hidden>"


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, out: TextIO | None = None
) -> None:
    """Columns aligned on the widest cell, separated by three spaces (as docker)."""
    stream = out if out is not None else sys.stdout
    table = [list(headers), *([str(c) for c in row] for row in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        stream.write("   ".join(cells).rstrip() + "\n")


def print_kv(rows: Sequence[tuple[str, object]]) -> None:
    """``key  value`` lines, the values aligned (``inspect``, ``version``)."""
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def iso_time(t: _dt.datetime | None) -> str:
    return t.isoformat().replace("+00:00", "Z") if t is not None else "-"


def pairs_text(mapping: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "-"


def human_size(n: int | None) -> str:
    """Bytes in SI units, as docker prints sizes (``4.2MB``)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1000
    return f"{n}B"  # pragma: no cover


def duration(seconds: float) -> str:
    """``3 seconds``, ``About a minute``, ``5 minutes``, ``2 hours``, ``3 days``."""
    s = int(max(seconds, 0))
    if s < 1:
        return "Less than a second"
    if s < 60:
        return f"{s} second{'s' if s != 1 else ''}"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = m // 60
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    return f"{h // 24} days"


def ago(when: _dt.datetime | None, now: _dt.datetime | None = None) -> str:
    if when is None:
        return "-"
    current = now or _dt.datetime.now(_dt.UTC)
    return duration((current - when).total_seconds()) + " ago"


def quote_command(argv: Sequence[str], width: int | None = 20) -> str:
    text = shlex.join(argv)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return f'"{text}"'


def jsonable(value: Any, *, show_env: bool = False) -> Any:
    """A model (attrs class) as plain JSON values; ``raw`` is left out and
    environment values are hidden unless ``show_env``."""
    import attrs

    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        for field in attrs.fields(type(value)):
            if field.name == "raw":
                continue
            item = getattr(value, field.name)
            if field.name == "env" and isinstance(item, Mapping) and not show_env:
                out[field.name] = dict.fromkeys(item, HIDDEN)
            else:
                out[field.name] = jsonable(item, show_env=show_env)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, show_env=show_env) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, show_env=show_env) for v in value]
    return value


def print_json(value: Any, *, show_env: bool = False) -> None:
    json.dump(jsonable(value, show_env=show_env), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
