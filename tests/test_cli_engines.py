"""Engines found through their own configuration: a Docker context or a Podman connection
that points at the engine under test connects and answers, and ``enginekit engines``
lists contexts and connections with where they point, which one is current and whether
each answers (unreachable ones without a long wait).

Configuration is written to temporary directories (``DOCKER_CONFIG``,
``XDG_CONFIG_HOME``, ``CONTAINERS_CONF``); nothing is sent anywhere but local
sockets and loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import enginekit
from enginekit import Engine
from enginekit.errors import EngineUnavailable

CLI = [sys.executable, "-m", "enginekit.cli"]
_CLEARED = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
    "CONTAINER_SSHKEY",
    "PODMAN_CONNECTIONS_CONF",
    "CONTAINERS_CONF_OVERRIDE",
)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> Any:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def write_context(config: Path, name: str, host: str, *, tls_from: str | None = None) -> None:
    """A Docker context; with ``tls_from`` (a folder of ca.pem, cert.pem, key.pem),
    its TLS material, as `docker context create --docker ca=,cert=,key=` stores it."""
    cid = hashlib.sha256(name.encode()).hexdigest()
    folder = config / "contexts" / "meta" / cid
    folder.mkdir(parents=True)
    meta = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    if tls_from is not None:
        material = config / "contexts" / "tls" / cid / "docker"
        material.mkdir(parents=True)
        for pem in ("ca.pem", "cert.pem", "key.pem"):
            shutil.copyfile(Path(tls_from) / pem, material / pem)


def write_connections(xdg: Path, default: str, **uris: str) -> None:
    folder = xdg / "containers"
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "Connection": {
            "Default": default,
            "Connections": {
                n: {"URI": u, "Identity": "", "IsMachine": False} for n, u in uris.items()
            },
        }
    }
    (folder / "podman-connections.json").write_text(json.dumps(data))


class Places:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.docker = root / "docker-config"
        self.xdg = root / "xdg-config"
        self.docker.mkdir()
        self.xdg.mkdir()
        self.empty_conf = root / "containers.conf"
        self.empty_conf.write_text("")

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # ENGINEKIT_SSH_CONFIG says how ssh reaches a remote engine, not which.
            if k not in _CLEARED and (not k.startswith("ENGINEKIT_") or k == "ENGINEKIT_SSH_CONFIG")
        }
        env.update(
            DOCKER_CONFIG=str(self.docker),
            XDG_CONFIG_HOME=str(self.xdg),
            CONTAINERS_CONF=str(self.empty_conf),
            HOME=str(self.root / "home"),
        )
        return env

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var in _CLEARED:
            monkeypatch.delenv(var, raising=False)
        for key, value in self.env().items():
            if os.environ.get(key) != value:
                monkeypatch.setenv(key, value)


@pytest.fixture
def places(tmp_path: Path) -> Places:
    return Places(tmp_path)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


# -- no engine needed ---------------------------------------------------------------
def test_engines_lists_contexts_and_connections_without_a_long_wait(
    places: Places, silent_port: int
) -> None:
    gone = places.root / "gone.sock"
    write_context(places.docker, "ek-gone", f"unix://{gone}")
    write_context(places.docker, "ek-ssh", "ssh://ci@127.0.0.1:1")
    write_context(places.docker, "ek-pw", "tcp://ci:s3cret@127.0.0.1:1")
    write_context(places.docker, "ek-silent", f"tcp://127.0.0.1:{silent_port}")
    (places.docker / "config.json").write_text(json.dumps({"currentContext": "ek-gone"}))
    pgone = places.root / "pgone.sock"
    write_connections(
        places.xdg,
        "ek-pgone",
        **{"ek-pgone": f"unix://{pgone}", "ek-pssh": "ssh://core@127.0.0.1:1/run/podman.sock"},
    )
    env = places.env()
    t0 = time.monotonic()
    proc = run_cli(["engines", "docker", "podman", "--json"], env)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 20, elapsed  # each probe is capped at 3 s, all at once
    assert "s3cret" not in proc.stdout
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    # The adapters' own rows follow the configuration: the current context, the default
    # connection.
    assert not rows["docker"]["reachable"] and str(gone) in rows["docker"]["reason"]
    assert not rows["podman"]["reachable"] and str(pgone) in rows["podman"]["reason"]
    docker = {e["name"]: e for e in rows["docker"]["endpoints"]}
    assert list(docker) == ["default", "ek-gone", "ek-pw", "ek-silent", "ek-ssh"]
    assert [n for n, e in docker.items() if e["current"]] == ["ek-gone"]
    assert docker["ek-gone"]["url"] == f"unix://{gone}"
    assert not docker["ek-gone"]["reachable"] and str(gone) in docker["ek-gone"]["reason"]
    assert docker["ek-silent"]["reason"] == "no answer within 3s"
    assert docker["ek-ssh"]["url"] == "ssh://ci@127.0.0.1:1"
    assert "docker context 'ek-ssh'" in docker["ek-ssh"]["reason"]
    assert docker["ek-ssh"]["source"].startswith("$DOCKER_CONFIG/contexts/meta/")
    assert docker["ek-pw"]["url"] == "tcp://ci@127.0.0.1:1"
    assert "password" in docker["ek-pw"]["reason"]
    assert docker["default"]["url"] == "unix:///var/run/docker.sock"
    podman = rows["podman"]["endpoints"]
    assert [(e["name"], e["current"]) for e in podman] == [
        ("ek-pgone", True),
        ("ek-pssh", False),
        (None, False),
    ]
    assert not podman[0]["reachable"] and not podman[1]["reachable"]
    assert "ssh://core@127.0.0.1:1/run/podman.sock" in podman[1]["reason"]
    # The table shows the same, one line each.
    proc = run_cli(["engines", "docker", "podman"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("ENGINE"))
    assert lines[header].split() == [
        "ENGINE",
        "NAME",
        "CURRENT",
        "URL",
        "REACHABLE",
        "VERSION",
        "SOURCE",
        "REASON",
    ]
    current = next(line for line in lines if " ek-gone " in line)
    assert current.split()[:5] == ["docker", "ek-gone", "*", f"unix://{gone}", "no"]
    assert any(line.split()[:2] == ["podman", "-"] for line in lines[header:])


def test_engines_named_by_url_lists_no_contexts(places: Places) -> None:
    write_context(places.docker, "ek-ctx", "unix:///nonexistent/ek.sock")
    sock = places.root / "x.sock"
    proc = run_cli(["engines", f"docker+unix://{sock}", "--json"], places.env())
    rows = json.loads(proc.stdout)
    assert len(rows) == 1 and rows[0]["endpoints"] == []
    assert "ENGINE" not in run_cli(["engines", f"docker+unix://{sock}"], places.env()).stdout


# -- on the engine under test -------------------------------------------------------
def test_connect_finds_the_engine_through_its_configuration(
    engine: Engine, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An engine under test over TLS (DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, cleared
    # below): a context carries its TLS material.
    certs = os.environ.get("DOCKER_CERT_PATH") if engine.address.startswith("tcp://") else None
    places.apply(monkeypatch)
    name = engine.name
    gone = places.root / "gone.sock"
    if name == "docker":
        write_context(places.docker, "ek-live", engine.address, tls_from=certs)
        write_context(places.docker, "ek-gone", f"unix://{gone}")
        monkeypatch.setenv("DOCKER_CONTEXT", "ek-live")
        env = {**places.env(), "DOCKER_CONTEXT": "ek-live"}
        live, missing = "ek-live", ("DOCKER_CONTEXT", "ek-gone")
    elif name == "podman":
        write_connections(
            places.xdg, "ek-live", **{"ek-live": engine.address, "ek-gone": f"unix://{gone}"}
        )
        env = places.env()
        live, missing = "ek-live", ("CONTAINER_CONNECTION", "ek-gone")
    else:
        # An adapter whose engine has no contexts or connections names none.
        from enginekit.config import endpoints

        assert endpoints(name) == []
        return
    with enginekit.connect(name) as found:
        assert found.address == engine.address
        info = found.info()
        assert (info.name, info.version) == (engine.info().name, engine.info().version)
    proc = run_cli(["engines", name, "--json"], env)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["reachable"] and row["address"] == engine.address
    listed = {e["name"]: e for e in row["endpoints"]}
    assert listed[live]["current"] and listed[live]["reachable"], listed[live]
    # Its version, unless info() took longer than the 3 s a probe is given (a loaded host).
    assert listed[live]["version"] in (None, engine.info().version)
    assert not listed["ek-gone"]["current"] and not listed["ek-gone"]["reachable"]
    # The configuration is what chose the engine: one that points nowhere fails there.
    monkeypatch.setenv(*missing)
    with enginekit.connect(name) as elsewhere, pytest.raises(EngineUnavailable) as info_:
        elsewhere.ping()
    assert str(gone) in str(info_.value)
