"""Addresses on the LXC bridge for containers with ``network="bridge"``.

LXC containers made by enginekit run no DHCP client: each start takes a free
address of the bridge's subnet (from the top down, away from the low
addresses LXC's own dnsmasq hands out first) and frees it when the container
stops. The allocation lives in ``<container dir>/ip`` and is taken under the
store lock; an address counts as held while its container's monitor lives,
or for a minute after it was taken (a start under way).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
import time

from enginekit.errors import EngineError, EngineUnavailable

from .store import ContainerStore

__all__ = ["IP_FILE", "allocate", "bridge_network"]

IP_FILE = "ip"
_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_HOLD_WHILE_STARTING = 60.0


def bridge_network(bridge: str) -> ipaddress.IPv4Interface:
    """The bridge's IPv4 address and prefix (``EngineUnavailable`` without one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", bridge.encode()[:15])
        try:
            addr = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, req)[20:24]
        except OSError as exc:
            raise EngineUnavailable(
                f"the LXC bridge {bridge} has no IPv4 address",
                address=bridge,
                hint="start it with `/usr/libexec/lxc/lxc-net start`",
            ) from exc
    return ipaddress.IPv4Interface(f"{socket.inet_ntoa(addr)}/{socket.inet_ntoa(mask)}")


def _held(store: ContainerStore, id: str) -> str | None:
    path = store.path(id, IP_FILE)
    try:
        with open(path) as fh:
            ip = fh.read().strip()
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return None
    if store.monitor_alive(id) or age < _HOLD_WHILE_STARTING:
        return ip
    return None


def allocate(store: ContainerStore, id: str, bridge: str) -> tuple[str, str]:
    """A free ``address/prefix`` for container ``id`` and the gateway."""
    net = bridge_network(bridge)
    with store.lock():
        used = {net.ip}
        for other in store.ids():
            if other == id:
                continue
            ip = _held(store, other)
            if ip:
                used.add(ipaddress.IPv4Interface(ip).ip)
        hosts = list(net.network.hosts())
        for candidate in reversed(hosts):
            if candidate not in used:
                value = f"{candidate}/{net.network.prefixlen}"
                with open(store.path(id, IP_FILE), "w") as fh:
                    fh.write(value)
                return value, str(net.ip)
    raise EngineError(f"no free address left on {bridge} ({net.network})")
