"""Nothing assumes the engine is on this machine (no engine needed here).

What depends on where the engine runs is asked of its driver
(:mod:`enginekit.hostfacts`): ``published_address``, ``host_cpus()`` and
``host_path_exists()``, with this machine's answers for a driver that says
nothing. The core checks ``cpus`` and mount sources against the engine's host
and publishes a port without a host side on its published address, after every
check of the spec's form and before anything is created. The remote Docker and
Podman drivers give those facts (ssh's ``HostName``, the TCP host; the
engine's CPU count; ``test -e`` over ssh, quoted for the remote shell).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import enginekit
from enginekit import Engine, InvalidSpec, Mount, PortBinding, hostfacts
from enginekit import validate as v
from enginekit.capabilities import Capability
from enginekit.errors import EngineUnavailable
from enginekit.models import ContainerSpec
from enginekit.sshtunnel import SshAddress, SshTunnel

MANY = (os.cpu_count() or 1) + 8


class Host:
    """A driver of an engine on another host: what it says, and what it was asked."""

    name = "fake"
    address = "fake://elsewhere"
    capabilities = frozenset(Capability)

    def __init__(
        self,
        *,
        cpus: int = MANY,
        paths: Sequence[str] = (),
        published: str = "192.0.2.7",
    ) -> None:
        self.published_address = published
        self._cpus = cpus
        self._paths = set(paths)
        self.asked: list[tuple[str, ...]] = []
        self.created: list[ContainerSpec] = []

    def host_cpus(self) -> int:
        self.asked.append(("host_cpus",))
        return self._cpus

    def host_path_exists(self, path: str) -> bool:
        self.asked.append(("host_path_exists", path))
        return path in self._paths

    def container_create(self, spec: ContainerSpec) -> str:
        self.created.append(spec)
        return "f" * 64

    def container_inspect(self, ref: str) -> object:
        return ref


def spec(host: object | None = None, **kw: Any) -> ContainerSpec:
    return v.container_spec("busybox", ["true"], kw, host=host)


# -- the defaults: an engine on this machine -----------------------------------------------
def test_a_driver_saying_nothing_is_on_this_machine(tmp_path: Path) -> None:
    bare = object()
    assert hostfacts.published_address(bare) == "127.0.0.1"
    assert hostfacts.host_cpus(bare) == (os.cpu_count() or 1)
    assert hostfacts.host_path_exists(bare, str(tmp_path)) is True
    assert hostfacts.host_path_exists(bare, str(tmp_path / "missing")) is False


def test_local_spec_unchanged(tmp_path: Path) -> None:
    got = spec(ports={80: None, 81: 8081}, mounts=[f"{tmp_path}:/data"], cpus=1)
    assert [b.host_ip for b in got.ports] == ["127.0.0.1", "127.0.0.1"]
    assert got.mounts == (Mount(source=str(tmp_path), target="/data"),)
    with pytest.raises(
        InvalidSpec, match=r"between 0.01 and \d+ \(the CPUs of the engine's host\)"
    ):
        spec(cpus=MANY)
    with pytest.raises(InvalidSpec, match="mount source does not exist on the engine's host"):
        spec(mounts=[f"{tmp_path}/missing:/data"])


def test_local_validators_keep_their_signatures(tmp_path: Path) -> None:
    assert v.ports({80: None}) == (PortBinding(container_port=80, host_port=None),)
    assert v.mounts([f"{tmp_path}:/d"]) == (Mount(source=str(tmp_path), target="/d"),)
    with pytest.raises(InvalidSpec, match="does not exist on the engine's host"):
        v.mounts([f"{tmp_path}/nope:/d"])
    assert v.cpus(0.5) == 0.5


# -- the engine's host decides -----------------------------------------------------------------
def test_cpus_against_the_engine_host() -> None:
    assert spec(Host(cpus=MANY), cpus=MANY).cpus == MANY  # more than this machine has
    with pytest.raises(InvalidSpec) as info:
        spec(Host(cpus=2), cpus=3)
    assert str(info.value) == "cpus must be between 0.01 and 2 (the CPUs of the engine's host)"
    assert spec(Host(cpus=2), cpus=2).cpus == 2


def test_mount_source_looked_for_on_the_engine_host(tmp_path: Path) -> None:
    elsewhere = "/srv/only-on-the-engine-host"
    assert not os.path.exists(elsewhere)
    host = Host(paths=[elsewhere])
    got = spec(host, mounts=[f"{elsewhere}:/data:ro"])
    assert got.mounts == (Mount(source=elsewhere, target="/data", read_only=True),)
    assert host.asked == [("host_path_exists", elsewhere)]
    with pytest.raises(InvalidSpec) as info:
        spec(Host(paths=[]), mounts=[f"{tmp_path}:/data"])  # exists here, not there
    assert str(info.value) == "mount source does not exist on the engine's host"


def test_ports_published_on_the_engine_hosts_address() -> None:
    got = spec(Host(), ports={80: None, "53/udp": 5353, 81: ("127.0.0.1", 8081), 82: (None, 0)})
    assert got.ports == (
        PortBinding(container_port=53, protocol="udp", host_ip="192.0.2.7", host_port=5353),
        PortBinding(container_port=80, host_ip="192.0.2.7", host_port=None),
        PortBinding(container_port=81, host_ip="127.0.0.1", host_port=8081),
        PortBinding(container_port=82, host_ip="192.0.2.7", host_port=None),
    )


def test_the_host_is_asked_only_what_the_spec_needs() -> None:
    host = Host()
    spec(host, env={"A": "1"})
    assert host.asked == []
    spec(host, cpus=1)
    assert host.asked == [("host_cpus",)]


@pytest.mark.parametrize(
    "bad",
    [
        {"memory": "1k"},
        {"pids_limit": 0},
        {"network": "wifi"},
        {"stop_signal": "SIGSTOP"},
        {"cpus": 0},
        {"mounts": ["/a:/"]},
    ],
)
def test_form_checked_before_the_host_is_asked(bad: Mapping[str, Any]) -> None:
    host = Host(cpus=1, paths=[])
    with pytest.raises(InvalidSpec):
        spec(host, **{"mounts": ["/missing/there:/data"], "cpus": 5, **bad})
    assert host.asked == []


def test_engine_refuses_before_anything_is_created() -> None:
    host = Host(cpus=2, paths=["/there"])
    engine = Engine(host)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="does not exist on the engine's host"):
        engine.containers.run("busybox", ["true"], mounts=["/not-there:/data"])
    with pytest.raises(InvalidSpec, match="the CPUs of the engine's host"):
        engine.containers.create("busybox", ["true"], cpus=4)
    assert host.created == []
    engine.containers.create("busybox", ["true"], mounts=["/there:/d"], ports={80: None})
    assert [(b.host_ip, b.host_port) for b in host.created[0].ports] == [("192.0.2.7", None)]


# -- addresses -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("localhost", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.2", "127.0.0.1"),
        ("::1", "127.0.0.1"),
        ("[::1]", "127.0.0.1"),
        ("10.123.0.2", "10.123.0.2"),
        ("2001:db8::5", "2001:db8::5"),
        ("no-such-host.invalid", "no-such-host.invalid"),
    ],
)
def test_address_of(host: str, address: str) -> None:
    assert hostfacts.address_of(host) == address


@pytest.fixture
def ssh_config(tmp_path: Path) -> Iterator[str]:
    """An ssh config naming an alias whose HostName is a documentation address."""
    path = tmp_path / "ssh_config"
    path.write_text("Host build-vm\n    HostName 192.0.2.44\n    Port 2222\n")
    yield str(path)


def test_ssh_hostname_is_read_from_the_users_config(ssh_config: str) -> None:
    tunnel = SshTunnel(SshAddress.parse("ssh://ci@build-vm"), config=ssh_config)
    try:
        assert tunnel.hostname() == "192.0.2.44"
        assert tunnel.handshakes == 0  # ssh -G makes no connection
    finally:
        tunnel.close()
    plain = SshTunnel(SshAddress.parse("ssh://ci@10.123.0.2:2200"), config=ssh_config)
    try:
        assert plain.hostname() == "10.123.0.2"
    finally:
        plain.close()


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_remote_drivers_publish_on_the_host_ssh_reaches(kind: str, ssh_config: str) -> None:
    with enginekit.connect(f"{kind}+ssh://ci@build-vm", ssh_config=ssh_config) as engine:
        assert engine.driver.published_address == "192.0.2.44"  # type: ignore[attr-defined]
        assert hostfacts.published_address(engine.driver) == "192.0.2.44"


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_remote_drivers_over_tcp_publish_on_the_tcp_host(kind: str) -> None:
    with enginekit.connect(f"{kind}+tcp://192.0.2.9:2375", insecure=True) as engine:
        assert hostfacts.published_address(engine.driver) == "192.0.2.9"
        # No shell on a TCP engine's host: the engine refuses a missing source itself.
        assert hostfacts.host_path_exists(engine.driver, "/not/here") is True
    with enginekit.connect(f"{kind}+tcp://localhost:2375") as engine:
        assert hostfacts.published_address(engine.driver) == "127.0.0.1"


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_local_drivers_say_nothing(kind: str) -> None:
    with enginekit.connect(f"{kind}+unix://{tempfile.gettempdir()}/no-engine.sock") as engine:
        for member in ("published_address", "host_cpus", "host_path_exists"):
            assert not hasattr(engine.driver, member)


@pytest.mark.parametrize(("kind", "answer"), [("docker", {"NCPU": 48}), ("podman", None)])
def test_remote_host_cpus_from_the_engine_kept(
    kind: str, answer: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def fake_json(method: str, path: str, **kw: Any) -> Any:
        asked.append(path)
        return answer if answer is not None else {"host": {"cpus": 48}}

    with enginekit.connect(f"{kind}+tcp://192.0.2.9:2375", insecure=True) as engine:
        monkeypatch.setattr(engine.driver, "_json", fake_json)
        assert hostfacts.host_cpus(engine.driver) == 48
        assert hostfacts.host_cpus(engine.driver) == 48
        assert asked == ["/info"]


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("docker", 'invalid mount config for type "bind": bind source path does not exist: /x'),
        ("podman", "statfs /x: no such file or directory"),
    ],
)
def test_tcp_engines_refusal_of_a_missing_source_is_the_cores(
    kind: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with enginekit.connect(f"{kind}+tcp://192.0.2.9:2375", insecure=True) as engine:
        base = type(engine.driver).__mro__[1]

        def refuse(self: object, spec: ContainerSpec) -> str:
            raise InvalidSpec(said)

        monkeypatch.setattr(base, "container_create", refuse)
        with pytest.raises(InvalidSpec) as info:
            engine.driver.container_create(
                ContainerSpec(image="busybox:latest", mounts=(Mount(source="/x", target="/d"),))
            )
        assert str(info.value) == "mount source does not exist on the engine's host"


# -- test -e over ssh: the path reaches test as one word -------------------------------------------
class ShellTunnel:
    """A tunnel whose remote host is this machine's /bin/sh: the words joined by
    spaces and read by a shell, as sshd gives them to the user's login shell."""

    name = "docker"
    address = SshAddress.parse("ssh://ci@build-vm")

    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []

    def run(self, command: Sequence[str], *, timeout: float = 60.0) -> tuple[int, str, str]:
        self.commands.append(tuple(command))
        done = subprocess.run(
            ["/bin/sh", "-c", " ".join(command)], capture_output=True, text=True, check=False
        )
        return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "name",
    ["plain", "it's", 'say "hi"', "$HOME", "`id`", "a;b", "*", "with space", "-e", "back\\slash"],
)
def test_remote_path_exists_quotes_the_path(tmp_path: Path, name: str) -> None:
    tunnel = ShellTunnel()
    target = tmp_path / name
    assert hostfacts.remote_path_exists(tunnel, str(target)) is False  # type: ignore[arg-type]
    target.write_text("x")
    assert hostfacts.remote_path_exists(tunnel, str(target)) is True  # type: ignore[arg-type]
    assert tunnel.commands[0][:2] == ("test", "-e") and len(tunnel.commands[0]) == 3
    (tmp_path / "decoy").write_text("x")
    assert hostfacts.remote_path_exists(tunnel, str(tmp_path / "dec*")) is False  # type: ignore[arg-type]


def test_remote_path_exists_failure_is_unavailable() -> None:
    class Broken(ShellTunnel):
        def run(self, command: Sequence[str], *, timeout: float = 60.0) -> tuple[int, str, str]:
            return 255, "", "ssh: connect to host build-vm port 22: Connection refused\n"

    with pytest.raises(EngineUnavailable, match="Connection refused"):
        hostfacts.remote_path_exists(Broken(), "/srv")  # type: ignore[arg-type]
    assert hostfacts.remote_path_exists(Broken(), "relative") is False  # type: ignore[arg-type]


def test_remote_path_exists_through_a_real_ssh_login(tmp_path: Path) -> None:
    """The same words through sshd and the remote user's login shell (an sshd of the
    test's own on 127.0.0.1; no engine): odd paths reach ``test`` as one word."""
    from enginekit.testing.sshd import LoopbackSshd

    server = LoopbackSshd(tmp_path / "sshd")
    server.start()
    address = SshAddress.parse(f"ssh://{server.user}@127.0.0.1:{server.port}")
    tunnel = SshTunnel(address, config=str(server.client_config))
    try:
        assert tunnel.hostname() == "127.0.0.1"
        folder = tmp_path / "data"
        folder.mkdir()
        for name in ("it's", '"q"', "$HOME", "`id`", "a;b", "x*", "a b", "back\\slash"):
            assert hostfacts.remote_path_exists(tunnel, str(folder / name)) is False, name
            (folder / name).write_text("x")
            assert hostfacts.remote_path_exists(tunnel, str(folder / name)) is True, name
        (folder / "x-decoy").write_text("x")
        assert hostfacts.remote_path_exists(tunnel, str(folder / "x-*")) is False
        assert tunnel.handshakes == 1  # one login for every question
    finally:
        tunnel.close()
        server.stop()
