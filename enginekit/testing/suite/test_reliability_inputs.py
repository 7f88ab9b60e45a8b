"""Reliability: inputs that broke enginekit once, refused or built alike on every engine.

- Dockerfile text read as Docker reads it: ``EXPOSE $PORTS`` exposes each word of
  the value; a heredoc is refused with a message saying so; ``${V:#p}`` is refused as
  Docker refuses it; a line ending with an escaped escape character (``trailing\\\\``),
  which Docker ends there and Podman's builder continues, is refused (quoted, it
  builds alike).
- A NUL character in a path argument (copy_to/copy_from on both sides, the build's
  Dockerfile, mounts, workdir of create, run and exec) is ``InvalidSpec`` before any
  engine call, with the same message on every engine and nothing created or written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.models import Mount

from ._runs import Snapshot, new_objects, remove_image_quietly, snapshot, table
from .test_build import FINGERPRINT, _fingerprinted, _left_behind, _ours

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory


def left_by(eng: Engine, before: Snapshot, mark: str) -> dict[str, list[str]]:
    """What an attempt fingerprinted with ``mark`` left: objects labelled with it
    (any state), and of what appeared meanwhile, what it made (other clients of a
    shared engine may add objects at the same time: those are not counted)."""
    left = _left_behind(eng, mark)
    appeared = new_objects(eng, before)
    left["containers"] += _ours(eng, {**appeared, "images": []}, mark)
    left["images"] += _ours(eng, {**appeared, "containers": []}, mark)
    return {k: sorted(set(v)) for k, v in left.items()}


def _refusals(
    engines: dict[str, Engine], attempt: Callable[[str, Engine], object], mark: str
) -> dict[str, dict[str, Any]]:
    """Run ``attempt`` on every engine; per engine, what it raised and what it left
    (``attempt`` labels what it makes, and fingerprints its Dockerfiles, with ``mark``)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, eng in engines.items():
        before = snapshot(eng)
        try:
            attempt(name, eng)
        except Exception as exc:
            error, message = type(exc).__name__, str(exc)
        else:
            error, message = "no error", ""
        rows[name] = {"error": error, "message": message, "left": left_by(eng, before, mark)}
    return rows


def _assert_refused_alike(rows: dict[str, dict[str, Any]], *, title: str, says: str) -> None:
    nothing: dict[str, list[str]] = {"containers": [], "images": []}
    if any(
        row["error"] != "InvalidSpec" or says not in row["message"] or row["left"] != nothing
        for row in rows.values()
    ):
        pytest.fail(table(rows, title=f"{title}: not refused alike"), pytrace=False)
    messages = {row["message"] for row in rows.values()}
    assert len(messages) == 1, table(rows, title=f"{title}: messages differ")


EXPOSE_DOCKERFILE = """\
FROM {base}
ENV PORTS="80 443"
EXPOSE $PORTS 53/udp
ENV C="trailing\\\\"
LABEL com.example.after="continuation"
"""


@pytest.mark.requires(Capability.BUILD)
class TestReliabilityDockerfileText:
    def test_expose_words_and_a_quoted_trailing_escape(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        tag = f"{make_name('expose')}:v1"
        rows: dict[str, dict[str, Any]] = {}
        built: list[Engine] = []
        try:
            for name, eng in engines.items():
                ctx = build_context(EXPOSE_DOCKERFILE.format(base=base_images[name]), busybox=False)
                image = eng.images.build(str(ctx), tag=tag, labels=labels)
                built.append(eng)
                rows[name] = {
                    "exposed_ports": sorted(image.config.exposed_ports),
                    "env C": dict(image.config.env).get("C"),
                    "label after": image.labels.get("com.example.after"),
                }
        finally:
            for eng in built:
                remove_image_quietly(eng, tag)
        expected = {
            "exposed_ports": ["443/tcp", "53/udp", "80/tcp"],
            "env C": "trailing\\",
            "label after": "continuation",
        }
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title='EXPOSE $PORTS, ENV C="trailing\\\\"'),
                pytrace=False,
            )

    @pytest.mark.parametrize(
        ("dockerfile", "says"),
        [
            ("FROM {base}\nRUN <<EOF\necho hi > /hi\nEOF\n", "heredocs (<<EOF) are not supported"),
            ("FROM {base}\nCOPY <<EOF /hi\nhi\nEOF\n", "heredocs (<<EOF) are not supported"),
            (
                "FROM {base}\nENV C=trailing\\\\\nLABEL a=b\n",
                "the line ends with an escaped \\",
            ),
            ("FROM {base}\nENV P=/a/b\nENV Q=${{P:#*/}}\n", "unsupported modifier (:#)"),
            ("FROM {base}\nENV P=/a/b\nENV Q=${{P:%%/*}}\n", "unsupported modifier (:%)"),
        ],
        ids=[
            "RUN heredoc",
            "COPY heredoc",
            "escaped escape at line end",
            "colon hash",
            "colon percent",
        ],
    )
    def test_refused_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        dockerfile: str,
        says: str,
    ) -> None:
        tag = f"{make_name('refused')}:v1"

        mark = uuid.uuid4().hex[:12]

        def attempt(name: str, eng: Engine) -> object:
            text = _fingerprinted(dockerfile.format(base=base_images[name]), mark)
            ctx = build_context(text, busybox=False)
            return eng.images.build(str(ctx), tag=tag, labels={**labels, FINGERPRINT: mark})

        rows = _refusals(engines, attempt, mark)
        for eng in engines.values():
            remove_image_quietly(eng, tag)
        _assert_refused_alike(rows, title=dockerfile.splitlines()[1], says=says)


def _copy_from_host(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.containers.copy_from(c, "/etc/passwd", str(tmp / "x\0y"))


def _copy_from_container(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.containers.copy_from(c, "/etc/pa\0sswd", str(tmp))


def _copy_to_host(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.containers.copy_to(c, f"{ctx}/Docker\0file", "/tmp")


def _copy_to_container(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.containers.copy_to(c, str(ctx / "Dockerfile"), "/tm\0p")


def _build_dockerfile(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.images.build(str(ctx), dockerfile="Docker\0file", tag="enginekit-nul:never")


def _build_context(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.images.build(f"{ctx}\0x", tag="enginekit-nul:never")


def _save_path(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    image = eng.containers.get(c).image_id
    return eng.images.save(image, str(tmp / "sa\0ved.tar"))


def _load_path(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.images.load(str(tmp / "lo\0ad.tar"))


def _exec_workdir(eng: Engine, c: str, ctx: Path, tmp: Path) -> object:
    return eng.containers.exec(c, ["true"], workdir="/a\0b")


NUL_CASES = [
    pytest.param(
        _copy_from_host,
        "host_path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.COPY),
        id="copy_from host path",
    ),
    pytest.param(
        _copy_from_container,
        "container_path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.COPY),
        id="copy_from container path",
    ),
    pytest.param(
        _copy_to_host,
        "host_path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.COPY),
        id="copy_to host path",
    ),
    pytest.param(
        _copy_to_container,
        "container_path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.COPY),
        id="copy_to container path",
    ),
    pytest.param(
        _build_dockerfile,
        "dockerfile must not contain a NUL character",
        marks=pytest.mark.requires(Capability.BUILD),
        id="build dockerfile",
    ),
    pytest.param(
        _build_context,
        "build context must not contain a NUL character",
        marks=pytest.mark.requires(Capability.BUILD),
        id="build context",
    ),
    pytest.param(
        _save_path,
        "save path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.IMAGE_SAVE),
        id="save path",
    ),
    pytest.param(
        _load_path,
        "load path must not contain a NUL character",
        marks=pytest.mark.requires(Capability.IMAGE_LOAD),
        id="load path",
    ),
    pytest.param(
        _exec_workdir,
        "workdir must not contain a NUL character",
        marks=pytest.mark.requires(Capability.EXEC),
        id="exec workdir",
    ),
]


class TestReliabilityNulPaths:
    """A NUL character in a path: ``InvalidSpec`` before any engine call, alike everywhere."""

    @pytest.mark.parametrize(("attempt", "says"), NUL_CASES)
    def test_refused_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        tmp_path: Path,
        labels: dict[str, str],
        attempt: Callable[[Engine, str, Path, Path], object],
        says: str,
    ) -> None:
        mark = uuid.uuid4().hex[:12]
        marked = {**labels, FINGERPRINT: mark}
        ctx = build_context(_fingerprinted("FROM scratch\nLABEL a=b\n", mark), busybox=False)
        out = tmp_path / "out"
        out.mkdir()

        def on(name: str, eng: Engine) -> object:
            c = eng.containers.run(base_images[name], ["sleep", "600"], labels=marked)
            try:
                return attempt(eng, c.id, ctx, out)
            finally:
                eng.containers.remove(c, force=True)

        rows = _refusals(engines, on, mark)
        assert sorted(os.listdir(out)) == [], "something was written on the host"
        _assert_refused_alike(rows, title=says, says=says)

    @pytest.mark.parametrize(
        ("spec", "says"),
        [
            ({"workdir": "/a\0b"}, "workdir must not contain a NUL character"),
            (
                {"mounts": [Mount(source="/tmp\0x", target="/mnt")]},
                "mount source must not contain a NUL character",
            ),
            (
                {"mounts": [Mount(source="/tmp", target="/m\0nt")]},
                "mount target must not contain a NUL character",
            ),
        ],
        ids=["workdir", "mount source", "mount target"],
    )
    def test_spec_paths_refused_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        spec: dict[str, Any],
        says: str,
    ) -> None:
        for call in ("create", "run"):
            mark = uuid.uuid4().hex[:12]

            def on(name: str, eng: Engine, call: str = call, mark: str = mark) -> object:
                method = getattr(eng.containers, call)
                marked = {**labels, FINGERPRINT: mark}
                return method(base_images[name], ["true"], labels=marked, **spec)

            rows = _refusals(engines, on, mark)
            _assert_refused_alike(rows, title=f"{call}: {says}", says=says)
