"""enginekit.timeutil.parse_rfc3339: the one RFC 3339 parser the adapters share."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enginekit.timeutil import parse_rfc3339, unix_nanos

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T09:23:53.467480031Z", dt.datetime(2026, 11, 29, 9, 23, 53, 467480, UTC)),
        ("2026-11-29T09:23:53.999999999Z", dt.datetime(2026, 11, 29, 9, 23, 53, 999999, UTC)),
        ("2026-11-29T09:23:53.4Z", dt.datetime(2026, 11, 29, 9, 23, 53, 400000, UTC)),
        ("2026-11-29T09:23:53Z", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        ("2026-11-29t09:23:53z", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        ("2026-11-29T10:23:53.123456789+01:00", dt.datetime(2026, 11, 29, 9, 23, 53, 123456, UTC)),
        ("2026-11-29T04:23:53-05:00", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        ("2026-11-29T10:23:53+0100", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        ("2026-11-29 09:23:53.5", dt.datetime(2026, 11, 29, 9, 23, 53, 500000, UTC)),
        (" 2026-11-29T09:23:53Z\n", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        (b"2026-11-29T09:23:53.000000001Z", dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00.000000000+00:00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse(text: str | bytes | None, expected: dt.datetime | None) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-11-29",
        "2026-11-29T09:23Z",
        "2026-11-29T09:23:53Zjunk",
        "2026-13-01T00:00:00Z",
    ],
)
def test_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), timezones=st.just(UTC)), st.integers(0, 999))
def test_round_trip_with_nanoseconds(when: dt.datetime, nanos: int) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos:03d}Z"
    assert parse_rfc3339(text) == when


@given(
    st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)
def test_offsets_become_utc(local: dt.datetime, minutes: int) -> None:
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    aware = local.replace(tzinfo=zone)
    parsed = parse_rfc3339(aware.isoformat())
    assert parsed == aware and parsed is not None and parsed.tzinfo is UTC


def test_zone_required() -> None:
    assert parse_rfc3339("2026-11-29T09:23:53") == dt.datetime(2026, 11, 29, 9, 23, 53, tzinfo=UTC)
    with pytest.raises(ValueError, match="without a zone"):
        parse_rfc3339("2026-11-29T09:23:53.5", zone_required=True)
    assert parse_rfc3339("2026-11-29T10:23:53+01:00", zone_required=True) == dt.datetime(
        2026, 11, 29, 9, 23, 53, tzinfo=UTC
    )
    assert parse_rfc3339("", zone_required=True) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:01.000000002Z", 1_000_000_002),
        ("1970-01-01T01:00:01.5+01:00", 1_500_000_000),
        ("2026-11-29T09:23:53.467480031Z", 1_795_944_233_467_480_031),
        (b"1970-01-01T00:00:00.0000000019Z", 1),
        ("not a time", None),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_unix_nanos_keeps_every_digit(text: str | bytes, expected: int | None) -> None:
    assert unix_nanos(text) == expected
