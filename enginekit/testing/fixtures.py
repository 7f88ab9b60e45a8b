"""Fixtures of the contract suite (registered by :mod:`enginekit.testing.plugin`).

- ``engine``: an :class:`enginekit.Engine`, once per chosen engine (session).
- ``engines``: ``{name: Engine}`` of every chosen engine, for differential tests.
- ``labels``: ``{"enginekit.test.run": <run id>}``; put it on everything a test makes.
- ``make_name()``: a unique container/image name, ``ekt-<run id>-<n>``.
- ``base_image``: the ref of a busybox image built on ``engine`` for this run
  (``/bin/sh`` and every busybox applet; users root, ``app`` (1000) and
  ``nobody`` (65534)); ``base_images`` the same for every chosen engine.
- ``engine_name``: the name ``engine`` was chosen with (``--engine`` value).
- ``create_container(command=None, **spec)`` / ``run_container(...)``: create
  (or run) a container of ``base_image`` on ``engine`` with a unique name and
  the run's labels (merged with ``spec["labels"]``); ``image=`` picks another image.
- ``build_context(dockerfile=None, files=None, busybox=True)``: writes a build
  context into a fresh temporary directory and returns its path.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from . import baseimage
from .session import RUN_LABEL, EngineNotReachable, SuiteRun

if TYPE_CHECKING:
    from enginekit import Container, Engine

__all__ = [
    "BASE_DOCKERFILE",
    "BUSYBOX_ENV",
    "ETC_GROUP",
    "ETC_PASSWD",
    "BuildContextFactory",
    "ContainerFactory",
    "base_image",
    "base_images",
    "build_context",
    "busybox_path",
    "create_container",
    "engine",
    "engine_name",
    "enginekit_run",
    "engines",
    "labels",
    "make_name",
    "run_container",
    "run_id",
    "write_base_context",
]

#: Where the static busybox copied into test images comes from (override with this variable).
BUSYBOX_ENV = "ENGINEKIT_TEST_BUSYBOX"

#: The base image's Dockerfile and /etc files (see :mod:`enginekit.testing.baseimage`).
BASE_DOCKERFILE = baseimage.DOCKERFILE
ETC_PASSWD = baseimage.ETC_PASSWD
ETC_GROUP = baseimage.ETC_GROUP


def _run(config: pytest.Config) -> SuiteRun:
    from .plugin import RUN_KEY

    return config.stash[RUN_KEY]


@pytest.fixture(scope="session")
def enginekit_run(pytestconfig: pytest.Config) -> SuiteRun:
    """The run's state: run id, chosen engines, connected engines."""
    return _run(pytestconfig)


@pytest.fixture(scope="session")
def run_id(enginekit_run: SuiteRun) -> str:
    """This run's id (12 hex characters), the value of the run label."""
    return enginekit_run.run_id


@pytest.fixture
def labels(enginekit_run: SuiteRun) -> dict[str, str]:
    """The labels every container and image a test makes must carry (a fresh dict)."""
    return enginekit_run.labels


@pytest.fixture
def make_name(enginekit_run: SuiteRun) -> Callable[..., str]:
    """``make_name(suffix="")`` -> a unique name ``ekt-<run id>-<n>[-suffix]``."""
    return enginekit_run.make_name


def _connect(run: SuiteRun, name: str) -> Engine:
    try:
        return run.engine(name)
    except EngineNotReachable as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest, enginekit_run: SuiteRun) -> Engine:
    """The engine under test; the suite runs once per engine chosen with ``--engine``."""
    name = getattr(request, "param", None)
    if name is None:
        raise pytest.UsageError(
            "the `engine` fixture needs an engine: pass --engine NAME or set ENGINEKIT_TEST_ENGINES"
        )
    return _connect(enginekit_run, str(name))


@pytest.fixture(scope="session")
def engines(enginekit_run: SuiteRun) -> dict[str, Engine]:
    """Every chosen engine by name (at least one), for differential tests."""
    if not enginekit_run.engine_names:
        raise pytest.UsageError(
            "the `engines` fixture needs engines: pass --engine NAME or set ENGINEKIT_TEST_ENGINES"
        )
    return {n: _connect(enginekit_run, n) for n in enginekit_run.engine_names}


@pytest.fixture(scope="session")
def busybox_path() -> pathlib.Path:
    """A statically linked busybox to copy into images."""
    path = pathlib.Path(os.environ.get(BUSYBOX_ENV) or shutil.which("busybox") or "/bin/busybox")
    if not path.is_file():
        pytest.fail(
            f"no busybox at {path}: install busybox-static or set {BUSYBOX_ENV}", pytrace=False
        )
    return path.resolve()


class BuildContextFactory(Protocol):
    def __call__(
        self,
        dockerfile: str | None = None,
        files: Mapping[str, str | bytes] | None = None,
        *,
        busybox: bool = True,
    ) -> pathlib.Path: ...


def _write_files(root: pathlib.Path, files: Mapping[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        else:
            target.write_bytes(content)


def write_base_context(root: pathlib.Path, busybox: pathlib.Path) -> pathlib.Path:
    """Write the base image's build context (Dockerfile, busybox, passwd, group) into ``root``."""
    return baseimage.write_context(root, busybox)


@pytest.fixture
def build_context(
    tmp_path_factory: pytest.TempPathFactory, busybox_path: pathlib.Path
) -> BuildContextFactory:
    """Factory writing a build context into a new temporary directory.

    ``files`` maps relative paths to contents (str is written as UTF-8);
    ``dockerfile`` (if given) becomes ``Dockerfile``; with ``busybox`` the
    static busybox is copied in as ``busybox``.
    """

    def make(
        dockerfile: str | None = None,
        files: Mapping[str, str | bytes] | None = None,
        *,
        busybox: bool = True,
    ) -> pathlib.Path:
        root = tmp_path_factory.mktemp("context")
        if busybox:
            shutil.copy2(busybox_path, root / "busybox")
        if dockerfile is not None:
            (root / "Dockerfile").write_text(dockerfile)
        _write_files(root, files or {})
        return root

    return make


def _build_base(
    run: SuiteRun, name: str, eng: Engine, tmp: pytest.TempPathFactory, busybox: pathlib.Path
) -> str:
    """Make the run's busybox image on ``eng``: built where the engine declares
    BUILD, else loaded from an archive where it declares IMAGE_LOAD."""
    from enginekit import Capability

    if name in run.base_images:
        return run.base_images[name]
    ref = run.base_image_ref
    if Capability.BUILD in eng.capabilities:
        root = baseimage.write_context(tmp.mktemp("base-image"), busybox)
        image = eng.images.build(str(root), tag=ref, labels=run.labels)
    elif Capability.IMAGE_LOAD in eng.capabilities:
        archive = baseimage.write_archive(
            tmp.mktemp("base-image") / "busybox.tar", busybox, tag=ref, labels=run.labels
        )
        eng.images.load(str(archive))
        image = eng.images.get(ref)
    else:
        pytest.fail(
            f"engine {name} declares neither build nor image_load: the contract suite "
            "cannot make its test image there",
            pytrace=False,
        )
    assert image.id.startswith("sha256:"), image
    assert image.labels.get(RUN_LABEL) == run.run_id, image
    run.base_images[name] = ref
    return ref


@pytest.fixture(scope="session")
def base_image(
    engine: Engine,
    enginekit_run: SuiteRun,
    tmp_path_factory: pytest.TempPathFactory,
    busybox_path: pathlib.Path,
) -> str:
    """Ref (``enginekit-test/busybox:<run id>``) of the run's busybox image on ``engine``."""
    name = _name_of(enginekit_run, engine)
    return _build_base(enginekit_run, name, engine, tmp_path_factory, busybox_path)


def _name_of(run: SuiteRun, eng: Engine) -> str:
    for name, candidate in run.connected.items():
        if candidate is eng:
            return name
    return eng.name


@pytest.fixture(scope="session")
def base_images(
    engines: dict[str, Engine],
    enginekit_run: SuiteRun,
    tmp_path_factory: pytest.TempPathFactory,
    busybox_path: pathlib.Path,
) -> dict[str, str]:
    """The run's busybox image ref on every chosen engine, by engine name."""
    return {
        name: _build_base(enginekit_run, name, eng, tmp_path_factory, busybox_path)
        for name, eng in engines.items()
    }


@pytest.fixture(scope="session")
def engine_name(engine: Engine, enginekit_run: SuiteRun) -> str:
    """The name (or URL) ``engine`` was chosen with; ``enginekit.connect(engine_name)``
    gives another Engine on the same engine."""
    return _name_of(enginekit_run, engine)


class ContainerFactory(Protocol):
    def __call__(self, command: list[str] | None = None, **spec: Any) -> Container: ...


def _spec(
    spec: dict[str, Any], labels: dict[str, str], make_name: Callable[..., str]
) -> dict[str, Any]:
    spec["labels"] = {**labels, **(spec.get("labels") or {})}
    spec.setdefault("name", make_name())
    return spec


@pytest.fixture
def create_container(
    engine: Engine, base_image: str, labels: dict[str, str], make_name: Callable[..., str]
) -> ContainerFactory:
    """``create_container(command=None, **spec)``: ``engine.containers.create`` of
    ``base_image`` (or ``image=``) with a unique name and the run's labels."""

    def create(command: list[str] | None = None, **spec: Any) -> Container:
        image = spec.pop("image", base_image)
        return engine.containers.create(image, command, **_spec(spec, labels, make_name))

    return create


@pytest.fixture
def run_container(
    engine: Engine, base_image: str, labels: dict[str, str], make_name: Callable[..., str]
) -> ContainerFactory:
    """``run_container(command=None, **spec)``: as ``create_container``, then started."""

    def run(command: list[str] | None = None, **spec: Any) -> Container:
        image = spec.pop("image", base_image)
        return engine.containers.run(image, command, **_spec(spec, labels, make_name))

    return run


@pytest.fixture
def mount_source() -> Iterator[pathlib.Path]:
    """A fresh directory to bind-mount into a container, removed after the test.

    Made on this machine: the engines the suite runs against must share its
    file system (local engines, and remote ones reached at this machine's own
    address, as in CI). Open to every user (0777, under the system's temporary
    directory, not pytest's private one): a rootless engine runs as another user,
    whose containers read and write it as that user.
    """
    path = pathlib.Path(tempfile.mkdtemp(prefix="enginekit-mount-"))
    try:
        path.chmod(0o777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
