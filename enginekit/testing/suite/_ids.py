"""What ``Image.id`` is on each engine, and so what an image's id becomes when it moves.

The rule (docs/engines.md, "Docker's image stores"):

- Docker's classic image store, Podman and LXC: the digest of the image's
  config. Configs travel byte for byte (archives, registries): the id stays.
- Docker's containerd image store (``info().image_store == "containerd"``):
  the digest of the image's manifest (or index), as that engine stores it.
  After a pull it is the registry's manifest; after a load, the manifest in
  the archive (``read_index(path)[n].manifest_digest``); after a build, the
  one Docker's builder wrote.

So an image keeps its id between engines that name images the same way when
its manifest travels unchanged, and takes the other kind of id when it moves
between the two kinds. These helpers give the id an engine must report.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import TYPE_CHECKING

from enginekit.ociarchive import read_index

if TYPE_CHECKING:
    from enginekit import Engine

__all__ = ["ids_are_manifest_digests", "loaded_ids", "pulled_id", "registry_digests"]

_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def ids_are_manifest_digests(engine: Engine) -> bool:
    """Whether ``engine`` names images by their manifest's digest (Docker's containerd store)."""
    return engine.info().image_store == "containerd"


def loaded_ids(engine: Engine, archive: Path) -> list[str]:
    """The ids ``engine.images.load(archive)`` must report, in archive order."""
    images = read_index(archive)
    if ids_are_manifest_digests(engine):
        digests = [i.manifest_digest for i in images]
        assert all(digests), f"{archive} has an image without a manifest"
        return [d for d in digests if d]
    return [i.id for i in images]


def registry_digests(registry: str, ref: str) -> tuple[str, str]:
    """(manifest digest, config digest) of ``ref`` as the registry at ``registry`` holds it."""
    host, _, port = registry.rpartition(":")
    name, _, tag = ref[len(registry) + 1 :].rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", f"/v2/{name}/manifests/{tag}", headers={"Accept": _ACCEPT})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:200])
        digest = resp.headers["Docker-Content-Digest"]
    finally:
        conn.close()
    manifest = json.loads(body)
    assert "config" in manifest, f"{ref} is an index in the registry: {manifest.get('mediaType')}"
    return digest, manifest["config"]["digest"]


def pulled_id(engine: Engine, registry: str, ref: str) -> str:
    """The id ``engine.images.pull(ref)`` must report."""
    manifest, config = registry_digests(registry, ref)
    return manifest if ids_are_manifest_digests(engine) else config
