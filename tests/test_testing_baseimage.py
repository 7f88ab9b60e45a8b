"""The contract suite's busybox image archive (no engine needed)."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import tarfile

import pytest

from enginekit.testing import baseimage

BUSYBOX = pathlib.Path("/bin/busybox")


@pytest.fixture
def archive(tmp_path: pathlib.Path) -> pathlib.Path:
    return baseimage.write_archive(
        tmp_path / "a.tar", BUSYBOX, tag="enginekit-test/busybox:x", labels={"k": "v"}
    )


def test_archive_is_a_docker_archive(archive: pathlib.Path) -> None:
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert len(manifest) == 1
        entry = manifest[0]
        assert entry["RepoTags"] == ["enginekit-test/busybox:x"]
        config_bytes = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
        config = json.loads(config_bytes)
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"]["Labels"] == {"k": "v"}
    assert config["os"] == "linux"
    with tarfile.open(fileobj=io.BytesIO(layer)) as fs:
        members = {m.name: m for m in fs.getmembers()}
    assert members["bin/busybox"].isfile()
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
    assert members["tmp"].mode == 0o1777
    assert members["home/app"].uid == 1000
    assert "bin/httpd" in members and "bin/printf" in members
    assert all(not name.startswith(("/", "..")) for name in members)


def test_context_matches_archive(tmp_path: pathlib.Path) -> None:
    root = baseimage.write_context(tmp_path / "ctx", BUSYBOX)
    assert (root / "Dockerfile").read_text() == baseimage.DOCKERFILE
    assert (root / "busybox").read_bytes() == BUSYBOX.read_bytes()
    assert (root / "passwd").read_text() == baseimage.ETC_PASSWD
