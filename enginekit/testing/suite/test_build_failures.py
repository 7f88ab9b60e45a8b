"""``engine.images.build`` that fails or is refused: a failing step (its output,
exit code, and nothing left behind), inputs refused before anything is built,
and archives and links that try to write outside the image."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import BuildFailed, EngineError, ImageNotFound, InvalidSpec

from ._runs import (
    Snapshot,
    new_objects,
    remove_image_quietly,
    run_to_end,
    snapshot,
    write_tar,
)
from .test_build import _fingerprinted, _left_behind, _ours

if TYPE_CHECKING:
    from enginekit import Engine

HOSTILE_KINDS = ("dotdot", "absolute", "symlink-absolute", "symlink-relative", "hardlink")


def _hostile_tar(path: Path, kind: str, target: Path, victim: Path) -> Path:
    """A tar with one member (or link + member) of ``kind`` trying to leave the
    folder it is extracted into, towards ``target`` (a host folder) or
    ``victim`` (a host file)."""
    import io
    import tarfile

    escape = "../" * 30 + str(target).lstrip("/")

    def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    def add_link(tar: tarfile.TarFile, name: str, target_name: str, *, hard: bool) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname = target_name
        tar.addfile(info)

    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        add_file(tar, "ok.txt", b"fine\n")
        if kind == "dotdot":
            add_file(tar, escape + "/pwned", b"x")
        elif kind == "absolute":
            add_file(tar, "/" + str(target).lstrip("/") + "/pwned", b"x")
        elif kind == "symlink-absolute":
            add_link(tar, "esc", str(target), hard=False)
            add_file(tar, "esc/pwned", b"x")
        elif kind == "symlink-relative":
            add_link(tar, "esc", escape, hard=False)
            add_file(tar, "esc/pwned", b"x")
        elif kind == "hardlink":
            add_link(tar, "hard", str(victim), hard=True)
            add_file(tar, "hard", b"overwritten through a hard link\n")
        else:
            raise ValueError(kind)
    return path


@pytest.mark.requires(Capability.BUILD)
class TestBuildArchiveSafety:
    @pytest.mark.parametrize("kind", HOSTILE_KINDS)
    def test_add_of_a_hostile_tar_never_writes_on_the_host(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
        tmp_path: Path,
        kind: str,
    ) -> None:
        """ADD extracts a local tar inside the image only: members named with
        ``..`` or absolute names, or reached through links, never land on the
        host. The build may refuse the archive or keep it inside the image."""
        target = tmp_path / "host-target"
        target.mkdir()
        victim = tmp_path / "victim.txt"
        victim.write_text("original\n")
        ctx = build_context(f"FROM {base_image}\nADD evil.tar /dst/\n", busybox=False)
        _hostile_tar(ctx / "evil.tar", kind, target, victim)
        tag = f"{make_name()}:hostile"
        try:
            engine.images.build(str(ctx), tag=tag, labels=labels)
        except (InvalidSpec, BuildFailed):
            pass
        finally:
            remove_image_quietly(engine, tag)
            leaked = sorted(p.name for p in target.iterdir())
        assert leaked == [], f"ADD wrote on the host: {leaked}"
        assert victim.read_text() == "original\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["host-target", "victim.txt"]

    def test_copy_through_links_in_the_image_stays_in_the_image(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
        tmp_path: Path,
    ) -> None:
        """A link made by a RUN step names a path of the image, never of the
        host: COPY, ADD and WORKDIR through it write inside the image."""
        target = tmp_path / "host-target"
        target.mkdir()
        rel = "../" * 30 + str(target).lstrip("/")
        ctx = build_context(
            f"FROM {base_image}\n"
            f"RUN ln -s '{target}' /abs-link && ln -s '{rel}' /rel-link\n"
            "COPY f.txt /abs-link/\n"
            "COPY f.txt /rel-link/copied-rel.txt\n"
            "ADD t.tar /abs-link/\n"
            f"WORKDIR /abs-link/wd\n"
            "RUN echo from-run > made-by-run.txt\n",
            {"f.txt": "copied\n"},
            busybox=False,
        )
        write_tar(ctx / "t.tar", {"from-tar.txt": b"tar\n"})
        tag = f"{make_name()}:links"
        try:
            try:
                engine.images.build(str(ctx), tag=tag, labels=labels)
            except (InvalidSpec, BuildFailed):
                built = False
            else:
                built = True
            leaked = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
            assert leaked == [], f"the build wrote on the host: {leaked}"
            if built:
                # Starting containers whose working directory goes through the
                # link (the image's, and one given in the spec) must not make
                # it on the host either.
                res = run_to_end(
                    engine,
                    tag,
                    ["sh", "-c", f"cd '{target}' && find . | sort"],
                    labels=labels,
                )
                with contextlib.suppress(EngineError):
                    run_to_end(engine, tag, ["pwd"], labels=labels, workdir="/abs-link/spec-wd")
                leaked = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
                assert leaked == [], f"running the image wrote on the host: {leaked}"
                assert res.stdout.decode().split() == [
                    ".",
                    "./copied-rel.txt",
                    "./f.txt",
                    "./from-tar.txt",
                    "./wd",
                    "./wd/made-by-run.txt",
                ], res
        finally:
            remove_image_quietly(engine, tag)


def _assert_built_nothing(engine: Engine, tag: str, mark: str, before: Snapshot) -> None:
    """No image ``tag`` and nothing else the fingerprinted build made: neither
    what carries its fingerprint, nor of what appeared meanwhile (other clients
    of a shared engine may add objects) anything that comes from it."""
    assert not engine.images.exists(tag)
    with pytest.raises(ImageNotFound):
        engine.images.get(tag)
    assert _left_behind(engine, mark) == {"containers": [], "images": []}
    appeared = new_objects(engine, before)
    assert _ours(engine, appeared, mark) == [], appeared


INSTALL = 'COPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
#: Dockerfile (``{mark}`` filled in), the failing step's exit code, what its
#: output holds, what it must not hold (what no failing step wrote).
FAILURES = {
    "shell-form-step": (
        "FROM scratch\n" + INSTALL + "RUN echo out-{mark}; echo err-{mark} >&2; exit 3\n"
        "RUN echo never-{mark}\n",
        3,
        ("out-{mark}", "err-{mark}"),
        ("never-{mark}",),
    ),
    "exec-form-step-in-an-earlier-stage": (
        "FROM scratch AS first\n" + INSTALL + 'RUN ["/bin/sh", "-c", "echo exec-{mark}; exit 5"]\n'
        "FROM scratch\nCOPY --from=first /bin/busybox /bin/busybox\n",
        5,
        ("exec-{mark}",),
        (),
    ),
}


@pytest.mark.requires(Capability.BUILD)
class TestBuildFailure:
    @pytest.mark.parametrize("case", sorted(FAILURES))
    def test_failing_step(
        self,
        engine: Engine,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
        case: str,
    ) -> None:
        mark = uuid.uuid4().hex[:12]
        dockerfile, code, present, absent = FAILURES[case]
        ctx = build_context(_fingerprinted(dockerfile.format(mark=mark), mark))
        tag = f"{make_name()}:fails"
        before = snapshot(engine)
        with pytest.raises(BuildFailed) as info:
            engine.images.build(str(ctx), tag=tag, labels=labels)
        exc = info.value
        assert exc.step is not None and "RUN" in exc.step, exc.step
        assert f"exit {code}" in exc.step, exc.step
        assert exc.exit_code == code
        for text in present:
            assert text.format(mark=mark) in exc.output, exc.output
        for text in absent:
            assert text.format(mark=mark) not in exc.output, exc.output
        _assert_built_nothing(engine, tag, mark, before)


def _escape_cases() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("copy-parent", {"dockerfile_text": "FROM scratch\nCOPY ../outside.txt /x\n"}),
        (
            "copy-parent-cleaned",
            {"dockerfile_text": "FROM scratch\nCOPY sub/../../outside.txt /x\n"},
        ),
        ("add-parent", {"dockerfile_text": "FROM scratch\nADD ../outside.txt /x\n"}),
        ("copy-absolute", {"dockerfile_text": "FROM scratch\nCOPY /etc/passwd /x\n"}),
        (
            "copy-symlink-file",
            {"dockerfile_text": "FROM scratch\nCOPY link /x\n", "link": ("link", "/etc/passwd")},
        ),
        (
            "copy-symlink-relative",
            {"dockerfile_text": "FROM scratch\nCOPY rel /x\n", "link": ("rel", "../outside.txt")},
        ),
        (
            "copy-through-symlinked-dir",
            {
                "dockerfile_text": "FROM scratch\nCOPY etcdir/passwd /x\n",
                "link": ("etcdir", "/etc"),
            },
        ),
        (
            "copy-symlinked-dir",
            {"dockerfile_text": "FROM scratch\nCOPY etcdir /x\n", "link": ("etcdir", "/etc")},
        ),
        (
            "dockerfile-outside",
            {"dockerfile_text": "FROM scratch\n", "dockerfile": "../Dockerfile.outside"},
        ),
        ("dockerfile-absolute-outside", {"dockerfile_text": "FROM scratch\n", "dockerfile": "ABS"}),
        (
            "dockerfile-missing",
            {"dockerfile_text": "FROM scratch\n", "dockerfile": "Nope.dockerfile"},
        ),
        ("missing-context", {"dockerfile_text": "FROM scratch\n", "context": "missing"}),
        ("syntax-unknown-instruction", {"dockerfile_text": "FROM scratch\nBOGUS thing\n"}),
        ("syntax-no-from", {"dockerfile_text": "COPY busybox /bin/busybox\n"}),
        ("syntax-from-without-image", {"dockerfile_text": "FROM\n"}),
        ("syntax-copy-without-destination", {"dockerfile_text": "FROM scratch\nCOPY busybox\n"}),
    ]


@pytest.mark.requires(Capability.BUILD)
class TestBuildRefusals:
    """Inputs refused with ``InvalidSpec`` before anything is built."""

    @pytest.mark.parametrize(
        ("case", "params"), _escape_cases(), ids=[c for c, _ in _escape_cases()]
    )
    def test_refused_before_building(
        self,
        engine: Engine,
        tmp_path: Path,
        busybox_path: Path,
        make_name: Callable[..., str],
        labels: dict[str, str],
        case: str,
        params: dict[str, Any],
    ) -> None:
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "sub").mkdir()
        shutil.copy2(busybox_path, ctx / "busybox")
        mark = uuid.uuid4().hex[:12]
        (ctx / "Dockerfile").write_text(_fingerprinted(params["dockerfile_text"], mark))
        (tmp_path / "outside.txt").write_text("outside the context\n")
        (tmp_path / "Dockerfile.outside").write_text("FROM scratch\nCOPY busybox /b\n")
        if "link" in params:
            name, target = params["link"]
            os.symlink(target, ctx / name)
        dockerfile = params.get("dockerfile", "Dockerfile")
        if dockerfile == "ABS":
            dockerfile = str(tmp_path / "Dockerfile.outside")
        context = tmp_path / "missing" if params.get("context") == "missing" else ctx
        tag = f"{make_name()}:refused"
        before = snapshot(engine)
        with pytest.raises(InvalidSpec) as info:
            engine.images.build(str(context), dockerfile=dockerfile, tag=tag, labels=labels)
        assert isinstance(info.value, ValueError)
        assert "outside the context\n" not in str(info.value)
        _assert_built_nothing(engine, tag, mark, before)
