"""The LXC adapter's image store, live: tags, list, remove, rootfs cache, save/load
with Docker and Podman. Every store lives in a temporary root removed afterwards;
every Docker/Podman image and container made here is labelled and removed."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit_lxc.build import build_image
from enginekit_lxc.execute import execute
from enginekit_lxc.images import ImageStore
from enginekit_lxc.oci import decode_ref, encode_ref, run_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from enginekit.errors import Conflict, ImageNotFound
from enginekit.models import BuildRequest, Stream
from enginekit.ociarchive import familiar_name

RUN_ID = uuid.uuid4().hex[:10]
LABEL = {"enginekit.test": f"lxc-images-{RUN_ID}"}
BUSYBOX_DOCKERFILE = (
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def store() -> Iterator[ImageStore]:
    root = tempfile.mkdtemp(prefix="ek-lxc-images-", dir="/var/tmp")
    try:
        yield ImageStore(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_context(files: dict[str, str | bytes], dockerfile: str) -> Path:
    ctx = Path(tempfile.mkdtemp(prefix="ek-lxc-ctx-", dir="/var/tmp"))
    shutil.copy2("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, content in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return ctx


@pytest.fixture
def context_dir() -> Iterator[list[Path]]:
    made: list[Path] = []
    try:
        yield made
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


def build(store: ImageStore, ctx: Path, *tags: str, labels: dict[str, str] | None = None) -> str:
    image = build_image(
        store,
        BuildRequest(context=str(ctx), tags=tags, labels=labels or LABEL),
        progress=None,
        execute=execute,
    )
    return image.id


def run_here(store: ImageStore, image_id: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` on a writable copy of the image's rootfs (as a container would)."""
    config = store.config(image_id)
    out: dict[Stream, bytes] = {Stream.STDOUT: b"", Stream.STDERR: b""}

    def collect(stream: Stream, data: bytes) -> None:
        out[stream] += data

    with store.tempdir("run-") as scratch:
        rootfs = os.path.join(scratch, "rootfs")
        subprocess.run(["cp", "-a", store.rootfs(image_id), rootfs], check=True)
        rc = execute(
            rootfs,
            argv,
            env=dict(config.env),
            workdir=config.workdir or "/",
            user=config.user,
            on_output=collect,
        )
    return rc, out[Stream.STDOUT], out[Stream.STDERR]


@pytest.fixture
def busybox(store: ImageStore, context_dir: list[Path]) -> str:
    ctx = make_context({}, BUSYBOX_DOCKERFILE + 'CMD ["echo", "hello from lxc"]\n')
    context_dir.append(ctx)
    return build(store, ctx, "ekbb:1")


# --------------------------------------------------------------------------- ref names


_ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=4)
_COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    _ALNUM,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "--", "---"]), _ALNUM), max_size=3),
)
_TAG = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(list("aZ9_")),
    st.text("abcXYZ019_.-", max_size=12),
)
_REF_GRAMMAR = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*"  # noqa: E501


@settings(max_examples=150, deadline=None)
@given(
    host=st.one_of(st.none(), st.just("localhost:5000"), st.just("registry.example.com")),
    path=st.lists(_COMPONENT, min_size=1, max_size=3),
    tag=_TAG,
)
def test_ref_names_round_trip_and_meet_the_oci_grammar(
    host: str | None, path: list[str], tag: str
) -> None:
    import re

    name = "/".join(path) if host is None else host + "/" + "/".join(path)
    ref = f"{name}:{tag}"
    encoded = encode_ref(ref)
    assert decode_ref(encoded) == ref
    assert re.fullmatch(_REF_GRAMMAR, encoded), encoded


def test_plain_tags_are_stored_as_written() -> None:
    for ref in ("busybox:latest", "localhost:5000/team/app:v2", "a.b/c-d:1.0"):
        assert encode_ref(ref) == ref
    assert encode_ref("a__b:_x") == "a+5f+5fb+3a+5fx"


def test_umoci_accepts_the_stored_ref_names(store: ImageStore, busybox: str) -> None:
    store.tag(busybox, "odd__name:_tag.")
    with store.tempdir("t-") as scratch:
        out = run_tool(["umoci", "ls", "--layout", store.layout.path], what="list")
        assert encode_ref("odd__name:_tag.") in out.split()
        run_tool(
            ["umoci", "raw", "unpack", "--image",
             f"{store.layout.path}:{encode_ref('odd__name:_tag.')}", f"{scratch}/r"],
            what="unpack",
        )  # fmt: skip
        assert os.path.isfile(f"{scratch}/r/bin/busybox")


# --------------------------------------------------------------------------- inspect/list/tag


def test_inspect_fields(store: ImageStore, busybox: str) -> None:
    image = store.inspect("ekbb:1")
    assert image.id == busybox
    assert image.id.startswith("sha256:") and len(image.id) == 71
    with open(store.layout.blob_path(image.id), "rb") as f:
        import hashlib

        assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == image.id
    assert image.tags == ("ekbb:1",)
    assert image.engine == "lxc"
    assert image.os == "linux" and image.architecture == "amd64"
    # Docker's size: file bytes plus symlink target lengths.
    links = len(os.listdir(os.path.join(store.rootfs(busybox), "bin"))) - 1
    assert image.size == os.path.getsize("/bin/busybox") + links * len("/bin/busybox")
    assert image.config.cmd == ("echo", "hello from lxc")
    assert image.labels == LABEL
    assert store.inspect(busybox) == image
    assert store.inspect(busybox[7:19]) == image
    assert store.inspect(busybox[7:]) == image
    with pytest.raises(ImageNotFound):
        store.inspect("nope:1")
    with pytest.raises(ImageNotFound):
        store.resolve("sha256:" + "0" * 64)


def test_tag_list_and_filters(store: ImageStore, busybox: str) -> None:
    store.tag("ekbb:1", "ekbb:2")
    store.tag(busybox, "other/name:x")
    assert store.inspect(busybox).tags == ("ekbb:1", "ekbb:2", "other/name:x")
    assert [i.tags for i in store.list(name="ekbb")] == [("ekbb:1", "ekbb:2")]
    assert [i.tags for i in store.list(name="ekbb:2")] == [("ekbb:2",)]
    assert [i.tags for i in store.list(name="other/name")] == [("other/name:x",)]
    assert store.list(name="missing") == []
    key, value = next(iter(LABEL.items()))
    assert [i.id for i in store.list(labels={key: None})] == [busybox]
    assert [i.id for i in store.list(labels={key: value})] == [busybox]
    assert store.list(labels={key: "other"}) == []
    assert store.list(labels={"absent": None}) == []


def test_moving_a_tag_leaves_a_dangling_image(
    store: ImageStore, busybox: str, context_dir: list[Path]
) -> None:
    ctx = make_context({}, BUSYBOX_DOCKERFILE + 'CMD ["true"]\n')
    context_dir.append(ctx)
    second = build(store, ctx, "ekbb:1")
    assert second != busybox
    assert store.inspect("ekbb:1").id == second
    dangling = store.inspect(busybox)
    assert dangling.tags == ()
    assert {i.id for i in store.list()} == {busybox, second}
    assert store.list(name="ekbb")[0].id == second


# --------------------------------------------------------------------------- remove


def test_remove_untags_then_removes(store: ImageStore, busybox: str) -> None:
    store.tag(busybox, "ekbb:2")
    with pytest.raises(Conflict):
        store.remove(busybox, in_use=lambda _id: False)  # an id several tags name
    store.remove("ekbb:2", in_use=lambda _id: True)  # only a tag: no in-use check
    assert store.inspect(busybox).tags == ("ekbb:1",)
    rootfs = store.rootfs(busybox)
    with pytest.raises(Conflict):
        store.remove("ekbb:1", in_use=lambda image_id: image_id == busybox)
    assert store.inspect(busybox).tags == ("ekbb:1",)
    store.remove("ekbb:1", in_use=lambda _id: False)
    with pytest.raises(ImageNotFound):
        store.inspect(busybox)
    assert store.layout.entries() == []
    assert os.listdir(store.layout.blobs) == []  # umoci gc ran
    assert os.listdir(store.sizes_dir) == []
    assert not os.path.exists(rootfs)
    assert os.listdir(store.rootfs_dir) == []


def test_force_remove_of_an_image_in_use_keeps_its_rootfs(store: ImageStore, busybox: str) -> None:
    rootfs = store.rootfs(busybox)
    store.remove(busybox, force=True, in_use=lambda _id: True)
    with pytest.raises(ImageNotFound):
        store.inspect(busybox)
    assert os.path.isfile(os.path.join(rootfs, "bin", "busybox"))
    assert store.drop_unused_rootfs(lambda _id: True) == ()
    assert os.path.isdir(rootfs)
    assert store.drop_unused_rootfs(lambda _id: False) == (busybox,)
    assert not os.path.exists(rootfs)


# --------------------------------------------------------------------------- rootfs


def _rootfs_worker(root: str, image_id: str, queue: multiprocessing.Queue[str]) -> None:
    queue.put(ImageStore(root).rootfs(image_id))


def test_rootfs_is_unpacked_once_for_concurrent_processes(store: ImageStore, busybox: str) -> None:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [
        ctx.Process(target=_rootfs_worker, args=(store.root, busybox, queue)) for _ in range(6)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    paths = {queue.get(timeout=5) for _ in procs}
    assert len(paths) == 1
    path = paths.pop()
    assert os.path.islink(os.path.join(path, "bin", "sh"))
    assert os.readlink(os.path.join(path, "bin", "sh")) == "/bin/busybox"
    leftovers = [n for n in os.listdir(store.rootfs_dir) if not n.endswith(".lock")]
    assert leftovers == [busybox[7:]]
    assert os.listdir(store.tmp_dir) == []


# --------------------------------------------------------------------------- save / load


def _cli(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Podman 5 on a cgroup v1 host warns on every command's stderr unless told not to.
    env = {**os.environ, "PODMAN_IGNORE_CGROUPSV1_WARNING": "1"}
    return subprocess.run(
        list(argv), capture_output=True, text=True, check=check, timeout=120, env=env
    )


@contextlib.contextmanager
def _engine_images(cli: str) -> Iterator[None]:
    """Remove whatever this test run's label marks on ``cli`` (docker or podman)."""
    selector = f"label=enginekit.test={LABEL['enginekit.test']}"
    try:
        yield
    finally:
        ps = _cli(cli, "ps", "-aq", "--filter", selector, check=False).stdout.split()
        if ps:
            _cli(cli, "rm", "-f", *ps, check=False)
        ids = _cli(cli, "images", "-q", "--filter", selector, check=False).stdout.split()
        if ids:
            _cli(cli, "rmi", "-f", *set(ids), check=False)
        left = _cli(cli, "images", "-q", "--filter", selector, check=False).stdout.split()
        assert left == [], f"{cli} images left behind: {left}"


def test_image_saved_by_docker_loads_here_and_runs(
    store: ImageStore, context_dir: list[Path], tmp_path: Path
) -> None:
    ctx = make_context({}, BUSYBOX_DOCKERFILE + 'ENV GREETING=from-docker\nCMD ["sh"]\n')
    context_dir.append(ctx)
    tag = f"ek-lxc-docker-{RUN_ID}:v1"
    archive = tmp_path / "docker.tar"
    with _engine_images("docker"):
        _cli("docker", "build", "-q", "--label", f"enginekit.test={LABEL['enginekit.test']}",
             "-t", tag, str(ctx))  # fmt: skip
        docker_id = _cli("docker", "image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()
        docker_size = int(_cli("docker", "image", "inspect", "-f", "{{.Size}}", tag).stdout)
        _cli("docker", "tag", tag, tag.replace(":v1", ":v2"))
        _cli("docker", "save", "-o", str(archive), tag, tag.replace(":v1", ":v2"))
    loaded = store.load(str(archive))
    assert [i.id for i in loaded] == [docker_id]  # the config is kept byte for byte
    assert loaded[0].tags == (tag, tag.replace(":v1", ":v2"))
    assert loaded[0].size == docker_size  # the same size rule as Docker's
    assert store.inspect(tag).config.env["GREETING"] == "from-docker"
    rc, out, err = run_here(store, docker_id, ["sh", "-c", 'echo "$GREETING"; ls /bin/ls'])
    assert (rc, out, err) == (0, b"from-docker\n/bin/ls\n", b"")
    assert os.listdir(store.tmp_dir) == []


def test_podman_archive_loads_here(
    store: ImageStore, context_dir: list[Path], tmp_path: Path
) -> None:
    ctx = make_context({}, BUSYBOX_DOCKERFILE + 'CMD ["echo", "podman"]\n')
    context_dir.append(ctx)
    tag = f"ek-lxc-podman-{RUN_ID}:v1"
    with _engine_images("podman"):
        _cli("podman", "build", "-q", "--label", f"enginekit.test={LABEL['enginekit.test']}",
             "-t", tag, str(ctx))  # fmt: skip
        for fmt in ("docker-archive", "oci-archive"):
            archive = tmp_path / f"{fmt}.tar"
            _cli("podman", "save", "--format", fmt, "-o", str(archive), tag)
            loaded = store.load(str(archive))
            assert len(loaded) == 1
            assert loaded[0].tags == (tag,)  # without Podman's localhost/
            rc, out, _ = run_here(store, loaded[0].id, ["echo", "podman"])
            assert (rc, out) == (0, b"podman\n")


@pytest.mark.parametrize("cli", ["docker", "podman"])
def test_image_saved_here_loads_and_runs_on(
    cli: str, store: ImageStore, context_dir: list[Path], tmp_path: Path
) -> None:
    ctx = make_context(
        {"hello.txt": "hello across engines\n"},
        BUSYBOX_DOCKERFILE
        + "COPY hello.txt /srv/\nWORKDIR /srv\nENV WHO=lxc\n"
        + 'CMD ["sh", "-c", "cat hello.txt; echo $WHO; pwd; id -u"]\n',
    )
    context_dir.append(ctx)
    tag = f"ek-lxc-saved-{RUN_ID}:{cli}"
    image_id = build(store, ctx, tag)
    expected = run_here(store, image_id, list(store.config(image_id).cmd or ()))
    assert expected == (0, b"hello across engines\nlxc\n/srv\n0\n", b"")
    archive = tmp_path / "saved.tar"
    store.save(tag, str(archive))
    with _engine_images(cli):
        out = _cli(cli, "load", "-i", str(archive)).stdout
        loaded = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("Loaded image")]
        # Docker shows the tag as saved; Podman qualifies it (docker.io/...).
        assert [familiar_name(name) for name in loaded] == [tag], out
        ref = loaded[0]
        engine_id = _cli(cli, "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
        assert engine_id.removeprefix("sha256:") == image_id.removeprefix("sha256:")
        res = _cli(cli, "run", "--rm", "--network", "none", "--label",
                   f"enginekit.test={LABEL['enginekit.test']}", ref)  # fmt: skip
        assert (res.returncode, res.stdout.encode(), res.stderr.encode()) == expected


def test_save_by_id_is_untagged_and_round_trips(
    store: ImageStore, busybox: str, tmp_path: Path
) -> None:
    archive = tmp_path / "byid.tar"
    store.save(busybox, str(archive))
    with tarfile_open(archive) as names:
        manifest = json.loads(names["manifest.json"])
        assert manifest[0]["RepoTags"] in (None, [])
    other = ImageStore(os.path.join(store.root, "second"))
    loaded = other.load(str(archive))
    assert [i.id for i in loaded] == [busybox]
    assert loaded[0].tags == ()
    assert other.list()[0].id == busybox


@contextlib.contextmanager
def tarfile_open(path: Path) -> Iterator[dict[str, bytes]]:
    import tarfile

    with tarfile.open(path) as tar:
        out: dict[str, bytes] = {}
        for member in tar:
            if member.name.endswith(".json"):
                f = tar.extractfile(member)
                assert f is not None
                out[member.name] = f.read()
        yield out


# --------------------------------------------------------------------------- concurrency


def _build_worker(root: str, ctx: str, n: int, queue: multiprocessing.Queue[str]) -> None:
    image = build_image(
        ImageStore(root),
        BuildRequest(context=ctx, tags=("ek-race:shared", f"ek-race:{n}"), labels=LABEL),
        progress=None,
        execute=execute,
    )
    queue.put(image.id)


def test_concurrent_builds_in_several_processes(store: ImageStore, context_dir: list[Path]) -> None:
    ctx = make_context({}, BUSYBOX_DOCKERFILE + "RUN echo $RANDOM > /random\n")
    context_dir.append(ctx)
    mp = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = mp.Queue()
    procs = [
        mp.Process(target=_build_worker, args=(store.root, str(ctx), n, queue)) for n in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = {queue.get(timeout=5) for _ in procs}
    assert len(ids) == 4
    images = store.list()
    assert {i.id for i in images} == ids
    for n in range(4):
        assert f"ek-race:{n}" in store.inspect(f"ek-race:{n}").tags
    assert sum("ek-race:shared" in i.tags for i in images) == 1
    assert os.listdir(store.tmp_dir) == []
    for image_id in ids:
        store.remove(image_id, force=True, in_use=lambda _id: False)
    assert store.layout.entries() == []
    assert os.listdir(store.layout.blobs) == []


def test_leftovers_of_killed_processes_are_swept(store: ImageStore) -> None:
    os.makedirs(store.tmp_dir)
    dead = os.path.join(store.tmp_dir, "build-dead")
    os.makedirs(os.path.join(dead, "bundle", "rootfs"))
    Path(dead, ".in-use").touch()
    fresh = os.path.join(store.tmp_dir, "build-just-made")
    os.makedirs(fresh)
    mp = multiprocessing.get_context("fork")
    ready, release = mp.Event(), mp.Event()

    def hold() -> None:
        with store.tempdir("alive-") as path:
            Path(path, "marker").touch()
            ready.set()
            release.wait(30)

    holder = mp.Process(target=hold)
    holder.start()
    try:
        assert ready.wait(30)
        (alive,) = [n for n in os.listdir(store.tmp_dir) if n.startswith("alive-")]
        with ImageStore(store.root).tempdir("new-"):
            names = set(os.listdir(store.tmp_dir))
        assert "build-dead" not in names
        assert {"build-just-made", alive} <= names
    finally:
        release.set()
        holder.join(30)
    assert sorted(os.listdir(store.tmp_dir)) == ["build-just-made"]
    os.utime(fresh, (time.time() - 3600, time.time() - 3600))
    assert store.sweep_tmp() == [fresh]
