"""Containers: list (all, name, labels, state filters) and prune.

CONTRACT.md, "Containers" (``list(*, all=False, name=None, labels=None,
state=None)``, ``prune(*, labels=None) -> list[str]`` removes exited
containers).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from enginekit import Capability, ContainerState
from enginekit.errors import ContainerNotFound

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

SLEEP = ["sleep", "100"]
CASE = "enginekit.test.case"


def _ids(found: list[Container]) -> set[str]:
    return {c.id for c in found}


class _Case:
    """Containers of one test, told apart from every other by a label."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.value = uuid.uuid4().hex
        self.labels = {**labels, CASE: self.value}
        self.filter: dict[str, str | None] = {CASE: self.value}


class TestContainerList:
    def _states(
        self, engine: Engine, create_container: ContainerFactory, case_labels: dict[str, str]
    ) -> dict[str, Container]:
        created = create_container(SLEEP, labels=case_labels)
        running = engine.containers.start(create_container(SLEEP, labels=case_labels))
        exited = engine.containers.start(create_container(["true"], labels=case_labels))
        engine.containers.wait(exited, timeout=30)
        return {"created": created, "running": running, "exited": exited}

    def test_all_and_running(
        self, engine: Engine, create_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        made = self._states(engine, create_container, case.labels)
        running = engine.containers.list(labels=case.filter)
        assert _ids(running) == {made["running"].id}
        everything = engine.containers.list(all=True, labels=case.filter)
        assert _ids(everything) == {c.id for c in made.values()}
        by_id = {c.id: c for c in everything}
        assert by_id[made["created"].id].state is ContainerState.CREATED
        assert by_id[made["running"].id].state is ContainerState.RUNNING
        assert by_id[made["exited"].id].state is ContainerState.EXITED
        assert by_id[made["exited"].id].exit_code == 0

    def test_listed_equals_get(
        self, engine: Engine, create_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        made = self._states(engine, create_container, case.labels)
        for listed in engine.containers.list(all=True, labels=case.filter):
            got = engine.containers.get(listed.id)
            assert listed.name == got.name
            assert listed.state is got.state
            assert listed.exit_code == got.exit_code
            assert listed.labels == got.labels
            assert listed.image == got.image
            assert listed.id in {c.id for c in made.values()}

    @pytest.mark.requires(Capability.PAUSE)
    def test_paused_is_listed_without_all(
        self, engine: Engine, run_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        c = run_container(SLEEP, labels=case.labels)
        engine.containers.pause(c)
        found = engine.containers.list(labels=case.filter)
        assert _ids(found) == {c.id}
        assert found[0].state is ContainerState.PAUSED
        assert _ids(engine.containers.list(labels=case.filter, state=ContainerState.PAUSED)) == {
            c.id
        }

    def test_state_filter(
        self, engine: Engine, create_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        made = self._states(engine, create_container, case.labels)
        for state_name, c in made.items():
            state = ContainerState[state_name.upper()]
            found = engine.containers.list(all=True, labels=case.filter, state=state)
            assert _ids(found) == {c.id}, state

    def test_label_filters(
        self, engine: Engine, create_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        a = create_container(SLEEP, labels={**case.labels, "ekt.k": "v"})
        b = create_container(SLEEP, labels={**case.labels, "ekt.k": "w"})
        c = create_container(SLEEP, labels={**case.labels, "ekt.other": "v"})
        find = engine.containers.list
        assert _ids(find(all=True, labels={**case.filter, "ekt.k": "v"})) == {a.id}
        assert _ids(find(all=True, labels={**case.filter, "ekt.k": None})) == {a.id, b.id}
        assert _ids(find(all=True, labels={**case.filter, "ekt.k": "nope"})) == set()
        assert _ids(find(all=True, labels=case.filter)) == {a.id, b.id, c.id}
        # value matching is exact, not a prefix or pattern
        assert _ids(find(all=True, labels={**case.filter, "ekt.k": "v*"})) == set()

    def test_name_filter_is_exact(
        self, engine: Engine, create_container: ContainerFactory, make_name: Callable[..., str]
    ) -> None:
        name = make_name()
        exact = create_container(SLEEP, name=name)
        longer = create_container(SLEEP, name=name + "-more")
        create_container(SLEEP, name="x" + name)
        assert _ids(engine.containers.list(all=True, name=name)) == {exact.id}
        assert _ids(engine.containers.list(all=True, name=longer.name)) == {longer.id}
        assert engine.containers.list(name=name) == []  # created, not running
        assert engine.containers.list(all=True, name=name + "-nope") == []


class TestContainerPrune:
    def test_prune_removes_exited_labelled_only(
        self, engine: Engine, run_container: ContainerFactory, labels: dict[str, str]
    ) -> None:
        case = _Case(labels)
        other = _Case(labels)
        exited = run_container(["true"], labels=case.labels)
        failed = run_container(["sh", "-c", "exit 3"], labels=case.labels)
        running = run_container(SLEEP, labels=case.labels)
        exited_elsewhere = run_container(["true"], labels=other.labels)
        for c in (exited, failed, exited_elsewhere):
            engine.containers.wait(c, timeout=30)
        removed = engine.containers.prune(labels=case.filter)
        assert sorted(removed) == sorted([exited.id, failed.id])
        for gone in (exited, failed):
            with pytest.raises(ContainerNotFound):
                engine.containers.get(gone.id)
        assert engine.containers.get(running).state is ContainerState.RUNNING
        assert engine.containers.get(exited_elsewhere).state is ContainerState.EXITED
        assert engine.containers.prune(labels=case.filter) == []
