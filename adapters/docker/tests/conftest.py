"""Fixtures for the driver tests: a live dockerd, one busybox image, labelled leftovers removed."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docker_support import IMAGE_REPO, LABELS, RUN, busybox_context
from enginekit_docker import DockerDriver, connect

from enginekit.errors import EngineError
from enginekit.models import BuildRequest, ContainerSpec


def cleanup(driver: DockerDriver) -> None:
    """Remove every container and image carrying this run's label."""
    for c in driver.container_list(all=True, labels=LABELS):
        with contextlib.suppress(EngineError):
            driver.container_remove(c.id, force=True)
    for image in driver.image_list(labels=LABELS):
        with contextlib.suppress(EngineError):
            driver.image_remove(image.id, force=True)


@pytest.fixture(scope="session")
def driver() -> Iterator[DockerDriver]:
    d = connect()
    d.ping()  # an engine that is asked for and not reachable fails the run
    try:
        yield d
    finally:
        cleanup(d)
        left = [*d.container_list(all=True, labels=LABELS), *d.image_list(labels=LABELS)]
        d.close()
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="session")
def image(driver: DockerDriver, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox image built for this run (labelled; removed with the session)."""
    ref = f"{IMAGE_REPO}:{RUN}"
    ctx = busybox_context(tmp_path_factory.mktemp("busybox"))
    driver.image_build(BuildRequest(context=str(ctx), tags=(ref,), labels=LABELS))
    return ref


@pytest.fixture
def make(driver: DockerDriver, image: str) -> Iterator[Callable[..., str]]:
    """``make(command, **spec) -> id``: a labelled container, removed after the test."""
    made: list[str] = []

    def _make(command: tuple[str, ...] | None = None, **spec: Any) -> str:
        spec.setdefault("name", f"ekd-{RUN}-{uuid.uuid4().hex[:8]}")
        spec["labels"] = {**LABELS, **spec.get("labels", {})}
        cid = driver.container_create(
            ContainerSpec(image=spec.pop("image", image), command=command, **spec)
        )
        made.append(cid)
        return cid

    yield _make
    for cid in made:
        with contextlib.suppress(EngineError):
            driver.container_remove(cid, force=True)


@pytest.fixture
def run(driver: DockerDriver, make: Callable[..., str]) -> Callable[..., str]:
    """``run(command, **spec) -> id``: made and started."""

    def _run(command: tuple[str, ...] | None = None, **spec: Any) -> str:
        cid = make(command, **spec)
        driver.container_start(cid)
        return cid

    return _run


@pytest.fixture
def docker_host_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_TLS_VERIFY")}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
