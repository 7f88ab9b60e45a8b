"""What the core asks about the engine's host, which need not be this machine.

A driver may say three things about where its engine runs (see
:class:`~enginekit.driver.Driver`); a driver that does not is taken to drive an
engine on this machine:

- ``published_address``: the address a client reaches a port published by this
  engine at. A port whose host side is not given is published there (the
  remote host's address for a remote engine; ``127.0.0.1`` locally).
- ``host_cpus()``: how many CPUs the engine's host has (the most ``cpus`` may be).
- ``host_path_exists(path)``: whether ``path`` exists on the engine's host
  (a bind mount's source is looked for there, not on this machine).

The readers here are what :mod:`enginekit.validate` and :mod:`enginekit.engine`
call; the rest are parts remote drivers share: :func:`address_of` (a host name
as the address a client reaches, resolved once) and :func:`remote_path_exists`
(``test -e`` through an ssh connection).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import threading
from typing import TYPE_CHECKING, Any

from .errors import EngineUnavailable

if TYPE_CHECKING:
    from .sshtunnel import SshTunnel

__all__ = [
    "LOCAL_ADDRESS",
    "RemoteHostFacts",
    "address_of",
    "host_cpus",
    "host_path_exists",
    "published_address",
    "remote_path_exists",
]

#: Where a port published by an engine on this machine is reached, and published by default.
LOCAL_ADDRESS = "127.0.0.1"
#: How long ``test -e`` over ssh may take.
_TEST_TIMEOUT = 30.0


def published_address(driver: Any) -> str:
    """The address a client reaches ports published by ``driver``'s engine at."""
    value = getattr(driver, "published_address", None)
    if not isinstance(value, str) or not value:
        return LOCAL_ADDRESS
    return value


def host_cpus(driver: Any) -> int:
    """The CPUs of ``driver``'s engine's host (this machine's when the driver does not say)."""
    ask = getattr(driver, "host_cpus", None)
    count = ask() if callable(ask) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        count = os.cpu_count() or 1
    return count


def host_path_exists(driver: Any, path: str) -> bool:
    """Whether ``path`` exists on ``driver``'s engine's host (this machine's disk
    when the driver does not say)."""
    ask = getattr(driver, "host_path_exists", None)
    if callable(ask):
        return bool(ask(path))
    return os.path.exists(path)


def address_of(host: str) -> str:
    """``host`` (a name or an address) as the IP address a client reaches it at.

    A name is resolved (IPv4 first, as engines publish on it by default); any
    loopback address is ``127.0.0.1``. A name that does not resolve is kept as
    it is written: the engine then says what it makes of it.
    """
    text = host.strip().strip("[]")
    ip = _ip(text)
    if ip is None:
        for family in (socket.AF_INET, socket.AF_UNSPEC):
            try:
                found = socket.getaddrinfo(text, None, family, socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                continue
            if found:
                ip = _ip(str(found[0][4][0]))
                break
    if ip is None:
        return text
    if ip.is_loopback:
        return LOCAL_ADDRESS
    return str(ip)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def remote_path_exists(tunnel: SshTunnel, path: str) -> bool:
    """Whether ``path`` exists on the host ``tunnel`` reaches (``test -e`` there).

    ssh joins a command's words with spaces for the remote user's shell, so the
    path goes as one single-quoted word (:func:`shlex.quote`): spaces, quotes,
    ``$`` and globs in it reach ``test`` unchanged. ``test`` follows a symbolic
    link, as :func:`os.path.exists` does. Exit status 0 is yes, 1 no; anything
    else (the connection failed) is :class:`EngineUnavailable`.
    """
    if not path.startswith("/") or "\x00" in path or "\n" in path:
        return False
    status, _, err = tunnel.run(("test", "-e", shlex.quote(path)), timeout=_TEST_TIMEOUT)
    if status in (0, 1):
        return status == 0
    said = next((line.strip() for line in err.splitlines() if line.strip()), "")
    raise EngineUnavailable(
        f"{tunnel.name}: cannot look for a path on {tunnel.address.host} "
        f"(`test -e` there exited with status {status}" + (f": {said[:200]})" if said else ")"),
        address=tunnel.address.url,
    )


class RemoteHostFacts:
    """The host facts of a driver whose engine runs on another host (ssh or TCP),
    for the HTTP adapters to mix in: ``published_address`` (ssh's ``HostName``
    for the host, else the TCP host, resolved once), ``host_cpus()`` (the
    engine's own count, asked once through :meth:`_engine_cpus`) and
    ``host_path_exists()`` (``test -e`` over ssh; over TCP, with no shell
    there, True: the engine then refuses a missing source itself).
    """

    address: str

    def _init_host_facts(self, host: str, tunnel: SshTunnel | None) -> None:
        self._remote_host = host
        self._ssh = tunnel
        self._facts_lock = threading.Lock()
        self._published: str | None = None
        self._cpus: int | None = None

    def _engine_cpus(self) -> tuple[object, str]:
        """The CPU count as the engine's info says it, and where (for a message)."""
        raise NotImplementedError

    @property
    def published_address(self) -> str:
        """The address a client reaches the engine's published ports at (its host's)."""
        found = self._published
        if found is None:
            with self._facts_lock:
                if self._published is None:
                    name = self._ssh.hostname() if self._ssh is not None else self._remote_host
                    self._published = address_of(name)
                found = self._published
        return found

    def host_cpus(self) -> int:
        """The CPUs of the engine's host, asked of the engine once."""
        found = self._cpus
        if found is None:
            count, where = self._engine_cpus()
            found = count if isinstance(count, int) and not isinstance(count, bool) else 0
            if found < 1:
                raise EngineUnavailable(
                    f"the engine says no CPU count ({where})", address=self.address
                )
            self._cpus = found
        return found

    def host_path_exists(self, path: str) -> bool:
        """Whether ``path`` exists on the engine's host."""
        if self._ssh is None:
            return True
        return remote_path_exists(self._ssh, path)
