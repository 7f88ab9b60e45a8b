"""Addresses on the LXC bridge for containers with ``network="bridge"``.

LXC containers made by enginekit run no DHCP client: each start leases a
free address of the bridge's subnet (from the top down, away from the low
addresses LXC's own dnsmasq hands out first) and the monitor gives it back
when the container stops. Leases are machine-wide, whatever the storage root
(two drivers on one bridge must never hand out one address twice): one file
per address under ``/run/enginekit/lxc-net/<bridge>/`` holding the owning
container's directory, taken under a lock. A lease counts as held while the
owner's monitor lives (its ``monitor.lock``), or for a minute after it was
taken (a start under way); ``/run`` is emptied at boot, as the containers are.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import time

from enginekit.toolkit.errors import EngineError, EngineUnavailable

__all__ = ["LEASE_ROOT", "allocate", "bridge_network", "release"]

LEASE_ROOT = "/run/enginekit/lxc-net"
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


def _owner(lease: str) -> str | None:
    try:
        with open(lease) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _monitor_alive(cdir: str) -> bool:
    try:
        fd = os.open(os.path.join(cdir, "monitor.lock"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _held(lease: str, owner: str) -> bool:
    try:
        age = time.time() - os.stat(lease).st_mtime
    except OSError:
        return False
    return age < _HOLD_WHILE_STARTING or _monitor_alive(owner)


def allocate(cdir: str, bridge: str) -> tuple[str, str, str]:
    """Lease a free address for the container in ``cdir``:
    (``address/prefix``, gateway, the lease file to give back)."""
    net = bridge_network(bridge)
    leases = os.path.join(LEASE_ROOT, bridge)
    os.makedirs(leases, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(leases, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for candidate in reversed(list(net.network.hosts())):
            if candidate == net.ip:
                continue
            lease = os.path.join(leases, str(candidate))
            owner = _owner(lease)
            if owner is not None and owner != cdir and _held(lease, owner):
                continue
            tmp = f"{lease}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(cdir)
            os.replace(tmp, lease)
            return f"{candidate}/{net.network.prefixlen}", str(net.ip), lease
    finally:
        os.close(fd)
    raise EngineError(f"no free address left on {bridge} ({net.network})")


def release(lease: str | None, cdir: str) -> None:
    """Give the lease back, if the container in ``cdir`` still holds it."""
    if lease and _owner(lease) == cdir:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lease)
