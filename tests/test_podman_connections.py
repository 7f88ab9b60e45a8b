"""Which Podman service ``connect("podman")`` picks: CONTAINER_CONNECTION, CONTAINER_HOST,
the default connection (podman-connections.json, then containers.conf), then the rootful
or rootless socket (Podman's order). No engine needed: configuration is written to
temporary directories and no driver is pinged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from enginekit_podman import connect, connections, endpoints

import enginekit
from enginekit.errors import EngineUnavailable, InvalidSpec

ROOTFUL = "unix:///run/podman/podman.sock"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty XDG_CONFIG_HOME, CONTAINERS_CONF naming an empty file (so that this
    machine's own containers.conf files are not read), no Podman variable set."""
    for var in (
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINER_SSHKEY",
        "PODMAN_CONNECTIONS_CONF",
        "CONTAINERS_CONF_OVERRIDE",
        "ENGINEKIT_ENGINE",
        "ENGINEKIT_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "xdg-config"
    (config / "containers").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    monkeypatch.setenv("CONTAINERS_CONF", str(empty))
    monkeypatch.chdir(tmp_path)
    return config


def write_connections(config: Path, default: str | None, **uris: str) -> Path:
    path = config / "containers" / "podman-connections.json"
    data = {
        "Connection": {
            **({"Default": default} if default else {}),
            "Connections": {
                name: {"URI": uri, "Identity": f"/keys/{name}", "IsMachine": False}
                for name, uri in uris.items()
            },
        },
        "Farm": {},
    }
    path.write_text(json.dumps(data))
    return path


def write_conf(path: Path, active: str | None, **uris: str) -> Path:
    lines = ["[engine]"]
    if active:
        lines.append(f'active_service = "{active}"')
    for name, uri in uris.items():
        lines += [f"[engine.service_destinations.{name}]", f'uri = "{uri}"', 'identity = "/k"']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rootful_and_rootless_sockets(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert connections.default_address(uid=0) == ROOTFUL
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    assert connections.default_address(uid=1234) == "unix:///run/user/1234/podman/podman.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert connections.default_address(uid=1000) == "unix:///run/user/1000/podman/podman.sock"
    target = connections.resolve(uid=1000)
    assert (target.connection, target.chosen_by) == (None, "the rootless socket")
    assert connections.resolve(uid=0).chosen_by == "the rootful socket"
    # XDG_RUNTIME_DIR does not move root's socket (as for Podman).
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    assert connections.resolve(uid=0).address == ROOTFUL


def test_order_connection_then_host_then_default_connection(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_connections(home, "dflt", dflt="unix:///run/dflt.sock", other="unix:///run/other.sock")
    assert connections.resolve(uid=0).address == "unix:///run/dflt.sock"
    assert connect().address == "unix:///run/dflt.sock"
    monkeypatch.setenv("CONTAINER_HOST", "unix:///run/host.sock")
    target = connections.resolve(uid=0)
    assert (target.address, target.chosen_by, target.connection) == (
        "unix:///run/host.sock",
        "CONTAINER_HOST",
        None,
    )
    monkeypatch.setenv("CONTAINER_CONNECTION", "other")
    target = connections.resolve(uid=0)
    assert (target.address, target.connection) == ("unix:///run/other.sock", "other")
    assert target.identity == "/keys/other"
    assert enginekit.connect("podman").address == "unix:///run/other.sock"
    # The connection option beats all of them; an address beats everything.
    assert connect(connection="dflt").address == "unix:///run/dflt.sock"
    assert connect("/run/x.sock").address == "unix:///run/x.sock"


def test_container_sshkey_goes_with_container_host(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "ssh://me@host/run/podman/podman.sock")
    monkeypatch.setenv("CONTAINER_SSHKEY", "/keys/mine")
    assert connections.resolve(uid=0).identity == "/keys/mine"
    assert "/keys/mine" not in repr(connections.resolve(uid=0))


def test_containers_conf_connections_podman4_style(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = write_conf(
        tmp_path / "containers.conf", "old", old="unix:///run/old.sock", spare="tcp://127.0.0.1:1"
    )
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    target = connections.resolve(uid=0)
    assert (target.address, target.connection, target.chosen_by) == (
        "unix:///run/old.sock",
        "old",
        "the default connection",
    )
    # podman-connections.json: its Default wins, and its entries win by name.
    write_connections(home, None, old="unix:///run/new-old.sock")
    assert connections.resolve(uid=0).address == "unix:///run/new-old.sock"
    write_connections(home, "spare", old="unix:///run/new-old.sock")
    assert connections.resolve(uid=0).address == "tcp://127.0.0.1:1"


def test_containers_conf_files_in_podmans_order(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTAINERS_CONF")
    shown = [s for _, s in connections.containers_conf_files(uid=0)]
    assert shown[:1] == ["/usr/share/containers/containers.conf"]
    assert "/etc/containers/containers.conf" in shown
    assert "/etc/containers/containers.rootless.conf" not in shown
    assert shown[-1] == "$XDG_CONFIG_HOME/containers/containers.conf"
    assert shown.index("/usr/share/containers/containers.conf") < shown.index(
        "/etc/containers/containers.conf"
    )
    user = [s for _, s in connections.containers_conf_files(uid=1000)]
    assert "/etc/containers/containers.rootless.conf" in user
    # The user's own file (and its .d directory) come after every system one.
    write_conf(home / "containers" / "containers.conf.d" / "10-a.conf", "a", a="unix:///run/a")
    write_conf(home / "containers" / "containers.conf.d" / "20-b.conf", None, b="unix:///run/b")
    write_conf(home / "containers" / "containers.conf", "b")
    files = [s for _, s in connections.containers_conf_files(uid=1000)]
    assert files[-3:] == [
        "$XDG_CONFIG_HOME/containers/containers.conf",
        "$XDG_CONFIG_HOME/containers/containers.conf.d/10-a.conf",
        "$XDG_CONFIG_HOME/containers/containers.conf.d/20-b.conf",
    ]
    # 10-a.conf's active_service is read after containers.conf's: "a" wins.
    target = connections.resolve(uid=1000)
    assert (target.connection, target.address) == ("a", "unix:///run/a")
    # CONTAINERS_CONF alone replaces every file; CONTAINERS_CONF_OVERRIDE comes last.
    monkeypatch.setenv(
        "CONTAINERS_CONF", str(home / "containers" / "containers.conf.d" / "20-b.conf")
    )
    monkeypatch.setenv(
        "CONTAINERS_CONF_OVERRIDE", str(home / "containers" / "containers.conf.d" / "10-a.conf")
    )
    files = [s for _, s in connections.containers_conf_files(uid=1000)]
    assert files == ["$CONTAINERS_CONF", "$CONTAINERS_CONF_OVERRIDE"]
    target = connections.resolve(uid=1000)
    assert (target.connection, target.address) == ("a", "unix:///run/a")


def test_dangling_default_is_passed_over(home: Path) -> None:
    write_connections(home, "gone", there="unix:///run/there.sock")
    target = connections.resolve(uid=0)
    assert (target.address, target.connection) == (ROOTFUL, None)


def test_missing_connection_names_it_and_where_it_looked(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_CONNECTION", "nosuch")
    with pytest.raises(EngineUnavailable) as info:
        enginekit.connect("podman")
    text = str(info.value)
    assert "'nosuch'" in text and "CONTAINER_CONNECTION" in text
    assert "$XDG_CONFIG_HOME/containers/podman-connections.json" in text
    assert str(home) not in text
    with pytest.raises(EngineUnavailable, match=r"'other'.*connection option"):
        connect(connection="other")


def test_unreadable_files_are_invalid_spec(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (home / "containers" / "podman-connections.json").write_text("{")
    with pytest.raises(InvalidSpec, match=r"\$XDG_CONFIG_HOME/containers/podman-connections.json"):
        connect()
    (home / "containers" / "podman-connections.json").unlink()
    bad = tmp_path / "bad.conf"
    bad.write_text("[engine\n")
    monkeypatch.setenv("CONTAINERS_CONF", str(bad))
    with pytest.raises(InvalidSpec, match=r"cannot read \$CONTAINERS_CONF"):
        connect()
    monkeypatch.setenv("CONTAINERS_CONF", str(tmp_path / "missing.conf"))
    with pytest.raises(InvalidSpec, match=r"\$CONTAINERS_CONF does not exist"):
        connect()
    # CONTAINER_HOST needs no file: a broken one does not stand in its way.
    monkeypatch.setenv("CONTAINER_HOST", "unix:///run/h.sock")
    assert connect().address == "unix:///run/h.sock"


def test_podman_connections_conf_names_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "containers").mkdir(parents=True)
    path = write_connections(elsewhere, "x", x="unix:///run/x.sock")
    monkeypatch.setenv("PODMAN_CONNECTIONS_CONF", str(path))
    target = connections.resolve(uid=0)
    assert (target.connection, target.address) == ("x", "unix:///run/x.sock")
    assert endpoints()[0].source == "$PODMAN_CONNECTIONS_CONF (default)"


def test_ssh_connection_is_served_with_its_identity_without_io(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_connections(home, "vm", vm="ssh://core@127.0.0.1:2222/run/user/1000/podman/podman.sock")
    driver = connect()  # nothing is sent before a call
    try:
        assert driver.address == "ssh://core@127.0.0.1:2222/run/user/1000/podman/podman.sock"
        tunnel = driver.transport._dialer.tunnel  # type: ignore[attr-defined]
        assert tunnel.origin == "podman connection 'vm' (chosen by the default connection)"
        assert tunnel.address.path == "/run/user/1000/podman/podman.sock"
        assert tunnel.address.identity == "/keys/vm" and tunnel.handshakes == 0
        assert "/keys/vm" not in repr(tunnel) + repr(tunnel.address) + driver.address
        assert tunnel.address.options() == ["-l", "core", "-p", "2222", "-i", "/keys/vm"]
    finally:
        driver.close()


def test_connection_with_a_password_is_refused_without_quoting_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_connections(home, "pw", pw="tcp://u:s3cret@127.0.0.1:8080")
    with pytest.raises(InvalidSpec) as info:
        connect()
    assert "podman connection 'pw'" in str(info.value) and "s3cret" not in str(info.value)
    monkeypatch.setenv("CONTAINER_HOST", "ssh://core:s3cret@127.0.0.1:22/run/podman.sock")
    with pytest.raises(InvalidSpec) as info:
        connect()
    assert "CONTAINER_HOST" in str(info.value) and "s3cret" not in str(info.value)


def test_address_and_connection_together_are_refused(home: Path) -> None:
    with pytest.raises(InvalidSpec, match="not both"):
        connect("unix:///run/x.sock", connection="x")


def test_endpoints_list_connections_then_the_fallback(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = write_conf(tmp_path / "c.conf", None, legacy="tcp://127.0.0.1:8888")
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    write_connections(home, "b", b="unix:///run/b.sock", a="ssh://u:secret@h/run/p.sock")
    found = connections.endpoints(uid=0)
    assert [(e.name, e.current) for e in found] == [
        ("a", False),
        ("b", True),
        ("legacy", False),
        (None, False),
    ]
    assert found[0].url == "ssh://u@h/run/p.sock"
    assert found[1].source == "$XDG_CONFIG_HOME/containers/podman-connections.json (default)"
    assert found[2].source == "$CONTAINERS_CONF"
    assert (found[3].url, found[3].source) == (ROOTFUL, "the rootful socket")
    assert dict(found[3].options) == {"address": ROOTFUL}
    monkeypatch.setenv("CONTAINER_HOST", "tcp://127.0.0.1:9999")
    found = connections.endpoints(uid=0)
    assert [e.current for e in found] == [False, False, False, True]
    assert (found[3].url, found[3].source) == ("tcp://127.0.0.1:9999", "CONTAINER_HOST")
