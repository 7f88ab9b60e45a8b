"""Pull and push between the LXC adapter's image store and an OCI registry, with skopeo.

``push`` copies the image's blobs and manifest as they are stored (``skopeo copy
oci:... docker://...``), so the registry, and Docker or Podman pulling from it,
see the same image id. ``pull`` copies the image into a ``dir:`` (no conversion
of any blob) and writes an OCI manifest for it around the very same config
blob: an image pulled here keeps the id it has on the registry, whether it was
pushed as an OCI or a Docker image.

References come checked by the core (which refuses a pull or push of a name
naming no registry) and are read by :class:`~enginekit.reference.Reference`:
``docker://`` gets the qualified name. As Docker does, a registry on a
loopback address (``localhost``, 127.0.0.0/8, in any case) is spoken to over
plain HTTP without TLS verification; any other over verified HTTPS. Nothing
is sent anywhere but the registry the reference names. Credentials are not
handled here (``skopeo``'s own auth files apply).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

from enginekit.toolkit.errors import EngineError, ImageNotFound, InvalidSpec
from enginekit.toolkit.models import Image
from enginekit.toolkit.references import Reference

from .oci import CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Layout, ToolError, id_ref, run_tool

if TYPE_CHECKING:
    from .images import ImageStore

__all__ = ["pull", "push"]

_OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": _OCI_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": _OCI_TAR,
    _OCI_GZIP: _OCI_GZIP,
    _OCI_TAR: _OCI_TAR,
    "application/vnd.oci.image.layer.v1.tar+zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
_NOT_FOUND = ("manifest unknown", "name unknown", "not found", "404")
_TIMEOUT = 600.0


def _tls_flag(ref: Reference, side: str) -> list[str]:
    return [f"--{side}-tls-verify={'false' if ref.loopback else 'true'}"]


def push(store: ImageStore, ref: str) -> None:
    """Push tag ``ref`` (``registry/name:tag``) to its registry."""
    target = Reference.parse(ref)
    with store.lock(exclusive=False):
        records = store._records()
        record = next((r for r in records.values() if ref in r.tags), None)
        if record is None:
            raise ImageNotFound(f"no such image: {ref}")
        source = f"oci:{store.layout.path}:{id_ref(record.id)}"
        if id_ref(record.id) not in {Layout.ref_name(e) for e in store.layout.entries()}:
            raise EngineError(f"image {record.id[7:19]} has no id entry in the layout")
        try:
            run_tool(
                ["skopeo", "copy", "--quiet", "--retry-times", "0", *_tls_flag(target, "dest"),
                 source, f"docker://{target}"],
                what=f"push {ref}",
                timeout=_TIMEOUT,
            )  # fmt: skip
        except ToolError as exc:
            raise EngineError(f"push of {ref} failed: {exc.output}") from exc


def _oci_manifest(raw: dict[str, Any], dirpath: str) -> dict[str, Any]:
    config = raw.get("config")
    if not isinstance(config, dict) or "layers" not in raw:
        raise InvalidSpec("the registry sent a manifest that is not an image manifest")
    layers = []
    for layer in raw["layers"]:
        media = _LAYER_TYPES.get(str(layer.get("mediaType")))
        if media is None:
            raise InvalidSpec(f"unsupported layer type {layer.get('mediaType')!r}")
        layers.append({"mediaType": media, "digest": layer["digest"], "size": layer["size"]})
    digest = str(config["digest"])
    size = os.path.getsize(os.path.join(dirpath, digest.removeprefix("sha256:")))
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest, "size": size},
        "layers": layers,
    }


def pull(store: ImageStore, ref: str) -> Image:
    """Pull ``ref`` (``registry/name:tag``) into the store, tagged ``ref``."""
    source = Reference.parse(ref)
    with store.tempdir("pull-") as scratch:
        dirpath = os.path.join(scratch, "dir")
        try:
            run_tool(
                ["skopeo", "copy", "--quiet", "--retry-times", "0", *_tls_flag(source, "src"),
                 f"docker://{source}", f"dir:{dirpath}"],
                what=f"pull {ref}",
                timeout=_TIMEOUT,
            )  # fmt: skip
        except ToolError as exc:
            if any(marker in exc.output.lower() for marker in _NOT_FOUND):
                raise ImageNotFound(f"{ref} is not in its registry: {exc.output}") from exc
            raise EngineError(f"pull of {ref} failed: {exc.output}") from exc
        with open(os.path.join(dirpath, "manifest.json"), "rb") as f:
            raw = json.load(f)
        manifest = _oci_manifest(raw, dirpath)
        staging = Layout(os.path.join(scratch, "oci"))
        staging.init()
        for blob in [manifest["config"], *manifest["layers"]]:
            digest = str(blob["digest"])
            src = os.path.join(dirpath, digest.removeprefix("sha256:"))
            hasher = hashlib.sha256()
            with open(src, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    hasher.update(chunk)
            if "sha256:" + hasher.hexdigest() != digest:
                raise EngineError(f"pull of {ref}: blob {digest} does not match its digest")
            shutil.move(src, staging.blob_path(digest))
        manifest_digest, _ = staging.put_json(manifest)
        return store.import_from(staging, manifest_digest, (source.familiar,))
