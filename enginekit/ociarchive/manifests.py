"""The OCI manifest and the ``index.json`` entries written for an image."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .media import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
    _json_bytes,
    _load_json,
)
from .models import ArchiveLayer
from .names import qualified_name
from .parse import _ImageSrc


def _oci_manifest(image: _ImageSrc, layers: Sequence[ArchiveLayer]) -> bytes:
    """The image's OCI manifest: the original bytes when they still describe it."""
    if image.manifest is not None:
        manifest = _load_json(image.manifest, "image manifest")
        stated = [(d.get("digest"), d.get("size"), d.get("mediaType")) for d in manifest["layers"]]
        if manifest["config"].get("digest") == image.config_digest and stated == [
            (layer.digest, layer.size, layer.media_type) for layer in layers
        ]:
            return image.manifest
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_OCI_CONFIG,
            "digest": image.config_digest,
            "size": len(image.config),
        },
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    return _json_bytes(manifest)


def _index_entries(
    manifest_digest: str,
    manifest_size: int,
    tags: Sequence[str],
    ref_name: Callable[[str], str],
) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "mediaType": MEDIA_OCI_MANIFEST,
        "digest": manifest_digest,
        "size": manifest_size,
    }
    if not tags:
        return [base]
    return [
        {
            **base,
            "annotations": {
                ANNOTATION_IMAGE_NAME: qualified_name(tag),
                ANNOTATION_REF_NAME: ref_name(tag),
            },
        }
        for tag in tags
    ]
