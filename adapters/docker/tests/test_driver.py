"""DockerDriver against the live dockerd (no mocks): every behaviour the adapter promises.

The scenarios the Podman adapter's tests run alike come from
:mod:`enginekit.testing.httpdriver` (collected here with the ``kit`` fixture).
"""

from __future__ import annotations

import concurrent.futures
import os
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from docker_support import LABELS, RUN, busybox_context
from enginekit_docker import DockerDriver, connect, versions

from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    ImageNotFound,
    InvalidSpec,
)
from enginekit.models import (
    BuildRequest,
    ContainerState,
    Mount,
    PortBinding,
    Resources,
)
from enginekit.ociarchive import read_index
from enginekit.testing.httpdriver import *  # noqa: F403  (the shared scenarios, collected here)
from enginekit.testing.httpdriver import Kit

Make = Callable[..., str]
SLEEP = ("sleep", "100")


def _get(driver: DockerDriver, path: str, **params: object) -> list[dict[str, str]]:
    resp = driver.transport.request("GET", driver.url(path), params=params)
    assert resp.status == 200
    return resp.json()  # type: ignore[no-any-return]


def descendants(driver: DockerDriver, image: str) -> tuple[set[str], set[str]]:
    """Containers (all) and images (as ``docker images`` lists them, dangling
    included) made from ``image`` or an image built on it: what a build on
    ``image`` could leave. Other users of the daemon do not disturb it."""
    root = driver.image_inspect(image).id
    containers = {
        c["Id"] for c in _get(driver, "/containers/json", all=True, filters={"ancestor": [root]})
    }
    parent = {i["Id"]: i.get("ParentId", "") for i in _get(driver, "/images/json", all=True)}

    def built_on_root(image_id: str) -> bool:
        seen = set()
        while image_id and image_id not in seen:
            seen.add(image_id)
            image_id = parent.get(image_id, "")
            if image_id == root:
                return True
        return False

    images = {i["Id"] for i in _get(driver, "/images/json") if built_on_root(i["Id"])}
    return containers, images


@pytest.fixture
def kit(driver: DockerDriver, make: Make, image: str) -> Kit:
    """What the shared HTTP-driver scenarios need (enginekit.testing.httpdriver)."""
    return Kit(driver, image, LABELS, make, connect, start_hint="dockerd", run_id=RUN)


# -- connecting ---------------------------------------------------------------


def test_connect_defaults_and_docker_host(docker_host_env: None) -> None:
    os.environ.pop("DOCKER_HOST", None)
    assert connect().address == "unix:///var/run/docker.sock"
    os.environ["DOCKER_HOST"] = "unix:///tmp/elsewhere.sock"
    assert connect().address == "unix:///tmp/elsewhere.sock"
    assert connect("tcp://127.0.0.1:2375").address == "tcp://127.0.0.1:2375"
    assert connect("docker+unix:///var/run/docker.sock").address == "unix:///var/run/docker.sock"


def test_connect_takes_ssh_and_tls_without_io(
    docker_host_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ssh: nothing runs until the first call (the host does not exist).
    assert connect("ssh://user@host.invalid").address == "ssh://user@host.invalid"
    os.environ["DOCKER_HOST"] = "tcp://127.0.0.1:2376"
    os.environ["DOCKER_TLS_VERIFY"] = "1"
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))  # holds no ca.pem
    with pytest.raises(InvalidSpec, match=r"DOCKER_TLS_VERIFY is set but .*ca\.pem does not exist"):
        connect()
    with pytest.raises(InvalidSpec):
        connect("unix:///var/run/docker.sock", bogus=1)


def test_ping_info_capabilities(driver: DockerDriver) -> None:
    driver.ping()
    info = driver.info()
    assert info.name == "docker" and info.version and info.os == "linux"
    assert info.arch and info.storage_root
    # The highest version both sides speak.
    engine_max = versions.parse(info.max_api_version)
    assert engine_max is not None and engine_max >= versions.OLDEST
    assert versions.parse(info.api_version) == min(engine_max, versions.NEWEST)
    assert driver.api_version == info.api_version
    assert versions.parse(info.min_api_version) is not None
    assert info.cgroup_version in (1, 2) and info.rootless is not None
    assert info.image_store in ("overlay2", "containerd", "vfs", "btrfs", "zfs", "fuse-overlayfs")
    assert driver.name == "docker"
    assert driver.capabilities | frozenset(driver.unsupported) == frozenset(Capability)
    assert not driver.capabilities & frozenset(driver.unsupported)
    if not info.rootless:
        assert Capability.NETWORK_HOST in driver.capabilities


def test_version_negotiated_once_and_lazily(tmp_path: Path) -> None:
    """No request before the first call; one ``/_ping`` for many threads."""
    d = connect()
    assert "api" not in d._kept  # connect() sent nothing
    pings: list[str] = []
    real = d.transport.request

    def counting(method: str, path: str, **kw: object) -> object:
        if path == "/_ping":
            pings.append(path)
        return real(method, path, **kw)  # type: ignore[arg-type]

    d.transport.request = counting  # type: ignore[method-assign]
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            found = set(pool.map(lambda _: d.url("/info"), range(32)))
        assert len(found) == 1 and len(pings) == 1
        assert found == {f"/v{d.api_version}/info"}
        d.info()
        assert len(pings) == 1
    finally:
        d.close()


# -- create / inspect ---------------------------------------------------------


def test_create_reports_the_spec(
    driver: DockerDriver, make: Make, image: str, tmp_path: Path
) -> None:
    name = f"ekd-{RUN}-spec"
    cid = make(
        ("sleep", "5"),
        name=name,
        env={"A": "1", "EMPTY": ""},
        workdir="/tmp",
        user="1000:1000",
        labels={"x.y": "z"},
        hostname="spec-host",
        ports=(PortBinding(container_port=80),),
        mounts=(Mount(source=str(tmp_path), target="/data", read_only=True),),
        memory=64 * 2**20,
        cpus=0.5,
        pids_limit=32,
        stop_signal="SIGINT",
    )
    assert len(cid) == 64
    c = driver.container_inspect(cid)
    assert (c.id, c.name, c.image) == (cid, name, image)
    assert c.image_id == driver.image_inspect(image).id
    assert c.state is ContainerState.CREATED
    assert c.exit_code is None and c.pid is None and c.started_at is None
    assert c.created_at is not None and c.created_at.tzinfo is not None
    assert c.command == ("sleep", "5") and c.entrypoint == ()
    assert dict(c.env) == {"A": "1", "EMPTY": "", "PATH": "/bin"}
    assert (c.workdir, c.user, c.hostname) == ("/tmp", "1000:1000", "spec-host")
    assert c.labels["x.y"] == "z"
    assert c.ports == (PortBinding(container_port=80, host_ip="127.0.0.1", host_port=None),)
    assert c.mounts == (Mount(source=str(tmp_path), target="/data", read_only=True),)
    assert c.resources == Resources(memory=64 * 2**20, cpus=0.5, pids_limit=32)
    assert c.network == "bridge" and c.stop_signal == "SIGINT" and c.engine == "docker"
    # name, 12+ char prefix and full id all resolve
    assert driver.container_inspect(name).id == cid
    assert driver.container_inspect(cid[:12]).id == cid


def test_create_errors(driver: DockerDriver, make: Make, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        make(("true",), image="enginekit-docker-test/absent:nope")
    name = f"ekd-{RUN}-dup"
    make(("true",), name=name)
    with pytest.raises(Conflict):
        make(("true",), name=name)
    with pytest.raises(InvalidSpec):
        make(("true",), mounts=(Mount(source=str(tmp_path / "absent"), target="/x"),))
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(f"ekd-{RUN}-absent")
    with pytest.raises(ContainerNotFound):
        driver.container_start("0" * 64)


def test_entrypoint_override(driver: DockerDriver, run: Make) -> None:
    cid = run(("echo hi; exit 4",), entrypoint=("sh", "-c"))
    assert driver.container_wait(cid, timeout=30) == 4
    c = driver.container_inspect(cid)
    assert c.entrypoint == ("sh", "-c") and c.command == ("echo hi; exit 4",)
    assert b"".join(x.data for x in driver.container_logs(cid)) == b"hi\n"


# -- lifecycle ----------------------------------------------------------------


def test_signals_right_after_start_are_not_lost(driver: DockerDriver, make: Make) -> None:
    def one(i: int) -> tuple[str, int | None]:
        cid = make(SLEEP, stop_signal="SIGINT" if i % 2 else None)
        driver.container_start(cid)
        if i % 2:
            driver.container_stop(cid, timeout=10)
            return "stop", driver.container_inspect(cid).exit_code
        driver.container_kill(cid, signal="SIGTERM")
        return "kill", driver.container_wait(cid, timeout=20)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = set(pool.map(one, range(16)))
    assert results == {("stop", 130), ("kill", 143)}


def test_missing_executable_exits_127(driver: DockerDriver, run: Make) -> None:
    cid = run(("/no/such/program",))
    assert driver.container_wait(cid, timeout=30) == 127


# -- list ---------------------------------------------------------------------


def test_list_filters(driver: DockerDriver, make: Make, run: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    base = f"ekd-{RUN}-list-{tag}"
    running = run(SLEEP, name=base, labels={"list": tag, "role": "a"})
    created = make(SLEEP, name=base + "x", labels={"list": tag, "role": "b"})
    ids = {c.id for c in driver.container_list(labels={"list": tag})}
    assert ids == {running}
    ids = {c.id for c in driver.container_list(all=True, labels={"list": tag})}
    assert ids == {running, created}
    assert [c.id for c in driver.container_list(all=True, labels={"list": tag, "role": "b"})] == [
        created
    ]
    assert [c.id for c in driver.container_list(all=True, labels={"role": None, "list": tag})]
    # exact name: the prefix of another name does not match it
    assert [c.id for c in driver.container_list(all=True, name=base)] == [running]
    assert [c.id for c in driver.container_list(all=True, name=base + "x")] == [created]
    assert driver.container_list(all=True, name=base[:-1]) == []


def test_list_entries_agree_with_inspect(driver: DockerDriver, make: Make, run: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [
        make(SLEEP, labels={"agree": tag}),
        run(SLEEP, labels={"agree": tag}, ports=(PortBinding(container_port=80),)),
        run(("sh", "-c", "exit 3"), labels={"agree": tag}),
    ]
    driver.container_wait(ids[2], timeout=30)
    paused = run(SLEEP, labels={"agree": tag})
    driver.container_pause(paused)
    ids.append(paused)
    listed = {c.id: c for c in driver.container_list(all=True, labels={"agree": tag})}
    assert set(listed) == set(ids)
    for cid in ids:
        full, entry = driver.container_inspect(cid), listed[cid]
        for field in ("id", "name", "image", "image_id", "state", "exit_code", "labels", "mounts"):
            assert getattr(entry, field) == getattr(full, field), field
        if full.state in (ContainerState.RUNNING, ContainerState.PAUSED):
            assert entry.ports == full.ports
        assert full.created_at is not None and entry.created_at is not None
        assert abs((full.created_at - entry.created_at).total_seconds()) < 1


# -- images -------------------------------------------------------------------


def test_image_config_and_labels(driver: DockerDriver, image: str) -> None:
    img = driver.image_inspect(image)
    assert img.config.cmd == ("sh",) and img.config.env["PATH"] == "/bin"
    assert img.labels == LABELS
    assert img.id in [i.id for i in driver.image_list(labels=LABELS)]


def _build(driver: DockerDriver, ctx: Path, **kw: object) -> tuple[object, list[str]]:
    seen: list[str] = []
    request = BuildRequest(context=str(ctx), labels=LABELS, **kw)  # type: ignore[arg-type]
    return driver.image_build(request, progress=seen.append), seen


def test_build_features(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("A\n")
    (ctx / "skip.txt").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("skip.txt\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {image} AS base\n"
        "ARG GREETING=none\n"
        'RUN echo "$GREETING" > /greeting && echo built-step\n'
        "FROM base\n"
        "COPY --from=base /greeting /copied\n"
        "COPY a.txt /a.txt\n"
        "WORKDIR /app\nUSER 1000\nENV K=V\nEXPOSE 8080\n"
        "LABEL from.file=yes\n"
        'ENTRYPOINT ["sh", "-c"]\nCMD ["cat /copied"]\n'
    )
    tag = f"enginekit-docker-test/built:{RUN}"
    img, seen = _build(
        driver, ctx, tags=(tag, tag + "-b"), build_args={"GREETING": "hello"}, target=None
    )
    try:
        assert set(img.tags) == {tag, tag + "-b"}  # type: ignore[attr-defined]
        cfg = img.config  # type: ignore[attr-defined]
        assert cfg.entrypoint == ("sh", "-c") and cfg.cmd == ("cat /copied",)
        assert cfg.workdir == "/app" and cfg.user == "1000" and cfg.env["K"] == "V"
        assert cfg.exposed_ports == ("8080/tcp",)
        assert img.labels["from.file"] == "yes" and img.labels["enginekit.test"]  # type: ignore[attr-defined]
        assert any(line.startswith("Step ") and "RUN" in line for line in seen)
        assert "built-step" in seen
    finally:
        driver.image_remove(tag, force=True)
        driver.image_remove(tag + "-b", force=True)


def test_build_failure_leaves_nothing(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    nonce = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(
        f"FROM {image}\nRUN echo {nonce} > /n\n"
        "RUN echo to-stdout; echo to-stderr >&2; exit 3\nRUN echo unreachable\n"
    )
    before = descendants(driver, image)
    with pytest.raises(BuildFailed) as info:
        _build(driver, ctx, tags=(f"enginekit-docker-test/fails:{RUN}",))
    err = info.value
    assert err.step == "RUN echo to-stdout; echo to-stderr >&2; exit 3"
    assert err.exit_code == 3
    assert "to-stdout" in err.output and "to-stderr" in err.output
    assert nonce not in err.output  # the tail of the failing step only
    assert descendants(driver, image) == before
    with pytest.raises(ImageNotFound):
        driver.image_inspect(f"enginekit-docker-test/fails:{RUN}")


def test_build_failure_of_a_copy_step(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nRUN true\nCOPY absent.txt /x\n")
    before = descendants(driver, image)
    with pytest.raises((BuildFailed, InvalidSpec)) as info:
        _build(driver, ctx)
    if isinstance(info.value, BuildFailed):
        assert info.value.step == "COPY absent.txt /x" and info.value.exit_code is None
    assert descendants(driver, image) == before


def test_build_interrupted_by_progress_leaves_nothing(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {image}\nRUN echo {uuid.uuid4().hex} > /a\nRUN echo stop-here; sleep 2\nRUN true\n"
    )
    before = descendants(driver, image)

    def progress(line: str) -> None:
        if line == "stop-here":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.image_build(BuildRequest(context=str(ctx), labels=LABELS), progress=progress)
    deadline = time.monotonic() + 15
    while descendants(driver, image) != before and time.monotonic() < deadline:
        time.sleep(0.2)  # the daemon cancels the build and removes its container
    assert descendants(driver, image) == before


def test_multi_stage_build_leaves_no_stray_image(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    nonce = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(
        f"FROM {image} AS stage\nRUN echo {nonce} > /n\nFROM {image}\nCOPY --from=stage /n /n\n"
    )
    containers, images = descendants(driver, image)
    img, _ = _build(driver, ctx)
    assert descendants(driver, image) == (containers, images | {img.id})  # type: ignore[attr-defined]
    driver.image_remove(img.id)  # type: ignore[attr-defined]
    assert descendants(driver, image) == (containers, images)


def test_images_sharing_cached_steps_are_removed_whole(
    driver: DockerDriver, image: str, tmp_path: Path
) -> None:
    """Two builds share the images of their first steps (a cache hit); removing
    both leaves none of them (Docker 28's containerd store alone would leave
    the second build's images: see ``ImageOps._delete_image``)."""
    containers, images = descendants(driver, image)
    nonce = uuid.uuid4().hex
    built = []
    for n, extra in enumerate(("", "RUN echo three > /three\n")):
        ctx = tmp_path / f"ctx{n}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM {image}\nLABEL enginekit.test.nonce={nonce}\n"
            f"RUN echo one > /one\nRUN echo two > /two\n{extra}"
        )
        built.append(_build(driver, ctx)[0])
    mine = {"label": [f"enginekit.test.nonce={nonce}"]}  # every image below carries it
    assert len(_get(driver, "/images/json", all=True, filters=mine)) >= 5
    for img in built:
        driver.image_remove(img.id)  # type: ignore[attr-defined]
    assert _get(driver, "/images/json", all=True, filters=mine) == []
    assert descendants(driver, image) == (containers, images)


def test_save_and_load(driver: DockerDriver, image: str, tmp_path: Path) -> None:
    img = driver.image_inspect(image)
    tag = f"enginekit-docker-test/saved:{RUN}"
    driver.image_tag(image, tag)
    path = tmp_path / "image.tar"
    driver.image_save(tag, str(path))
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    driver.image_remove(tag)
    loaded = driver.image_load(str(path))
    (saved,) = read_index(path)
    if driver.info().image_store == "containerd":  # the manifest's digest (docs/engines.md)
        assert [i.id for i in loaded] == [saved.manifest_digest]
    else:  # the config's
        assert [i.id for i in loaded] == [img.id] == [saved.id]
    assert tag in loaded[0].tags
    driver.image_remove(tag)
    with pytest.raises(ImageNotFound):
        driver.image_save("enginekit-docker-test/absent:nope", str(tmp_path / "x.tar"))
    assert not (tmp_path / "x.tar").exists()


def test_image_remove_in_use(driver: DockerDriver, image: str, make: Make) -> None:
    tag = f"enginekit-docker-test/inuse:{RUN}"
    ctx = busybox_context(Path(f"/tmp/enginekit-docker-{RUN}-inuse"))
    try:
        img = driver.image_build(BuildRequest(context=str(ctx), tags=(tag,), labels=LABELS))
    finally:
        import shutil

        shutil.rmtree(ctx, ignore_errors=True)
    make(("true",), image=tag)
    with pytest.raises(Conflict):
        driver.image_remove(img.id)
    driver.image_remove(tag, force=True)
