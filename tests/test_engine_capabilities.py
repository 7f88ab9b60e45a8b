"""The facade refuses what the engine instance cannot do, before the driver is called.

A recording driver that declares nothing: every gated operation raises
``Unsupported`` naming the capability and the driver's reason, and the driver
sees no call that would create or change anything. (The contract suite checks
the same on real engines, for whatever each instance lacks.)
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import enginekit
from enginekit import Capability
from enginekit.engine import Engine
from enginekit.errors import Unsupported
from enginekit.models import Container, ContainerState, EngineInfo

CID = "ab" * 32


class RecordingDriver:
    name = "ektrec"
    address = "nowhere"

    def __init__(self, capabilities: frozenset[Capability] = frozenset()) -> None:
        self.capabilities = capabilities
        self.unsupported = {c: f"no {c.value} on this host" for c in Capability}
        self.calls: list[str] = []

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        if not attr.startswith(("container_", "image_")):
            raise AttributeError(attr)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(attr)
            if attr == "container_inspect":
                return Container(
                    id=CID, name="c", image="i:1", state=ContainerState.RUNNING, engine="ektrec"
                )
            return None

        return call

    def info(self) -> EngineInfo:
        return EngineInfo(name="ektrec", version="1")

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


def _context(tmp: Path) -> str:
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    return str(tmp)


GATED: dict[Capability, Callable[[Engine, Path], object]] = {
    Capability.BUILD: lambda e, t: e.images.build(_context(t), tag="a:1"),
    Capability.IMAGE_SAVE: lambda e, t: e.images.save("a:1", t / "x.tar"),
    Capability.IMAGE_LOAD: lambda e, t: e.images.load(t / "x.tar"),
    Capability.PULL: lambda e, t: e.images.pull("127.0.0.1:5000/a:1"),
    Capability.PUSH: lambda e, t: e.images.push("127.0.0.1:5000/a:1"),
    Capability.PAUSE: lambda e, t: e.containers.pause(CID),
    Capability.EXEC: lambda e, t: e.containers.exec(CID, ["true"]),
    Capability.STATS: lambda e, t: e.containers.stats(CID),
    Capability.COPY: lambda e, t: e.containers.copy_to(CID, t, "/tmp"),
    Capability.PORTS: lambda e, t: e.containers.run("a:1", ports={80: None}),
    Capability.BIND_MOUNTS: lambda e, t: e.containers.run("a:1", mounts=[f"{t}:/d"]),
    Capability.MEMORY_LIMIT: lambda e, t: e.containers.run("a:1", memory="64m"),
    Capability.CPU_LIMIT: lambda e, t: e.containers.create("a:1", cpus=1.5),
    Capability.PIDS_LIMIT: lambda e, t: e.containers.run("a:1", pids_limit=10),
    Capability.NETWORK_NONE: lambda e, t: e.containers.run("a:1", network="none"),
    Capability.NETWORK_BRIDGE: lambda e, t: e.containers.run("a:1"),
    Capability.NETWORK_HOST: lambda e, t: e.containers.run("a:1", network="host"),
}


def test_every_capability_is_gated() -> None:
    assert set(GATED) == set(Capability)


@pytest.mark.parametrize("capability", sorted(Capability, key=str), ids=str)
def test_missing_capability_is_unsupported_before_the_driver(
    capability: Capability, tmp_path: Path
) -> None:
    others = frozenset(Capability) - {capability}
    driver = RecordingDriver(others)
    engine = Engine(driver)  # type: ignore[arg-type]
    with pytest.raises(Unsupported) as info:
        GATED[capability](engine, tmp_path)
    err = info.value
    assert err.capability == capability.value
    assert err.engine == "ektrec"
    assert f"no {capability.value} on this host" in str(err)
    assert not [c for c in driver.calls if c != "container_inspect"], driver.calls
    assert engine.unsupported == {capability: f"no {capability.value} on this host"}
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), str(again), again.capability) == (Unsupported, str(err), err.capability)


def test_declared_capabilities_reach_the_driver(tmp_path: Path) -> None:
    driver = RecordingDriver(frozenset(Capability))
    engine = Engine(driver)  # type: ignore[arg-type]
    engine.containers.run("a:1", memory="64m", ports={80: None}, network="host")
    engine.containers.pause(CID)
    assert "container_create" in driver.calls
    assert "container_pause" in driver.calls
    assert engine.unsupported == {}


def test_a_driver_without_reasons_still_refuses() -> None:
    driver = RecordingDriver(frozenset())
    del driver.unsupported
    engine = Engine(driver)  # type: ignore[arg-type]
    with pytest.raises(Unsupported, match=r"ektrec does not support pause$"):
        engine.containers.pause(CID)
    assert engine.unsupported == {}


def test_engine_status_carries_info_and_capabilities() -> None:
    status = enginekit.EngineStatus(
        name="x",
        reachable=True,
        info=EngineInfo(name="x", version="1", cgroup_version=2, rootless=True),
        capabilities=frozenset({Capability.EXEC}),
        unsupported={Capability.PAUSE: "rootless on cgroup v1"},
    )
    assert status.info is not None and status.info.cgroup_version == 2
    assert status.unsupported[Capability.PAUSE] == "rootless on cgroup v1"
