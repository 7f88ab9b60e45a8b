"""The contract suite's local registry (:mod:`enginekit.testing.registry`)."""

from __future__ import annotations

import http.client
import os
import pathlib

import pytest

from enginekit.testing import registry as reg


def _get(address: str, path: str) -> int:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _listeners(pid: int) -> set[str]:
    """Local addresses of the TCP sockets process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for line in pathlib.Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
            ip_hex, port_hex = fields[1].split(":")
            ip = ".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
            found.add(f"{ip}:{int(port_hex, 16)}")
    return found


def _registry_pids() -> set[int]:
    pids = set()
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm == "docker-registry" and state != "Z":
                pids.add(int(entry.name))
    return pids


def test_local_registry_listens_on_loopback_only_and_leaves_nothing() -> None:
    before = _registry_pids()
    with reg.local_registry() as address:
        assert address.startswith("127.0.0.1:")
        assert _get(address, "/v2/") == 200
        assert _get(address, "/v2/_catalog") == 200
        # (another run's registry may start meanwhile: ours is the one on address)
        (pid,) = [p for p in _registry_pids() - before if address in _listeners(p)]
        assert _listeners(pid) == {address}
        argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        root = pathlib.Path(os.fsdecode(argv[2])).parent  # docker-registry serve CONFIG
        assert root.is_dir()
    assert pid not in _registry_pids()
    assert not root.exists()


def test_missing_program_is_a_clear_error() -> None:
    with (
        pytest.raises(reg.RegistryError, match="docker-registry"),
        reg.local_registry("enginekit-no-such-registry-program"),
    ):
        pass


@pytest.mark.parametrize("given", ["127.0.0.1:5000", "localhost:5000", " 127.0.0.2:1 "])
def test_a_given_registry_must_be_loopback(given: str) -> None:
    assert reg._check_loopback(given) == given.strip()


@pytest.mark.parametrize("given", ["10.0.0.1:5000", "registry.example.com:443", "127.0.0.1"])
def test_a_given_registry_elsewhere_is_refused(given: str) -> None:
    with pytest.raises(reg.RegistryError):
        reg._check_loopback(given)
