"""Media types, annotation keys, digests and blob paths of image archives and OCI layouts."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..errors import InvalidSpec

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

_MANIFEST_MEDIA = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
_INDEX_MEDIA = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})

_CHUNK = 1 << 20
_JSON_LIMIT = 32 << 20  # manifests, configs, indexes are small; refuse absurd ones
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_BLOB_PATH_RE = re.compile(r"blobs/sha256/([0-9a-f]{64})")


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"{what} is not valid JSON") from exc


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob_name(digest: str) -> str:
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidSpec(f"unsupported or malformed digest {digest!r}")
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
