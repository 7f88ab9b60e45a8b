"""Safe extraction for copy_from: nothing lands outside the destination."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from enginekit import InvalidSpec
from enginekit.archive import safe_extract


def tar_of(*members: tuple[str, str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = str(payload)
                tar.addfile(info)
            elif kind == "hard":
                info.type = tarfile.LNKTYPE
                info.linkname = str(payload)
                tar.addfile(info)
    buf.seek(0)
    return buf


def test_plain_tree(tmp_path: Path) -> None:
    safe_extract(tar_of(("dir", "d", ""), ("file", "d/a", b"x\x00y")), str(tmp_path))
    assert (tmp_path / "d" / "a").read_bytes() == b"x\x00y"
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no staging dir left


def test_rename_and_contents(tmp_path: Path) -> None:
    safe_extract(tar_of(("dir", "d", ""), ("file", "d/a", "1")), str(tmp_path), rename="e")
    assert (tmp_path / "e" / "a").read_text() == "1"
    safe_extract(tar_of(("dir", "d", ""), ("file", "d/b", "2")), str(tmp_path / "e"), rename="")
    assert (tmp_path / "e" / "b").read_text() == "2"


@pytest.mark.parametrize("name", ["../evil", "d/../../evil", "/abs/evil"])
def test_escaping_names_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidSpec):
        safe_extract(tar_of(("file", name, "x")), str(dest))
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_symlink_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    safe_extract(
        tar_of(
            ("dir", "d", ""),
            ("sym", "d/etc", str(outside)),
            ("file", "d/etc/passwd", "owned"),
            ("sym", "d/up", "../../../../outside/x"),
        ),
        str(dest),
    )
    assert list(outside.iterdir()) == []
    assert (dest / "d" / "etc").is_dir() and not (dest / "d" / "etc").is_symlink()
    assert (dest / "d" / "etc" / "passwd").read_text() == "owned"
    assert os.readlink(dest / "d" / "up") == "../../../../outside/x"


def test_existing_host_symlink_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    os.symlink(outside, dest / "d" / "sub")
    safe_extract(
        tar_of(("dir", "d", ""), ("dir", "d/sub", ""), ("file", "d/sub/f", "x")), str(dest)
    )
    assert list(outside.iterdir()) == []
    assert (dest / "d" / "sub" / "f").read_text() == "x"


def test_hardlink_outside_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec):
        safe_extract(tar_of(("hard", "x", "/etc/passwd")), str(tmp_path))
    safe_extract(tar_of(("file", "a", "1"), ("hard", "b", "a")), str(tmp_path))
    assert (tmp_path / "b").read_text() == "1"
