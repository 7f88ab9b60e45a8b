"""Tests of enginekit.ociarchive.

Two parts:

- Pure tests on synthetic archives built here (no engine).
- Live round trips through the engines' own CLIs (not enginekit's adapters):
  they need ``docker`` (daemon up), ``podman``, ``skopeo`` and ``umoci`` and
  FAIL when any is missing or down (``bash scripts/setup-engines.sh`` starts
  them). Every image they make is labelled ``enginekit.test=ociarchive`` and
  removed, with every temp dir, whatever happens.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from enginekit_podman.convert import engine_image_ref as podman_name
from enginekit_podman.convert import user_image_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enginekit import ociarchive as oa
from enginekit.errors import ImageNotFound, InvalidSpec

# --------------------------------------------------------------------------- builders


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_config(diff_ids: Sequence[str], label: str = "x") -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"enginekit.test": label}},
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }
    ).encode()


class Img:
    """A synthetic image: uncompressed layers and a config listing their digests."""

    def __init__(self, tags: Sequence[str], layers: Sequence[bytes], label: str = "x") -> None:
        self.tags = list(tags)
        self.layers = list(layers)
        self.config = make_config([sha(layer) for layer in layers], label)
        self.id = sha(self.config)


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, *, hard: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def write_docker_archive(path: Path, images: Sequence[Img], *, symlinks: bool = False) -> None:
    """Docker's layout (``<id>/layer.tar``), or Podman's (``<diffid>.tar`` + symlinks)."""
    manifest = []
    with tarfile.open(path, "w:") as tar:
        for image in images:
            layer_paths = []
            for layer in image.layers:
                hexd = sha(layer)[7:]
                if symlinks:
                    add(tar, f"{hexd}.tar", layer)
                    v1 = hashlib.sha256(hexd.encode()).hexdigest()
                    add_link(tar, f"{v1}/layer.tar", f"../{hexd}.tar")
                    layer_paths.append(f"{hexd}.tar")
                else:
                    v1 = hashlib.sha256(b"v1" + layer).hexdigest()
                    add(tar, f"{v1}/layer.tar", layer)
                    add(tar, f"{v1}/VERSION", b"1.0")
                    layer_paths.append(f"{v1}/layer.tar")
            add(tar, f"{image.id[7:]}.json", image.config)
            manifest.append(
                {"Config": f"{image.id[7:]}.json", "RepoTags": image.tags, "Layers": layer_paths}
            )
        add(tar, "manifest.json", json.dumps(manifest).encode())


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def write_oci_layout(
    root: Path, images: Sequence[Img], *, compress: bool = True, ref_style: str = "full"
) -> dict[str, str]:
    """An OCI layout dir (Podman's/skopeo's style); returns ref name -> manifest digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    refs = {}
    for image in images:
        descs = []
        for layer in image.layers:
            blob = gz(layer) if compress else layer
            (blobs / sha(blob)[7:]).write_bytes(blob)
            media = oa.MEDIA_LAYER_GZIP if compress else oa.MEDIA_LAYER_TAR
            descs.append({"mediaType": media, "digest": sha(blob), "size": len(blob)})
        (blobs / image.id[7:]).write_bytes(image.config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": oa.MEDIA_OCI_MANIFEST,
                "config": {
                    "mediaType": oa.MEDIA_OCI_CONFIG,
                    "digest": image.id,
                    "size": len(image.config),
                },
                "layers": descs,
            }
        ).encode()
        (blobs / sha(manifest)[7:]).write_bytes(manifest)
        tags: list[str | None] = list(image.tags) or [None]
        for tag in tags:
            entry: dict[str, Any] = {
                "mediaType": oa.MEDIA_OCI_MANIFEST,
                "digest": sha(manifest),
                "size": len(manifest),
            }
            if tag is not None:
                ref = tag if ref_style == "full" else tag.rpartition(":")[2]
                entry["annotations"] = {oa.ANNOTATION_REF_NAME: ref}
                refs[ref] = sha(manifest)
            entries.append(entry)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return refs


def tar_dir(root: Path, dest: Path) -> None:
    with tarfile.open(dest, "w:") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name)


def write_oci_archive(path: Path, images: Sequence[Img], **kwargs: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_oci_layout(Path(tmp), images, **kwargs)
        tar_dir(Path(tmp), path)


def members(path: Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
    return out


def check_combined(path: Path) -> dict[str, bytes]:
    """Assert ``path`` is a sound combined archive: blobs match names, both indexes agree."""
    files = members(path)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert sha(data)[7:] == name.rpartition("/")[2], name
    index = json.loads(files["index.json"])
    docker = json.loads(files["manifest.json"])
    by_config = {}
    for entry in index["manifests"]:
        manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])
        assert manifest["mediaType"] == oa.MEDIA_OCI_MANIFEST
        by_config[manifest["config"]["digest"]] = manifest
        ann = entry.get("annotations", {})
        if ann:
            assert ann[oa.ANNOTATION_REF_NAME] == ann[oa.ANNOTATION_IMAGE_NAME].rpartition(":")[2]
    for entry in docker:
        config_digest = "sha256:" + entry["Config"].rpartition("/")[2]
        manifest = by_config[config_digest]
        assert [layer["digest"][7:] for layer in manifest["layers"]] == [
            p.rpartition("/")[2] for p in entry["Layers"]
        ]
        config = json.loads(files[entry["Config"]])
        for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            blob = files[f"blobs/sha256/{desc['digest'][7:]}"]
            raw = gzip.decompress(blob) if desc["mediaType"].endswith("+gzip") else blob
            assert sha(raw) == diff_id
        for tag in entry["RepoTags"]:
            names = [
                e["annotations"][oa.ANNOTATION_IMAGE_NAME]
                for e in index["manifests"]
                if e.get("annotations")
                and e["digest"] == sha(files[f"blobs/sha256/{e['digest'][7:]}"])
            ]
            assert oa.qualified_name(tag) in names
    return files


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ek-ociarchive-") as tmp:
        yield Path(tmp)


def two_images() -> list[Img]:
    base = make_layer({"bin/a": b"a" * 1000})
    return [
        Img(["app:v1", "app:latest"], [base, make_layer({"etc/x": b"x"})], "one"),
        Img(["example.com:5000/team/other:2"], [base, make_layer({"etc/y": b"y" * 77})], "two"),
    ]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "qualified", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("team/app:v2", "docker.io/team/app:v2", "team/app:v2"),
        ("localhost/app:v1", "localhost/app:v1", "localhost/app:v1"),
        ("example.com:5000/a/b:c", "example.com:5000/a/b:c", "example.com:5000/a/b:c"),
    ],
)
def test_names(name: str, qualified: str, familiar: str) -> None:
    assert oa.qualified_name(name) == qualified
    assert oa.familiar_name(name) == familiar


@pytest.mark.parametrize(
    "bad", ["", "UPPER:1", "a b:1", "app@sha256:" + "0" * 64, "x:" + "t" * 200]
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(InvalidSpec):
        oa.qualified_name(bad)


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("symlinks", [False, True], ids=["docker", "podman-links"])
def test_docker_archive_to_combined(workdir: Path, symlinks: bool) -> None:
    images = two_images()
    path = workdir / "a.tar"
    write_docker_archive(path, images, symlinks=symlinks)
    result = oa.normalize(path)
    assert [r.id for r in result] == [i.id for i in images]
    assert result[0].repo_tags == ("app:latest", "app:v1")
    assert result[1].repo_tags == ("example.com:5000/team/other:2",)
    files = check_combined(path)
    docker = json.loads(files["manifest.json"])
    assert docker[0]["RepoTags"] == ["app:v1", "app:latest"]
    assert all(p.startswith("blobs/sha256/") for e in docker for p in e["Layers"])
    # the config is the same bytes: the image id does not change
    assert files[f"blobs/sha256/{images[0].id[7:]}"] == images[0].config
    # the shared base layer is stored once
    assert sum(1 for n in files if n == f"blobs/sha256/{sha(images[0].layers[0])[7:]}") == 1
    index = json.loads(files["index.json"])
    names = sorted(e["annotations"][oa.ANNOTATION_IMAGE_NAME] for e in index["manifests"])
    assert names == [
        "docker.io/library/app:latest",
        "docker.io/library/app:v1",
        "example.com:5000/team/other:2",
    ]
    refs = sorted(e["annotations"][oa.ANNOTATION_REF_NAME] for e in index["manifests"])
    assert refs == ["2", "latest", "v1"]
    assert oa.read_index(path) == result
    assert oa.read_index(path, verify=True) == result


@pytest.mark.parametrize("compress", [True, False])
def test_oci_archive_to_combined(workdir: Path, compress: bool) -> None:
    images = two_images()
    path = workdir / "o.tar"
    write_oci_archive(path, images, compress=compress)
    before = oa.read_index(path)
    result = oa.normalize(path)
    files = check_combined(path)
    assert [r.id for r in result] == [i.id for i in images]
    assert result[0].repo_tags == ("app:latest", "app:v1")
    media = oa.MEDIA_LAYER_GZIP if compress else oa.MEDIA_LAYER_TAR
    assert {layer.media_type for r in result for layer in r.layers} == {media}
    for r, image in zip(result, images, strict=True):
        assert r.diff_ids == tuple(sha(layer) for layer in image.layers)
        if compress:
            assert r.layer_digests != r.diff_ids
    # the original OCI manifest is kept as it is: its digest does not move
    assert [r.manifest_digest for r in result] == [b.manifest_digest for b in before]
    assert all(
        f"blobs/sha256/{r.manifest_digest[7:]}" in files for r in result if r.manifest_digest
    )


def test_oci_bare_ref_names_give_untagged(workdir: Path) -> None:
    # `skopeo copy ... oci:DIR:v1` writes a bare ref name that names no repository
    path = workdir / "o.tar"
    write_oci_archive(path, [Img(["app:v1"], [make_layer({"a": b"1"})])], ref_style="bare")
    (image,) = oa.normalize(path)
    assert image.repo_tags == ()
    files = check_combined(path)
    assert json.loads(files["manifest.json"])[0]["RepoTags"] == []
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]


def test_normalize_is_idempotent(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    first = oa.normalize(path)
    data = path.read_bytes()
    assert oa.normalize(path) == first
    assert path.read_bytes() == data


@pytest.mark.parametrize("opener", [gzip.open, "bz2", "xz"])
def test_compressed_archive(workdir: Path, opener: Any) -> None:
    import bz2
    import lzma

    plain = workdir / "a.tar"
    write_docker_archive(plain, two_images())
    packed = workdir / "a.tar.z"
    open_ = {"bz2": bz2.open, "xz": lzma.open}.get(opener, opener)
    with open_(packed, "wb") as out:
        out.write(plain.read_bytes())
    dest = workdir / "c.tar"
    result = oa.to_combined(packed, dest)
    assert [r.id for r in result] == [i.id for i in two_images()]
    check_combined(dest)
    assert sorted(os.listdir(workdir)) == ["a.tar", "a.tar.z", "c.tar"]


def test_multi_member_gzip_layer(workdir: Path) -> None:
    layer = make_layer({"a": b"a" * 5000, "b": b"b" * 7000})
    image = Img(["multi:1"], [layer])
    root = workdir / "layout"
    write_oci_layout(root, [image], compress=False)
    # replace the layer by a two-member gzip stream of the same content
    blob = gz(layer[:3000]) + gz(layer[3000:]) + b"\0" * 512
    old_index = json.loads((root / "index.json").read_text())
    manifest_path = root / "blobs/sha256" / old_index["manifests"][0]["digest"][7:]
    manifest = json.loads(manifest_path.read_bytes())
    manifest["layers"] = [
        {"mediaType": oa.MEDIA_LAYER_GZIP, "digest": sha(blob), "size": len(blob)}
    ]
    raw = json.dumps(manifest).encode()
    (root / "blobs/sha256" / sha(blob)[7:]).write_bytes(blob)
    (root / "blobs/sha256" / sha(raw)[7:]).write_bytes(raw)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    (root / "index.json").write_text(json.dumps(index))
    path = workdir / "m.tar"
    tar_dir(root, path)
    (result,) = oa.normalize(path)
    assert result.layers[0].diff_id == sha(layer)
    assert result.layers[0].media_type == oa.MEDIA_LAYER_GZIP
    check_combined(path)


def test_untagged_image(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, [Img([], [make_layer({"a": b"1"})])])
    (image,) = oa.normalize(path)
    assert image.repo_tags == ()
    files = check_combined(path)
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert "annotations" not in entry


def test_same_image_twice_merged(workdir: Path) -> None:
    layer = make_layer({"a": b"1"})
    path = workdir / "a.tar"
    write_docker_archive(path, [Img(["a:1"], [layer]), Img(["b:2"], [layer])])
    (image,) = oa.normalize(path)
    assert image.repo_tags == ("a:1", "b:2")


def test_rename(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    result = oa.normalize(path, rename=podman_name)
    assert result[0].repo_tags == ("localhost/app:latest", "localhost/app:v1")
    assert result[1].repo_tags == ("example.com:5000/team/other:2",)
    index = json.loads(members(path)["index.json"])
    assert "localhost/app:v1" in {
        e["annotations"][oa.ANNOTATION_IMAGE_NAME] for e in index["manifests"]
    }
    back = oa.normalize(path, rename=user_image_name)
    assert back[0].repo_tags == ("app:latest", "app:v1")


def test_bounded_memory(workdir: Path) -> None:
    size = 48 << 20
    big = workdir / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(os.urandom(1 << 20))
    layer_path = workdir / "layer.tar"
    with tarfile.open(layer_path, "w:") as tar:
        tar.add(big, arcname="big.bin")
    big.unlink()
    digest = hashlib.sha256()
    with open(layer_path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    config = make_config(["sha256:" + digest.hexdigest()])
    path = workdir / "a.tar"
    with tarfile.open(path, "w:") as tar:
        tar.add(layer_path, arcname="l/layer.tar")
        add(tar, "c.json", config)
        add(
            tar,
            "manifest.json",
            json.dumps(
                [{"Config": "c.json", "RepoTags": ["big:1"], "Layers": ["l/layer.tar"]}]
            ).encode(),
        )
    layer_path.unlink()
    tracemalloc.start()
    try:
        (image,) = oa.normalize(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.layers[0].size > size
    assert peak < 12 << 20, f"peak Python memory {peak} bytes for a {size}-byte layer"


# --------------------------------------------------------------------------- layouts


def test_write_from_layout(workdir: Path) -> None:
    images = two_images()
    layout = workdir / "layout"
    refs = write_oci_layout(layout, images)
    dest = workdir / "out.tar"
    # by ref name with explicit tags, and by manifest digest
    result = oa.write_from_layout(
        layout, {"app:v1": ["mine:1", "mine:2"], refs["example.com:5000/team/other:2"]: []}, dest
    )
    assert [r.id for r in result] == [i.id for i in images]
    assert result[0].repo_tags == ("mine:1", "mine:2")
    assert result[1].repo_tags == ()
    check_combined(dest)
    # a plain list keeps the entries' own names
    result = oa.write_from_layout(layout, ["app:latest"], dest)
    assert result[0].repo_tags == ("app:latest",)
    with pytest.raises(ImageNotFound):
        oa.write_from_layout(layout, ["nope:1"], dest)
    with pytest.raises(InvalidSpec):
        oa.write_from_layout(workdir / "missing", ["app:v1"], dest)


def test_extract_to_layout_roundtrip(workdir: Path) -> None:
    images = two_images()
    path = workdir / "a.tar"
    write_docker_archive(path, images)
    layout = workdir / "layout"
    result = oa.extract_to_layout(path, layout)
    assert [r.id for r in result] == [i.id for i in images]
    index = json.loads((layout / "index.json").read_text())
    assert sorted(e["annotations"][oa.ANNOTATION_REF_NAME] for e in index["manifests"]) == [
        "app:latest",
        "app:v1",
        "example.com:5000/team/other:2",
    ]
    for blob in (layout / "blobs/sha256").iterdir():
        assert sha(blob.read_bytes())[7:] == blob.name
    # a second import of a newer app:v1 replaces that entry and keeps the rest
    newer = Img(["app:v1"], [make_layer({"new": b"n"})])
    path2 = workdir / "b.tar"
    write_oci_archive(path2, [newer])
    oa.extract_to_layout(path2, layout)
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 3
    out = workdir / "out.tar"
    (again,) = oa.write_from_layout(layout, ["app:v1"], out)
    assert again.id == newer.id
    assert not [n for n in os.listdir(layout / "blobs/sha256") if n.startswith(".")]


def test_extract_to_layout_ref_name(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    layout = workdir / "layout"
    oa.extract_to_layout(path, layout, ref_name=lambda tag: tag.replace(":", "_").replace("/", "_"))
    index = json.loads((layout / "index.json").read_text())
    assert "app_v1" in {e["annotations"][oa.ANNOTATION_REF_NAME] for e in index["manifests"]}


# --------------------------------------------------------------------------- invalid input


def assert_invalid(workdir: Path, path: Path) -> None:
    before = path.read_bytes() if path.is_file() else None
    listing = sorted(os.listdir(workdir))
    with pytest.raises(InvalidSpec):
        oa.normalize(path)
    with pytest.raises(InvalidSpec):
        oa.read_index(path, verify=True)
    if before is not None:
        assert path.read_bytes() == before
    assert sorted(os.listdir(workdir)) == listing  # no temp file left behind


def test_not_an_archive(workdir: Path) -> None:
    text = workdir / "text.txt"
    text.write_text("hello, I am not a tar\n" * 100)
    assert_invalid(workdir, text)
    empty = workdir / "empty.tar"
    empty.write_bytes(b"")
    assert_invalid(workdir, empty)
    with pytest.raises(InvalidSpec):
        oa.normalize(workdir / "missing.tar")
    with pytest.raises(InvalidSpec):
        oa.read_index(workdir)
    plain = workdir / "plain.tar"
    with tarfile.open(plain, "w:") as tar:
        add(tar, "hello.txt", b"hi")
    assert_invalid(workdir, plain)


@pytest.mark.parametrize(
    "evil", ["../escape", "/etc/passwd", "blobs/../../x", "a/../../b"], ids=str
)
def test_unsafe_member_names(workdir: Path, evil: str) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    with tarfile.open(path, "a:") as tar:
        add(tar, evil, b"evil")
    assert_invalid(workdir, path)


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../x"])
def test_links_out_of_archive(workdir: Path, target: str) -> None:
    image = Img(["a:1"], [make_layer({"a": b"1"})])
    path = workdir / "a.tar"
    with tarfile.open(path, "w:") as tar:
        add_link(tar, "layer.tar", target)
        add(tar, "c.json", image.config)
        add(
            tar,
            "manifest.json",
            json.dumps(
                [{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["layer.tar"]}]
            ).encode(),
        )
    assert_invalid(workdir, path)


def test_link_loop_and_dangling(workdir: Path) -> None:
    image = Img(["a:1"], [make_layer({"a": b"1"})])
    path = workdir / "a.tar"
    with tarfile.open(path, "w:") as tar:
        add_link(tar, "x", "y")
        add_link(tar, "y", "x")
        add(tar, "c.json", image.config)
        add(
            tar,
            "manifest.json",
            json.dumps([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["x"]}]).encode(),
        )
    assert_invalid(workdir, path)


def test_device_member(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    with tarfile.open(path, "a:") as tar:
        info = tarfile.TarInfo("dev")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    assert_invalid(workdir, path)


def test_hard_link_inside_archive_is_followed(workdir: Path) -> None:
    image = Img(["a:1"], [make_layer({"a": b"1"})])
    path = workdir / "a.tar"
    with tarfile.open(path, "w:") as tar:
        add(tar, "real.tar", image.layers[0])
        add_link(tar, "l/layer.tar", "real.tar", hard=True)
        add(tar, "c.json", image.config)
        add(
            tar,
            "manifest.json",
            json.dumps(
                [{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l/layer.tar"]}]
            ).encode(),
        )
    (result,) = oa.normalize(path)
    assert result.id == image.id
    check_combined(path)


def _rewrite(path: Path, replace: dict[str, bytes | None]) -> None:
    files = members(path)
    files.update({k: v for k, v in replace.items() if v is not None})
    with tarfile.open(path, "w:") as tar:
        for name, data in files.items():
            if replace.get(name, b"") is not None:
                add(tar, name, data)


@pytest.mark.parametrize(
    "manifest",
    [
        b"not json",
        b"{}",
        b"[1]",
        json.dumps([{"Config": "missing.json", "RepoTags": [], "Layers": []}]).encode(),
        json.dumps([{"RepoTags": [], "Layers": []}]).encode(),
        json.dumps([{"Config": 3, "RepoTags": [], "Layers": []}]).encode(),
    ],
    ids=["not-json", "object", "int", "missing-config", "no-config", "config-int"],
)
def test_broken_docker_manifest(workdir: Path, manifest: bytes) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, two_images())
    _rewrite(path, {"manifest.json": manifest})
    assert_invalid(workdir, path)


def test_bad_repo_tag(workdir: Path) -> None:
    path = workdir / "a.tar"
    write_docker_archive(path, [Img(["Not Valid:1"], [make_layer({"a": b"1"})])])
    assert_invalid(workdir, path)


def test_diff_id_mismatch(workdir: Path) -> None:
    image = Img(["a:1"], [make_layer({"a": b"1"})])
    image.config = make_config([sha(b"something else")])
    image.id = sha(image.config)
    path = workdir / "a.tar"
    write_docker_archive(path, [image])
    assert_invalid(workdir, path)


def test_layer_count_mismatch(workdir: Path) -> None:
    image = Img(["a:1"], [make_layer({"a": b"1"})])
    image.config = make_config([])
    image.id = sha(image.config)
    path = workdir / "a.tar"
    write_docker_archive(path, [image])
    assert_invalid(workdir, path)


def test_config_without_rootfs(workdir: Path) -> None:
    image = Img(["a:1"], [])
    image.config = b'{"architecture": "amd64"}'
    image.id = sha(image.config)
    path = workdir / "a.tar"
    write_docker_archive(path, [image])
    assert_invalid(workdir, path)


def test_corrupt_oci_blobs(workdir: Path) -> None:
    images = [Img(["a:1"], [make_layer({"a": b"1" * 100})])]
    layout = workdir / "layout"
    write_oci_layout(layout, images)
    blobs = sorted((layout / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = next(p for p in blobs if p.read_bytes()[:2] == b"\x1f\x8b")
    layer.write_bytes(gz(make_layer({"a": b"2" * 100})))  # content no longer matches its name
    path = workdir / "o.tar"
    tar_dir(layout, path)
    shutil.rmtree(layout)
    assert_invalid(workdir, path)


def test_truncated_gzip_layer(workdir: Path) -> None:
    images = [Img(["a:1"], [make_layer({"a": os.urandom(5000)})])]
    layout = workdir / "layout"
    write_oci_layout(layout, images)
    index = json.loads((layout / "index.json").read_text())
    manifest_file = layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(manifest_file.read_bytes())
    layer_file = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    cut = layer_file.read_bytes()[:-100]
    layer_file.unlink()
    (layout / "blobs/sha256" / sha(cut)[7:]).write_bytes(cut)
    manifest["layers"][0].update(digest=sha(cut), size=len(cut))
    raw = json.dumps(manifest).encode()
    manifest_file.unlink()
    (layout / "blobs/sha256" / sha(raw)[7:]).write_bytes(raw)
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    path = workdir / "o.tar"
    tar_dir(layout, path)
    shutil.rmtree(layout)
    assert_invalid(workdir, path)


@pytest.mark.parametrize(
    "index",
    [
        b"nope",
        b"{}",
        b'{"manifests": [{"digest": "md5:x", "size": 1}]}',
        b'{"manifests": [{"mediaType": "text/plain", "digest": "sha256:'
        + b"0" * 64
        + b'", "size": 1}]}',
    ],
    ids=["not-json", "no-manifests", "bad-digest", "bad-media"],
)
def test_broken_oci_index(workdir: Path, index: bytes) -> None:
    path = workdir / "o.tar"
    write_oci_archive(path, two_images())
    _rewrite(path, {"index.json": index})
    assert_invalid(workdir, path)


def test_layout_escape_refused(workdir: Path) -> None:
    layout = workdir / "layout"
    write_oci_layout(layout, [Img(["a:1"], [make_layer({"a": b"1"})])])
    secret = workdir / "secret"
    secret.write_text("{}")
    index = json.loads((layout / "index.json").read_text())
    blob = layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]
    blob.unlink()
    blob.symlink_to(secret)
    with pytest.raises(InvalidSpec):
        oa.write_from_layout(layout, ["a:1"], workdir / "o.tar")
    assert not (workdir / "o.tar").exists()


# --------------------------------------------------------------------------- properties

_files = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}", fullmatch=True),
    st.binary(max_size=2000),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layers=st.lists(_files, min_size=1, max_size=3),
    compress=st.booleans(),
    oci=st.booleans(),
    tag=st.from_regex(r"[a-z][a-z0-9]{0,10}:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}", fullmatch=True),
)
def test_any_image_roundtrips(
    layers: list[dict[str, bytes]], compress: bool, oci: bool, tag: str
) -> None:
    image = Img([tag], [make_layer(files) for files in layers])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar"
        if oci:
            write_oci_archive(path, [image], compress=compress)
        else:
            write_docker_archive(path, [image])
        (result,) = oa.normalize(path)
        assert result.id == image.id
        assert result.repo_tags == (oa.familiar_name(tag),)
        assert result.diff_ids == tuple(sha(layer) for layer in image.layers)
        check_combined(path)
        layout = Path(tmp) / "layout"
        oa.extract_to_layout(path, layout)
        out = Path(tmp) / "b.tar"
        (again,) = oa.write_from_layout(layout, [oa.familiar_name(tag)], out)
        assert again == result


# --------------------------------------------------------------------------- live engines
#
# These use the engine CLIs directly: docker (daemon up), podman, skopeo, umoci.

LIVE_TOOLS = ("docker", "podman", "skopeo", "umoci")
LABEL = "enginekit.test=ociarchive"


#: The CLIs talk to this machine's daemons: without the TLS settings a run may
#: carry for a remote engine under test (with DOCKER_TLS_VERIFY set and no
#: DOCKER_HOST, the docker CLI goes to tcp://localhost:2376).
CLI_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH")
}


def run(*args: str, timeout: float = 180) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=CLI_ENV)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _remove_images(tool: str) -> None:
    ids = subprocess.run(
        [tool, "images", "-q", "--no-trunc", "--filter", f"label={LABEL}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=CLI_ENV,
    ).stdout.split()
    if ids:
        subprocess.run(
            [tool, "rmi", "-f", *sorted(set(ids))], capture_output=True, timeout=120, env=CLI_ENV
        )


@pytest.fixture(scope="module")
def live_clis() -> Iterator[None]:
    """The CLIs the live tests need; fails (never skips) when one is missing or down."""
    missing = [tool for tool in LIVE_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"live ociarchive tests need {', '.join(missing)} on PATH")
    for tool in ("docker", "podman"):
        probe = subprocess.run(
            [tool, "version"], capture_output=True, text=True, timeout=60, env=CLI_ENV
        )
        if probe.returncode != 0:
            pytest.fail(
                f"{tool} is not usable ({probe.stderr.strip()[-300:]}); "
                "run scripts/setup-engines.sh"
            )
    try:
        yield
    finally:
        _remove_images("docker")
        _remove_images("podman")


@pytest.fixture
def image(live_clis: None, workdir: Path) -> Iterator[tuple[str, str]]:
    """A tiny busybox image built by Docker: ``(name:tag, image id)``."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    context = workdir / "ctx"
    context.mkdir()
    shutil.copy(busybox, context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        f"LABEL {LABEL} enginekit.nonce={uuid.uuid4().hex}\n"
    )
    ref = f"ek-ociarchive-{uuid.uuid4().hex[:10]}:v1"
    try:
        image_id = run("docker", "build", "-q", "-t", ref, str(context)).strip()
        assert image_id.startswith("sha256:")
        yield ref, image_id
    finally:
        _remove_images("docker")
        _remove_images("podman")


def docker_id(ref: str) -> str:
    return run("docker", "image", "inspect", "--format", "{{.Id}}", ref).strip()


def podman_id(ref: str) -> str:
    return "sha256:" + run("podman", "image", "inspect", "--format", "{{.Id}}", ref).strip()


def test_live_docker_save_moves_everywhere(image: tuple[str, str], workdir: Path) -> None:
    ref, image_id = image
    path = workdir / "img.tar"
    run("docker", "save", "-o", str(path), ref)
    (archived,) = oa.normalize(path)
    assert archived.id == image_id
    assert archived.repo_tags == (ref,)

    # Podman reads it (the OCI side: one image) under the name from the annotation
    out = run("podman", "load", "-i", str(path))
    assert f"docker.io/library/{ref}" in out
    assert podman_id(f"docker.io/library/{ref}") == image_id
    run("podman", "rmi", f"docker.io/library/{ref}")

    # renamed as the Podman adapter does, Podman names it as one it built
    local = workdir / "local.tar"
    oa.to_combined(path, local, rename=podman_name)
    run("podman", "load", "-i", str(local))
    assert podman_id(f"localhost/{ref}") == image_id

    # Docker reads it back (manifest.json side) with the same id
    run("docker", "rmi", ref)
    assert f"Loaded image: {ref}" in run("docker", "load", "-i", str(path))
    assert docker_id(ref) == image_id
    run("docker", "run", "--rm", "--network", "none", ref, "/bin/busybox", "true")

    # skopeo and umoci read it as an OCI archive
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{path}"))
    assert info["Digest"] == archived.manifest_digest
    assert tuple(info["Layers"]) == archived.layer_digests
    assert info["Labels"]["enginekit.test"] == "ociarchive"
    layout = workdir / "layout"
    run("skopeo", "copy", f"oci-archive:{path}", f"oci:{layout}:moved")
    bundle = workdir / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:moved", str(bundle))
    assert (bundle / "rootfs/bin/busybox").is_file()


def test_live_layout_roundtrip(image: tuple[str, str], workdir: Path) -> None:
    ref, image_id = image
    saved = workdir / "img.tar"
    run("docker", "save", "-o", str(saved), ref)
    layout = workdir / "layout"
    (extracted,) = oa.extract_to_layout(saved, layout)
    assert extracted.id == image_id
    # the layout is one skopeo and umoci accept, under the familiar name
    info = json.loads(run("skopeo", "inspect", f"oci:{layout}:{ref}"))
    assert tuple(info["Layers"]) == extracted.layer_digests
    bundle = workdir / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle))
    assert (bundle / "rootfs/bin/busybox").is_file()
    # a layout skopeo wrote (bare ref name) goes back out under a chosen tag,
    # with the layout's image id (skopeo keeps the config of an OCI source)
    run("docker", "save", "-o", str(saved), ref)
    oa.normalize(saved)
    run("skopeo", "copy", f"oci-archive:{saved}", f"oci:{layout}:bare")
    out = workdir / "out.tar"
    tag = f"{ref[:-3]}:fromlayout"
    (written,) = oa.write_from_layout(layout, {"bare": [tag]}, out)
    assert written.id == image_id
    assert written.repo_tags == (tag,)
    run("docker", "rmi", ref)
    assert f"Loaded image: {tag}" in run("docker", "load", "-i", str(out))
    assert docker_id(tag) == image_id
    run("podman", "load", "-i", str(out))
    assert podman_id(f"docker.io/library/{tag}") == image_id


def test_live_skopeo_docker_daemon_layout(image: tuple[str, str], workdir: Path) -> None:
    # skopeo's docker-daemon: -> oci: conversion rewrites the config (new id):
    # the layout's own id is the one that moves on from there.
    ref, image_id = image
    layout = workdir / "layout"
    run("skopeo", "copy", f"docker-daemon:{ref}", f"oci:{layout}:bare")
    out = workdir / "out.tar"
    tag = f"{ref[:-3]}:viaskopeo"
    (written,) = oa.write_from_layout(layout, {"bare": [tag]}, out)
    config = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:bare"))
    assert config["config"]["Labels"]["enginekit.test"] == "ociarchive"
    assert written.id != image_id
    run("docker", "load", "-i", str(out))
    assert docker_id(tag) == written.id
    run("podman", "load", "-i", str(out))
    assert podman_id(f"docker.io/library/{tag}") == written.id


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_live_podman_save_to_docker(image: tuple[str, str], workdir: Path, fmt: str) -> None:
    ref, image_id = image
    saved = workdir / "from-docker.tar"
    run("docker", "save", "-o", str(saved), ref)
    oa.normalize(saved, rename=podman_name)
    run("podman", "load", "-i", str(saved))
    run("docker", "rmi", ref)

    path = workdir / "from-podman.tar"
    run("podman", "save", "--format", fmt, "-o", str(path), f"localhost/{ref}")
    (archived,) = oa.normalize(path, rename=user_image_name)
    assert archived.id == image_id
    assert archived.repo_tags == (ref,)
    if fmt == "oci-archive":
        assert {layer.media_type for layer in archived.layers} == {oa.MEDIA_LAYER_GZIP}
    assert f"Loaded image: {ref}" in run("docker", "load", "-i", str(path))
    assert docker_id(ref) == image_id
    run("docker", "run", "--rm", "--network", "none", ref, "/bin/busybox", "true")


def test_live_several_images_and_tags(image: tuple[str, str], workdir: Path) -> None:
    ref, image_id = image
    name = ref.rpartition(":")[0]
    run("docker", "tag", ref, f"{name}:second")
    context = workdir / "ctx2"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {ref}\nLABEL enginekit.other=1\n")
    other_id = run("docker", "build", "-q", "-t", f"{name}-other:v2", str(context)).strip()
    path = workdir / "all.tar"
    run("docker", "save", "-o", str(path), ref, f"{name}:second", f"{name}-other:v2")
    archived = oa.normalize(path)
    assert {a.id: a.repo_tags for a in archived} == {
        image_id: tuple(sorted([ref, f"{name}:second"])),
        other_id: (f"{name}-other:v2",),
    }
    # several images: Podman reads manifest.json, and calls short names
    # localhost/... there (docker.io/... when it reads one image's index.json)
    run("podman", "load", "-i", str(path))
    for tag, want in (
        (ref, image_id),
        (f"{name}:second", image_id),
        (f"{name}-other:v2", other_id),
    ):
        assert podman_id(f"localhost/{tag}") == want
    run("docker", "rmi", ref, f"{name}:second", f"{name}-other:v2")
    run("docker", "load", "-i", str(path))
    assert docker_id(f"{name}:second") == image_id
    assert docker_id(f"{name}-other:v2") == other_id
    # skopeo picks one image of several by its ref name (the tag)
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{path}:v2"))
    assert info["Labels"]["enginekit.other"] == "1"


def test_live_podman_multi_image_save(image: tuple[str, str], workdir: Path) -> None:
    ref, image_id = image
    name = ref.rpartition(":")[0]
    saved = workdir / "from-docker.tar"
    context = workdir / "ctx2"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {ref}\nLABEL enginekit.other=2\n")
    other_id = run("docker", "build", "-q", "-t", f"{name}-other:v3", str(context)).strip()
    run("docker", "save", "-o", str(saved), ref, f"{name}-other:v3")
    oa.normalize(saved, rename=podman_name)
    run("podman", "load", "-i", str(saved))
    run("docker", "rmi", ref, f"{name}-other:v3")

    # podman save -m writes a several-image docker-archive (links, localhost/ names)
    path = workdir / "multi.tar"
    run("podman", "save", "-m", "-o", str(path), f"localhost/{ref}", f"localhost/{name}-other:v3")
    archived = oa.normalize(path, rename=user_image_name)
    assert {a.id: a.repo_tags for a in archived} == {
        image_id: (ref,),
        other_id: (f"{name}-other:v3",),
    }
    run("docker", "load", "-i", str(path))
    assert docker_id(ref) == image_id
    assert docker_id(f"{name}-other:v3") == other_id


def test_live_untagged_image(image: tuple[str, str], workdir: Path) -> None:
    ref, image_id = image
    path = workdir / "untagged.tar"
    run("docker", "save", "-o", str(path), image_id)
    (archived,) = oa.normalize(path)
    assert archived.id == image_id
    assert archived.repo_tags == ()
    run("podman", "load", "-i", str(path))
    assert podman_id(image_id[7:]) == image_id
    run("docker", "rmi", ref)
    assert image_id in run("docker", "load", "-i", str(path))
    assert docker_id(image_id) == image_id


def test_combined_with_different_blobs_on_each_side(workdir: Path) -> None:
    # docker side: uncompressed layer.tar files; OCI side: gzip blobs of the same layers
    images = two_images()
    docker_part = workdir / "d.tar"
    write_docker_archive(docker_part, images)
    layout = workdir / "layout"
    write_oci_layout(layout, images, compress=True)
    path = workdir / "both.tar"
    with tarfile.open(path, "w:") as tar:
        for name, data in members(docker_part).items():
            add(tar, name, data)
        for child in sorted(layout.iterdir()):
            tar.add(child, arcname=child.name)
    result = oa.normalize(path)
    assert [r.id for r in result] == [i.id for i in images]
    assert {layer.media_type for r in result for layer in r.layers} == {oa.MEDIA_LAYER_TAR}
    check_combined(path)
