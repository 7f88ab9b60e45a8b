"""enginekit.signals: the one table of signal names and numbers."""

from __future__ import annotations

import signal
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enginekit.errors import InvalidSpec
from enginekit.signals import ALIASES, RTMAX, RTMIN, SIGNALS, signal_name, signal_number


@pytest.mark.parametrize(
    ("value", "number", "name"),
    [
        ("SIGTERM", 15, "SIGTERM"),
        ("TERM", 15, "SIGTERM"),
        ("sigterm", 15, "SIGTERM"),
        (" term\n", 15, "SIGTERM"),
        ("15", 15, "SIGTERM"),
        (15, 15, "SIGTERM"),
        ("KILL", 9, "SIGKILL"),
        ("USR1", 10, "SIGUSR1"),
        ("SIGIOT", 6, "SIGABRT"),
        ("cld", 17, "SIGCHLD"),
        ("SIGPOLL", 29, "SIGIO"),
        ("SIGRTMIN", 34, "SIGRTMIN"),
        ("RTMAX", 64, "SIGRTMAX"),
        ("SIGRTMIN+3", 37, "SIGRTMIN+3"),
        ("rtmin+0", 34, "SIGRTMIN"),
        ("SIGRTMAX-1", 63, "SIGRTMIN+29"),
        ("SIGRTMIN+30", 64, "SIGRTMAX"),
        ("SIGRTMAX-30", 34, "SIGRTMIN"),
        (40, 40, "SIGRTMIN+6"),
        ("40", 40, "SIGRTMIN+6"),
    ],
)
def test_known(value: str | int, number: int, name: str) -> None:
    assert signal_number(value) == number
    assert signal_name(value) == name


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIG",
        "SIGNOPE",
        "NOPE",
        "SIGSIGTERM",
        "0",
        0,
        -9,
        32,
        "33",
        65,
        999,
        "+15",
        "1 5",
        "\u0661\u0665",  # Arabic-Indic digits: not a number here
        "SIGRTMIN+31",
        "SIGRTMIN-1",
        "SIGRTMAX+1",
        "SIGRTMAX-31",
        "SIGRTMIN+",
        "SIGRTMIN+100",
        True,
        None,
        1.0,
    ],
)
def test_not_a_signal(value: object) -> None:
    with pytest.raises(InvalidSpec, match="is not a signal"):
        signal_number(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="is not a signal"):
        signal_name(value)  # type: ignore[arg-type]


def test_table_is_complete_and_one_to_one() -> None:
    assert sorted(SIGNALS.values()) == [*range(1, 32), RTMIN, RTMAX]
    assert all(target in SIGNALS for target in ALIASES.values())
    assert not set(ALIASES) & set(SIGNALS)


@pytest.mark.skipif(sys.platform != "linux", reason="the table is Linux's numbering")
def test_table_matches_this_linux() -> None:
    """Every name Python knows here means the same number in the table."""
    for name, member in signal.Signals.__members__.items():
        assert signal_number(name) == int(member), name
        assert signal_name(int(member)) == member.name
    assert (int(signal.SIGRTMIN), int(signal.SIGRTMAX)) == (RTMIN, RTMAX)


@given(st.integers(1, RTMAX).filter(lambda n: n not in (32, 33)))
def test_numbers_round_trip(number: int) -> None:
    name = signal_name(number)
    assert signal_number(name) == number
    assert signal_number(name.lower().removeprefix("sig")) == number
    assert signal_name(str(number)) == name


def test_core_validation_takes_the_named_signals() -> None:
    """validate.signal_name takes the named signals (aliases, numbers) and no other."""
    from enginekit import validate

    for name, number in SIGNALS.items():
        assert validate.signal_name(name.lower()) == name
        assert validate.signal_name(number) == name
        assert validate.signal_name(str(number)) == name
    for alias, name in ALIASES.items():
        assert validate.signal_name(alias.removeprefix("SIG")) == name
    for bad in ("SIGRTMIN+3", 37, "37", "SIGNOPE", 0, True, None, 1.5):
        with pytest.raises(InvalidSpec):
            validate.signal_name(bad)
    with pytest.raises(InvalidSpec, match="cannot be SIGSTOP"):
        validate.signal_name("stop", "stop_signal")
