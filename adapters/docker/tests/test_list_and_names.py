"""container_list gives full snapshots; one-character names work (live dockerd, no mocks)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from docker_support import LABELS, RUN
from enginekit_docker import DockerDriver, connect
from enginekit_docker.names import NAME_LABEL, engine_name, user_view

from enginekit import Engine
from enginekit.errors import Conflict, ContainerNotFound, EngineError
from enginekit.models import ContainerState, PortBinding

Make = Callable[..., str]
SLEEP = ("sleep", "100")


def test_list_entries_equal_inspect(driver: DockerDriver, make: Make, run: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    labels = {"same": tag}
    created = make(SLEEP, labels=labels, env={"K": "v"}, workdir="/tmp", memory=64 << 20)
    running = run(SLEEP, labels=labels, ports=(PortBinding(container_port=80),))
    paused = run(SLEEP, labels=labels, stop_signal="SIGINT")
    driver.container_pause(paused)
    exited = run(("sh", "-c", "exit 3"), labels=labels)
    driver.container_wait(exited, timeout=30)
    listed = driver.container_list(all=True, labels=labels)
    assert {c.id for c in listed} == {created, running, paused, exited}
    for entry in listed:
        assert entry == driver.container_inspect(entry.id)
    states = {c.id: c.state for c in listed}
    assert states == {
        created: ContainerState.CREATED,
        running: ContainerState.RUNNING,
        paused: ContainerState.PAUSED,
        exited: ContainerState.EXITED,
    }
    # without ``all``: the running and the paused one, still full snapshots
    live = driver.container_list(labels=labels)
    assert {c.id for c in live} == {running, paused}
    assert all(c == driver.container_inspect(c.id) and c.pid for c in live)


def test_list_leaves_out_a_container_removed_meanwhile(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [make(SLEEP, labels={"gone": tag}) for _ in range(3)]
    victim = ids[1]
    d = connect()
    real = d._inspect_raw

    def remove_first(ref: str) -> Mapping[str, Any]:
        if ref == victim:  # removed for real between the list and its inspect
            d.container_remove(victim, force=True)
        return real(ref)

    monkeypatch.setattr(d, "_inspect_raw", remove_first)
    try:
        listed = d.container_list(all=True, labels={"gone": tag})
    finally:
        d.close()
    assert sorted(c.id for c in listed) == sorted([ids[0], ids[2]])


@pytest.fixture
def ek() -> Iterator[Engine]:
    with Engine(connect()) as eng:
        yield eng


@pytest.fixture
def one_char_cleanup(driver: DockerDriver) -> Iterator[None]:
    yield
    for c in driver.container_list(all=True, labels=LABELS):
        if len(c.name) == 1:
            with contextlib.suppress(EngineError):
                driver.container_remove(c.id, force=True)


@pytest.mark.usefixtures("one_char_cleanup")
@pytest.mark.parametrize("name", ["a", "Z", "7"])
def test_one_character_name(ek: Engine, driver: DockerDriver, image: str, name: str) -> None:
    for c in driver.container_list(all=True, name=name):  # a leftover of a killed run
        if c.labels.get("enginekit.test", "").startswith("docker-adapter-"):
            driver.container_remove(c.id, force=True)
    labels = {**LABELS, "one": RUN}
    c = ek.containers.create(image, list(SLEEP), name=name, labels=labels)
    try:
        assert c.name == name and NAME_LABEL not in c.labels and dict(c.labels) == labels
        assert ek.containers.get(name) == c
        assert [x.id for x in ek.containers.list(all=True, name=name)] == [c.id]
        assert ek.containers.list(name=name) == []
        with pytest.raises(Conflict):
            ek.containers.create(image, ["true"], name=name, labels=labels)
        started = ek.containers.start(name)
        assert started.state is ContainerState.RUNNING and started.name == name
        assert ek.containers.list(name=name) == [ek.containers.get(name)]
        listed = ek.containers.list(all=True, labels=labels)
        assert [x.name for x in listed if x.id == c.id] == [name]
        stopped = ek.containers.stop(name, timeout=5)
        assert stopped.state is ContainerState.EXITED
        # the Docker name it is stored under is no ref
        with pytest.raises(ContainerNotFound):
            driver.container_inspect(engine_name(name))
        ek.containers.remove(name)
        with pytest.raises(ContainerNotFound):
            ek.containers.get(name)
        assert ek.containers.list(all=True, name=name) == []
        ran = ek.containers.run(image, list(SLEEP), name=name, labels=labels)
        assert ran.name == name and ran.state is ContainerState.RUNNING
        ek.containers.remove(name, force=True)
    finally:
        with contextlib.suppress(EngineError):
            ek.containers.remove(c, force=True)


def test_one_character_ref_is_never_an_id_prefix(
    ek: Engine, driver: DockerDriver, make: Make
) -> None:
    cid = make(SLEEP)
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(cid[0])
    with pytest.raises(ContainerNotFound):
        ek.containers.get(cid[0])


def test_a_label_alone_names_nothing(driver: DockerDriver, make: Make) -> None:
    # A container that merely carries the label keeps its own name and the label.
    cid = make(SLEEP, labels={NAME_LABEL: "q"})
    c = driver.container_inspect(cid)
    assert c.name != "q" and c.labels[NAME_LABEL] == "q"
    assert all(x.id != cid for x in driver.container_list(all=True, name="q"))


def test_name_mapping() -> None:
    assert engine_name("ab") == "ab" and engine_name("a-") == "a-"
    mapped = engine_name("a")
    assert mapped.startswith("a--ek-") and len(mapped) > 63  # beyond any valid name
    assert len({engine_name(c) for c in "aZ7"}) == 3
    assert user_view(mapped, {NAME_LABEL: "a", "k": "v"}) == ("a", {"k": "v"})
    # the label names the container only under its mapped Docker name
    assert user_view("other", {NAME_LABEL: "a"}) == ("other", {NAME_LABEL: "a"})
    assert user_view(mapped, {NAME_LABEL: "b"}) == (mapped, {NAME_LABEL: "b"})
