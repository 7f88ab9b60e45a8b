"""RFC 3339 timestamps as the engines write them, parsed once for every adapter.

Docker, Podman and LXC tooling print Go's ``time.RFC3339Nano``: up to nine
fractional digits and ``Z`` or a numeric offset. Python keeps microseconds,
so the fraction is cut (not rounded) to six digits. Go's zero time (year 1,
``0001-01-01T00:00:00Z``) means "never" and is None.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["parse_rfc3339"]

_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:[.,](\d+))?([Zz]|[+-]\d\d:?\d\d)?")


def parse_rfc3339(text: str | bytes | None, *, zone_required: bool = False) -> dt.datetime | None:
    """``text`` as an aware UTC datetime; None for None, ``""`` and Go's zero time.

    Nanoseconds are truncated to microseconds. A stamp without a zone is
    taken as UTC, or refused with ``zone_required``. ``ValueError`` if
    ``text`` is not such a timestamp.
    """
    if text is None:
        return None
    raw = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    raw = raw.strip()
    if not raw:
        return None
    m = _STAMP.fullmatch(raw)
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {raw[:64]!r}")
    date, clock, frac, zone = m.groups()
    if zone is None and zone_required:
        raise ValueError(f"an RFC 3339 timestamp without a zone: {raw[:64]!r}")
    if date.startswith("0001-01-01"):
        return None
    micro = (frac or "0")[:6].ljust(6, "0")
    if zone is None or zone in "Zz":
        offset = "+00:00"
    elif ":" in zone:
        offset = zone
    else:
        offset = f"{zone[:3]}:{zone[3:]}"
    return dt.datetime.fromisoformat(f"{date}T{clock}.{micro}{offset}").astimezone(dt.UTC)
