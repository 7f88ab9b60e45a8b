"""Containers: summaries, what the engine's own list says, against list() and get().

CONTRACT.md, "Containers" (``summaries(...same filters) -> list[ContainerSummary]``)
and :class:`enginekit.ContainerSummary`:

- the same containers as ``list()`` for every filter (``all``, ``name``,
  ``labels``, ``state``), and each field as ``get()`` says it: ``exit_code``
  and ``ports`` may be None where the engine's list does not say them (never
  a wrong value), ``created_at`` may be to the second; an exited container's
  own exit code (0, 3) is known, and a running or paused one's ports are there;
- a bad filter is the same ``InvalidSpec`` as ``list()``'s, and creates nothing.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from enginekit import Capability, ContainerState, ContainerSummary
from enginekit.errors import InvalidSpec

from ._runs import new_objects, snapshot

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

SLEEP = ["sleep", "100"]
CASE = "enginekit.test.summaries"
ROLE = "enginekit.test.role"


def _ids(found: Iterable[Container | ContainerSummary]) -> set[str]:
    return {c.id for c in found}


def _case(labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str | None]]:
    """Labels for one test's containers, and the filter that finds only them."""
    value = uuid.uuid4().hex
    return {**labels, CASE: value}, {CASE: value}


def assert_agrees(summary: ContainerSummary, full: Container) -> None:
    """``summary`` says of its container what ``get()`` says, where it says anything."""
    where = f"summary of {full.name} ({full.state.name})"
    assert isinstance(summary, ContainerSummary), where
    for field in ("id", "name", "image", "image_id", "labels", "engine"):
        assert getattr(summary, field) == getattr(full, field), f"{where}: {field}"
    assert summary.state is full.state, where
    assert summary.exit_code in (None, full.exit_code), f"{where}: exit code"
    if full.state is ContainerState.EXITED and full.exit_code in (0, 3):
        assert summary.exit_code == full.exit_code, f"{where}: exit code not known"
    assert summary.created_at is not None and full.created_at is not None, where
    assert summary.created_at.tzinfo is _dt.UTC, where
    if summary.created_at != full.created_at:  # a list that says whole seconds only
        assert summary.created_at.microsecond == 0, f"{where}: created_at"
        assert summary.created_at.replace(microsecond=0) == full.created_at.replace(
            microsecond=0
        ), f"{where}: created_at"
    if full.state in (ContainerState.RUNNING, ContainerState.PAUSED):
        assert summary.ports == full.ports, f"{where}: ports"
    else:
        assert summary.ports in (None, full.ports), f"{where}: ports"


def _agree_all(engine: Engine, found: list[ContainerSummary]) -> None:
    for summary in found:
        assert_agrees(summary, engine.containers.get(summary.id))


class TestContainerSummaries:
    def _states(
        self, engine: Engine, create_container: ContainerFactory, case_labels: dict[str, str]
    ) -> dict[str, Container]:
        def make(role: str, command: list[str]) -> Container:
            return create_container(command, labels={**case_labels, ROLE: role})

        made = {
            "created": make("created", SLEEP),
            "running": engine.containers.start(make("running", SLEEP)),
            "exited": engine.containers.start(make("exited", ["true"])),
            "failed": engine.containers.start(make("failed", ["sh", "-c", "exit 3"])),
        }
        for key in ("exited", "failed"):
            engine.containers.wait(made[key], timeout=30)
        return made

    def test_agree_with_list_and_get(
        self, engine: Engine, create_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case, wanted = _case(labels)
        made = self._states(engine, create_container, case)
        found = engine.containers.summaries(all=True, labels=wanted)
        assert _ids(found) == _ids(made.values())
        assert _ids(found) == _ids(engine.containers.list(all=True, labels=wanted))
        assert len(found) == len(made)
        _agree_all(engine, found)
        by_id = {s.id: s for s in found}
        assert by_id[made["exited"].id].exit_code == 0
        assert by_id[made["failed"].id].exit_code == 3
        assert by_id[made["created"].id].exit_code is None
        assert by_id[made["running"].id].exit_code is None
        assert by_id[made["running"].id].running
        assert by_id[made["running"].id].short_id == made["running"].id[:12]

    def test_filters_as_list(
        self,
        engine: Engine,
        create_container: ContainerFactory,
        labels: dict[str, str],
    ) -> None:
        case, wanted = _case(labels)
        made = self._states(engine, create_container, case)
        states: list[Any] = [None, *ContainerState, "running", "EXITED"]
        queries: list[dict[str, Any]] = [
            {"labels": wanted},
            {"labels": list(wanted)},
            {"labels": {**wanted, ROLE: None}},
            {"labels": {**wanted, ROLE: "failed"}},
            {"labels": {**wanted, ROLE: "fail"}},  # exact values, no prefix
            {"labels": {**wanted, "enginekit.test.absent": None}},
            *({"labels": wanted, "state": s} for s in states),
            *({"labels": wanted, "name": c.name} for c in made.values()),
            {"labels": wanted, "name": made["running"].name + "x"},
        ]
        for query in queries:
            for all_ in (False, True):
                kwargs = {**query, "all": all_}
                listed = engine.containers.list(**kwargs)
                found = engine.containers.summaries(**kwargs)
                assert _ids(found) == _ids(listed), kwargs
                assert len(found) == len(listed), kwargs
        everything = _ids(made.values())
        assert _ids(engine.containers.summaries(labels=wanted)) == {made["running"].id}
        assert _ids(engine.containers.summaries(all=True, labels=wanted)) == everything
        for key, c in made.items():
            state = engine.containers.get(c).state
            found = engine.containers.summaries(labels=wanted, state=state)
            assert c.id in _ids(found), key
            assert all(s.state is state for s in found), key
        by_name = engine.containers.summaries(all=True, name=made["failed"].name)
        assert _ids(by_name) == {made["failed"].id}
        assert engine.containers.summaries(name=made["failed"].name) == []  # not running

    def test_name_filter_is_exact(
        self,
        engine: Engine,
        create_container: ContainerFactory,
        make_name: Callable[..., str],
    ) -> None:
        name = make_name()
        exact = create_container(SLEEP, name=name)
        longer = create_container(SLEEP, name=name + "-more")
        create_container(SLEEP, name="x" + name)
        find = engine.containers.summaries
        assert _ids(find(all=True, name=name)) == {exact.id}
        assert _ids(find(all=True, name=longer.name)) == {longer.id}
        assert find(all=True, name=name + "-nope") == []
        _agree_all(engine, find(all=True, name=name))

    @pytest.mark.requires(Capability.PAUSE)
    def test_paused_without_all(
        self, engine: Engine, run_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case, wanted = _case(labels)
        c = run_container(SLEEP, labels=case)
        engine.containers.pause(c)
        found = engine.containers.summaries(labels=wanted)
        assert _ids(found) == {c.id}
        assert found[0].state is ContainerState.PAUSED
        _agree_all(engine, found)
        paused = engine.containers.summaries(labels=wanted, state=ContainerState.PAUSED)
        assert _ids(paused) == {c.id}
        assert engine.containers.summaries(labels=wanted, state=ContainerState.RUNNING) == []

    @pytest.mark.requires(Capability.PORTS)
    def test_ports_of_a_running_container(
        self, engine: Engine, run_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case, wanted = _case(labels)
        c = run_container(SLEEP, labels=case, ports={8080: None})
        [summary] = engine.containers.summaries(labels=wanted)
        full = engine.containers.get(c)
        assert summary.ports == full.ports
        assert summary.ports and all(p.host_port for p in summary.ports), summary.ports
        assert {p.container_port for p in summary.ports} == {8080}
        engine.containers.stop(c, timeout=1)
        [stopped] = engine.containers.summaries(all=True, labels=wanted)
        assert_agrees(stopped, engine.containers.get(c))

    def test_bad_filters_refused_as_list(self, engine: Engine) -> None:
        before = snapshot(engine, images=False)
        bad: list[dict[str, Any]] = [
            {"state": "sleeping"},
            {"state": 3},
            {"name": "no spaces"},
            {"name": ""},
            {"name": 5},
            {"labels": "k=v"},
            {"labels": {"": "v"}},
            {"labels": {"k": 3}},
            {"labels": 7},
        ]
        for kwargs in bad:
            with pytest.raises(InvalidSpec) as listed:
                engine.containers.list(all=True, **kwargs)
            with pytest.raises(InvalidSpec) as summarised:
                engine.containers.summaries(all=True, **kwargs)
            assert str(summarised.value) == str(listed.value), kwargs
        assert new_objects(engine, before, images=False) == {"containers": [], "images": []}
