"""Archive files: what one holds, and rewriting one in the combined form."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Sequence
from typing import IO, Any

from .files import _replacing
from .layers import _layers
from .manifests import _index_entries, _oci_manifest
from .media import MEDIA_OCI_INDEX, _blob_name, _json_bytes, _sha256
from .models import ArchiveImage, ArchiveLayer
from .names import _tag_of, familiar_name
from .parse import _ImageSrc, _parse
from .source import _open_archive, _Source


class _TarWriter:
    def __init__(self, fileobj: IO[bytes]) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=fileobj, mode="w:", format=tarfile.PAX_FORMAT
        )
        self._written: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        return info

    def has(self, name: str) -> bool:
        return name in self._written

    def directory(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self._tar.addfile(info)

    def data(self, name: str, data: bytes) -> None:
        if name in self._written:
            return
        self._written.add(name)
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def stream(self, name: str, size: int, fileobj: IO[bytes]) -> None:
        if name in self._written:
            return
        self._written.add(name)
        self._tar.addfile(self._info(name, size), fileobj)

    def close(self) -> None:
        self._tar.close()


def _write_combined(
    source: _Source,
    images: Sequence[_ImageSrc],
    dest: str,
    *,
    ref_name: Callable[[str], str],
) -> list[ArchiveImage]:
    """Hash and check every layer, then write the combined archive to ``dest`` atomically."""
    cache: dict[str, ArchiveLayer] = {}
    resolved = [(image, _layers(source, image, verify=True, cache=cache)) for image in images]
    dest = os.path.abspath(dest)
    result: list[ArchiveImage] = []
    with _replacing(dest, suffix=".tar.part", keep_mode=True) as fh:
        writer = _TarWriter(fh)
        writer.data("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
        writer.directory("blobs/")
        writer.directory("blobs/sha256/")
        index: list[dict[str, Any]] = []
        docker: list[dict[str, Any]] = []
        for image, layers in resolved:
            for src, layer in zip(image.layers, layers, strict=True):
                name = _blob_name(layer.digest)
                if not writer.has(name):
                    with source.open(src.member) as blob:
                        writer.stream(name, layer.size, blob)
            writer.data(_blob_name(image.config_digest), image.config)
            manifest = _oci_manifest(image, layers)
            manifest_digest = _sha256(manifest)
            writer.data(_blob_name(manifest_digest), manifest)
            index.extend(_index_entries(manifest_digest, len(manifest), image.tags, ref_name))
            docker.append(
                {
                    "Config": _blob_name(image.config_digest),
                    "RepoTags": list(image.tags),
                    "Layers": [_blob_name(layer.digest) for layer in layers],
                }
            )
            result.append(image.archived(layers, manifest_digest))
        writer.data(
            "index.json",
            _json_bytes({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}),
        )
        writer.data("manifest.json", _json_bytes(docker))
        writer.close()
    return result


def _default_ref_name(tag: str) -> str:
    return _tag_of(tag)


def to_combined(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    rename: Callable[[str], str] | None = None,
) -> list[ArchiveImage]:
    """Write the archive at ``src`` (any form) to ``dest`` in the combined form.

    ``src`` may be a docker-archive (Docker's or Podman's, links included), an
    OCI archive, or a combined one, plain or gzip/bzip2/xz-compressed. Every
    image and tag is kept; ``rename`` maps each tag (familiar form) to the tag
    to write instead (e.g. to add Podman's ``localhost/``). Every layer is read
    twice as a stream (hash, then copy): memory stays bounded whatever the
    layer sizes. ``dest`` is replaced atomically (it may be ``src``).

    Returns the images written. Raises :class:`InvalidSpec` for anything
    that is not a sound image archive (nothing is written to ``dest`` then).
    """
    with _open_archive(os.fspath(src)) as source:
        images = _parse(source)
        if rename is not None:
            for image in images:
                image.tags = list(dict.fromkeys(familiar_name(rename(t)) for t in image.tags))
        return _write_combined(source, images, os.fspath(dest), ref_name=_default_ref_name)


def normalize(
    path: str | os.PathLike[str], *, rename: Callable[[str], str] | None = None
) -> list[ArchiveImage]:
    """Rewrite the archive at ``path`` in place into the combined form (see :func:`to_combined`)."""
    return to_combined(path, path, rename=rename)


def read_index(path: str | os.PathLike[str], *, verify: bool = False) -> list[ArchiveImage]:
    """The images an archive (any form) holds: id, tags, layers, in archive order.

    Reading is cheap for combined and OCI archives (digests come from the
    manifests); layers whose digest is written nowhere (a plain
    docker-archive) are hashed. ``verify=True`` hashes every layer and checks
    it against its digest and the config's ``diff_ids``.
    """
    with _open_archive(os.fspath(path)) as source:
        cache: dict[str, ArchiveLayer] = {}
        return [
            image.archived(
                _layers(source, image, verify=verify, cache=cache), image.manifest_digest
            )
            for image in _parse(source)
        ]
