"""Reliability: ``ADD`` of a local tar whose members try to leave the destination.

Engines agree on part of it: an absolute member name is taken from the destination,
``a/../b`` is ``b``, a symbolic link is kept as written, a member below a link to a
directory of the archive lands there. They part on the rest (Docker 20.10 and
Podman put ``../x`` under the destination, Docker's BuildKit refuses it; a file
below ``lnk -> /abs`` fails on the first two, BuildKit creates ``DEST/abs``; ...):
enginekit refuses those archives on every engine before building (``InvalidSpec``,
see :mod:`enginekit.addarchive`). Nothing is ever written outside the destination.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import BuildFailed

from ._runs import remove_image_quietly, run_to_end, table
from .test_build import FINGERPRINT, _fingerprinted
from .test_reliability_inputs import _assert_refused_alike, _refusals

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory

Member = tuple[str, str, str]  # kind (file, dir, link, hard), name, content or link target


def _tar(members: Sequence[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                data = payload.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "link" else tarfile.LNKTYPE
                info.linkname, info.mode = payload, 0o777 if kind == "link" else 0o644
                tar.addfile(info)
    return buf.getvalue()


ALIKE: list[Member] = [
    ("file", "/abs/x.txt", "abs"),
    ("file", "a/../b.txt", "b"),
    ("file", "ok.txt", "ok"),
    ("dir", "sub", ""),
    ("link", "lnk", "sub"),
    ("file", "lnk/via-link.txt", "via"),
    ("link", "out", "../../../etc"),
    ("link", "pw", "/etc/passwd"),
    ("hard", "h", "/ok.txt"),
]
# What the image holds afterwards, on every engine.
ALIKE_LISTING = (
    "/dst/sub/abs/x.txt abs\n/dst/sub/b.txt b\n/dst/sub/h ok\n/dst/sub/ok.txt ok\n"
    "/dst/sub/sub/via-link.txt via\n"
    "lnk -> sub\nout -> ../../../etc\npw -> /etc/passwd\n"
)
LISTING_SCRIPT = (
    "cd / && for f in $(find /dst -type f | sort); do echo $f $(cat $f); done; "
    "for l in lnk out pw; do echo $l '->' $(readlink /dst/sub/$l); done; "
    "for p in /abs /b.txt /via-link.txt /dst/abs /dst/b.txt; do "
    "[ -e $p ] && echo OUTSIDE $p; done; true"
)
REFUSED: dict[str, list[Member]] = {
    "name climbing out": [("file", "../up.txt", "up")],
    "name climbing out inside": [("file", "a/../../b.txt", "b")],
    "hard link climbing out": [("file", "t", "t"), ("hard", "h", "../t")],
    "file below a link to /etc": [("link", "lnk", "/etc"), ("file", "lnk/planted", "x")],
    "file below a link to nothing": [("link", "lnk", "/nowhere"), ("file", "lnk/d/planted", "x")],
    "file below a link climbing out": [("link", "lnk", "../.."), ("file", "lnk/planted", "x")],
    "file below a link to no directory": [("link", "lnk", "sub"), ("file", "lnk/planted", "x")],
}


@pytest.mark.requires(Capability.BUILD)
class TestReliabilityAddTar:
    def test_what_every_engine_extracts_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        tag = f"{make_name('addtar')}:v1"
        rows: dict[str, dict[str, Any]] = {}
        built: list[Engine] = []
        try:
            for name, eng in engines.items():
                ctx = build_context(
                    f"FROM {base_images[name]}\nADD t.tar /dst/sub/\n",
                    {"t.tar": _tar(ALIKE)},
                    busybox=False,
                )
                try:
                    eng.images.build(str(ctx), tag=tag, labels=labels)
                except BuildFailed as exc:
                    rows[name] = {"build": f"BuildFailed: {exc}"}
                    continue
                built.append(eng)
                res = run_to_end(eng, tag, ["sh", "-c", LISTING_SCRIPT], labels=labels)
                rows[name] = {"build": "ok", "listing": res.stdout.decode(), "code": res.exit_code}
        finally:
            for eng in built:
                remove_image_quietly(eng, tag)
        expected = {"build": "ok", "listing": ALIKE_LISTING, "code": 0}
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title="ADD of a tar engines agree on"),
                pytrace=False,
            )

    @pytest.mark.parametrize("members", list(REFUSED.values()), ids=list(REFUSED))
    def test_what_engines_extract_differently_is_refused_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        members: list[Member],
    ) -> None:
        tag = f"{make_name('addtar')}:v1"
        mark = uuid.uuid4().hex[:12]

        def attempt(name: str, eng: Engine) -> object:
            ctx = build_context(
                _fingerprinted(f"FROM {base_images[name]}\nADD t.tar /dst/sub/\n", mark),
                {"t.tar": _tar(members)},
                busybox=False,
            )
            return eng.images.build(str(ctx), tag=tag, labels={**labels, FINGERPRINT: mark})

        rows = _refusals(engines, attempt, mark)
        for eng in engines.values():
            remove_image_quietly(eng, tag)
        _assert_refused_alike(
            rows, title="ADD of a tar engines extract differently", says="refused on every engine"
        )
