"""OCI layout directories: writing their images as an archive, adding an archive's to one."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from ..errors import ImageNotFound, InvalidSpec
from .combined import _default_ref_name, _write_combined
from .files import _replacing
from .layers import _layers
from .manifests import _index_entries, _oci_manifest
from .media import (
    _CHUNK,
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    _json_bytes,
    _load_json,
    _sha256,
)
from .models import ArchiveImage, ArchiveLayer
from .names import familiar_name
from .parse import _descriptor, _ImageSrc, _merge, _parse, _parse_oci_index
from .source import _DirSource, _open_archive, _read_small


def _select(
    layout: _DirSource, refs: Mapping[str, Iterable[str]] | Iterable[str]
) -> list[_ImageSrc]:
    index = _load_json(_read_small(layout, "index.json", "index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidSpec("OCI layout index.json has no manifests list")
    entries = [_descriptor(value, "index entry") for value in index["manifests"]]
    wanted: dict[str, list[str] | None]
    if isinstance(refs, Mapping):
        wanted = {key: [familiar_name(t) for t in tags] for key, tags in refs.items()}
    else:
        wanted = {key: None for key in refs}
    chosen: list[_ImageSrc] = []
    for key, tags in wanted.items():
        for media_type, digest, size, entry_annotations in entries:
            if key in (
                digest,
                entry_annotations.get(ANNOTATION_REF_NAME),
                entry_annotations.get(ANNOTATION_IMAGE_NAME),
            ):
                images = _parse_oci_index(
                    layout,
                    {
                        "manifests": [
                            {
                                "mediaType": media_type,
                                "digest": digest,
                                "size": size,
                                "annotations": entry_annotations,
                            }
                        ]
                    },
                    {},
                )
                for image in images:
                    if tags is not None:
                        image.tags = list(tags)
                chosen.extend(images)
                break
        else:
            raise ImageNotFound(f"OCI layout has no image {key!r}")
    return _merge(chosen)


def write_from_layout(
    layout_dir: str | os.PathLike[str],
    refs: Mapping[str, Iterable[str]] | Iterable[str],
    dest: str | os.PathLike[str],
) -> list[ArchiveImage]:
    """Write images of an OCI layout directory as a combined archive at ``dest``.

    ``refs`` picks the layout's index entries, each by its
    ``org.opencontainers.image.ref.name``, its ``io.containerd.image.name`` or
    its manifest digest. As a mapping it also gives the tags to write for each
    (``{"app-v1": ["app:v1", "app:latest"]}``; an empty list writes the image
    untagged); as a plain list of selectors the tags come from the entries'
    own annotations. A selector that matches nothing raises
    :class:`ImageNotFound`; a broken layout :class:`InvalidSpec`.
    """
    layout = _DirSource(os.fspath(layout_dir))
    images = _select(layout, refs)
    return _write_combined(layout, images, os.fspath(dest), ref_name=_default_ref_name)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _put_blob(blob_dir: str, digest: str, stream: IO[bytes]) -> None:
    """Copy a blob into the layout under its digest, checking it; no-op if it is there."""
    target = os.path.join(blob_dir, digest.removeprefix("sha256:"))
    if os.path.isfile(target):
        return
    hasher = hashlib.sha256()
    with _replacing(target, sync=False) as out:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
            out.write(chunk)
        if "sha256:" + hasher.hexdigest() != digest:
            raise InvalidSpec(f"blob does not match its digest {digest}")


def _atomic_write(path: str, data: bytes) -> None:
    with _replacing(path) as out:
        out.write(data)


def extract_to_layout(
    path: str | os.PathLike[str],
    layout_dir: str | os.PathLike[str],
    *,
    ref_name: Callable[[str], str] | None = None,
) -> list[ArchiveImage]:
    """Add every image of the archive at ``path`` (any form) to an OCI layout directory.

    The layout is created if ``layout_dir`` is missing or empty. Blobs are
    copied in under their digests (checked; blobs already there are kept);
    each tag gets an ``index.json`` entry annotated with
    ``io.containerd.image.name`` (qualified name) and
    ``org.opencontainers.image.ref.name`` = ``ref_name(tag)`` (default: the
    familiar ``name:tag``, which skopeo's ``oci:DIR:name:tag`` and umoci's
    ``--image DIR:name:tag`` accept); an entry with the same ref name is
    replaced. An untagged image gets an entry without annotations. The
    layout is locked (flock on the directory) while it changes, and
    index.json is replaced atomically.
    """
    name_of = ref_name or (lambda tag: tag)
    layout_dir = os.fspath(layout_dir)
    with _open_archive(os.fspath(path)) as source:
        images = _parse(source)
        cache: dict[str, ArchiveLayer] = {}
        resolved = [(image, _layers(source, image, verify=True, cache=cache)) for image in images]
        os.makedirs(layout_dir, exist_ok=True)
        with _locked(layout_dir):
            layout_file = os.path.join(layout_dir, "oci-layout")
            index_file = os.path.join(layout_dir, "index.json")
            index: dict[str, Any]
            if os.path.exists(index_file):
                index = _load_json(
                    _read_small(_DirSource(layout_dir), "index.json", "index.json"), "index.json"
                )
                if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
                    raise InvalidSpec(f"{layout_dir} has an index.json without a manifests list")
            else:
                index = {"schemaVersion": 2, "manifests": []}
            if not os.path.exists(layout_file):
                _atomic_write(layout_file, _json_bytes({"imageLayoutVersion": "1.0.0"}))
            blob_dir = os.path.join(layout_dir, "blobs", "sha256")
            os.makedirs(blob_dir, exist_ok=True)
            result = []
            entries: list[dict[str, Any]] = []
            for image, layers in resolved:
                for src, layer in zip(image.layers, layers, strict=True):
                    with source.open(src.member) as blob:
                        _put_blob(blob_dir, layer.digest, blob)
                _put_blob(blob_dir, image.config_digest, io.BytesIO(image.config))
                manifest = _oci_manifest(image, layers)
                manifest_digest = _sha256(manifest)
                _put_blob(blob_dir, manifest_digest, io.BytesIO(manifest))
                entries.extend(_index_entries(manifest_digest, len(manifest), image.tags, name_of))
                result.append(image.archived(layers, manifest_digest))
            new_refs = {
                e["annotations"][ANNOTATION_REF_NAME] for e in entries if "annotations" in e
            }
            new_digests = {e["digest"] for e in entries}
            kept = []
            for entry in index["manifests"]:
                annotations = entry.get("annotations") if isinstance(entry, dict) else None
                ref = (
                    annotations.get(ANNOTATION_REF_NAME) if isinstance(annotations, dict) else None
                )
                if ref in new_refs:
                    continue
                if ref is None and isinstance(entry, dict) and entry.get("digest") in new_digests:
                    continue
                kept.append(entry)
            kept_untagged = {
                e.get("digest") for e in kept if isinstance(e, dict) and not e.get("annotations")
            }
            for entry in entries:
                if "annotations" not in entry and entry["digest"] in kept_untagged:
                    continue
                kept.append(entry)
            index["manifests"] = kept
            _atomic_write(index_file, _json_bytes(index))
        return result
