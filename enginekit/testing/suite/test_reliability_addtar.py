"""Reliability: ``ADD`` of a local tar whose members try to leave the destination.

Docker and Podman extract an added archive as if the destination were ``/``: a
member named ``../x``, ``/abs/x`` or ``a/../../x`` lands under the destination; a
symbolic link is kept as written; a link met on a member's way is followed inside
the destination only, so a file behind ``lnk -> /abs`` fails the build when
``/abs`` is not under the destination. Every engine does the same, and nothing is
written outside the destination.
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

from ._runs import remove_image_quietly, run_to_end, snapshot, table
from .test_build import FINGERPRINT, _fingerprinted
from .test_reliability_inputs import left_by

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory

Member = tuple[str, str, str]  # kind ("file", "link"), name, content or link target


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
            else:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, payload, 0o777
                tar.addfile(info)
    return buf.getvalue()


CONFINED: list[Member] = [
    ("file", "../up.txt", "up"),
    ("file", "/abs/x.txt", "abs"),
    ("file", "a/../../b.txt", "b"),
    ("file", "ok.txt", "ok"),
    ("link", "lnk", "../.."),
    ("file", "lnk/via-link.txt", "via"),
    ("link", "out", "../../../etc"),
]
# What the image holds afterwards, on Docker (20.10 and 28) and Podman (4.3 and 5.8).
CONFINED_LISTING = (
    "/dst/sub/abs/x.txt abs\n/dst/sub/b.txt b\n/dst/sub/ok.txt ok\n"
    "/dst/sub/up.txt up\n/dst/sub/via-link.txt via\n"
    "lnk -> ../..\nout -> ../../../etc\n"
)
LISTING_SCRIPT = (
    "cd / && for f in $(find /dst -type f | sort); do echo $f $(cat $f); done; "
    "for l in lnk out; do echo $l '->' $(readlink /dst/sub/$l); done; "
    "for p in /up.txt /abs /b.txt /via-link.txt /dst/up.txt /dst/b.txt; do "
    "[ -e $p ] && echo OUTSIDE $p; done; true"
)


@pytest.mark.requires(Capability.BUILD)
class TestReliabilityAddTar:
    def test_names_that_climb_out_land_under_the_destination(
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
                    {"t.tar": _tar(CONFINED)},
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
        expected = {"build": "ok", "listing": CONFINED_LISTING, "code": 0}
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title="ADD of names that climb out"),
                pytrace=False,
            )

    @pytest.mark.parametrize(
        "members",
        [
            [("link", "lnk", "/etc"), ("file", "lnk/planted", "x")],
            [("link", "lnk", "/nowhere"), ("file", "lnk/planted", "x")],
            [("link", "lnk", "/nowhere"), ("file", "lnk/deeper/planted", "x")],
        ],
        ids=["link to /etc", "link to nothing", "link to nothing, deeper"],
    )
    def test_a_file_behind_an_absolute_link_fails_the_build(
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
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            ctx = build_context(
                _fingerprinted(f"FROM {base_images[name]}\nADD t.tar /dst/sub/\n", mark),
                {"t.tar": _tar(members)},
                busybox=False,
            )
            before = snapshot(eng)
            try:
                eng.images.build(str(ctx), tag=tag, labels={**labels, FINGERPRINT: mark})
            except BuildFailed:
                outcome = "BuildFailed"
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                outcome = "built"
                res = run_to_end(
                    eng, tag, ["sh", "-c", "ls /etc/planted /nowhere 2>&1; true"], labels=labels
                )
                outcome += f" ({res.stdout.decode().strip()})"
                remove_image_quietly(eng, tag)
            rows[name] = {"outcome": outcome, "left": left_by(eng, before, mark)}
        expected = {"outcome": "BuildFailed", "left": {"containers": [], "images": []}}
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title="ADD of a file behind lnk -> /abs"),
                pytrace=False,
            )
