"""Layers: hashing them (stored and uncompressed, streamed), sniffing their compression."""

from __future__ import annotations

import hashlib
import zlib
from typing import IO

from ..errors import InvalidSpec
from .media import _CHUNK, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD
from .models import ArchiveLayer
from .parse import _ImageSrc, _LayerSrc
from .source import _Source


class _HashingReader:
    """Reads a stream while hashing and counting what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n if n is not None and n >= 0 else _CHUNK)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return MEDIA_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return MEDIA_LAYER_ZSTD
    return MEDIA_LAYER_TAR


_OCI_LAYER_MEDIA = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": MEDIA_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": MEDIA_LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": MEDIA_LAYER_ZSTD,
}


def _media_type(stated: str | None, sniffed: str) -> str:
    """The OCI media type to record: the stated one (in OCI spelling) unless the bytes disagree."""
    oci = _OCI_LAYER_MEDIA.get(stated or "", stated or "")
    if oci in (MEDIA_LAYER_TAR, MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD) or not oci:
        return sniffed
    return oci  # e.g. a non-distributable layer type: keep what the image says


def _gunzip_digest(reader: _HashingReader, head: bytes, member: str) -> str:
    """Digest of the uncompressed content of a gzip stream (several members allowed)."""
    digest = hashlib.sha256()
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = head
    try:
        while True:
            if not pending:
                pending = reader.read(_CHUNK)
                if not pending:
                    break
            digest.update(decomp.decompress(pending, _CHUNK))
            pending = decomp.unconsumed_tail
            if decomp.eof:
                rest = decomp.unused_data + pending or reader.read(_CHUNK)
                if not rest.strip(b"\x00"):
                    reader.drain()  # end of stream, or zero padding after it
                    break
                decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = rest
    except zlib.error as exc:
        raise InvalidSpec(f"layer {member!r} is not valid gzip") from exc
    if not decomp.eof:
        raise InvalidSpec(f"layer {member!r} is a truncated gzip stream")
    return "sha256:" + digest.hexdigest()


def _hash_layer(source: _Source, layer: _LayerSrc, diff_id: str) -> ArchiveLayer:
    """Hash a layer (stored and uncompressed), streamed; check it against the config."""
    with source.open(layer.member) as raw:
        reader = _HashingReader(raw)
        head = reader.read(6)
        sniffed = _sniff(head)
        content: str | None = None
        if sniffed == MEDIA_LAYER_GZIP:
            content = _gunzip_digest(reader, head, layer.member)
        else:
            reader.drain()
    digest = "sha256:" + reader.hash.hexdigest()
    if sniffed == MEDIA_LAYER_TAR:
        content = digest
    # zstd (content None) cannot be unpacked with the standard library: the
    # config's diff_id is taken as it is.
    if layer.digest is not None and layer.digest != digest:
        raise InvalidSpec(f"layer {layer.member!r} does not match its digest {layer.digest}")
    if layer.size is not None and layer.size != reader.count:
        raise InvalidSpec(f"layer {layer.member!r} does not match its stated size")
    if content is not None and content != diff_id:
        raise InvalidSpec(
            f"layer {layer.member!r} does not match the config's diff_id {diff_id}"
            f" (its content is {content})"
        )
    return ArchiveLayer(
        digest=digest,
        diff_id=diff_id,
        size=reader.count,
        media_type=_media_type(layer.media_type, sniffed),
    )


def _cheap_layer(source: _Source, layer: _LayerSrc, diff_id: str) -> ArchiveLayer:
    """Layer facts without hashing when a descriptor or blob path already names the digest."""
    if layer.digest is None:
        return _hash_layer(source, layer, diff_id)
    with source.open(layer.member) as fh:
        sniffed = _sniff(fh.read(6))
    return ArchiveLayer(
        digest=layer.digest,
        diff_id=diff_id,
        size=source.size(layer.member),
        media_type=_media_type(layer.media_type, sniffed),
    )


def _layers(
    source: _Source, image: _ImageSrc, *, verify: bool, cache: dict[str, ArchiveLayer]
) -> tuple[ArchiveLayer, ...]:
    out = []
    for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
        key = f"{layer.member}\x00{diff_id}"
        known = cache.get(key)
        if known is None:
            known = (_hash_layer if verify else _cheap_layer)(source, layer, diff_id)
            cache[key] = known
        out.append(known)
    return tuple(out)
