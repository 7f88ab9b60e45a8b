"""Which dockerd ``connect("docker")`` picks: DOCKER_HOST, DOCKER_CONTEXT, the current
context, the default socket (Docker CLI's order). No engine needed: contexts are
written to a temporary config directory and no driver is pinged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from enginekit_docker import DEFAULT_ADDRESS, connect, contexts, endpoints

import enginekit
from enginekit.errors import EngineUnavailable, InvalidSpec

SOCK = "unix:///run/elsewhere/docker.sock"


def write_context(
    config: Path,
    name: str,
    host: str | None,
    *,
    skip_tls_verify: bool = False,
    tls: tuple[str, ...] = (),
    raw: Any = None,
    keys: tuple[str, str, str, str] = ("Name", "Endpoints", "Host", "SkipTLSVerify"),
) -> Path:
    cid = hashlib.sha256(name.encode()).hexdigest()
    folder = config / "contexts" / "meta" / cid
    folder.mkdir(parents=True)
    k_name, k_endpoints, k_host, k_skip = keys
    docker: dict[str, Any] = {k_skip: skip_tls_verify}
    if host is not None:
        docker[k_host] = host
    data = raw if raw is not None else {k_name: name, k_endpoints: {"docker": docker}}
    path = folder / "meta.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    if tls:
        tls_dir = config / "contexts" / "tls" / cid / "docker"
        tls_dir.mkdir(parents=True)
        for item in tls:
            (tls_dir / f"{item}.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def use(config: Path, name: str) -> None:
    (config / "config.json").write_text(json.dumps({"auths": {}, "currentContext": name}))


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty Docker config directory as DOCKER_CONFIG; no Docker variable set."""
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    for var in ("ENGINEKIT_ENGINE", "ENGINEKIT_URL"):
        monkeypatch.delenv(var, raising=False)
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return folder


def test_context_id_is_sha256_of_the_name() -> None:
    # The id Docker gives the context named "local" (as `docker context inspect` shows).
    assert contexts.context_id("local") == (
        "25bf8e1a2393f1108d37029b3df5593236c755742ec93465bbafa9b290bddcf6"
    )


def test_default_socket_when_nothing_is_set(config: Path) -> None:
    target = contexts.resolve()
    assert (target.address, target.context, target.chosen_by) == (
        DEFAULT_ADDRESS,
        "default",
        "the default socket",
    )
    assert connect().address == DEFAULT_ADDRESS


def test_order_docker_host_then_docker_context_then_current_context(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(config, "from-env", "unix:///run/env/docker.sock")
    write_context(config, "from-file", "unix:///run/file/docker.sock")
    use(config, "from-file")
    assert contexts.resolve().address == "unix:///run/file/docker.sock"
    assert contexts.resolve().chosen_by == "currentContext in $DOCKER_CONFIG/config.json"
    monkeypatch.setenv("DOCKER_CONTEXT", "from-env")
    assert contexts.resolve().address == "unix:///run/env/docker.sock"
    assert connect().address == "unix:///run/env/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", SOCK)
    target = contexts.resolve()
    assert (target.address, target.context, target.chosen_by) == (SOCK, "default", "DOCKER_HOST")
    assert connect().address == SOCK
    # The context option beats all of them, as `docker --context` does.
    assert connect(context="from-file").address == "unix:///run/file/docker.sock"
    # An explicit address beats everything and is used as given.
    assert connect("unix:///tmp/x.sock").address == "unix:///tmp/x.sock"


def test_empty_variables_do_not_count(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_context(config, "ctx", SOCK)
    use(config, "ctx")
    monkeypatch.setenv("DOCKER_HOST", "")
    monkeypatch.setenv("DOCKER_CONTEXT", "")
    assert contexts.resolve().context == "ctx"


def test_default_context_by_name(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_context(config, "ctx", SOCK)
    use(config, "ctx")
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert contexts.resolve().address == DEFAULT_ADDRESS
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert connect(context="default").address == "tcp://127.0.0.1:2375"


def test_config_dir_is_home_docker_without_docker_config(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKER_CONFIG")
    home_config = tmp_path / "home" / ".docker"
    home_config.mkdir(parents=True)
    write_context(home_config, "homectx", SOCK)
    use(home_config, "homectx")
    assert contexts.config_dir() == home_config
    target = contexts.resolve()
    assert (target.context, target.address) == ("homectx", SOCK)
    assert target.chosen_by == "currentContext in ~/.docker/config.json"


def test_keys_are_matched_without_regard_to_case(config: Path) -> None:
    write_context(config, "lower", SOCK, keys=("name", "endpoints", "host", "skipTLSVerify"))
    assert contexts.load("lower").address == SOCK


def test_context_without_host_talks_to_the_default_socket(config: Path) -> None:
    write_context(config, "nohost", None)
    assert connect(context="nohost").address == DEFAULT_ADDRESS


def test_missing_context_names_it_what_chose_it_and_where(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "nosuch")
    with pytest.raises(EngineUnavailable) as info:
        enginekit.connect("docker")
    text = str(info.value)
    assert "'nosuch'" in text and "DOCKER_CONTEXT" in text
    assert f"$DOCKER_CONFIG/contexts/meta/{contexts.context_id('nosuch')}/meta.json" in text
    assert str(config) not in text  # no environment value in the message
    use(config, "gone")
    monkeypatch.delenv("DOCKER_CONTEXT")
    with pytest.raises(EngineUnavailable, match=r"'gone'.*currentContext in \$DOCKER_CONFIG"):
        connect()


def test_context_without_docker_endpoint(config: Path) -> None:
    write_context(config, "k8s", None, raw={"Name": "k8s", "Endpoints": {"kubernetes": {}}})
    with pytest.raises(EngineUnavailable, match="'k8s' has no docker endpoint"):
        connect(context="k8s")


def test_files_that_are_not_json_are_invalid_spec(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(config, "broken", None, raw="{not json")
    with pytest.raises(InvalidSpec, match=r"'broken'.*cannot read \$DOCKER_CONFIG/contexts"):
        connect(context="broken")
    (config / "config.json").write_text("[1,")
    with pytest.raises(InvalidSpec, match=r"cannot read \$DOCKER_CONFIG/config.json"):
        connect()
    # DOCKER_HOST beats contexts: the config file is not even read then.
    monkeypatch.setenv("DOCKER_HOST", SOCK)
    assert connect().address == SOCK


def test_ssh_context_is_served_over_ssh_without_io(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(config, "remote", "ssh://ci@build1.example:2222")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    with enginekit.connect("docker") as engine:  # nothing is sent before a call
        assert engine.address == "ssh://ci@build1.example:2222"
        tunnel = engine.driver.transport._dialer.tunnel  # type: ignore[attr-defined]
        assert tunnel.origin == "docker context 'remote' (chosen by DOCKER_CONTEXT)"
        assert tunnel.handshakes == 0


@pytest.mark.parametrize("host", ["ssh://ci:s3cret@build1:22", "tcp://u:s3cret@127.0.0.1:2375"])
def test_context_with_a_password_is_refused_without_quoting_it(
    config: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    write_context(config, "pw", host)
    monkeypatch.setenv("DOCKER_CONTEXT", "pw")
    with pytest.raises(InvalidSpec) as info:
        enginekit.connect("docker")
    text = str(info.value)
    assert "docker context 'pw'" in text and "password" in text
    assert "s3cret" not in text and "s3cret" not in repr(info.value.args)
    # Listed without it, too.
    assert [e.url for e in endpoints() if e.name == "pw"] == [host.replace(":s3cret", "")]


def test_tls_context_is_served_with_its_material_and_plain_tcp_too(config: Path) -> None:
    write_context(config, "tls", "tcp://127.0.0.1:2376", tls=("ca", "cert", "key"))
    write_context(config, "skip", "tcp://127.0.0.1:2376", skip_tls_verify=True)
    write_context(config, "plain", "tcp://127.0.0.1:2375")
    write_context(config, "sock", SOCK, tls=("ca",))
    target = contexts.resolve("tls")
    assert target.tls.ca and target.tls.cert and target.tls.key
    assert target.tls.ca.endswith("/docker/ca.pem")
    # Its files are read at connect: these are no PEM (test_tls.py uses real ones).
    with pytest.raises(InvalidSpec, match=r"docker context 'tls'.*not usable PEM"):
        connect(context="tls")
    skip = connect(context="skip")  # TLS, not verified
    assert skip.address == "tcp://127.0.0.1:2376"
    assert skip.transport._tls is not None and not skip.transport._tls.check_hostname
    plain = connect(context="plain")
    assert plain.address == "tcp://127.0.0.1:2375" and plain.transport._tls is None
    # TLS material does not apply to a socket (as for the docker CLI).
    assert connect(context="sock").address == SOCK


def test_tls_from_the_environment_applies_to_the_default_context_only(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(config, "plain", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    assert connect(context="plain").address == "tcp://127.0.0.1:2375"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    # No ca.pem in ~/.docker: said, naming the variable (not its value).
    with pytest.raises(InvalidSpec, match=r"DOCKER_TLS_VERIFY.*~/\.docker/ca\.pem"):
        connect()


def test_address_and_context_together_are_refused(config: Path) -> None:
    with pytest.raises(InvalidSpec, match="not both"):
        connect("unix:///tmp/x.sock", context="default")
    with pytest.raises(InvalidSpec, match="unknown connect options"):
        connect(contxt="x")


def test_endpoints_list_every_context_and_the_current_one(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(config, "zeta", "tcp://127.0.0.1:2375")
    write_context(config, "alpha", "ssh://me:pw@host")
    write_context(config, "broken", None, raw="{")
    use(config, "zeta")
    found = endpoints()
    assert [e.name for e in found] == ["default", "alpha", "zeta"]
    assert [e.current for e in found] == [False, False, True]
    assert found[1].url == "ssh://me@host"
    assert found[2].source.startswith("$DOCKER_CONFIG/contexts/meta/")
    assert found[0].source == "the default socket"
    assert dict(found[2].options) == {"context": "zeta"}
    monkeypatch.setenv("DOCKER_HOST", SOCK)
    found = endpoints()
    assert found[0].current and found[0].url == SOCK and found[0].source == "DOCKER_HOST"
    assert not any(e.current for e in found[1:])


def test_core_lists_endpoints_through_the_adapter(config: Path) -> None:
    from enginekit.config import endpoints as all_endpoints

    write_context(config, "ctx", SOCK)
    use(config, "ctx")
    docker = [e for e in all_endpoints("docker")]
    assert [(e.name, e.current) for e in docker] == [("default", False), ("ctx", True)]
    assert enginekit.connect("docker").address == SOCK
