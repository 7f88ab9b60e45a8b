"""Capabilities belong to the engine instance, and both directions hold.

CONTRACT.md, "Where it runs": capabilities are detected at connect (version,
cgroup layout, rootless, what the host has); an operation the instance cannot
do raises ``Unsupported`` saying why, and creates nothing.

One test per capability, never skipped: where the instance declares it, the
operation it gates works; where it does not, the operation raises
``Unsupported`` naming the capability (with the reason the adapter gives) and
no container, image or file is left behind.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from enginekit import Capability, ContainerState
from enginekit.errors import Unsupported

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import BuildContextFactory, ContainerFactory

SLEEP = ["sleep", "100"]


class _Case:
    """What one test needs: fixtures reached lazily, so an undeclared capability
    asks for nothing it cannot have (no registry, no running container)."""

    def __init__(self, engine: Engine, request: pytest.FixtureRequest, tmp: pathlib.Path) -> None:
        self.request = request
        self.tmp = tmp
        self.engine = engine
        self.image: str = request.getfixturevalue("base_image")
        self.labels: dict[str, str] = request.getfixturevalue("labels")
        self.make_name: Callable[..., str] = request.getfixturevalue("make_name")

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def running(self) -> Container:
        run: ContainerFactory = self.fixture("run_container")
        return run(SLEEP)

    def spec(self, **spec: Any) -> dict[str, Any]:
        return {"name": self.make_name("cap"), "labels": self.labels, **spec}


def _run_with(case: _Case, **spec: Any) -> Container:
    run: ContainerFactory = case.fixture("run_container")
    return run(SLEEP, **spec)


def _build(case: _Case) -> Callable[[], None]:
    ctx: BuildContextFactory = case.fixture("build_context")
    root = ctx(f"FROM {case.image}\nLABEL probe=1\n", busybox=False)
    tag = f"{case.make_name('capbuild')}:1"

    def go() -> None:
        image = case.engine.images.build(str(root), tag=tag, labels=case.labels)
        try:
            assert image.labels.get("probe") == "1"
        finally:
            case.engine.images.remove(image.id, force=True)

    return go


def _save(case: _Case) -> Callable[[], None]:
    path = case.tmp / "saved.tar"

    def go() -> None:
        case.engine.images.save(case.image, path)
        assert path.stat().st_size > 0

    return go


def _load(case: _Case) -> Callable[[], None]:
    from enginekit.testing import baseimage

    tag = f"{case.make_name('capload')}:1"
    archive = baseimage.write_archive(
        case.tmp / "load.tar", case.fixture("busybox_path"), tag=tag, labels=case.labels
    )

    def go() -> None:
        images = case.engine.images.load(archive)
        try:
            assert any(tag in i.tags for i in images), images
        finally:
            case.engine.images.remove(tag, force=True)

    return go


def _pull(case: _Case) -> Callable[[], None]:
    def go() -> None:
        registry: str = case.fixture("registry")
        ref = f"{registry}/ekt/{case.make_name('cappull')}:1"
        case.engine.images.tag(case.image, ref)
        try:
            case.engine.images.push(ref)
            case.engine.images.remove(ref)
            assert case.engine.images.pull(ref).id == case.engine.images.get(case.image).id
        finally:
            case.engine.images.remove(ref, force=True)

    return go


def _push(case: _Case) -> Callable[[], None]:
    def go() -> None:
        registry: str = case.fixture("registry")
        ref = f"{registry}/ekt/{case.make_name('cappush')}:1"
        case.engine.images.tag(case.image, ref)
        try:
            case.engine.images.push(ref)
        finally:
            case.engine.images.remove(ref, force=True)

    return go


def _pause(case: _Case) -> Callable[[], None]:
    c = case.running()

    def go() -> None:
        assert case.engine.containers.pause(c).state is ContainerState.PAUSED
        assert case.engine.containers.unpause(c).state is ContainerState.RUNNING

    return go


def _exec(case: _Case) -> Callable[[], None]:
    c = case.running()

    def go() -> None:
        assert case.engine.containers.exec(c, ["echo", "hi"]).stdout == b"hi\n"

    return go


def _stats(case: _Case) -> Callable[[], None]:
    c = case.running()

    def go() -> None:
        assert case.engine.containers.stats(c).pids is not None

    return go


def _copy(case: _Case) -> Callable[[], None]:
    c = case.running()
    src = case.tmp / "in.txt"
    src.write_bytes(b"copied\n")
    out = case.tmp / "out.txt"

    def go() -> None:
        case.engine.containers.copy_to(c, src, "/tmp/in.txt")
        case.engine.containers.copy_from(c, "/tmp/in.txt", out)
        assert out.read_bytes() == b"copied\n"

    return go


def _spec_field(**spec: Any) -> Callable[[_Case], Callable[[], None]]:
    def prepare(case: _Case) -> Callable[[], None]:
        def go() -> None:
            c = _run_with(case, **spec)
            assert case.engine.containers.get(c).state in (
                ContainerState.RUNNING,
                ContainerState.EXITED,
            )

        return go

    return prepare


def _mounts(case: _Case) -> Callable[[], None]:
    folder = case.fixture("mount_source")
    return _spec_field(mounts=[f"{folder}:/data"])(case)


#: Capability -> a preparation (may make a running container when the capability
#: is declared) returning the operation that capability gates.
OPERATIONS: dict[Capability, Callable[[_Case], Callable[[], None]]] = {
    Capability.BUILD: _build,
    Capability.IMAGE_SAVE: _save,
    Capability.IMAGE_LOAD: _load,
    Capability.PULL: _pull,
    Capability.PUSH: _push,
    Capability.PAUSE: _pause,
    Capability.EXEC: _exec,
    Capability.STATS: _stats,
    Capability.COPY: _copy,
    Capability.PORTS: _spec_field(ports={8080: None}),
    Capability.BIND_MOUNTS: _mounts,
    Capability.MEMORY_LIMIT: _spec_field(memory="64m"),
    Capability.CPU_LIMIT: _spec_field(cpus=0.5),
    Capability.PIDS_LIMIT: _spec_field(pids_limit=64),
    Capability.NETWORK_NONE: _spec_field(network="none"),
    Capability.NETWORK_BRIDGE: _spec_field(network="bridge"),
    Capability.NETWORK_HOST: _spec_field(network="host"),
}


def _leftovers(engine: Engine, labels: dict[str, str]) -> tuple[frozenset[Any], frozenset[str]]:
    containers = frozenset((c.id, c.state) for c in engine.containers.list(all=True, labels=labels))
    images = frozenset(i.id for i in engine.images.list(labels=labels))
    return containers, images


class TestCapabilities:
    def test_every_capability_is_tested(self) -> None:
        assert set(OPERATIONS) == set(Capability)

    @pytest.mark.parametrize("capability", sorted(Capability, key=str), ids=str)
    def test_capability_declared_works_or_undeclared_is_unsupported(
        self,
        engine: Engine,
        request: pytest.FixtureRequest,
        tmp_path: pathlib.Path,
        capability: Capability,
    ) -> None:
        case = _Case(engine, request, tmp_path)
        operation = OPERATIONS[capability](case)
        if capability in engine.capabilities:
            assert capability not in engine.unsupported
            operation()
            return
        # Undeclared: Unsupported, naming the capability and the adapter's reason,
        # and nothing made, changed or written.
        reason = engine.unsupported.get(capability)
        before = _leftovers(engine, case.labels)
        files_before = sorted(tmp_path.rglob("*"))
        with pytest.raises(Unsupported) as info:
            operation()
        assert info.value.capability == capability.value, info.value
        assert info.value.engine == engine.name
        if reason:
            assert reason in str(info.value)
        assert _leftovers(engine, case.labels) == before
        assert sorted(tmp_path.rglob("*")) == files_before

    def test_unsupported_reasons_only_for_missing(self, engine: Engine) -> None:
        caps = engine.capabilities
        for capability, reason in engine.unsupported.items():
            assert capability not in caps
            assert isinstance(reason, str) and reason.strip()

    def test_engines_shows_this_instance(self, engine: Engine, engine_name: str) -> None:
        import enginekit

        (status,) = enginekit.engines(engine_name)
        assert status.reachable, status
        assert status.capabilities == engine.capabilities
        assert dict(status.unsupported) == dict(engine.unsupported)
        assert status.info is not None and status.info.version == engine.info().version
