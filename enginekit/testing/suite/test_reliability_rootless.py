"""Reliability: a host port below the unprivileged start, rootful and rootless.

A rootless engine (``EngineInfo.rootless``: a rootless Podman service) cannot
bind a host port below its host's ``net.ipv4.ip_unprivileged_port_start``
(1024 unless lowered). Asked to publish one, ``create`` and ``run`` raise
``Unsupported`` naming the port and why, before anything is made (the engine
would make the container and fail to start it). An engine running as root
publishes it as any other port.

The suite's engines run on this machine (or, over ssh, the test host reaching
its own engines), so the start is read here. The port is published, and asked
for, at the engine host's published address (127.0.0.1 for an engine here).
"""

from __future__ import annotations

import contextlib
import errno
import pathlib
import socket
import uuid
from typing import TYPE_CHECKING

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import EngineError, Unsupported

from ..helpers import http_get, published_address

if TYPE_CHECKING:
    from enginekit import Engine

MARK = "enginekit.test.lowport"
HTTPD = [
    "sh",
    "-c",
    "mkdir -p /tmp/www && printf 'low\\n' > /tmp/www/index.html"
    " && exec httpd -f -p 8080 -h /tmp/www",
]


def _unprivileged_start() -> int:
    path = pathlib.Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 1024


def _free_low_port(below: int, address: str) -> int:
    """A port under ``below`` (and under 1024) that nothing on ``address`` holds."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for port in range(min(below, 1024) - 1, 600, -1):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
                return port
            except PermissionError:
                pass  # not root here: nothing listening is free enough
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:  # else: not this machine's address
                    continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            if s.connect_ex((address, port)) != 0:
                return port
    pytest.fail(f"no free port on {address} below {below}")


def _left(engine: Engine, mark: str) -> list[str]:
    return sorted(c.id for c in engine.containers.list(all=True, labels={MARK: mark}))


def _remove_marked(engine: Engine, mark: str) -> None:
    for cid in _left(engine, mark):
        with contextlib.suppress(EngineError):
            engine.containers.remove(cid, force=True)


@pytest.mark.requires(Capability.PORTS)
class TestReliabilityLowHostPort:
    def test_low_port_published_or_unsupported_before_anything_is_made(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        start = _unprivileged_start()
        if start == 0:
            start = 1024  # every port is open to every user here: any low one shows it
        address = published_address(engine)
        port = _free_low_port(start, address)
        mark = uuid.uuid4().hex[:12]
        marked = {**labels, MARK: mark}
        rootless = engine.info().rootless
        refused = rootless and port < _unprivileged_start()
        try:
            if refused:
                for call in (engine.containers.create, engine.containers.run):
                    with pytest.raises(Unsupported) as info:
                        call(base_image, HTTPD, ports={8080: (address, port)}, labels=marked)
                    text = str(info.value)
                    assert f"port {port}" in text and "ip_unprivileged_port_start" in text, text
                    assert info.value.engine == engine.name
                    assert _left(engine, mark) == [], f"{call.__name__} made a container"
                return
            c = engine.containers.run(
                base_image, HTTPD, ports={8080: (address, port)}, labels=marked
            )
            assert [(p.host_ip, p.host_port) for p in c.ports] == [(address, port)]
            assert http_get(port, host=address) == b"low\n"
        finally:
            _remove_marked(engine, mark)
