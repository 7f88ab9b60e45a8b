"""The Engine that containers are reached through: info, capabilities, a
second connection, concurrent use from threads, and the host network.

CONTRACT.md, "Connecting" (``Engine`` is a context manager, thread-safe, with
``name``, ``info()``, ``capabilities``; ``enginekit.engines()``) and
"Containers" (``network="host"``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

import enginekit
from enginekit import Capability, ContainerState, EngineInfo
from enginekit.errors import ContainerNotFound

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import ContainerFactory


class TestEngineConnection:
    def test_info(self, engine: Engine) -> None:
        info = engine.info()
        assert isinstance(info, EngineInfo)
        assert info.version
        assert info.os
        assert info.arch

    def test_capabilities_are_data(self, engine: Engine) -> None:
        caps = engine.capabilities
        assert isinstance(caps, frozenset)
        assert all(isinstance(c, Capability) for c in caps)
        assert engine.capabilities == caps

    def test_second_engine_is_a_context_manager(
        self, engine: Engine, engine_name: str, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "100"])
        with enginekit.connect(engine_name) as other:
            assert other.name == engine.name
            assert other.capabilities == engine.capabilities
            assert other.containers.get(c.id).state is ContainerState.RUNNING
        # Closing the second one leaves the first working.
        assert engine.containers.get(c.id).state is ContainerState.RUNNING

    def test_engines_reports_it_reachable(self, engine: Engine) -> None:
        found = [s for s in enginekit.engines() if s.name == engine.name]
        assert len(found) == 1, enginekit.engines()
        assert found[0].reachable is True, found[0]


class TestEngineThreads:
    def test_one_engine_many_threads(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        make_name: Callable[..., str],
    ) -> None:
        def job(i: int) -> tuple[int, int, bytes, bytes]:
            c = engine.containers.run(
                base_image,
                ["sh", "-c", f"echo out{i}; echo err{i} >&2; exit {i % 4}"],
                name=make_name(f"t{i}"),
                labels=labels,
            )
            code = engine.containers.wait(c, timeout=60)
            out = engine.containers.logs(c, stderr=False)
            err = engine.containers.logs(c, stdout=False)
            engine.containers.remove(c)
            with pytest.raises(ContainerNotFound):
                engine.containers.get(c.id)
            return i, code, out, err

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(job, range(12), timeout=300))
        for i, code, out, err in results:
            assert code == i % 4
            assert out == f"out{i}\n".encode()
            assert err == f"err{i}\n".encode()


def _default_route_interface() -> str | None:
    lines = pathlib.Path("/proc/net/route").read_text().splitlines()[1:]
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return fields[0]
    return None


@pytest.mark.requires(Capability.NETWORK_HOST)
class TestContainerHostNetwork:
    def test_host_network_sees_host_interfaces(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["cat", "/proc/net/dev"], network="host")
        assert engine.containers.wait(c, timeout=30) == 0
        seen = {
            line.partition(":")[0].strip()
            for line in engine.containers.logs(c).decode().splitlines()[2:]
            if ":" in line
        }
        host_if = _default_route_interface()
        assert host_if is not None, "the host has no default route to compare with"
        assert host_if in seen, seen
        assert engine.containers.get(c).network == "host"
