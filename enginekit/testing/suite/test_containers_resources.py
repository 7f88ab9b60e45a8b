"""Containers: published ports, networks, bind mounts, stats.

CONTRACT.md, "Containers" (``ports``: container port -> host port or
``(host_ip, host_port)``; ``network`` ``"none"``/``"bridge"``, a published
port reachable at the address a client reaches the engine's host at
(127.0.0.1 for an engine on this machine: "Where it runs"), ``"none"`` leaves
only loopback; ``mounts``; ``stats``). Traffic goes only to 127.0.0.1 or that
address, a bounded handful of requests.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import pytest

from enginekit import Capability, Mount, PortBinding, Stats
from enginekit.testing.helpers import free_host_port, http_get, poll, published_address

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

SLEEP = ["sleep", "100"]
BODY = b"hello from enginekit\n"
HTTPD = [
    "sh",
    "-c",
    "mkdir -p /tmp/www && printf 'hello from enginekit\\n' > /tmp/www/index.html"
    " && exec httpd -f -p 8080 -h /tmp/www",
]


def _interfaces(output: bytes) -> set[str]:
    """Interface names from ``/proc/net/dev``."""
    names = set()
    for line in output.decode().splitlines()[2:]:
        name, sep, _ = line.partition(":")
        if sep:
            names.add(name.strip())
    return names


def _binding(c: Container, port: int) -> PortBinding:
    found = [b for b in c.ports if b.container_port == port]
    assert len(found) == 1, c.ports
    return found[0]


@pytest.mark.requires(Capability.PORTS, Capability.NETWORK_BRIDGE)
class TestContainerPorts:
    def test_engine_picks_host_port(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(HTTPD, ports={8080: None})
        address = published_address(engine)
        for snap in (c, engine.containers.get(c)):
            binding = _binding(snap, 8080)
            assert binding.protocol == "tcp"
            assert binding.host_ip == address  # where a client reaches it
            assert isinstance(binding.host_port, int) and binding.host_port > 0
            port = binding.host_port
        assert http_get(port, "/index.html", host=address) == BODY

    def test_host_ip_and_port_given(
        self,
        engine: Engine,
        run_container: ContainerFactory,
        base_image: str,
        labels: dict[str, str],
    ) -> None:
        host_port = free_host_port(engine, base_image, labels)
        address = published_address(engine)
        c = run_container(HTTPD, ports={8080: (address, host_port)})
        for snap in (c, engine.containers.get(c)):
            binding = _binding(snap, 8080)
            assert binding == PortBinding(
                container_port=8080, protocol="tcp", host_ip=address, host_port=host_port
            )
        assert http_get(host_port, "/index.html", host=address) == BODY

    def test_host_port_given(
        self,
        engine: Engine,
        run_container: ContainerFactory,
        base_image: str,
        labels: dict[str, str],
    ) -> None:
        host_port = free_host_port(engine, base_image, labels)
        c = run_container(HTTPD, ports={8080: host_port})
        binding = _binding(engine.containers.get(c), 8080)
        assert (binding.host_ip, binding.host_port) == (published_address(engine), host_port)
        assert http_get(host_port, "/index.html", host=published_address(engine)) == BODY

    def test_ports_of_created_container(
        self,
        engine: Engine,
        create_container: ContainerFactory,
        base_image: str,
        labels: dict[str, str],
    ) -> None:
        host_port = free_host_port(engine, base_image, labels)
        address = published_address(engine)
        c = create_container(HTTPD, ports={8080: (None, host_port)})
        assert (_binding(c, 8080).host_ip, _binding(c, 8080).host_port) == (address, host_port)
        started = engine.containers.start(c)
        assert _binding(started, 8080).host_port == host_port
        assert http_get(host_port, "/index.html", host=address) == BODY


class TestContainerNetwork:
    @pytest.mark.requires(Capability.NETWORK_NONE)
    def test_none_has_only_loopback(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["cat", "/proc/net/dev"], network="none")
        assert engine.containers.wait(c, timeout=30) == 0
        assert _interfaces(engine.containers.logs(c)) == {"lo"}
        assert engine.containers.get(c).network == "none"

    @pytest.mark.requires(Capability.NETWORK_BRIDGE)
    def test_bridge_is_default(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["cat", "/proc/net/dev"])
        assert engine.containers.wait(c, timeout=30) == 0
        names = _interfaces(engine.containers.logs(c))
        assert "lo" in names
        assert names - {"lo"}, f"no interface but loopback on the default bridge: {names}"
        assert engine.containers.get(c).network == "bridge"


@pytest.mark.requires(Capability.BIND_MOUNTS)
class TestContainerMounts:
    def test_read_write(
        self, engine: Engine, run_container: ContainerFactory, mount_source: pathlib.Path
    ) -> None:
        (mount_source / "in.txt").write_bytes(b"from host\n")
        c = run_container(
            ["sh", "-c", "cat /data/in.txt && echo from container > /data/out.txt"],
            mounts=[Mount(source=str(mount_source), target="/data")],
        )
        assert engine.containers.wait(c, timeout=30) == 0
        assert engine.containers.logs(c) == b"from host\n"
        assert (mount_source / "out.txt").read_bytes() == b"from container\n"

    def test_read_only_refuses_writes(
        self, engine: Engine, run_container: ContainerFactory, mount_source: pathlib.Path
    ) -> None:
        (mount_source / "in.txt").write_bytes(b"from host\n")
        c = run_container(
            ["sh", "-c", "cat /data/in.txt; echo x > /data/out.txt; echo rc=$?"],
            mounts=[Mount(source=str(mount_source), target="/data", read_only=True)],
        )
        assert engine.containers.wait(c, timeout=30) == 0
        out = engine.containers.logs(c, stderr=False)
        assert out.startswith(b"from host\n")
        assert out.endswith(b"rc=1\n") or out.endswith(b"rc=2\n"), out
        assert not (mount_source / "out.txt").exists()
        assert list(mount_source.iterdir()) == [mount_source / "in.txt"]

    @pytest.mark.requires(Capability.EXEC)
    def test_host_change_seen_inside(
        self, engine: Engine, run_container: ContainerFactory, mount_source: pathlib.Path
    ) -> None:
        c = run_container(SLEEP, mounts=[Mount(source=str(mount_source), target="/data")])
        (mount_source / "late.txt").write_bytes(b"later\n")
        assert engine.containers.exec(c, ["cat", "/data/late.txt"]).stdout == b"later\n"


@pytest.mark.requires(Capability.STATS, Capability.MEMORY_LIMIT)
class TestContainerStats:
    def test_stats_sample(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "sleep 100 & sleep 100"], memory="64m")
        stats = engine.containers.stats(c)
        assert isinstance(stats, Stats)
        assert isinstance(stats.cpu_seconds, float) and stats.cpu_seconds >= 0
        assert isinstance(stats.memory_bytes, int) and stats.memory_bytes > 0
        assert stats.memory_limit == 67108864
        assert stats.pids is not None and stats.pids >= 1

    def test_cpu_time_grows(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "while :; do :; done"])
        first = engine.containers.stats(c).cpu_seconds
        poll(
            lambda: engine.containers.stats(c).cpu_seconds > first + 0.05,
            timeout=15,
            message="cpu_seconds to grow while the container spins",
        )
