"""RFC 3339 timestamps as the engines write them, parsed once for every adapter.

Docker, Podman and LXC tooling print Go's ``time.RFC3339Nano``: up to nine
fractional digits and ``Z`` or a numeric offset. Python keeps microseconds,
so the fraction is cut (not rounded) to six digits. Go's zero time (year 1,
``0001-01-01T00:00:00Z``) means "never" and is None.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["parse_rfc3339", "unix_nanos"]

_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:[.,](\d+))?([Zz]|[+-]\d\d:?\d\d)?")


def _fields(text: str | bytes | None, *, zone_required: bool) -> tuple[str, str, str, str] | None:
    """``(date, clock, fraction digits, offset)`` of a stamp; None for None, ``""``
    and Go's zero time; ``ValueError`` if ``text`` is not a timestamp."""
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
    if zone is None or zone in "Zz":
        offset = "+00:00"
    elif ":" in zone:
        offset = zone
    else:
        offset = f"{zone[:3]}:{zone[3:]}"
    return date, clock, frac or "", offset


def parse_rfc3339(text: str | bytes | None, *, zone_required: bool = False) -> dt.datetime | None:
    """``text`` as an aware UTC datetime; None for None, ``""`` and Go's zero time.

    Nanoseconds are truncated to microseconds. A stamp without a zone is
    taken as UTC, or refused with ``zone_required``. ``ValueError`` if
    ``text`` is not such a timestamp.
    """
    fields = _fields(text, zone_required=zone_required)
    if fields is None:
        return None
    date, clock, frac, offset = fields
    micro = frac[:6].ljust(6, "0")
    return dt.datetime.fromisoformat(f"{date}T{clock}.{micro}{offset}").astimezone(dt.UTC)


def unix_nanos(text: str | bytes | None) -> int | None:
    """``text`` as exact nanoseconds since the epoch (a datetime keeps only
    microseconds; Docker tells a long log line's pieces apart by their stamp).

    None where :func:`parse_rfc3339` gives None, and for text that is no
    timestamp; digits past the ninth are cut.
    """
    try:
        fields = _fields(text, zone_required=False)
    except ValueError:
        return None
    if fields is None:
        return None
    date, clock, frac, offset = fields
    whole = dt.datetime.fromisoformat(f"{date}T{clock}{offset}")
    return int(whole.timestamp()) * 10**9 + int(frac[:9].ljust(9, "0"))
