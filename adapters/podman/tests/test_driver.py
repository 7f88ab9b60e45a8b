"""Live tests of the Podman driver against the local ``podman system service``.

Driver level (no core facade): what the adapter itself promises. Every
container and image is labelled and removed (see conftest.py). The scenarios
the Docker adapter's tests run alike come from :mod:`enginekit.testing.httpdriver`.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from collections.abc import Callable
from typing import Any

import pytest
from enginekit_podman import PodmanDriver, connect

from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineTimeout,
    ImageNotFound,
)
from enginekit.models import (
    BuildRequest,
    ContainerSpec,
    ContainerState,
    Image,
    Mount,
    Stream,
)
from enginekit.testing.httpdriver import *  # noqa: F403  (the shared scenarios, collected here)
from enginekit.testing.httpdriver import Kit

from .conftest import BASE_TAG, LABELS, RUN, write_context

Make = Callable[..., str]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------- engine


@pytest.fixture
def kit(driver: PodmanDriver, make: Make) -> Kit:
    """What the shared HTTP-driver scenarios need (enginekit.testing.httpdriver)."""

    def create(command: tuple[str, ...] | None = None, **spec: Any) -> str:
        return make(command, start=False, **spec)

    return Kit(driver, BASE_TAG, LABELS, create, connect, "podman system service", RUN)


def test_connect_over_ssh_does_no_io() -> None:
    # ssh: nothing runs until the first call (the host does not exist).
    remote = connect("ssh://core@example.invalid/run/podman/podman.sock")
    assert remote.address == "ssh://core@example.invalid/run/podman/podman.sock"


def test_connect_honours_container_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "unix:///tmp/elsewhere.sock")
    assert connect().address == "unix:///tmp/elsewhere.sock"
    monkeypatch.delenv("CONTAINER_HOST")
    assert connect().address == "unix:///run/podman/podman.sock"


def test_info(driver: PodmanDriver) -> None:
    info = driver.info()
    assert info.name == "podman"
    assert info.version.split(".")[0] in ("4", "5")
    assert info.api_version and info.api_version.split(".")[0] == info.version.split(".")[0]
    assert info.max_api_version == info.version
    assert info.min_api_version == "4.0.0"
    assert info.cgroup_version in (1, 2)
    assert info.rootless is False  # the service here and on the test host runs as root
    assert info.image_store == "overlay"
    caps, missing = driver.capabilities, driver.unsupported
    assert caps.isdisjoint(missing) and caps | set(missing) == set(Capability)
    assert driver.capabilities is caps  # worked out once
    assert info.os == "linux"
    assert info.storage_root


# --------------------------------------------------------------------------- containers


def test_run_to_completion(driver: PodmanDriver, make: Make, base_image: Image) -> None:
    cid = make(["sh", "-c", "echo out; echo err >&2; exit 3"], name=f"ekpm-{RUN}-a")
    assert driver.container_wait(cid) == 3
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.EXITED
    assert c.exit_code == 3
    assert c.name == f"ekpm-{RUN}-a"
    assert c.image == BASE_TAG
    assert c.image_id == base_image.id
    assert c.pid is None
    assert c.created_at and c.started_at and c.finished_at
    assert c.created_at.tzinfo is dt.UTC
    assert c.command == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert c.entrypoint == ()
    # As Docker reports it: the image's (Podman 5's builder writes "/" into
    # images without a WORKDIR; 4.x's wrote nothing: None).
    assert c.workdir == base_image.config.workdir
    assert base_image.config.workdir in (None, "/")
    assert c.stop_signal is None
    assert c.resources.pids_limit is None
    assert c.labels == LABELS
    lines = list(driver.container_logs(cid))
    assert [(line.stream, line.data) for line in lines] == [
        (Stream.STDOUT, b"out\n"),
        (Stream.STDERR, b"err\n"),
    ]
    assert all(line.timestamp is not None for line in lines)
    assert driver.container_inspect(c.name).id == cid
    assert driver.container_inspect(cid[:12]).id == cid


def test_created_state_and_ref_errors(driver: PodmanDriver, make: Make) -> None:
    cid = make(["true"], start=False)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.CREATED
    assert c.exit_code is None and c.pid is None and c.started_at is None
    with pytest.raises(ContainerNotFound):
        driver.container_inspect("ekpm-no-such-container")
    with pytest.raises(ImageNotFound):
        driver.container_create(ContainerSpec(image="ekpm-no-such-image:1", labels=LABELS))


def test_duplicate_name_is_conflict(make: Make) -> None:
    make(["true"], start=False, name=f"ekpm-{RUN}-dup")
    with pytest.raises(Conflict):
        make(["true"], start=False, name=f"ekpm-{RUN}-dup")


def test_env_is_what_docker_shows(driver: PodmanDriver, make: Make) -> None:
    cid = make(["env"], env={"A": "1", "B": "two words"})
    assert driver.container_wait(cid) == 0
    c = driver.container_inspect(cid)
    assert dict(c.env) == {"A": "1", "B": "two words", "PATH": PATH}
    inside = b"".join(line.data for line in driver.container_logs(cid)).decode()
    seen = dict(line.split("=", 1) for line in inside.splitlines())
    # No TERM, no container=podman; HOSTNAME and HOME as on Docker.
    assert set(seen) == {"A", "B", "PATH", "HOSTNAME", "HOME"}
    assert seen["HOSTNAME"] == c.hostname
    assert seen["HOME"] == "/root"


def test_user_given_env_wins(driver: PodmanDriver, make: Make) -> None:
    cid = make(["env"], env={"TERM": "dumb", "container": "mine", "HOSTNAME": "h1"})
    driver.container_wait(cid)
    c = driver.container_inspect(cid)
    assert c.env["TERM"] == "dumb" and c.env["container"] == "mine" and c.env["HOSTNAME"] == "h1"
    inside = b"".join(line.data for line in driver.container_logs(cid))
    assert b"TERM=dumb\n" in inside and b"container=mine\n" in inside


def test_spec_fields_round_trip(driver: PodmanDriver, make: Make, tmp_path: object) -> None:
    cid = make(
        ["sh", "-c", "pwd; id -u; hostname; cat /mnt/ro/f"],
        entrypoint=None,
        workdir="/made/for/me",
        user="1000:1000",
        hostname="ekpm-host",
        mounts=(Mount(source=str(tmp_path), target="/mnt/ro", read_only=True),),
        memory=64 * 1024 * 1024,
        cpus=0.5,
        pids_limit=64,
        stop_signal="SIGUSR1",
        network="none",
        start=False,
    )
    import os
    import pathlib

    os.chmod(str(tmp_path), 0o755)
    (pathlib.Path(str(tmp_path)) / "f").write_text("from-host\n")
    driver.container_start(cid)
    assert driver.container_wait(cid) == 0
    c = driver.container_inspect(cid)
    assert c.workdir == "/made/for/me"
    assert c.user == "1000:1000"
    assert c.hostname == "ekpm-host"
    assert c.mounts == (Mount(source=str(tmp_path), target="/mnt/ro", read_only=True),)
    assert c.resources.memory == 64 * 1024 * 1024
    assert c.resources.cpus == 0.5
    assert c.resources.pids_limit == 64
    assert c.stop_signal == "SIGUSR1"
    assert c.network == "none"
    out = b"".join(line.data for line in driver.container_logs(cid))
    assert out == b"/made/for/me\n1000\nekpm-host\nfrom-host\n"


def test_entrypoint_reported_without_the_init(driver: PodmanDriver, make: Make) -> None:
    cid = make(["-c", "exit 0"], entrypoint=("sh",))
    driver.container_wait(cid)
    c = driver.container_inspect(cid)
    assert c.entrypoint == ("sh",)
    assert c.command == ("-c", "exit 0")


def test_wait_past_the_client_side_polling(driver: PodmanDriver, make: Make) -> None:
    # The driver polls the state for a second, then waits with libpod's wait.
    cid = make(["sleep", "100"])
    with pytest.raises(EngineTimeout):
        driver.container_wait(cid, timeout=1.5)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    slow = make(["sh", "-c", "sleep 1.5; exit 9"])
    assert driver.container_wait(slow, timeout=30) == 9


def test_wait_answers_from_the_state_without_libpods_wait(
    driver: PodmanDriver, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpod's wait answers only once Podman's clean-up has run (150-250 ms after
    the exit): the driver reads the state first and answers from it."""
    quick = make(["sh", "-c", "exit 7"])
    deadline = time.monotonic() + 30
    while driver.container_inspect(quick).state is not ContainerState.EXITED:
        assert time.monotonic() < deadline, "the container did not exit"
        time.sleep(0.05)
    paths: list[str] = []
    real = driver.transport.request

    def recording(method: str, path: str, **kw: Any) -> Any:
        paths.append(path)
        return real(method, path, **kw)

    monkeypatch.setattr(driver.transport, "request", recording)
    assert driver.container_wait(quick) == 7
    assert paths and not [p for p in paths if p.endswith("/wait")], paths


# --------------------------------------------------------------------------- images


def test_image_names_without_localhost(driver: PodmanDriver, base_image: Image) -> None:
    assert base_image.tags == (BASE_TAG,)
    assert driver.image_inspect(BASE_TAG).tags == (BASE_TAG,)
    assert "io.buildah.version" not in base_image.labels
    assert driver.image_inspect(base_image.short_id).id == base_image.id
    repo = BASE_TAG.rpartition(":")[0]
    assert [i.tags for i in driver.image_list(name=repo)] == [(BASE_TAG,)]


def test_build_everything(driver: PodmanDriver, tmp_path: object, base_image: Image) -> None:
    import pathlib

    root = pathlib.Path(str(tmp_path))
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tf:
        info = tarfile.TarInfo("inner/hello.txt")
        info.size = 6
        tf.addfile(info, io.BytesIO(b"hello\n"))
    dockerfile = f"""
FROM {BASE_TAG} AS first
RUN echo from-first > /first.txt
FROM scratch AS empty
COPY --from=first /first.txt /copied.txt
FROM {BASE_TAG}
ARG GREETING=hi
ENV E1=v1 GREETING=$GREETING
WORKDIR /work
COPY --from=empty /copied.txt ./
ADD payload.tar /unpacked/
COPY . /ctx/
RUN ["sh", "-c", "echo exec-form > /work/exec.txt"]
RUN echo shell-form $GREETING > /work/shell.txt
USER 1000
LABEL one=1
EXPOSE 8080/tcp 53/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /work/shell.txt"]
"""
    ctx = write_context(
        root / "ctx",
        dockerfile,
        {
            "payload.tar": payload.getvalue(),
            ".dockerignore": "ignored.txt\n",
            "ignored.txt": "no",
            "kept.txt": "yes",
        },
    )
    seen: list[str] = []
    tag = f"ekpm-built-{RUN}:1"
    image = driver.image_build(
        BuildRequest(
            context=ctx,
            tags=(tag, f"ekpm-built-{RUN}:2"),
            build_args={"GREETING": "bonjour"},
            labels={**LABELS, "two": "2"},
        ),
        progress=seen.append,
    )
    assert any("STEP" in line and "RUN echo shell-form" in line for line in seen)
    assert image.tags == (tag, f"ekpm-built-{RUN}:2")
    assert image.labels == {**LABELS, "one": "1", "two": "2"}
    cfg = image.config
    assert cfg.entrypoint == ("sh", "-c") and cfg.cmd == ("cat /work/shell.txt",)
    assert cfg.workdir == "/work" and cfg.user == "1000"
    assert cfg.exposed_ports == ("53/udp", "8080/tcp")
    assert cfg.env["E1"] == "v1" and cfg.env["GREETING"] == "bonjour"
    cid = driver.container_create(
        ContainerSpec(
            image=tag,
            command=(
                "cat /work/shell.txt /work/exec.txt /work/copied.txt /unpacked/inner/hello.txt;"
                " ls /ctx; id -u",
            ),
            labels=LABELS,
        )
    )
    try:
        driver.container_start(cid)
        assert driver.container_wait(cid) == 0
        out = b"".join(line.data for line in driver.container_logs(cid)).decode()
    finally:
        driver.container_remove(cid, force=True)
    assert out.startswith("shell-form bonjour\nexec-form\nfrom-first\nhello\n")
    assert "kept.txt" in out and "ignored.txt" not in out
    assert out.endswith("1000\n")
    # Only the tagged image is left: no stage images, no intermediate layers.
    mine = [i for i in driver.image_list(labels=LABELS) if i.id != base_image.id]
    assert [i.id for i in mine] == [image.id]
    driver.image_remove(image.id, force=True)


def test_build_failure_leaves_nothing(
    driver: PodmanDriver, tmp_path: object, base_image: Image
) -> None:
    import pathlib

    # Stage images would carry the base image's labels: only this run's count
    # (other clients may be building on the same engine meanwhile).
    before = {i.id for i in driver.image_list(labels=LABELS)}
    ctx = write_context(
        pathlib.Path(str(tmp_path)) / "ctx",
        f"FROM {BASE_TAG} AS a\nRUN echo ok > /ok\n"
        f"FROM {BASE_TAG}\nCOPY --from=a /ok /ok\nRUN echo some-output; exit 3\nRUN echo never\n",
    )
    with pytest.raises(BuildFailed) as err:
        driver.image_build(BuildRequest(context=ctx, tags=(f"ekpm-fail-{RUN}:1",), labels=LABELS))
    assert err.value.exit_code == 3
    assert err.value.step == "RUN echo some-output; exit 3"
    assert "some-output" in err.value.output
    assert {i.id for i in driver.image_list(labels=LABELS)} == before
    # No build container left (buildah's are "external": `podman ps -a --external`).
    resp = driver.transport.request(
        "GET", driver._api().prefix + "/containers/json", params={"all": True, "external": True}
    )
    mine = [
        c
        for c in resp.json()
        if c.get("IsExternal") and RUN in f"{c.get('Names')} {c.get('Image')}"
    ]
    assert mine == []


def test_save_and_load(driver: PodmanDriver, base_image: Image, tmp_path: object) -> None:
    import json
    import os

    path = os.path.join(str(tmp_path), "img.tar")
    driver.image_save(BASE_TAG, path)
    with tarfile.open(path) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        names = tf.getnames()
    assert manifest[0]["RepoTags"] == [BASE_TAG]
    assert "index.json" in names and "oci-layout" in names
    loaded_tag = f"ekpm-loaded-{RUN}:1"
    driver.image_tag(BASE_TAG, loaded_tag)
    path2 = os.path.join(str(tmp_path), "img2.tar")
    driver.image_save(loaded_tag, path2)
    driver.image_remove(loaded_tag)
    (img,) = driver.image_load(path2)
    assert img.id == base_image.id
    assert loaded_tag in img.tags
    assert all(not t.startswith("localhost/") for t in img.tags)
    driver.image_remove(loaded_tag)
