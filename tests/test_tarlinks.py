"""Links climbing out of a tar's extraction folder: the rewritings that make an
extractor refusing them (moby's and containers' archive packages) write the tree
the plain tar describes (:mod:`enginekit.tarlinks`)."""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import IO

import pytest

from enginekit import tarlinks
from enginekit.buildcontext import context_tar


class Refused(Exception):
    pass


def extract(data: IO[bytes], dest: Path, *, strict: bool, chroot: Path | None = None) -> None:
    """Unpack as Docker's and Podman's archive packages do, as far as links go.

    ``strict``: a symbolic link whose text, joined to its folder (an absolute text
    too), leads lexically out of ``dest`` is refused ("invalid symlink"); so is a
    hard link naming something outside. What exists where a member goes is removed
    first unless both are folders; missing parent folders are made; a hard link to
    a symbolic link is that link again. ``chroot``: extract in a chroot there
    (Docker's ``PUT .../archive``): ``..`` stops at it.
    """
    data.seek(0)
    root = str(dest)
    seen = "/" + str(dest.relative_to(chroot)) if chroot else root  # dest as the check sees it
    seen = posixpath.normpath(seen)
    with tarfile.open(fileobj=data, mode="r:") as tar:
        for member in tar:
            path = posixpath.normpath(posixpath.join(root, member.name))
            assert path == root or path.startswith(root + "/")
            os.makedirs(posixpath.dirname(path), exist_ok=True)
            if os.path.lexists(path) and not (
                member.isdir() and os.path.isdir(path) and not os.path.islink(path)
            ):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
            elif member.issym():
                where = posixpath.normpath(posixpath.join(seen, member.name))
                target = posixpath.normpath(posixpath.dirname(where) + "/" + member.linkname)
                if strict and not target.startswith(seen):
                    raise Refused(f"invalid symlink {path!r} -> {member.linkname!r}")
                os.symlink(member.linkname, path)
            elif member.islnk():
                target = posixpath.normpath(posixpath.join(root, member.linkname))
                if not target.startswith(root):
                    raise Refused(f"invalid hardlink {member.linkname!r}")
                os.link(target, path, follow_symlinks=False)
            else:
                src = tar.extractfile(member)
                assert src is not None
                Path(path).write_bytes(src.read())


def tree(root: Path) -> dict[str, object]:
    """Every name below ``root``: a link's text and link count, a file's bytes, "dir"."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path), path.lstat().st_nlink)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = ("file", path.read_bytes())
    return found


def tar_of(*members: tuple[str, str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    buf.seek(0)
    return buf


@pytest.mark.parametrize(
    ("name", "linkname", "up"),
    [
        ("a/b", "../x", 0),
        ("a/b", "../../x", 1),
        ("a/b", "../../a/x", 1),  # lexically out, whatever comes back
        ("b", "/etc", 0),
        ("b", "/../../etc", 0),
        ("lnk", "..", 1),
        ("lnk", "", 0),
        ("a/b/c", "../../../../../x", 3),
        ("a/b", "./../c/../../..", 2),
        ("./a/./b", "../../x", 1),
    ],
)
def test_climb(name: str, linkname: str, up: int) -> None:
    assert tarlinks.climb(name, linkname) == up


CONTEXT = (
    ("file", "Dockerfile", "FROM scratch\n"),
    ("dir", "app", ""),
    ("file", "app/f", "f"),
    ("hard", "app/f2", "app/f"),
    ("sym", "app/in", "f"),
    ("sym", "app/up", "../../etc/passwd"),
    ("sym", "app/abs", "/etc"),
    ("sym", "app/dang", "nowhere"),
    ("dir", "app/sub", ""),
    ("sym", "app/sub/far", "../../../../../../x"),
    ("hard", "df-again", "Dockerfile"),
    ("sym", "top", ".."),
)


def test_staged_context_extracts_to_the_same_tree(tmp_path: Path) -> None:
    plain = tar_of(*CONTEXT)
    with pytest.raises(Refused, match="invalid symlink"):
        extract(plain, tmp_path / "refused", strict=True)
    extract(plain, tmp_path / "want", strict=False)
    staged = tarlinks.staged(tar_of(*CONTEXT), prefer="Dockerfile")
    extract(staged, tmp_path / "got", strict=True)
    assert tree(tmp_path / "got") == tree(tmp_path / "want")
    # The staging folder was named as the Dockerfile, which comes last.
    staged.seek(0)
    with tarfile.open(fileobj=staged) as tar:
        names = tar.getnames()
    assert names[0].startswith("Dockerfile/0/0/0/")
    assert names[-2:] == ["Dockerfile", "df-again"]


def test_staged_without_climbing_links_is_the_same_tar() -> None:
    plain = tar_of(("file", "Dockerfile", "x"), ("sym", "a", "/etc"), ("sym", "b", "b/../c"))
    assert tarlinks.staged(plain, prefer="Dockerfile") is plain
    assert plain.tell() == 0


def test_staged_names_the_folder_after_another_file_when_it_must(tmp_path: Path) -> None:
    members = (
        ("sym", "Dockerfile", "../ctx/real"),  # climbs out itself: cannot host
        ("file", "real", "FROM scratch\n"),
        ("sym", "up", "../x"),
    )
    extract(tar_of(*members), tmp_path / "want", strict=False)
    staged = tarlinks.staged(tar_of(*members), prefer="Dockerfile")
    extract(staged, tmp_path / "got", strict=True)
    assert tree(tmp_path / "got") == tree(tmp_path / "want")


def test_staged_without_a_file_to_host_is_left_alone() -> None:
    plain = tar_of(("dir", "d", ""), ("sym", "d/up", "../../x"))
    assert tarlinks.staged(plain) is plain


def test_context_tar_with_confined_links(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "app" / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (ctx / "app" / "f").write_text("f")
    os.symlink("../../outside", ctx / "app" / "up")
    os.symlink("../../../../../x", ctx / "app" / "sub" / "far")
    os.symlink("/etc", ctx / "abs")
    with context_tar(str(ctx)) as plain:
        extract(plain, tmp_path / "want", strict=False)
    with context_tar(str(ctx), confined_links=True) as confined:
        extract(confined, tmp_path / "got", strict=True)
    assert tree(tmp_path / "got") == tree(tmp_path / "want")
    assert tree(tmp_path / "got")["app/up"] == ("link", "../../outside", 1)


def test_rebased_prefixes_names_and_hard_links() -> None:
    long = "d/" + "n" * 150
    plain = tar_of(
        ("dir", "d", ""), ("file", long, "x"), ("hard", "d/h", long), ("sym", "d/s", long)
    )
    with tarlinks.rebased(plain, "tmp/dst") as out, tarfile.open(fileobj=out) as tar:
        got = [(m.name, m.linkname) for m in tar]
    assert got == [
        ("tmp/dst/d", ""),
        (f"tmp/dst/{long}", ""),
        ("tmp/dst/d/h", f"tmp/dst/{long}"),
        ("tmp/dst/d/s", long),  # a symbolic link's text is never changed
    ]


def _container(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "tmp" / "real" / "dst").mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    ("link", "base", "resolved"),
    [
        ("../../../x", "/tmp/real", True),  # climbs 1 above src/dir's tar root
        ("../../../../../../../x", "/", True),  # past the root: from /
        ("../x", "/tmp/via/dst", False),  # stays inside: unchanged
    ],
)
def test_from_ancestor(tmp_path: Path, link: str, base: str, resolved: bool) -> None:
    root = _container(tmp_path)
    members = (("dir", "src", ""), ("dir", "src/dir", ""), ("sym", "src/dir/up", link))
    asked: list[str] = []

    def resolve(path: str) -> str:
        asked.append(path)
        return path.replace("/tmp/via", "/tmp/real")

    with tarlinks.from_ancestor("/tmp/via/dst", tar_of(*members), resolve) as (where, body):
        assert where == base
        assert asked == (["/tmp/via/dst"] if resolved else [])
        folder = root / where.lstrip("/").replace("tmp/via", "tmp/real")
        extract(body, folder, strict=True, chroot=root)
    want = tmp_path / "want"
    extract(tar_of(*members), want, strict=False)
    assert tree(root / "tmp" / "real" / "dst") == tree(want)
    if resolved:  # sent as it is, the extractor would refuse it
        with pytest.raises(Refused):
            extract(
                tar_of(*members),
                _container(tmp_path / "again") / "tmp/real/dst",
                strict=True,
                chroot=tmp_path / "again" / "root",
            )


def test_from_ancestor_of_the_root_is_the_root() -> None:
    plain = tar_of(("sym", "up", "../../x"))
    with tarlinks.from_ancestor("/", plain) as (where, body):
        assert (where, body) == ("/", plain)


def test_from_ancestor_spools_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = tar_of(("dir", "d", ""), ("sym", "d/up", "../../x")).getvalue()
    with tarlinks.from_ancestor("/a/b", Pipe(data)) as (where, body):  # type: ignore[arg-type]
        assert where == "/a"
        with tarfile.open(fileobj=body) as tar:
            assert tar.getnames() == ["b/d", "b/d/up"]
