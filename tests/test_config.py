"""Engine choice: argument, environment, config files, first reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from enginekit import InvalidSpec
from enginekit.config import choose, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("docker", ("docker", None)),
        ("docker+unix:///var/run/docker.sock", ("docker", "unix:///var/run/docker.sock")),
        ("podman+unix:///run/podman/podman.sock", ("podman", "unix:///run/podman/podman.sock")),
        ("lxc:///var/lib/lxc", ("lxc", "/var/lib/lxc")),
        ("docker+tcp://127.0.0.1:2375", ("docker", "tcp://127.0.0.1:2375")),
        ("docker+ssh://user@host", ("docker", "ssh://user@host")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str | None]) -> None:
    assert parse_url(url) == expected


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("ENGINEKIT_ENGINE", raising=False)
    monkeypatch.delenv("ENGINEKIT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_argument_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINEKIT_ENGINE", "podman")
    assert choose("lxc").name == "lxc"


def test_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINEKIT_ENGINE", "podman")
    monkeypatch.setenv("ENGINEKIT_URL", "podman+unix:///tmp/p.sock")
    c = choose()
    assert (c.name, c.address, c.source) == ("podman", "unix:///tmp/p.sock", "environment")
    monkeypatch.delenv("ENGINEKIT_ENGINE")
    assert choose().name == "podman"


def test_enginekit_toml_nearest(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "enginekit.toml").write_text('engine = "lxc"\n[options]\nstorage_root = "/x"\n')
    sub = clean_env / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    c = choose()
    assert (c.name, c.options) == ("lxc", {"storage_root": "/x"})
    (sub / "pyproject.toml").write_text('[tool.enginekit]\nurl = "docker+tcp://127.0.0.1:2375"\n')
    c = choose()
    assert (c.name, c.address) == ("docker", "tcp://127.0.0.1:2375")


def test_pyproject_without_table_is_skipped(clean_env: Path) -> None:
    (clean_env / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert choose().name is None


def test_bad_config(clean_env: Path) -> None:
    (clean_env / "enginekit.toml").write_text("engine = 3\n")
    with pytest.raises(InvalidSpec):
        choose()
    (clean_env / "enginekit.toml").write_text("engine = \n")
    with pytest.raises(InvalidSpec):
        choose()


def test_unknown_adapter() -> None:
    import enginekit

    with pytest.raises(enginekit.EngineError, match="no enginekit adapter named"):
        enginekit.connect("nosuchengine")


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, enginekit; "
        "print(sorted(m for m in sys.modules if m.startswith(('attr', 'enginekit.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "url",
    [
        "docker+tcp://user:s3cr3t-pw@127.0.0.1:2375",
        "podman+tcp://user:s3cr3t-pw@127.0.0.1:8080",
        "lxc://user:s3cr3t-pw@host/var/lib/lxc",
        "docker+ssh://user:s3cr3t-pw@host",
    ],
)
def test_a_password_in_the_url_is_refused_unquoted(url: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_url(url)
    assert "s3cr3t-pw" not in str(info.value)
    assert "password" in str(info.value)


def test_a_bare_remote_address_goes_with_the_engine_named_elsewhere(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINEKIT_ENGINE", "docker")
    for url in ("ssh://ci@127.0.0.1:2222", "tcp://127.0.0.1:2376", "/run/x.sock"):
        monkeypatch.setenv("ENGINEKIT_URL", url)
        assert (choose().name, choose().address) == ("docker", url)
    monkeypatch.setenv("ENGINEKIT_URL", "ssh://ci:s3cret@127.0.0.1")
    with pytest.raises(InvalidSpec) as info:
        choose()
    assert "s3cret" not in str(info.value)
    monkeypatch.delenv("ENGINEKIT_ENGINE")
    monkeypatch.setenv("ENGINEKIT_URL", "ssh://ci@127.0.0.1:2222")
    with pytest.raises(InvalidSpec, match="without an engine"):
        choose()
    monkeypatch.delenv("ENGINEKIT_URL")
    (clean_env / "enginekit.toml").write_text('engine = "podman"\nurl = "ssh://core@127.0.0.1:22"\n')
    assert (choose().name, choose().address) == ("podman", "ssh://core@127.0.0.1:22")
