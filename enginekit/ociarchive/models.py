"""What :func:`~enginekit.ociarchive.read_index` and the writers return about an image."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class ArchiveLayer:
    """One layer of an archived image.

    ``digest`` is the blob's digest as stored (compressed or not), ``diff_id``
    the digest of the uncompressed tar (as listed in the config's
    ``rootfs.diff_ids``), ``size`` the stored size in bytes (-1 when not
    read), ``media_type`` the OCI layer media type.
    """

    digest: str
    diff_id: str
    size: int
    media_type: str


@attrs.frozen(kw_only=True)
class ArchiveImage:
    """An image held in an archive.

    ``id`` is the config digest (``sha256:`` + 64 hex), which is the image id
    on every engine; ``repo_tags`` the familiar ``name:tag`` names, sorted;
    ``layers`` bottom first; ``manifest_digest`` the digest of its OCI
    manifest in the archive (None when the archive has none).
    """

    id: str
    repo_tags: tuple[str, ...]
    layers: tuple[ArchiveLayer, ...]
    manifest_digest: str | None = None

    @property
    def layer_digests(self) -> tuple[str, ...]:
        """The stored layer blobs' digests, bottom first."""
        return tuple(layer.digest for layer in self.layers)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        """The uncompressed layers' digests, bottom first."""
        return tuple(layer.diff_id for layer in self.layers)
