"""ADD of a local tar: what engines extract differently is refused before any build.

Observed (suite: ``test_reliability_addtar``): Docker 20.10 and Podman 4.3/5.8 put a
member climbing out with ``..`` under the destination, Docker 28 (BuildKit) refuses
it ("invalid entry name"); a file below ``lnk -> /abs`` fails on Docker 20.10 and
Podman, Docker 28 creates ``DEST/abs/file``; below ``lnk -> ../..`` Docker 28
refuses ("path escapes from parent"), the others write under the destination.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from enginekit.addarchive import check_archive
from enginekit.buildcontext import validate_build
from enginekit.errors import InvalidSpec

Member = tuple[str, str, str]  # kind, name, payload or link target


def tar_bytes(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[
                kind
            ]
            info.linkname = payload
            tar.addfile(info)
    return buf.getvalue()


ALIKE: dict[str, list[Member]] = {
    "plain": [("dir", "d", ""), ("file", "d/f", "x"), ("file", "./g", "y")],
    "absolute names": [("file", "/abs/x.txt", "a"), ("file", "/ok", "b")],
    "dot-dot staying inside": [("file", "a/../b.txt", "b"), ("file", "a/b/../../c", "c")],
    "links of any target, nothing below": [
        ("sym", "out", "../../../etc"),
        ("sym", "abs", "/etc/passwd"),
        ("sym", "rel", "d"),
    ],
    "hard links inside": [("file", "t", "t"), ("hard", "h", "t"), ("hard", "h2", "/t")],
    "below a link to an earlier directory": [
        ("dir", "sub", ""),
        ("sym", "lnk", "sub"),
        ("file", "lnk/file", "f"),
        ("sym", "deep/l2", "../sub"),
        ("file", "deep/l2/g", "g"),
    ],
    "below a link to an implied directory": [
        ("file", "sub/x", "x"),
        ("sym", "lnk", "./sub/"),
        ("file", "lnk/y", "y"),
    ],
    "a link replaced by a directory": [
        ("sym", "lnk", "/etc"),
        ("dir", "lnk", ""),
        ("file", "lnk/x", "x"),
    ],
}

REFUSED: dict[str, tuple[list[Member], str]] = {
    "name climbing out": ([("file", "../up.txt", "u")], "climbs out of the destination"),
    "name climbing out inside": (
        [("file", "a/../../b.txt", "b")],
        "climbs out of the destination",
    ),
    "hard link climbing out": (
        [("file", "t", "t"), ("hard", "h", "../t")],
        "hard link to a name climbing out",
    ),
    "below a link to an absolute path": (
        [("sym", "lnk", "/etc"), ("file", "lnk/planted", "x")],
        "below the symbolic link 'lnk' to an absolute path",
    ),
    "below a link climbing out": (
        [("sym", "lnk", "../.."), ("file", "lnk/planted", "x")],
        "which climbs out",
    ),
    "below a link to nothing": (
        [("sym", "lnk", "sub"), ("file", "lnk/planted", "x")],
        "leads to no directory",
    ),
    "below a link to a file": (
        [("file", "f", "x"), ("sym", "lnk", "f"), ("file", "lnk/planted", "x")],
        "leads to no directory",
    ),
    "below a link, deeper": (
        [("dir", "a", ""), ("sym", "a/lnk", "/x"), ("file", "a/lnk/b/planted", "x")],
        "below the symbolic link 'a/lnk'",
    ),
    "a directory replaced by a link": (
        [("dir", "d", ""), ("sym", "d", "/etc"), ("file", "d/planted", "x")],
        "to an absolute path",
    ),
    "a link loop": (
        [("sym", "a", "b"), ("sym", "b", "a"), ("file", "a/x", "x")],
        "leads to no directory",
    ),
}


@pytest.mark.parametrize("members", list(ALIKE.values()), ids=list(ALIKE))
@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_archives_every_engine_extracts_alike_pass(
    tmp_path: Path, members: list[Member], compress: bool
) -> None:
    data = tar_bytes(members)
    path = tmp_path / "t.tar"
    path.write_bytes(gzip.compress(data) if compress else data)
    check_archive(str(path), "ADD source 't.tar'")


@pytest.mark.parametrize(("members", "says"), list(REFUSED.values()), ids=list(REFUSED))
@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_archives_engines_extract_differently_are_refused(
    tmp_path: Path, members: list[Member], says: str, compress: bool
) -> None:
    data = tar_bytes(members)
    path = tmp_path / "t.tar"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(InvalidSpec, match="refused on every engine") as info:
        check_archive(str(path), "ADD source 't.tar'")
    assert says in str(info.value)
    assert str(info.value).startswith("ADD source 't.tar': the archive's member ")


@pytest.mark.parametrize(
    "data",
    [b"", b"not a tar at all\n" * 100, gzip.compress(b"plain text, no tar"), b"\x1f\x8bbroken"],
    ids=["empty", "text", "gzip of text", "broken gzip"],
)
def test_files_that_are_no_archive_pass(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    check_archive(str(path), "ADD source 'f'")


def test_validate_build_checks_added_archives_only(tmp_path: Path) -> None:
    bad = tar_bytes([("file", "../up.txt", "u")])
    (tmp_path / "t.tar").write_bytes(bad)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inner.tar").write_bytes(bad)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY t.tar /\nADD d /d/\n")
    validate_build(str(tmp_path))  # COPY never extracts; ADD of a folder neither
    (tmp_path / "Dockerfile").write_text("FROM scratch\nADD t.tar /dst/\n")
    with pytest.raises(InvalidSpec, match=r"ADD source 't.tar' \(Dockerfile line 2\): the"):
        validate_build(str(tmp_path))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nADD *.tar /dst/\n")
    with pytest.raises(InvalidSpec, match="climbs out of the destination"):
        validate_build(str(tmp_path))
    (tmp_path / "link.tar").symlink_to("t.tar")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nADD link.tar /dst/\n")
    with pytest.raises(InvalidSpec, match="climbs out of the destination"):
        validate_build(str(tmp_path))
