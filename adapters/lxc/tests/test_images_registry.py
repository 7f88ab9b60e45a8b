"""Pull and push of the LXC image store against a real local registry (docker-registry,
listening on 127.0.0.1 only), with Docker and Podman on the other side. The registry,
its storage, the stores and every Docker/Podman image made here are removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit_lxc.build import build_image
from enginekit_lxc.execute import execute
from enginekit_lxc.images import ImageStore

from enginekit.errors import ImageNotFound
from enginekit.models import BuildRequest, Image, Stream

RUN_ID = uuid.uuid4().hex[:10]
LABEL = f"lxc-registry-{RUN_ID}"
DOCKERFILE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    'CMD ["sh", "-c", "echo pulled and running"]\n'
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    """A docker-registry on 127.0.0.1:<free port>, its storage in a temporary directory."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed (scripts/setup-engines.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="ek-lxc-registry-", dir="/var/tmp")
    port = _free_port()
    config = Path(tmp, "config.yml")
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def store() -> Iterator[ImageStore]:
    root = tempfile.mkdtemp(prefix="ek-lxc-reg-store-", dir="/var/tmp")
    try:
        yield ImageStore(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ctx() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ek-lxc-ctx-", dir="/var/tmp"))
    shutil.copy2("/bin/busybox", path / "busybox")
    (path / "Dockerfile").write_text(DOCKERFILE)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _cli(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    return subprocess.run(
        list(argv), capture_output=True, text=True, check=check, timeout=300, env=env
    )


@pytest.fixture
def engines_clean() -> Iterator[None]:
    yield
    for cli in ("docker", "podman"):
        ids = _cli(cli, "images", "-aq", "--filter", f"label=enginekit.test={LABEL}",
                   check=False).stdout.split()  # fmt: skip
        if ids:
            _cli(cli, "rmi", "-f", *set(ids), check=False)
        left = _cli(cli, "images", "-aq", "--filter", f"label=enginekit.test={LABEL}",
                    check=False).stdout.split()  # fmt: skip
        assert left == [], f"{cli} images left: {left}"


def run_here(store: ImageStore, image: Image, argv: list[str]) -> tuple[int, bytes]:
    out = b""

    def collect(stream: Stream, data: bytes) -> None:
        nonlocal out
        if stream is Stream.STDOUT:
            out += data

    with store.tempdir("run-") as scratch:
        rootfs = os.path.join(scratch, "rootfs")
        subprocess.run(["cp", "-a", store.rootfs(image.id), rootfs], check=True)
        rc = execute(rootfs, argv, env=dict(image.config.env), workdir="/", user=None,
                     on_output=collect)  # fmt: skip
    return rc, out


def test_pushed_here_pulls_on_docker_and_podman_with_the_same_id(
    registry: str, store: ImageStore, ctx: Path, engines_clean: None
) -> None:
    ref = f"{registry}/ek-lxc/pushed:{RUN_ID}"
    image = build_image(
        store,
        BuildRequest(context=str(ctx), tags=(ref,), labels={"enginekit.test": LABEL}),
        progress=None,
        execute=execute,
    )
    store.push(ref)
    _cli("docker", "pull", "-q", ref)
    assert _cli("docker", "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == image.id
    res = _cli("docker", "run", "--rm", "--network", "none", "--label",
               f"enginekit.test={LABEL}", ref)  # fmt: skip
    assert res.stdout == "pulled and running\n"
    _cli("podman", "pull", "-q", "--tls-verify=false", ref)
    podman_id = _cli("podman", "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    assert podman_id == image.id.removeprefix("sha256:")
    # and back: removed here, pulled again, the same image
    store.remove(ref, in_use=lambda _id: False)
    pulled = store.pull(ref)
    assert (pulled.id, pulled.tags) == (image.id, (ref,))
    assert run_here(store, pulled, ["sh", "-c", "echo pulled and running"]) == (
        0, b"pulled and running\n"
    )  # fmt: skip


def test_pushed_by_docker_pulls_here_with_the_same_id(
    registry: str, store: ImageStore, ctx: Path, engines_clean: None
) -> None:
    ref = f"{registry}/ek-lxc/from-docker:{RUN_ID}"
    _cli("docker", "build", "-q", "--label", f"enginekit.test={LABEL}", "-t", ref, str(ctx))
    _cli("docker", "push", "-q", ref)
    docker_id = _cli("docker", "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    pulled = store.pull(ref)
    assert pulled.id == docker_id
    assert pulled.tags == (ref,)
    assert pulled.config.cmd == ("sh", "-c", "echo pulled and running")
    assert run_here(store, pulled, ["ls", "/bin/busybox"]) == (0, b"/bin/busybox\n")
    assert os.listdir(store.tmp_dir) == []


def test_missing_images(registry: str, store: ImageStore) -> None:
    # (A name naming no registry is refused by the core before the store is asked:
    # tests/test_reference.py.)
    with pytest.raises(ImageNotFound):
        store.pull(f"{registry}/ek-lxc/never-pushed:{RUN_ID}")
    with pytest.raises(ImageNotFound):
        store.push(f"{registry}/ek-lxc/not-here:{RUN_ID}")
    assert os.listdir(store.tmp_dir) == []


@pytest.mark.parametrize(
    ("ref", "verify"),
    [
        ("127.0.0.1:5000/a:1", "false"),
        ("localhost:5000/a:1", "false"),
        ("LOCALHOST:5000/a:1", "false"),  # host names are not case-sensitive
        ("localhost/a", "false"),
        ("registry.example:5000/a:1", "true"),
        ("localhost.example.com/a", "true"),
    ],
)
def test_loopback_registries_are_plain_http(ref: str, verify: str) -> None:
    from enginekit_lxc.registry import _tls_flag

    from enginekit.reference import Reference

    assert _tls_flag(Reference.parse(ref), "src") == [f"--src-tls-verify={verify}"]
