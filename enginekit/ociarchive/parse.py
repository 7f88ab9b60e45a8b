"""Parsing an archive's ``manifest.json``, ``index.json``, manifests and configs into images."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import InvalidSpec
from .media import (
    _BLOB_PATH_RE,
    _DIGEST_RE,
    _INDEX_MEDIA,
    _MANIFEST_MEDIA,
    MEDIA_OCI_MANIFEST,
    _blob_name,
    _load_json,
    _sha256,
)
from .models import ArchiveImage, ArchiveLayer
from .names import _name_from_annotations, familiar_name
from .source import _clean_member, _read_small, _Source


@attrs.define
class _LayerSrc:
    member: str  # path of the blob in the source
    digest: str | None = None  # claimed by a descriptor or a blob path; checked when hashed
    media_type: str | None = None
    size: int | None = None


@attrs.define
class _ImageSrc:
    config: bytes
    config_digest: str
    diff_ids: list[str]
    layers: list[_LayerSrc]
    tags: list[str] = attrs.field(factory=list)
    manifest: bytes | None = None  # an OCI manifest to reuse as is, when it still holds
    manifest_digest: str | None = None

    def archived(
        self, layers: tuple[ArchiveLayer, ...], manifest_digest: str | None
    ) -> ArchiveImage:
        """The image as the caller is told of it: id, tags sorted, layers, manifest digest."""
        return ArchiveImage(
            id=self.config_digest,
            repo_tags=tuple(sorted(self.tags)),
            layers=layers,
            manifest_digest=manifest_digest,
        )


def _parse_config(data: bytes, what: str) -> list[str]:
    config = _load_json(data, what)
    if not isinstance(config, dict):
        raise InvalidSpec(f"{what} is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and _DIGEST_RE.fullmatch(d) for d in diff_ids
    ):
        raise InvalidSpec(f"{what} has no valid rootfs.diff_ids")
    return list(diff_ids)


def _add_tag(image: _ImageSrc, tag: str) -> None:
    if tag not in image.tags:
        image.tags.append(tag)


def _parse_docker_manifest(source: _Source) -> list[_ImageSrc]:
    entries = _load_json(_read_small(source, "manifest.json", "manifest.json"), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidSpec("manifest.json is not a list")
    images: list[_ImageSrc] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidSpec("manifest.json entry is not an object")
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        repo_tags = entry.get("RepoTags") or []
        if (
            not isinstance(config_name, str)
            or not isinstance(layer_names, list)
            or not all(isinstance(n, str) for n in layer_names)
            or not isinstance(repo_tags, list)
            or not all(isinstance(t, str) for t in repo_tags)
        ):
            raise InvalidSpec("manifest.json entry lacks Config, Layers or RepoTags")
        config = _read_small(source, config_name, "image config")
        diff_ids = _parse_config(config, f"image config {config_name!r}")
        if len(diff_ids) != len(layer_names):
            raise InvalidSpec(
                f"image config {config_name!r} lists {len(diff_ids)} layers,"
                f" manifest.json {len(layer_names)}"
            )
        layers = []
        for layer_name in layer_names:
            clean = _clean_member(layer_name) or ""
            match = _BLOB_PATH_RE.fullmatch(clean)
            layers.append(
                _LayerSrc(member=layer_name, digest="sha256:" + match[1] if match else None)
            )
        image = _ImageSrc(
            config=config, config_digest=_sha256(config), diff_ids=diff_ids, layers=layers
        )
        for tag in repo_tags:
            _add_tag(image, familiar_name(tag))
        images.append(image)
    return images


def _descriptor(value: Any, what: str) -> tuple[str, str, int, dict[str, Any]]:
    """``(media_type, digest, size, annotations)`` of a descriptor; InvalidSpec if broken."""
    if not isinstance(value, dict):
        raise InvalidSpec(f"{what} is not a descriptor object")
    media_type = value.get("mediaType", "")
    digest = value.get("digest")
    size = value.get("size")
    annotations = value.get("annotations") or {}
    if (
        not isinstance(media_type, str)
        or not isinstance(digest, str)
        or not _DIGEST_RE.fullmatch(digest)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or not isinstance(annotations, dict)
    ):
        raise InvalidSpec(f"{what} is not a valid descriptor")
    return media_type, digest, size, annotations


def _read_blob(source: _Source, digest: str, size: int | None, what: str) -> bytes:
    name = _blob_name(digest)
    data = _read_small(source, name, what)
    if _sha256(data) != digest or (size is not None and len(data) != size):
        raise InvalidSpec(f"{what} {digest} does not match its digest or size")
    return data


def _parse_oci_manifest(
    source: _Source, digest: str, size: int, media_type: str, annotations: Mapping[str, Any]
) -> _ImageSrc:
    raw = _read_blob(source, digest, size, "image manifest")
    manifest = _load_json(raw, f"image manifest {digest}")
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise InvalidSpec(f"image manifest {digest} is not a schema 2 manifest")
    _, config_digest, config_size, _ = _descriptor(manifest.get("config"), "manifest config")
    config = _read_blob(source, config_digest, config_size, "image config")
    diff_ids = _parse_config(config, f"image config {config_digest}")
    descriptors = manifest.get("layers")
    if not isinstance(descriptors, list) or len(descriptors) != len(diff_ids):
        raise InvalidSpec(f"image manifest {digest} layers do not match its config's diff_ids")
    layers = []
    for value in descriptors:
        layer_media, layer_digest, layer_size, _ = _descriptor(value, "manifest layer")
        layers.append(
            _LayerSrc(
                member=_blob_name(layer_digest),
                digest=layer_digest,
                media_type=layer_media or None,
                size=layer_size,
            )
        )
    manifest_media = manifest.get("mediaType", media_type)
    image = _ImageSrc(
        config=config,
        config_digest=config_digest,
        diff_ids=diff_ids,
        layers=layers,
        manifest=raw if manifest_media in ("", MEDIA_OCI_MANIFEST) else None,
        manifest_digest=digest,
    )
    name = _name_from_annotations(annotations)
    if name:
        _add_tag(image, name)
    return image


def _parse_oci_index(
    source: _Source, index: Any, annotations: Mapping[str, Any], depth: int = 0
) -> list[_ImageSrc]:
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidSpec("OCI index has no manifests list")
    if depth > 4:
        raise InvalidSpec("OCI indexes nested too deep")
    images: list[_ImageSrc] = []
    for value in index["manifests"]:
        media_type, digest, size, entry_annotations = _descriptor(value, "index entry")
        merged = {**annotations, **entry_annotations}
        if media_type in _INDEX_MEDIA:
            if not source.has(_blob_name(digest)):
                continue
            nested = _load_json(_read_blob(source, digest, size, "image index"), "image index")
            images.extend(_parse_oci_index(source, nested, merged, depth + 1))
        elif media_type in _MANIFEST_MEDIA or media_type == "":
            # A multi-platform index often carries only some platforms' blobs.
            if depth > 0 and not source.has(_blob_name(digest)):
                continue
            images.append(_parse_oci_manifest(source, digest, size, media_type, merged))
        else:
            raise InvalidSpec(f"OCI index entry has unsupported media type {media_type!r}")
    return images


def _parse_layout(source: _Source) -> list[_ImageSrc]:
    index = _load_json(_read_small(source, "index.json", "index.json"), "index.json")
    return _parse_oci_index(source, index, {})


def _merge(images: Iterable[_ImageSrc]) -> list[_ImageSrc]:
    """One entry per config digest, tags united, in first-seen order."""
    merged: dict[str, _ImageSrc] = {}
    for image in images:
        seen = merged.get(image.config_digest)
        if seen is None:
            merged[image.config_digest] = image
            continue
        for tag in image.tags:
            _add_tag(seen, tag)
        if seen.manifest is None and image.manifest is not None:
            seen.manifest, seen.manifest_digest = image.manifest, image.manifest_digest
        for mine, theirs in zip(seen.layers, image.layers, strict=True):
            # Facts about the other side's blob hold for ours only if it is the same file.
            if _clean_member(mine.member) == _clean_member(theirs.member):
                mine.media_type = mine.media_type or theirs.media_type
                mine.digest = mine.digest or theirs.digest
                mine.size = mine.size if mine.size is not None else theirs.size
    # A tag names one image: the first that claims it keeps it.
    owner: dict[str, str] = {}
    for image in merged.values():
        image.tags = [
            t for t in image.tags if owner.setdefault(t, image.config_digest) == image.config_digest
        ]
    return list(merged.values())


def _parse(source: _Source) -> list[_ImageSrc]:
    """Every image of a docker-archive, an OCI layout, or both at once."""
    images: list[_ImageSrc] = []
    has_docker = source.has("manifest.json")
    has_oci = source.has("index.json") and source.has("oci-layout")
    if not has_docker and not has_oci:
        raise InvalidSpec("not an image archive: it has neither manifest.json nor index.json")
    if has_docker:
        images.extend(_parse_docker_manifest(source))
    if has_oci:
        oci = _parse_layout(source)
        if has_docker:
            # manifest.json decides which images there are; the OCI side adds
            # media types, manifests and tags for those same images.
            known = {image.config_digest for image in images}
            oci = [image for image in oci if image.config_digest in known]
        images.extend(oci)
    return _merge(images)
