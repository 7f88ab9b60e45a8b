"""Adapter discovery: the entry points read directly find what importlib.metadata finds."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from enginekit import registry
from enginekit.errors import EngineError


def _importlib_view() -> list[tuple[str, str, str | None]]:
    return [
        (ep.name, ep.value, ep.dist.name if ep.dist is not None else None)
        for ep in importlib.metadata.entry_points(group=registry.GROUP)
    ]


def _our_view(path: list[str]) -> list[tuple[str, str, str | None]]:
    entries = registry._read_entry_points(path)
    assert entries is not None
    return [(e.name, e.value, e.dist_name) for e in entries]


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry._reset_cache()
    yield
    registry._reset_cache()


def _dist(site: Path, folder: str, name: str, entry_points: str | None) -> None:
    meta = site / folder
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n\nBody\n")
    if entry_points is not None:
        (meta / "entry_points.txt").write_text(entry_points)


def test_this_environment_reads_alike() -> None:
    assert _our_view(list(sys.path)) == _importlib_view()
    assert {"docker", "podman", "lxc"} <= {name for name, _, _ in _importlib_view()}


def test_fake_sites_read_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(
        first,
        "ekreg_one-1.0.dist-info",
        "ekreg-one",
        "# a comment\n[console_scripts]\nalpha = nope:nope\n\n"
        "[enginekit.adapters]\nalpha = ekreg_a:connect\n  beta=ekreg_a:Factory.make [extra]\n",
    )
    _dist(first, "EkReg.Two-2.dist-info", "EkReg.Two", "[enginekit.adapters]\ngamma = b:c\n")
    _dist(first, "ekreg_none-1.dist-info", "ekreg-none", None)
    (first / "ekreg_file-1.egg-info").write_text("Metadata-Version: 1.0\nName: ekreg-file\n")
    # The same distributions again, later on the path: shadowed, as importlib.metadata has it.
    _dist(second, "ekreg_one-2.0.dist-info", "ekreg-one", "[enginekit.adapters]\ndelta = d:e\n")
    _dist(second, "ekreg_two-3.dist-info", "ekreg-two", "[enginekit.adapters]\nepsilon = d:e\n")
    _dist(second, "ekreg_three-1.egg-info", "ekreg-three", "[enginekit.adapters]\nalpha = z:z\n")
    path = [str(first), str(tmp_path / "missing"), str(second)]
    monkeypatch.setattr(sys, "path", path)
    expected = _importlib_view()
    assert _our_view(path) == expected
    names = [name for name, _, _ in expected]
    assert sorted(names) == ["alpha", "alpha", "beta", "gamma"], names  # delta, epsilon shadowed
    assert ("gamma", "b:c", "EkReg.Two") in expected


def test_what_only_importlib_reads_is_left_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ekzip-1.dist-info/METADATA", "Metadata-Version: 2.1\nName: ekzip\n")
        zf.writestr("ekzip-1.dist-info/entry_points.txt", "[enginekit.adapters]\nzipped = a:b\n")
    assert registry._read_entry_points([str(archive)]) is None
    monkeypatch.setattr(sys, "path", [str(archive)])
    registry._reset_cache()
    try:
        assert registry.adapter_names() == ["zipped"]
        assert registry.distribution_of("zipped") == "ekzip"
    finally:
        registry._reset_cache()

    class Finder:
        def find_spec(self, *args: object) -> None:
            return None

        def find_distributions(self, *args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert registry._read_entry_points([str(tmp_path)]) is None


def test_load_names_an_attribute_path() -> None:
    import os.path

    assert registry._Entry("x", "os.path:join [extra]").load() is os.path.join
    assert registry._Entry("x", "os.path").load() is os.path
    assert registry._Entry("x", "enginekit.registry:_Entry.load").load() is registry._Entry.load


def test_an_adapter_on_the_path_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    (tmp_path / "ekreg_fake.py").write_text("def connect(address=None, **options):\n    return 1\n")
    _dist(tmp_path, "ekreg_fake-0.dist-info", "ekreg-fake", None)
    (tmp_path / "ekreg_fake-0.dist-info" / "entry_points.txt").write_text(
        "[enginekit.adapters]\nekfake = ekreg_fake:connect\nekbad = ekreg_fake\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ekfake" in registry.adapter_names()
    assert registry.distribution_of("ekfake") == "ekreg-fake"
    assert registry.load_adapter("ekfake") is sys.modules["ekreg_fake"].connect
    with pytest.raises(EngineError, match="not callable"):
        registry.load_adapter("ekbad")
    with pytest.raises(EngineError, match=r"installed: .*ekfake"):
        registry.load_adapter("ekreg-none")


def test_connecting_reads_no_metadata_module() -> None:
    code = (
        "import sys, enginekit; enginekit.connect('docker').close(); "
        "print(sorted(m for m in sys.modules if m.startswith('importlib.metadata')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
