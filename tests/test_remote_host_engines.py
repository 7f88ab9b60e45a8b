"""The remote drivers' host facts against this machine's dockerd and Podman service.

A :class:`RemoteDockerDriver`/:class:`RemotePodmanDriver` without an ssh
connection is how an engine reached over TCP is driven: no shell on its host,
so a bind mount's source is not looked for beforehand and the engine's own
refusal of a missing one must read as the core's ``InvalidSpec``, with nothing
made. Here they talk to this machine's engines through their unix sockets (the
same code as over TCP, without a TLS terminator); ``host_cpus`` is the
engine's own count.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from enginekit import Engine, InvalidSpec, Mount, hostfacts
from enginekit.testing import baseimage

LABEL = "enginekit.test.hostfacts"
SOCKETS = {"docker": "unix:///var/run/docker.sock", "podman": "unix:///run/podman/podman.sock"}


def _remote_driver(kind: str) -> object:
    if kind == "docker":
        from enginekit_docker.remote import RemoteDockerDriver

        return RemoteDockerDriver(SOCKETS[kind], host="127.0.0.1")
    from enginekit_podman.remote import RemotePodmanDriver

    return RemotePodmanDriver(SOCKETS[kind], host="127.0.0.1")


@pytest.fixture(scope="module", params=sorted(SOCKETS))
def remote(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, str, str]]:
    """An Engine over a remote driver without a shell, the busybox image, a run id."""
    kind = str(request.param)
    run_id = uuid.uuid4().hex[:12]
    engine = Engine(_remote_driver(kind))  # type: ignore[arg-type]
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    context = baseimage.write_context(tmp_path_factory.mktemp("ctx"), busybox)
    tag = f"enginekit-test/hostfacts-busybox:{run_id}"
    try:
        engine.images.build(str(context), tag=tag, labels={LABEL: run_id})
        yield engine, tag, run_id
    finally:
        for c in engine.containers.list(all=True, labels={LABEL: run_id}):
            engine.containers.remove(c, force=True)
        if engine.images.exists(tag):
            engine.images.remove(tag, force=True)
        engine.close()


def test_the_engines_refusal_of_a_missing_source_is_the_cores(
    remote: tuple[Engine, str, str],
) -> None:
    engine, image, run_id = remote
    missing = f"/nonexistent-enginekit-{run_id}"
    assert hostfacts.host_path_exists(engine.driver, missing) is True  # cannot tell: no shell
    for call in (engine.containers.create, engine.containers.run):
        with pytest.raises(InvalidSpec) as info:
            call(
                image,
                ["true"],
                mounts=[Mount(source=missing, target="/data")],
                labels={LABEL: run_id},
            )
        assert str(info.value) == "mount source does not exist on the engine's host"
        assert engine.containers.list(all=True, labels={LABEL: run_id}) == []


def test_an_existing_source_is_mounted(remote: tuple[Engine, str, str], tmp_path: Path) -> None:
    engine, image, run_id = remote
    (tmp_path / "in.txt").write_text("here\n")
    c = engine.containers.run(
        image,
        ["cat", "/data/in.txt"],
        mounts=[Mount(source=str(tmp_path), target="/data", read_only=True)],
        labels={LABEL: run_id},
    )
    try:
        assert engine.containers.wait(c, timeout=60) == 0
        assert engine.containers.logs(c) == b"here\n"
    finally:
        engine.containers.remove(c, force=True)


def test_host_cpus_is_the_engines_count_asked_once(remote: tuple[Engine, str, str]) -> None:
    engine, image, run_id = remote
    count = hostfacts.host_cpus(engine.driver)
    assert 1 <= count <= (os.cpu_count() or 1)
    assert hostfacts.host_cpus(engine.driver) == count
    with pytest.raises(InvalidSpec, match=rf"between 0.01 and {count} \(the CPUs of the engine"):
        engine.containers.create(image, ["true"], cpus=count + 1, labels={LABEL: run_id})
    assert hostfacts.published_address(engine.driver) == "127.0.0.1"
