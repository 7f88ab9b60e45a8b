"""Where ``oom_killed`` comes from, by libpod version (driver over a stand-in service).

Podman 4.x never sets ``State.OOMKilled`` (its conmon writes the OOM marker
where libpod does not read it), so the driver works it out from the events;
5.x records it, on cgroup v1 and v2 alike, and the driver takes it as it is
and asks nothing more. The answers are the recorded 5.8.6 ones
(``container_5.8.6_v2_oom.json``, ``events_5.8.6_oom.json``).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from enginekit_podman import connect

from .fakeservice import FakeService, serve

DATA = pathlib.Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def ping(version: str) -> dict[str, str]:
    return {"Libpod-Api-Version": version, "Api-Version": "1.41"}


@pytest.fixture
def service(tmp_path: pathlib.Path) -> Iterator[FakeService]:
    with serve(tmp_path / "podman.sock") as server:
        server.routes["/libpod/info"] = load("info_5.8.6_rootful_v2.json")
        events = load("events_5.8.6_oom.json")
        server.routes["/libpod/events"] = "\n".join(json.dumps(e) for e in events).encode()
        yield server


def _inspect(service: FakeService, *, recorded: bool) -> tuple[str, dict[str, Any]]:
    raw = load("container_5.8.6_v2_oom.json")
    raw["State"]["OOMKilled"] = recorded
    service.routes[f"/libpod/containers/{raw['Id']}/json"] = raw
    return str(raw["Id"]), raw


@pytest.mark.parametrize("recorded", [True, False])
def test_5x_state_is_taken_as_it_is(service: FakeService, recorded: bool) -> None:
    service.ping_headers = ping("5.8.6")
    cid, _ = _inspect(service, recorded=recorded)
    d = connect(service.address)
    c = d.container_inspect(cid)
    assert c.exit_code == 137 and c.oom_killed is recorded
    assert service.asked("/libpod/events") == 0
    d.close()


def test_4x_works_it_out_from_the_events(service: FakeService) -> None:
    service.ping_headers = ping("4.3.1")
    cid, _ = _inspect(service, recorded=False)
    d = connect(service.address)
    assert d.container_inspect(cid).oom_killed is True
    assert service.asked("/libpod/events") == 1
    d.container_inspect(cid)  # final (the container died): remembered
    assert service.asked("/libpod/events") == 1
    d.close()


def test_4x_a_kill_through_the_engine_is_no_oom(service: FakeService) -> None:
    service.ping_headers = ping("4.3.1")
    cid, _ = _inspect(service, recorded=False)
    events = load("events_5.8.6_oom.json")
    kill = dict(events[2], status="kill", Action="kill")
    events.insert(3, kill)
    service.routes["/libpod/events"] = "\n".join(json.dumps(e) for e in events).encode()
    d = connect(service.address)
    assert d.container_inspect(cid).oom_killed is False
    d.close()
