"""A tar stream cut right after its end-of-archive marker, for ``PUT .../archive``.

Podman 5.x's copier hands the body of ``PUT /libpod/containers/{id}/archive``
to a subprocess through a pipe; the subprocess stops reading at the tar's
end-of-archive marker (two zero blocks) and exits, and the service, still
writing the zero padding a tar writer adds after it (Python's ``tarfile``
pads to 10 KiB), fails the request with HTTP 500 "passing bulk input to
subprocess: write |1: broken pipe" -- now and then, depending on who is
faster (reported as buildah issue 6573). Sending nothing after the marker
takes the race away; the archive is the same to any reader.

The stream is walked block by block (headers say how much data follows, in
every tar flavour: ustar, pax, GNU), never held whole in memory. A stream
that cannot be walked is passed on unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

__all__ = ["trim_tar"]

_BLOCK = 512
_ZERO = bytes(_BLOCK)
_CHUNK = 1 << 16


def _size(header: bytes) -> int | None:
    """The entry's data size from a header block (octal text or base-256)."""
    field = header[124:136]
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return None if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _read(source: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        chunk = source.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def trim_tar(source: IO[bytes]) -> Iterator[bytes]:
    """The bytes of the tar ``source`` up to and including its end-of-archive marker."""
    while True:
        header = _read(source, _BLOCK)
        if len(header) < _BLOCK:
            # A stream ending without a marker: as it is.
            if header:
                yield header
            return
        if header == _ZERO:
            yield header + _read(source, _BLOCK)
            return
        size = _size(header)
        yield header
        if size is None:
            # Not a header this walker understands: the rest as it is.
            while chunk := source.read(_CHUNK):
                yield chunk
            return
        left = -(-size // _BLOCK) * _BLOCK
        while left > 0:
            chunk = source.read(min(left, _CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
