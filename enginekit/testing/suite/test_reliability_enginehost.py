"""Reliability: nothing assumes the engine is on this machine (CONTRACT.md, "Where it runs").

- A port whose host side is not given is published where a client reaches the
  engine's host (``published_address``: 127.0.0.1 for an engine here, the
  remote host's address for one reached over ssh or TCP), and ``Container.ports``
  says that address: a GET there answers.
- ``cpus`` is checked against the CPUs of the engine's host: as many as it has
  are taken, one more is ``InvalidSpec`` saying so, before anything is made.
- A bind mount's source is looked for on the engine's host: a missing one is
  ``InvalidSpec`` ("does not exist on the engine's host") from ``create`` and
  ``run`` alike, before anything is made.

Traffic goes only to the engine host's published address (127.0.0.1 here),
one successful GET.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import pytest

from enginekit import hostfacts
from enginekit.capabilities import Capability
from enginekit.errors import EngineError, InvalidSpec
from enginekit.models import Mount

from ..helpers import http_get, published_address

if TYPE_CHECKING:
    from enginekit import Engine

MARK = "enginekit.test.enginehost"
HTTPD = [
    "sh",
    "-c",
    "mkdir -p /tmp/www && printf 'where\\n' > /tmp/www/index.html"
    " && exec httpd -f -p 8080 -h /tmp/www",
]


def _marked(labels: dict[str, str]) -> tuple[dict[str, str], str]:
    mark = uuid.uuid4().hex[:12]
    return {**labels, MARK: mark}, mark


def _left(engine: Engine, mark: str) -> list[str]:
    return sorted(c.id for c in engine.containers.list(all=True, labels={MARK: mark}))


def _remove_marked(engine: Engine, mark: str) -> None:
    for cid in _left(engine, mark):
        with contextlib.suppress(EngineError):
            engine.containers.remove(cid, force=True)


class TestReliabilityEngineHost:
    @pytest.mark.requires(Capability.PORTS, Capability.NETWORK_BRIDGE)
    def test_a_port_is_published_where_a_client_reaches_the_engine_host(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        address = published_address(engine)
        marked, mark = _marked(labels)
        try:
            c = engine.containers.run(
                base_image, HTTPD, ports={8080: None, 8081: (None, 0)}, labels=marked
            )
            for snap in (c, engine.containers.get(c)):
                got = [(b.container_port, b.host_ip) for b in snap.ports]
                assert got == [(8080, address), (8081, address)], snap.ports
            port = next(b.host_port for b in c.ports if b.container_port == 8080)
            assert port
            assert http_get(port, "/index.html", host=address) == b"where\n"
        finally:
            _remove_marked(engine, mark)

    @pytest.mark.requires(Capability.CPU_LIMIT)
    def test_cpus_are_checked_against_the_engine_host(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        available = hostfacts.host_cpus(engine.driver)
        marked, mark = _marked(labels)
        try:
            for call in (engine.containers.create, engine.containers.run):
                with pytest.raises(InvalidSpec) as info:
                    call(base_image, ["true"], cpus=available + 1, labels=marked)
                assert str(info.value) == (
                    f"cpus must be between 0.01 and {available} (the CPUs of the engine's host)"
                )
                assert _left(engine, mark) == [], f"{call.__name__} made a container"
            c = engine.containers.create(base_image, ["true"], cpus=available, labels=marked)
            assert engine.containers.get(c).resources.cpus == available
        finally:
            _remove_marked(engine, mark)

    @pytest.mark.requires(Capability.BIND_MOUNTS)
    def test_a_mount_source_missing_on_the_engine_host_is_refused_before_anything_is_made(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        marked, mark = _marked(labels)
        missing = f"/nonexistent-enginekit-{mark}/it's$here"
        try:
            for call in (engine.containers.create, engine.containers.run):
                with pytest.raises(InvalidSpec) as info:
                    call(
                        base_image,
                        ["true"],
                        mounts=[Mount(source=missing, target="/data")],
                        labels=marked,
                    )
                assert str(info.value) == "mount source does not exist on the engine's host"
                assert _left(engine, mark) == [], f"{call.__name__} made a container"
        finally:
            _remove_marked(engine, mark)
