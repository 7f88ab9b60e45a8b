"""``engine.images.build``: every Dockerfile instruction of CONTRACT.md, the
resulting ``Image``, a container run from it, ``target``, ``.dockerignore`` and
live progress (failing builds and refused inputs: test_build_failures.py)."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from enginekit.capabilities import Capability
from enginekit.errors import BuildFailed, InvalidSpec

from ._runs import (
    go_arch,
    remove_image_quietly,
    run_to_end,
    utc_now,
    write_tar,
)

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.models import Image
    from enginekit.testing.session import SuiteRun

ID_RE = re.compile(r"sha256:[0-9a-f]{64}")

# --------------------------------------------------------------------------- the shared build

RICH_DOCKERFILE = """\
# Every instruction of the contract, in one multi-stage build.
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc && echo 'appuser:x:4321:4321:app:/:/bin/sh' > /etc/passwd \\
    && echo 'appgroup:x:4321:' > /etc/group

FROM base AS builder
ARG GREETING=hello
ARG STAGE_MARK
LABEL enginekit.test.run="{run_id}" enginekit.test.stage="${{STAGE_MARK}}"
RUN echo "built with $GREETING" > /built.txt
USER 2345:2346
CMD ["cat", "/built.txt"]

FROM base
ARG GREETING=hello
ARG OTHER=default-other
LABEL com.example.one="1" \\
      com.example.spaced="a b  c"
ENV PLAIN=value SPACED="a b  c" EQUALS="x=y=z" QUOTED="it's \\"quoted\\"" UNICODE="héllo wörld 日本"
ENV LEGACY legacy form with spaces
ENV FROM_ARG=$GREETING OTHER_ARG=${{OTHER}}
COPY --from=builder /built.txt /from-builder.txt
COPY files/ /copied-dir/
COPY single.txt /copied-to-dir/
COPY single.txt /renamed.txt
ADD added.txt /added.txt
ADD archive.tar /extracted/
RUN echo "shell $GREETING" > /shell.txt
RUN ["/bin/busybox", "cp", "/renamed.txt", "/exec-copied.txt"]
WORKDIR /app
WORKDIR sub
WORKDIR deeper
RUN pwd > /build-pwd.txt
USER appuser
EXPOSE 8080 53/udp
ENTRYPOINT ["/bin/echo", "entry"]
CMD ["cmd-arg"]
"""

RICH_FILES: dict[str, str | bytes] = {
    "files/a.txt": "file a\n",
    "files/nested/b.txt": "file b\n",
    "single.txt": "single\n",
    "added.txt": "added\n",
}
TAR_FILES = {"inside/t.txt": b"in tar\n", "inside/sub/u.txt": b"deeper in tar\n"}

EXPECTED_ENV = {
    "PLAIN": "value",
    "SPACED": "a b  c",
    "EQUALS": "x=y=z",
    "QUOTED": 'it\'s "quoted"',
    "UNICODE": "héllo wörld 日本",
    "LEGACY": "legacy form with spaces",
    "FROM_ARG": "bonjour",
    "OTHER_ARG": "default-other",
}
EXPECTED_LABELS_FROM_FILE = {"com.example.one": "1", "com.example.spaced": "a b  c"}
BUILD_LABELS = {"enginekit.test.build": "rich build", "com.example.one": "1"}

# Prints what the image holds, in an order fixed here, for a byte-exact comparison.
INSPECT_SCRIPT = """\
for f in /from-builder.txt /copied-dir/a.txt /copied-dir/nested/b.txt \
/copied-to-dir/single.txt /renamed.txt /added.txt /extracted/inside/t.txt \
/extracted/inside/sub/u.txt /shell.txt /exec-copied.txt /build-pwd.txt; do
  echo "== $f"; cat "$f"
done
echo "== ls /extracted"; ls -1 /extracted
echo "== ls /copied-dir"; ls -1 /copied-dir
echo "== pwd"; pwd
echo "== id"; id -u; id -un; id -g
echo "== env"
""" + "".join(
    f"printf '{name}=[%s]\\n' \"${name}\"\n"
    for name in (
        "PLAIN",
        "SPACED",
        "EQUALS",
        "QUOTED",
        "UNICODE",
        "LEGACY",
        "FROM_ARG",
        "OTHER_ARG",
    )
)

EXPECTED_INSPECT = (
    "== /from-builder.txt\nbuilt with bonjour\n"
    "== /copied-dir/a.txt\nfile a\n"
    "== /copied-dir/nested/b.txt\nfile b\n"
    "== /copied-to-dir/single.txt\nsingle\n"
    "== /renamed.txt\nsingle\n"
    "== /added.txt\nadded\n"
    "== /extracted/inside/t.txt\nin tar\n"
    "== /extracted/inside/sub/u.txt\ndeeper in tar\n"
    "== /shell.txt\nshell bonjour\n"
    "== /exec-copied.txt\nsingle\n"
    "== /build-pwd.txt\n/app/sub/deeper\n"
    "== ls /extracted\ninside\n"
    "== ls /copied-dir\na.txt\nnested\n"
    "== pwd\n/app/sub/deeper\n"
    "== id\n4321\nappuser\n4321\n"
    "== env\n" + "".join(f"{k}=[{v}]\n" for k, v in EXPECTED_ENV.items())
).encode()


@attrs.frozen
class Built:
    """The result of one build, shared by the tests of a class."""

    image: Image
    tags: tuple[str, ...]
    context: Path
    stage_mark: str
    started: Any
    finished: Any
    labels: dict[str, str]

    @property
    def run_labels(self) -> dict[str, str]:
        """The run's own label, for the containers the tests run from the image."""
        return {k: v for k, v in self.labels.items() if k.startswith("enginekit.test.run")}


@contextlib.contextmanager
def _built(
    engine: Engine, context: Path, tag: str, labels: dict[str, str], **kw: Any
) -> Iterator[Image]:
    """The image of a build, removed when the block ends (however it ends)."""
    try:
        yield engine.images.build(str(context), tag=tag, labels=labels, **kw)
    finally:
        remove_image_quietly(engine, tag)


def _rich_context(root: Path, busybox: Path, run_id: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "busybox")
    (root / "Dockerfile").write_text(RICH_DOCKERFILE.format(run_id=run_id))
    for rel, content in RICH_FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content)
        else:
            p.write_bytes(content)
    write_tar(root / "archive.tar", TAR_FILES)
    return root


@pytest.mark.requires(Capability.BUILD)
class TestBuildInstructions:
    """One multi-stage build using every instruction; each test checks one part."""

    @pytest.fixture(scope="class")
    @staticmethod
    def rich(
        engine: Engine,
        enginekit_run: SuiteRun,
        tmp_path_factory: pytest.TempPathFactory,
        busybox_path: Path,
    ) -> Iterator[Built]:
        """The multi-stage build of RICH_DOCKERFILE, once per engine."""
        run_id = enginekit_run.run_id
        ctx = _rich_context(tmp_path_factory.mktemp("rich"), busybox_path, run_id)
        mark = uuid.uuid4().hex
        # Given out of order: the Image shows them sorted.
        tags = (f"ekt-{run_id}-zrich:v1", f"ekt-{run_id}-arich:v2")
        labels = {**enginekit_run.labels, **BUILD_LABELS}
        started = utc_now()
        image = engine.images.build(
            str(ctx),
            tag=tags[0],
            tags=[tags[1]],
            build_args={"GREETING": "bonjour", "STAGE_MARK": mark},
            labels=labels,
        )
        finished = utc_now()
        try:
            yield Built(
                image=image,
                tags=tags,
                context=ctx,
                stage_mark=mark,
                started=started,
                finished=finished,
                labels=labels,
            )
        finally:
            for tag in tags:
                remove_image_quietly(engine, tag)

    def test_image_identity_fields(self, engine: Engine, rich: Built) -> None:
        img = rich.image
        assert ID_RE.fullmatch(img.id), img.id
        assert img.tags == tuple(sorted(rich.tags))
        assert img.created is not None
        assert img.created.tzinfo is not None
        assert img.created.utcoffset() == _zero()
        assert (
            rich.started.timestamp() - 120
            <= img.created.timestamp()
            <= rich.finished.timestamp() + 60
        ), (img.created, rich.started, rich.finished)
        assert img.size > 0
        assert img.os == "linux"
        assert img.architecture == go_arch()
        assert img.engine == engine.name

    def test_get_returns_the_built_image(self, engine: Engine, rich: Built) -> None:
        for ref in (*rich.tags, rich.image.id):
            assert engine.images.get(ref) == rich.image, ref

    def test_config(self, rich: Built) -> None:
        cfg = rich.image.config
        assert cfg.entrypoint == ("/bin/echo", "entry")
        assert cfg.cmd == ("cmd-arg",)
        assert cfg.workdir == "/app/sub/deeper"
        assert cfg.user == "appuser"
        assert sorted(cfg.exposed_ports) == ["53/udp", "8080/tcp"]
        env = dict(cfg.env)
        assert {k: env.get(k) for k in EXPECTED_ENV} == EXPECTED_ENV
        # FROM scratch: no variable is added beyond the Dockerfile's, except PATH.
        assert set(env) - set(EXPECTED_ENV) <= {"PATH"}, sorted(env)

    def test_labels_from_dockerfile_and_build(self, rich: Built) -> None:
        expected = {**EXPECTED_LABELS_FROM_FILE, **rich.labels}
        assert dict(rich.image.labels) == expected
        assert dict(rich.image.config.labels) == expected

    def test_container_sees_what_was_built(self, engine: Engine, rich: Built) -> None:
        res = run_to_end(
            engine,
            rich.tags[0],
            [INSPECT_SCRIPT],
            entrypoint=["/bin/sh", "-c"],
            labels=rich.run_labels,
        )
        assert res.stderr == b""
        assert res.stdout.decode() == EXPECTED_INSPECT.decode()
        assert res.exit_code == 0

    def test_container_carries_the_image_labels(self, engine: Engine, rich: Built) -> None:
        # As `docker run`: a container's labels are its image's, with the spec's on top.
        own = {**rich.run_labels, "ekt.only-on-container": "yes"}
        c = engine.containers.create(rich.tags[0], ["true"], labels=own)
        try:
            expected = {**EXPECTED_LABELS_FROM_FILE, **rich.labels, **own}
            assert dict(c.labels) == expected
            assert dict(engine.containers.get(c.id).labels) == expected
        finally:
            engine.containers.remove(c, force=True)

    def test_entrypoint_and_cmd(self, engine: Engine, rich: Built) -> None:
        default = run_to_end(engine, rich.tags[1], None, labels=rich.run_labels)
        assert (default.exit_code, default.stdout, default.stderr) == (0, b"entry cmd-arg\n", b"")
        override = run_to_end(engine, rich.tags[1], ["x y", "z"], labels=rich.run_labels)
        assert (override.exit_code, override.stdout, override.stderr) == (0, b"entry x y z\n", b"")

    def test_intermediate_stages_not_listed(self, engine: Engine, rich: Built) -> None:
        stage = engine.images.list(labels={"enginekit.test.stage": rich.stage_mark})
        assert stage == [], "a multi-stage build's earlier stage is listed: " + repr(stage)
        mine = engine.images.list(labels=rich.labels)
        assert [i.id for i in mine] == [rich.image.id]
        # No untagged image appeared with the build either (docker images shows none).
        dangling_new = [
            i
            for i in engine.images.list()
            if not i.tags
            and i.created is not None
            and rich.started.timestamp() - 1
            <= i.created.timestamp()
            <= rich.finished.timestamp() + 1
            and i.labels.get("enginekit.test.run") == rich.labels["enginekit.test.run"]
        ]
        assert dangling_new == []


def _zero() -> Any:
    import datetime as _dt

    return _dt.timedelta(0)


@pytest.mark.requires(Capability.BUILD)
class TestBuildTarget:
    def test_target_builds_only_up_to_the_stage(
        self,
        engine: Engine,
        enginekit_run: SuiteRun,
        tmp_path: Path,
        busybox_path: Path,
        labels: dict[str, str],
    ) -> None:
        ctx = _rich_context(tmp_path / "ctx", busybox_path, enginekit_run.run_id)
        mark = uuid.uuid4().hex
        tag = f"ekt-{enginekit_run.run_id}-target:{mark[:8]}"
        with _built(
            engine, ctx, tag, labels, target="builder", build_args={"STAGE_MARK": mark}
        ) as image:
            assert image.tags == (tag,)
            assert image.config.user == "2345:2346"
            assert image.config.cmd == ("cat", "/built.txt")
            assert not image.config.entrypoint
            assert image.config.exposed_ports == ()
            assert dict(image.labels) == {
                "enginekit.test.run": enginekit_run.run_id,
                "enginekit.test.stage": mark,
                **labels,
            }
            res = run_to_end(engine, tag, None, labels=labels)
            assert (res.exit_code, res.stdout, res.stderr) == (0, b"built with hello\n", b"")
            probe = run_to_end(
                engine,
                tag,
                ["id -u; id -g; test -e /from-builder.txt && echo final-stage-leaked; true"],
                entrypoint=["/bin/sh", "-c"],
                labels=labels,
            )
            assert (probe.exit_code, probe.stdout, probe.stderr) == (0, b"2345\n2346\n", b"")


@pytest.mark.requires(Capability.BUILD)
class TestBuildFromLocalImage:
    def test_from_local_image(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        dockerfile = (
            f"FROM {base_image}\n"
            "RUN echo derived > /derived.txt\n"
            'CMD ["sh", "-c", "cat /derived.txt; id -u app"]\n'
        )
        ctx = build_context(dockerfile, busybox=False)
        tag = f"{make_name()}:derived"
        base = engine.images.get(base_image)
        with _built(engine, ctx, tag, labels) as image:
            assert image.id != base.id
            assert image.config.cmd == ("sh", "-c", "cat /derived.txt; id -u app")
            res = run_to_end(engine, tag, None, labels=labels)
            assert (res.exit_code, res.stdout, res.stderr) == (0, b"derived\n1000\n", b"")

    def test_user_by_uid(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        ctx = build_context(f'FROM {base_image}\nUSER 1000\nCMD ["id", "-u"]\n', busybox=False)
        tag = f"{make_name()}:uid"
        with _built(engine, ctx, tag, labels) as image:
            assert image.config.user == "1000"
            res = run_to_end(engine, tag, None, labels=labels)
            assert (res.exit_code, res.stdout, res.stderr) == (0, b"1000\n", b"")
            named = run_to_end(engine, tag, ["sh", "-c", "id -un"], labels=labels)
            assert named.stdout == b"app\n"


@pytest.mark.requires(Capability.BUILD)
class TestBuildContextRules:
    def test_dockerignore(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        ctx = build_context(
            f"FROM {base_image}\nCOPY . /ctx/\n",
            {
                ".dockerignore": (
                    "# comment\nsecret.txt\nlogs\n!logs/keep.log\n*.tmp\n**/deep.bak\n"
                ),
                "secret.txt": "secret\n",
                "kept.txt": "kept\n",
                "x.tmp": "tmp\n",
                "logs/a.log": "a\n",
                "logs/keep.log": "keep\n",
                "sub/deep/deep.bak": "bak\n",
                "sub/deep/ok.txt": "ok\n",
            },
            busybox=False,
        )
        tag = f"{make_name()}:ignore"
        with _built(engine, ctx, tag, labels):
            res = run_to_end(
                engine, tag, ["sh", "-c", "cd /ctx && find . -type f | sort"], labels=labels
            )
            listed = res.stdout.decode().split()
            assert res.exit_code == 0
            for absent in ("./secret.txt", "./x.tmp", "./logs/a.log", "./sub/deep/deep.bak"):
                assert absent not in listed, (absent, listed)
            for present in ("./kept.txt", "./logs/keep.log", "./sub/deep/ok.txt"):
                assert present in listed, (present, listed)

    def test_copy_of_an_ignored_file_fails(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        ctx = build_context(
            f"FROM {base_image}\nCOPY secret.txt /secret.txt\n",
            {".dockerignore": "secret.txt\n", "secret.txt": "secret\n"},
            busybox=False,
        )
        tag = f"{make_name()}:ignored"
        with pytest.raises((InvalidSpec, BuildFailed)):
            engine.images.build(str(ctx), tag=tag, labels=labels)
        assert not engine.images.exists(tag)


@pytest.mark.requires(Capability.BUILD)
class TestBuildProgress:
    def test_progress_arrives_while_building(
        self,
        engine: Engine,
        base_image: str,
        build_context: Callable[..., Path],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        marker = f"progress-marker-{uuid.uuid4().hex}"
        ctx = build_context(
            f"FROM {base_image}\nRUN echo {marker} && sleep 3 && echo done-{marker}\n",
            busybox=False,
        )
        seen: list[tuple[float, str]] = []
        lock = threading.Lock()

        def progress(line: str) -> None:
            assert isinstance(line, str)
            with lock:
                seen.append((time.monotonic(), line))

        tag = f"{make_name()}:progress"
        with _built(engine, ctx, tag, labels, progress=progress):
            returned = time.monotonic()
            hits = [t for t, line in seen if marker in line and "done-" not in line]
            # The RUN's own output line (the step header may quote the marker too).
            out_hits = [t for t, line in seen if line.strip() == marker] or hits
            assert out_hits, "the RUN's output never reached progress: " + repr(
                [line for _, line in seen]
            )
            assert out_hits[0] <= returned - 1.5, (
                "the RUN's output reached progress only when the build returned "
                f"({returned - out_hits[0]:.2f} s before)"
            )
            assert any(f"done-{marker}" in line for _, line in seen)


# --------------------------------------------------------------------------- fingerprints
# (also used by test_build_failures and the reliability modules)

FINGERPRINT = "ek-build-fingerprint"


def _fingerprinted(dockerfile: str, mark: str) -> str:
    """``dockerfile`` with a LABEL after every FROM line: every image and build
    container a build of it makes carries ``FINGERPRINT=mark``, which tells
    them apart from what other clients of a shared engine make meanwhile."""
    out = []
    for line in dockerfile.splitlines():
        out.append(line)
        if line.strip().upper().startswith("FROM"):
            out.append(f"LABEL {FINGERPRINT}={mark}")
    return "\n".join(out) + "\n"


def _ours(engine: Engine, appeared: dict[str, list[str]], mark: str) -> list[str]:
    """Of the objects that appeared, those a fingerprinted build made: images
    with the fingerprint, containers with it or made from such an image."""
    from enginekit.errors import NotFound

    def image_is_ours(ref: str) -> bool:
        try:
            return engine.images.get(ref).labels.get(FINGERPRINT) == mark
        except NotFound:
            return False

    found = [i for i in appeared["images"] if image_is_ours(i)]
    for cid in appeared["containers"]:
        try:
            c = engine.containers.get(cid)
        except NotFound:
            continue
        if c.labels.get(FINGERPRINT) == mark or (c.image_id and image_is_ours(c.image_id)):
            found.append(cid)
    return found


def _left_behind(engine: Engine, mark: str) -> dict[str, list[str]]:
    """Images and containers (any state) a build of a fingerprinted Dockerfile left."""
    wanted = {FINGERPRINT: mark}
    return {
        "containers": sorted(c.id for c in engine.containers.list(all=True, labels=wanted)),
        "images": sorted(i.id for i in engine.images.list(labels=wanted)),
    }
