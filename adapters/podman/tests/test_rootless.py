"""Rootless Podman: what the adapter works out from ``/info`` and the client's machine.

``info_4.3.1_rootless_v1_recorded.json`` is the ``/info`` of the rootless
service ``scripts/rootless-podman.sh`` starts on a machine of this project's
kind (Debian 12, Podman 4.3.1, cgroup v1, no systemd: the cgroupfs manager,
no controllers, uid 1001 mapped to the containers' root).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
from typing import Any

import pytest
from enginekit_podman.host import Host, busy_binding, host_from_info

from enginekit.capabilities import Capability
from enginekit.errors import Unsupported
from enginekit.models import PortBinding

DATA = pathlib.Path(__file__).parent / "data"
C = Capability
CGROUP = {C.MEMORY_LIMIT, C.CPU_LIMIT, C.PIDS_LIMIT, C.PAUSE, C.STATS}
RECORDED = "info_4.3.1_rootless_v1_recorded.json"
UNIX = "unix:///run/user/1001/podman/podman.sock"


def info(name: str = RECORDED) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def rootless(**facts: Any) -> Host:
    return host_from_info(info(), **facts)


def test_recorded_rootless_v1_lacks_what_cgroups_give() -> None:
    h = rootless()
    assert h.rootless and h.cgroup_version == 1 and h.cgroup_manager == "cgroupfs"
    assert h.controllers == frozenset() and not h.container_cgroups
    assert h.service_uid == 1001
    assert set(h.unsupported()) == CGROUP
    assert h.capabilities() == frozenset(Capability) - CGROUP
    for cap in CGROUP:
        assert "rootless Podman on a cgroup v1 host" in h.unsupported()[cap]


def test_a_client_of_another_user_cannot_bind_mount() -> None:
    h = rootless(client_uid=0)
    assert h.foreign_client
    reason = h.unsupported()[C.BIND_MOUNTS]
    assert "uid 1001" in reason and "uid 0" in reason
    assert C.BIND_MOUNTS not in h.capabilities()
    assert set(h.unsupported()) == CGROUP | {C.BIND_MOUNTS}


def test_the_service_users_own_client_can_bind_mount() -> None:
    h = rootless(client_uid=1001)
    assert not h.foreign_client
    assert C.BIND_MOUNTS in h.capabilities()
    assert C.BIND_MOUNTS not in h.unsupported()


def test_a_remote_engine_assumes_nothing_about_the_client() -> None:
    for address in (None, "tcp://127.0.0.1:8888", "ssh://me@build1/run/podman/podman.sock"):
        h = rootless(address=address)
        assert h.client_uid is None and h.unprivileged_port_start is None, address
        assert C.BIND_MOUNTS in h.capabilities()
        h.check_ports([80])  # nothing known: the engine answers for itself


def test_a_local_engine_takes_this_machines_facts() -> None:
    h = rootless(address=UNIX)
    assert h.client_uid == os.geteuid()
    expected = int(pathlib.Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert h.unprivileged_port_start == expected
    # Facts given win over the machine's.
    h = rootless(address=UNIX, client_uid=1001, unprivileged_port_start=80)
    assert (h.client_uid, h.unprivileged_port_start) == (1001, 80)
    assert C.BIND_MOUNTS in h.capabilities()


def test_a_rootful_service_reads_every_clients_files() -> None:
    data = info("info_4.3.1_rootful_v1.json")
    h = host_from_info(data, client_uid=1000, unprivileged_port_start=1024)
    assert h.service_uid is None and not h.foreign_client
    assert h.capabilities() == frozenset(Capability)
    h.check_ports([80, 443, 22])


@pytest.mark.parametrize(
    "name", ["info_5.8.6_rootless_v1.json", "info_4.3.1_rootless_v2.json", RECORDED]
)
def test_service_uid_is_the_user_mapped_to_root(name: str) -> None:
    h = host_from_info(info(name))
    mapped = next(
        m["host_id"] for m in info(name)["host"]["idMappings"]["uidmap"] if m["container_id"] == 0
    )
    assert h.service_uid == mapped
    assert host_from_info(info(name), client_uid=mapped).capabilities() == h.capabilities()


def test_service_uid_without_mappings_is_unknown() -> None:
    data = info()
    data["host"]["idMappings"] = {"uidmap": None, "gidmap": None}
    h = host_from_info(data, client_uid=0)
    assert h.service_uid is None
    # Unknown is not "another user": nothing declared missing for it.
    assert C.BIND_MOUNTS in h.capabilities()


def test_low_ports_are_unsupported_rootless() -> None:
    h = rootless(unprivileged_port_start=1024)
    with pytest.raises(Unsupported) as info_:
        h.check_ports([8080, 80, None, 0, 443])
    err = info_.value
    assert err.engine == "podman"
    assert "80, 443" in str(err) and "1024" in str(err)
    assert "ip_unprivileged_port_start" in str(err)
    h.check_ports([1024, 8080, None, 0])
    # A host that lowered the start lets those through.
    rootless(unprivileged_port_start=0).check_ports([80, 1])
    rootless(unprivileged_port_start=80).check_ports([80])
    with pytest.raises(Unsupported, match="port 79:"):
        rootless(unprivileged_port_start=80).check_ports([79])


def test_a_start_checks_ports_first_only_rootless_on_this_machine() -> None:
    assert rootless(client_uid=0).checks_ports_first
    assert not rootless(address="tcp://127.0.0.1:8888").checks_ports_first
    rootful = host_from_info(info("info_4.3.1_rootful_v1.json"), client_uid=0)
    assert not rootful.checks_ports_first


def test_busy_binding_finds_a_listening_port() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        taken = PortBinding(80, "tcp", "127.0.0.1", port)
        anywhere = PortBinding(81, "tcp", "0.0.0.0", port)
        other_ip = PortBinding(82, "tcp", "127.0.0.2", port)
        random = PortBinding(83, "tcp", "127.0.0.1", None)
        udp = PortBinding(84, "udp", "127.0.0.1", port)
        assert busy_binding([random, taken]) == taken
        assert busy_binding([anywhere]) == anywhere
        assert busy_binding([random, other_ip, udp]) is None
    # Closed, the port is free again.
    assert busy_binding([taken]) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held_udp:
        held_udp.bind(("127.0.0.1", 0))
        uport = held_udp.getsockname()[1]
        assert busy_binding([PortBinding(84, "udp", "127.0.0.1", uport)]) is not None
