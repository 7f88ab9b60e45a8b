"""Reliability: symbolic links that point out of what is sent, alike on every engine.

A link is sent and written as a link, its text unchanged, whatever it names: a
path inside, an absolute path, nothing, or a path climbing out with ``..``
(:mod:`enginekit.tarlinks`). On the host, the files such links lead to are never
read or written.

- A build context holding such links, which the Dockerfile does not go through,
  builds on every engine, and ``COPY`` of the folder holding them (or of the whole
  context) gives the same links in the image (Podman 4 refused such a context:
  "invalid symlink").
- ``copy_to`` of a folder holding them (into a folder, to a new name, into a
  folder reached through a link in the container), or of a lone link, writes
  the same links everywhere (Docker refused a link climbing out of the
  destination: "invalid symlink").
- ``copy_from`` of them writes them on the host as they are, never through them,
  also over links a previous copy left there.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.testing.helpers import poll

from ._runs import remove_image_quietly, table

if TYPE_CHECKING:
    from collections.abc import Callable

    from enginekit import Engine
    from enginekit.models import Container

SECRET = b"host secret, never read\n"
OLD_ATIME = 1_000_000_000  # older than the mtime: any read moves it (relatime)
OLD_MTIME = 1_500_000_000

LISTING = (
    "find {roots} 2>/dev/null | sort | while read -r f; do "
    'if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; '
    'elif [ -d "$f" ]; then echo "$f/"; '
    'else echo "$f (file $(wc -c < "$f"))"; fi; done; '
    "for p in {never}; do [ -e $p ] || [ -L $p ] && echo WRITTEN-OUTSIDE $p; done; true"
)


def _outside(tmp: Path) -> Path:
    """A folder beside what is sent, which links lead to: it must stay as it is."""
    out = tmp / "outside"
    out.mkdir()
    (out / "secret").write_bytes(SECRET)
    (out / "sub").mkdir()
    for p in (out / "secret", out / "sub", out):
        os.utime(p, (OLD_ATIME, OLD_MTIME))
    return out


_NOATIME = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0)


def _state(folder: Path, read: bool = False) -> dict[str, tuple[Any, ...]]:
    """Every name below ``folder`` (and itself): kind, content, atime and mtime,
    looked at without moving an atime (``O_NOATIME``)."""
    found: dict[str, tuple[Any, ...]] = {}
    todo = [folder]
    while todo:
        path = todo.pop()
        st = path.lstat()
        content: Any = None
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            fd = os.open(path, _NOATIME)
            try:
                if stat.S_ISDIR(st.st_mode):
                    content = sorted(os.listdir(fd))
                    todo += [path / name for name in content]
                else:
                    content = os.read(fd, 1 << 16)
            finally:
                os.close(fd)
        kind = stat.S_IFMT(st.st_mode)
        atime = None if read else st.st_atime_ns
        found[str(path.relative_to(folder))] = (kind, content, atime, st.st_mtime_ns)
    return found


@contextmanager
def _untouched(folder: Path, *, read: bool = False) -> Iterator[None]:
    """Fails unless ``folder`` is exactly as it was: nothing written or added, and
    unless ``read`` (a folder that is sent), nothing read (no atime moved)."""
    before = _state(folder, read)
    yield
    after = _state(folder, read)
    assert after == before, f"{folder} was touched on the host:\n{before}\n{after}"


def _listing(eng: Engine, c: Container, roots: str, never: str) -> list[str]:
    res = eng.containers.exec(c, ["sh", "-c", LISTING.format(roots=roots, never=never)])
    assert res.exit_code == 0, (res.exit_code, res.stdout, res.stderr)
    return res.stdout.decode().splitlines()


def _assert_alike(rows: Mapping[str, Any], expected: Mapping[str, Any], title: str) -> None:
    """Every engine's row is what is expected of it (the same but for the base image)."""
    bad = [name for name in rows if rows[name] != expected[name]]
    if not bad:
        return
    shown = {n: {"result": r, "expected": expected[n]} for n, r in rows.items()}
    parts = [table(shown, title=title)]
    for name in bad:
        got, want = rows[name], expected[name]
        if isinstance(got, dict) and isinstance(want, dict):
            pairs = [(f"{name} {k}", want.get(k, []), got.get(k, [])) for k in want]
        else:
            pairs = [(name, want, got)]
        for label, w, g in pairs:
            if isinstance(w, list) and isinstance(g, list) and w != g:
                parts.append("\n".join(difflib.unified_diff(w, g, "expected", label, lineterm="")))
    pytest.fail("\n".join(parts), pytrace=False)


# --------------------------------------------------------------------------- build

BUILD_DOCKERFILE = "FROM {base}\nCOPY app /app\nCOPY . /all\n"


def _context(root: Path, outside: Path, base: str) -> Path:
    ctx = root
    (ctx / "app" / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(BUILD_DOCKERFILE.format(base=base))
    (ctx / "app" / "f").write_text("f\n")
    links = {
        "app/in": "f",
        "app/up": "../../outside/secret",  # climbs out, to a file on the host
        "app/sub/far": "../../../../../../../x",  # climbs past the root
        "app/abs": str(outside / "secret"),  # absolute, to a file on the host
        "app/etc": "/etc",
        "app/dang": "nowhere",
        "top": "../outside",  # climbs out, to a folder on the host
    }
    for name, target in links.items():
        os.symlink(target, ctx / name)
    return ctx


def _build_expected(outside: Path) -> list[str]:
    app = [
        "{r}/",
        f"{{r}}/abs -> {outside}/secret",
        "{r}/dang -> nowhere",
        "{r}/etc -> /etc",
        "{r}/f (file 2)",
        "{r}/in -> f",
        "{r}/sub/",
        "{r}/sub/far -> ../../../../../../../x",
        "{r}/up -> ../../outside/secret",
    ]
    whole = ["/all/", "/all/Dockerfile (file {size})", *[a.format(r="/all/app") for a in app]]
    whole.append("/all/top -> ../outside")
    return [*whole, *[a.format(r="/app") for a in app]]


@pytest.mark.requires(Capability.BUILD, Capability.EXEC)
class TestReliabilityLinksBuild:
    def test_context_with_links_pointing_out_builds_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        make_name: Callable[..., str],
        labels: dict[str, str],
        tmp_path: Path,
    ) -> None:
        outside = _outside(tmp_path)
        tag = f"{make_name('links')}:v1"
        rows: dict[str, Any] = {}
        expected: dict[str, list[str]] = {}
        built: list[Engine] = []
        try:
            with _untouched(outside):
                for name, eng in engines.items():
                    ctx = _context(tmp_path / f"ctx-{name}", outside, base_images[name])
                    size = (ctx / "Dockerfile").stat().st_size
                    expected[name] = [
                        line.replace("{size}", str(size)) for line in _build_expected(outside)
                    ]
                    try:
                        image = eng.images.build(str(ctx), tag=tag, labels=labels)
                    except Exception as exc:
                        rows[name] = f"{type(exc).__name__}: {exc}"
                        continue
                    built.append(eng)
                    with _container(eng, image.id, "true", labels) as c:
                        rows[name] = _listing(eng, c, "/app /all", "/outside /x /all/outside")
        finally:
            for eng in built:
                remove_image_quietly(eng, tag)
        _assert_alike(rows, expected, "a context holding links pointing out")


# --------------------------------------------------------------------------- copy_to


def _source(tmp: Path, outside: Path) -> Path:
    """``tmp/a/src``: a folder whose links lead out of it (to ``outside`` on the host)."""
    src = tmp / "a" / "src"
    (src / "dir").mkdir(parents=True)
    (src / "f").write_text("f\n")
    links = {
        "dir/up": "../../../outside/secret",
        "dir/far": "../../../../../../../../x",
        "dir/abs": str(outside / "secret"),
        "dir/dang": "nowhere",
        "dir/in": "../f",
        "top": "../../outside",
    }
    for name, target in links.items():
        os.symlink(target, src / name)
    return src


def _tree_lines(root: str, outside: Path, *, whole: bool) -> list[str]:
    """What ``src`` (``whole``) or ``src/dir`` copied to ``root`` looks like."""
    folder = f"{root}/dir" if whole else root
    lines = [
        f"{folder}/",
        f"{folder}/abs -> {outside}/secret",
        f"{folder}/dang -> nowhere",
        f"{folder}/far -> ../../../../../../../../x",
        f"{folder}/in -> ../f",
        f"{folder}/up -> ../../../outside/secret",
    ]
    if whole:
        lines += [f"{root}/", f"{root}/f (file 2)", f"{root}/top -> ../../outside"]
    return lines


def _copy_to_expected(outside: Path) -> list[str]:
    return sorted(
        [
            "/tmp/dst/",
            *_tree_lines("/tmp/dst/renamed", outside, whole=True),
            "/tmp/dst/single -> ../../../outside/secret",
            *_tree_lines("/tmp/dst/src", outside, whole=True),
            "/tmp/real/",
            "/tmp/real/x/",
            *_tree_lines("/tmp/real/x/dir", outside, whole=False),
        ]
    )


# ``/tmp/via/x`` is ``/tmp/real/x`` through a link.
PREPARE = "mkdir -p /tmp/dst /tmp/real/x && ln -s /tmp/real /tmp/via"
NEVER_IN_CONTAINER = "/outside /x /tmp/outside /tmp/x /tmp/dst/outside /tmp/real/outside"


@pytest.mark.requires(Capability.COPY, Capability.EXEC)
class TestReliabilityLinksCopy:
    def test_copy_to_keeps_links_pointing_out_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        tmp_path: Path,
    ) -> None:
        outside = _outside(tmp_path)
        src = _source(tmp_path, outside)
        rows: dict[str, Any] = {}
        with _untouched(outside), _untouched(tmp_path / "a", read=True):
            for name, eng in engines.items():
                with _container(eng, base_images[name], PREPARE, labels) as c:
                    _ready(eng, c, "/tmp/via")
                    try:
                        eng.containers.copy_to(c, str(src), "/tmp/dst")
                        eng.containers.copy_to(c, str(src), "/tmp/dst/renamed")
                        eng.containers.copy_to(c, str(src / "dir"), "/tmp/via/x")
                        eng.containers.copy_to(c, str(src / "dir" / "up"), "/tmp/dst/single")
                    except Exception as exc:
                        rows[name] = f"{type(exc).__name__}: {exc}"
                        continue
                    rows[name] = _listing(eng, c, "/tmp/dst /tmp/real", NEVER_IN_CONTAINER)
        want = _copy_to_expected(outside)
        _assert_alike(rows, dict.fromkeys(rows, want), "copy_to of links pointing out")

    def test_copy_from_writes_links_as_they_are_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        tmp_path: Path,
    ) -> None:
        outside = _outside(tmp_path)
        setup = (
            "mkdir -p /tmp/d/sub /tmp/e/updir && echo f > /tmp/d/f && "
            "ln -s ../../../outside/secret /tmp/d/up && ln -s ../../../outside /tmp/d/updir && "
            "ln -s /etc/passwd /tmp/d/abs && ln -s nowhere /tmp/d/dang && "
            "ln -s ../../../../../../x /tmp/d/sub/far && ln -s ../f /tmp/d/sub/in && "
            "echo planted > /tmp/e/updir/planted && echo planted > /tmp/e/up"
        )
        rows: dict[str, Any] = {}
        with _untouched(outside):
            for name, eng in engines.items():
                # ``out/o2/d/up`` leads to ``outside/secret`` on the host.
                out = tmp_path / f"out-{name}" / "o2"
                out.mkdir(parents=True)
                with _container(eng, base_images[name], setup, labels) as c:
                    _ready(eng, c, "/tmp/e/up")
                    try:
                        eng.containers.copy_from(c, "/tmp/d", str(out))
                        eng.containers.copy_from(c, "/tmp/d/up", str(out / "single"))
                        first = _host_listing(out)
                        # Again, over the links the first copy left: replaced, never followed.
                        eng.containers.copy_from(c, "/tmp/e/.", str(out / "d"))
                    except Exception as exc:
                        rows[name] = f"{type(exc).__name__}: {exc}"
                        continue
                    rows[name] = {"first": first, "second": _host_listing(out)}
        expected = {
            "first": [
                "d/",
                "d/abs -> /etc/passwd",
                "d/dang -> nowhere",
                "d/f (file 2)",
                "d/sub/",
                "d/sub/far -> ../../../../../../x",
                "d/sub/in -> ../f",
                "d/up -> ../../../outside/secret",
                "d/updir -> ../../../outside",
                "single -> ../../../outside/secret",
            ],
            "second": [
                "d/",
                "d/abs -> /etc/passwd",
                "d/dang -> nowhere",
                "d/f (file 2)",
                "d/sub/",
                "d/sub/far -> ../../../../../../x",
                "d/sub/in -> ../f",
                "d/up (file 8)",
                "d/updir/",
                "d/updir/planted (file 8)",
                "single -> ../../../outside/secret",
            ],
        }
        _assert_alike(rows, dict.fromkeys(rows, expected), "copy_from of links pointing out")


def _host_listing(root: Path) -> list[str]:
    lines = []
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            lines.append(f"{rel} -> {os.readlink(path)}")
        elif path.is_dir():
            lines.append(f"{rel}/")
        else:
            lines.append(f"{rel} (file {path.lstat().st_size})")
    return lines


@contextmanager
def _container(eng: Engine, image: str, setup: str, labels: dict[str, str]) -> Iterator[Container]:
    """A running container that did ``setup`` first, removed (forced) at the end."""
    c = eng.containers.run(image, ["sh", "-c", f"{setup} && exec sleep 600"], labels=labels)
    try:
        yield c
    finally:
        eng.containers.remove(c, force=True)


def _ready(eng: Engine, c: Container, marker: str) -> None:
    """Wait (bounded) until the container's setup made ``marker``."""

    def made() -> bool:
        res = eng.containers.exec(c, ["sh", "-c", f"[ -e {marker} ] || [ -L {marker} ]"])
        return res.exit_code == 0

    poll(made, timeout=30, message=f"the container's setup ({marker})")
