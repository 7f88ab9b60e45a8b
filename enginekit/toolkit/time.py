"""RFC 3339 timestamps as the engines write them (Go's ``time.RFC3339Nano``).

:func:`parse_rfc3339` gives an aware UTC datetime (microseconds; Go's zero
time is None), :func:`unix_nanos` the exact nanoseconds since the epoch.
"""

from __future__ import annotations

from enginekit.timeutil import parse_rfc3339, unix_nanos

__all__ = ["parse_rfc3339", "unix_nanos"]
