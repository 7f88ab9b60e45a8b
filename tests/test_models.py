"""Models: frozen, hashable, equal by value, aware UTC, no env value in repr."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from enginekit.models import Container, ContainerState, FrozenDict, Image, ImageConfig


def make(**kw: object) -> Container:
    base: dict[str, object] = dict(
        id="a" * 64, name="x", image="busybox", state=ContainerState.RUNNING
    )
    base.update(kw)
    return Container(**base)  # type: ignore[arg-type]


def test_frozen_and_hashable() -> None:
    c = make(env={"K": "v"}, labels={"b": "2", "a": "1"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        c.name = "y"  # type: ignore[misc]
    assert hash(c) == hash(make(env={"K": "v"}, labels={"a": "1", "b": "2"}))
    assert c == make(env={"K": "v"}, labels={"a": "1", "b": "2"})
    assert list(c.labels) == ["a", "b"]


def test_raw_not_compared() -> None:
    assert make(raw={"x": 1}) == make(raw={"y": 2})


def test_repr_hides_env() -> None:
    c = make(env={"TOKEN": "hunter2-secret"})
    img = Image(id="sha256:" + "b" * 64, config=ImageConfig(env={"PASS": "hunter2-secret"}))
    assert "hunter2" not in repr(c)
    assert "hunter2" not in repr(img)


def test_times_become_aware_utc() -> None:
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    other = dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    c = make(created_at=naive, started_at=other)
    assert c.created_at is not None and c.created_at.tzinfo is dt.UTC
    assert c.started_at == naive.replace(tzinfo=dt.UTC)


def test_frozendict() -> None:
    d = FrozenDict({"b": 1, "a": 2})
    assert d == {"a": 2, "b": 1}
    assert list(d) == ["a", "b"]
    assert hash(d) == hash(FrozenDict({"a": 2, "b": 1}))
    with pytest.raises(TypeError):
        d["c"] = 3  # type: ignore[index]


def test_image_tags_sorted() -> None:
    assert Image(id="sha256:" + "c" * 64, tags=["b:1", "a:2"]).tags == ("a:2", "b:1")


def test_small_values_take_contract_order() -> None:
    from enginekit.models import ExecResult, LogLine, Mount, PortBinding, Stats, Stream

    assert Mount("/h", "/c", True) == Mount(source="/h", target="/c", read_only=True)
    assert PortBinding(80, "tcp", "127.0.0.1", 8080).host_port == 8080
    assert ExecResult(3, b"o", b"e").output == b"oe"
    assert LogLine(Stream.STDERR, b"x\n").stream == "stderr"
    assert Stats(1.5, 10, None, 2).pids == 2


def test_states_compare_as_text() -> None:
    assert ContainerState.RUNNING == "running"  # type: ignore[comparison-overlap]
    assert ContainerState("exited") is ContainerState.EXITED
    assert str(ContainerState.PAUSED) == "paused"
