"""Fixtures for the Podman adapter's own live tests (driver level).

Everything made here carries the label ``enginekit.test=podman-adapter-<run>``
and is removed at the end of the session, whatever failed.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from enginekit_podman import PodmanDriver, connect

from enginekit.errors import EngineError
from enginekit.models import BuildRequest, ContainerSpec, Image

RUN = uuid.uuid4().hex[:10]
LABELS = {"enginekit.test": f"podman-adapter-{RUN}"}
BASE_TAG = f"ekpm-base-{RUN}:1"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"
BASE_DOCKERFILE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    "COPY passwd group /etc/\n"
    'RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /root /home/app && chmod 1777 /tmp"]\n'
)


def write_context(
    root: pathlib.Path, dockerfile: str, files: dict[str, bytes | str] | None = None
) -> str:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "busybox")
    (root / "passwd").write_text(PASSWD)
    (root / "group").write_text(GROUP)
    (root / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return str(root)


def _remove(driver: PodmanDriver, ids: Iterable[str]) -> None:
    """Remove these containers (forced); one already gone is no matter."""
    for cid in ids:
        with contextlib.suppress(EngineError):
            driver.container_remove(cid, force=True)


def _cleanup(driver: PodmanDriver) -> None:
    _remove(driver, [c.id for c in driver.container_list(all=True, labels=LABELS)])
    for _ in range(3):
        images = driver.image_list(labels=LABELS)
        if not images:
            break
        for img in images:
            with contextlib.suppress(EngineError):
                driver.image_remove(img.id, force=True)


@pytest.fixture(scope="session")
def driver() -> Iterator[PodmanDriver]:
    d = connect(os.environ.get("ENGINEKIT_PODMAN_URL"))
    d.ping()
    try:
        yield d
    finally:
        _cleanup(d)
        left = [c.id for c in d.container_list(all=True, labels=LABELS)]
        left += [i.id for i in d.image_list(labels=LABELS)]
        d.close()
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="session")
def base_image(driver: PodmanDriver, tmp_path_factory: pytest.TempPathFactory) -> Image:
    ctx = write_context(tmp_path_factory.mktemp("base"), BASE_DOCKERFILE)
    return driver.image_build(BuildRequest(context=ctx, tags=(BASE_TAG,), labels=LABELS))


@pytest.fixture
def make(driver: PodmanDriver, base_image: Image) -> Iterator[Callable[..., str]]:
    """``make(command, start=True, **spec)`` -> id of a labelled container of the base image."""
    made: list[str] = []

    def factory(command: list[str] | None = None, *, start: bool = True, **spec: Any) -> str:
        spec.setdefault("image", BASE_TAG)
        spec["labels"] = {**LABELS, **spec.get("labels", {})}
        cid = driver.container_create(ContainerSpec(command=command, **spec))
        made.append(cid)
        if start:
            driver.container_start(cid)
        return cid

    yield factory
    _remove(driver, made)
