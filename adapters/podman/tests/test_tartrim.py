"""``trim_tar``: a tar stream cut after its end-of-archive marker (Podman 5's PUT archive)."""

from __future__ import annotations

import io
import tarfile

import pytest
from enginekit_podman.tartrim import trim_tar


def _tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in [("a.txt", b"x" * 10), ("d/" + "long" * 40 + ".bin", b"\1" * 70_000)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = {"comment": "ü" * 3} if fmt == tarfile.PAX_FORMAT else {}
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("ln")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.txt"
        tar.addfile(link)
        folder = tarfile.TarInfo("empty")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return buf.getvalue()


def _members(raw: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        out = []
        for m in tar:
            f = tar.extractfile(m)
            out.append((m.name, f.read() if f else b""))
        return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_padding_after_the_marker_goes_and_the_archive_stays(fmt: int) -> None:
    raw = _tar(fmt) if fmt != tarfile.USTAR_FORMAT else _ustar()
    assert len(raw) % tarfile.RECORDSIZE == 0  # tarfile pads to a whole record
    trimmed = b"".join(trim_tar(io.BytesIO(raw)))
    assert trimmed.endswith(bytes(1024))
    assert len(trimmed) < len(raw) and len(trimmed) % 512 == 0
    assert raw.startswith(trimmed) and not raw[len(trimmed) :].strip(b"\0")
    assert _members(trimmed) == _members(raw)


def _ustar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.size = 513
        tar.addfile(info, io.BytesIO(b"y" * 513))
    return buf.getvalue()


def test_a_stream_read_in_small_pieces() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            n = min(len(b), 100, len(self.data))
            b[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    raw = _tar(tarfile.PAX_FORMAT)
    trimmed = b"".join(trim_tar(Trickle(raw)))  # type: ignore[arg-type]
    assert _members(trimmed) == _members(raw)
    assert raw.startswith(trimmed) and len(trimmed) < len(raw)


def test_what_is_not_a_tar_passes_unchanged() -> None:
    for data in [b"", b"short", b"\xff" * 3000, b"z" * 512 + b"rest"]:
        assert b"".join(trim_tar(io.BytesIO(data))) == data


def test_an_archive_without_a_marker_is_passed_as_it_is() -> None:
    cut = b"".join(trim_tar(io.BytesIO(_tar(tarfile.PAX_FORMAT))))[:-1024]
    assert b"".join(trim_tar(io.BytesIO(cut))) == cut
