"""Image archives that every engine here both writes and reads.

The engines disagree on what an "image archive" is: Docker 20.10 writes and
reads only a *docker-archive* (``manifest.json`` + config + ``layer.tar``
files), Podman writes either that or an *OCI archive* (an OCI image layout in
a tar), and the LXC adapter keeps images in an OCI layout directory. This
module turns any of them into one **combined** archive that is at the same
time both (the form newer Docker versions write)::

    oci-layout                          {"imageLayoutVersion": "1.0.0"}
    blobs/sha256/<hex>                  configs, layers, OCI manifests
    index.json                          one entry per tag, annotated with
                                          io.containerd.image.name = qualified name:tag
                                          org.opencontainers.image.ref.name = tag
    manifest.json                       [{"Config": "blobs/sha256/<config>",
                                          "RepoTags": ["name:tag", ...],
                                          "Layers": ["blobs/sha256/<layer>", ...]}]

Docker loads it through ``manifest.json``; Podman through ``index.json`` when
it has one entry (one image with one tag), else through ``manifest.json``;
skopeo and umoci read it as ``oci-archive:``. The config blob is copied byte
for byte, so its digest (the image id) is the same on every engine. Layers
are copied as they are: a gzip layer stays gzip (``...tar+gzip``), and
Docker 20.10 loads those too.

Entry points:

- :func:`to_combined` / :func:`normalize`: rewrite an archive (docker-archive,
  OCI archive or combined, plain or gzip/bzip2/xz-compressed) into the
  combined form, keeping every image and tag; every layer is hashed (streamed,
  bounded memory) and checked against the config's ``rootfs.diff_ids``.
- :func:`read_index`: which images (id, tags, layers) an archive holds.
- :func:`write_from_layout` / :func:`extract_to_layout`: from an OCI layout
  directory to a combined archive, and back into a layout that skopeo and
  umoci accept.

Safety: nothing is extracted by its member name. Members are read in place
from the tar; a member whose name is absolute or has a ``..`` component, a
link that points outside the archive, and any device or fifo member make the
archive invalid (:class:`~enginekit.errors.InvalidSpec`), as does a manifest,
config or layer that does not add up.

Names: a tag is given in Docker's familiar form (``busybox:1``,
``example.com/team/app:v2``; ``name`` alone means ``name:latest``); the
qualified form (``docker.io/library/busybox:1``) goes in the
``io.containerd.image.name`` annotation (names are read by
:class:`enginekit.reference.Reference`). An engine that names images its own
way passes ``rename=`` to :func:`normalize` and :func:`to_combined`: Podman
4.3 calls a local image ``localhost/app:v1``, and loads a short name
``app:v1`` as ``docker.io/library/app:v1`` from a one-entry archive (it reads
index.json) but as ``localhost/app:v1`` from any other (it reads
manifest.json), so its adapter renames on the way in and out.

Note for layouts: ``skopeo copy docker-daemon:REF oci:DIR:TAG`` rewrites the
config (the image id changes); :func:`extract_to_layout` and skopeo copies
from ``oci-archive:`` keep it.
"""

from __future__ import annotations

from .combined import normalize, read_index, to_combined
from .layout import extract_to_layout, write_from_layout
from .media import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    MEDIA_LAYER_ZSTD,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
)
from .models import ArchiveImage, ArchiveLayer
from .names import familiar_name, qualified_name

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "MEDIA_DOCKER_LIST",
    "MEDIA_DOCKER_MANIFEST",
    "MEDIA_LAYER_GZIP",
    "MEDIA_LAYER_TAR",
    "MEDIA_LAYER_ZSTD",
    "MEDIA_OCI_CONFIG",
    "MEDIA_OCI_INDEX",
    "MEDIA_OCI_MANIFEST",
    "ArchiveImage",
    "ArchiveLayer",
    "extract_to_layout",
    "familiar_name",
    "normalize",
    "qualified_name",
    "read_index",
    "to_combined",
    "write_from_layout",
]
