"""The error contract in the core, without an engine.

- Every error class pickles (and copies) with its message and fields; the old
  constructor signatures still work.
- The facade's guard: a wrong call is Python's ``TypeError`` before the driver
  is called; an exception of the caller's ``progress`` callback leaves
  unchanged whatever the driver does around it (a ``map_errors`` that would
  translate it, a cleanup that must run); an engine-side failure becomes an
  ``EngineError`` naming the operation, with its fields; a missing container or
  image is worded the same whatever the driver said.
- The adapters' ``map_errors`` translate what an unreadable answer raises, and
  nothing else.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from enginekit import Capability
from enginekit._guard import safe_address
from enginekit.engine import Engine
from enginekit.errors import (
    FIELDS,
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    InvalidSpec,
    NotFound,
    UnknownOption,
    Unsupported,
)
from enginekit.models import BuildRequest, Container, ContainerState, Image, LogLine, Stream

CID = "cd" * 32
IMAGE_ID = "sha256:" + "ef" * 32

FILLED: dict[str, Any] = {
    "engine": "ektfake",
    "operation": "containers.logs",
    "address": "unix:///run/x.sock",
    "ref": "web",
    "status": 404,
}


def _every_error() -> list[EngineError]:
    """One of each class, made with every field (and the class's own ones)."""
    out: list[EngineError] = [
        cls("a message", **FILLED)
        for cls in (
            EngineError,
            NotFound,
            ImageNotFound,
            ContainerNotFound,
            Conflict,
            InvalidSpec,
            UnknownOption,
            EngineTimeout,
        )
    ]
    out.append(EngineUnavailable("no answer", hint="start it", **FILLED))
    out.append(BuildFailed("build failed", step="RUN exit 3", exit_code=3, output="a\nb", **FILLED))
    out.append(
        Unsupported(
            "ektfake", "pause", "no freezer", capability="pause", address="x", ref="r", status=1
        )
    )
    return out


class _AdapterError(EngineError):
    """An adapter's own class, with a constructor of its own (as LXC's tool errors)."""

    def __init__(self, message: str, *, tool: str, exit_code: int | None) -> None:
        super().__init__(message, status=exit_code)
        self.tool = tool
        self.exit_code = exit_code


def _state(err: BaseException) -> tuple[Any, ...]:
    assert isinstance(err, EngineError)
    return type(err), str(err), err.args, err.fields


CLASSES = [
    "EngineError",
    "NotFound",
    "ImageNotFound",
    "ContainerNotFound",
    "Conflict",
    "InvalidSpec",
    "UnknownOption",
    "EngineTimeout",
    "EngineUnavailable",
    "BuildFailed",
    "Unsupported",
]


def test_every_class_is_covered() -> None:
    import enginekit.errors

    assert sorted(CLASSES) == sorted(enginekit.errors.__all__)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_error_pickles_with_its_fields(name: str, protocol: int) -> None:
    (err,) = [e for e in _every_error() if type(e).__name__ == name]
    again = pickle.loads(pickle.dumps(err, protocol=protocol))
    assert _state(again) == _state(err)
    for name in FIELDS:
        assert getattr(again, name) == getattr(err, name), name
    assert _state(copy.copy(err)) == _state(err)
    assert _state(copy.deepcopy(err)) == _state(err)


def test_the_class_specific_fields_come_back() -> None:
    for err in _every_error():
        again = pickle.loads(pickle.dumps(err))
        assert vars(again) == vars(err), type(err).__name__
    built = pickle.loads(pickle.dumps(_every_error()[-2]))
    assert isinstance(built, BuildFailed)
    assert (built.step, built.exit_code, built.output) == ("RUN exit 3", 3, "a\nb")
    unsupported = pickle.loads(pickle.dumps(_every_error()[-1]))
    assert isinstance(unsupported, Unsupported)
    assert (unsupported.reason, unsupported.capability) == ("no freezer", "pause")
    assert str(unsupported) == "ektfake does not support pause: no freezer"


def test_an_adapters_own_class_pickles_too() -> None:
    err = _AdapterError("lxc-start failed", tool="lxc-start", exit_code=1)
    err.engine = "lxc"
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, _AdapterError)
    assert (again.tool, again.exit_code, again.status, again.engine) == ("lxc-start", 1, 1, "lxc")
    assert str(again) == "lxc-start failed"


def test_old_signatures_still_work_and_fields_default_to_none() -> None:
    for err in (
        EngineError(),
        EngineError("a", "b"),
        NotFound("gone"),
        EngineUnavailable("down", address="unix:///x", hint="start it"),
        BuildFailed("failed", step="RUN x"),
        Unsupported("docker", "pause"),
        EngineTimeout("late"),
    ):
        assert set(err.fields) >= set(FIELDS)
    assert EngineError().fields == dict.fromkeys(FIELDS)
    down = EngineUnavailable("down", address="unix:///x", hint="start it")
    assert str(down) == "down (tried unix:///x) - start it"
    assert (down.address, down.hint) == ("unix:///x", "start it")
    unsupported = Unsupported("docker", "pause", "why")
    assert (unsupported.engine, unsupported.operation, unsupported.reason) == (
        "docker",
        "pause",
        "why",
    )
    timeout = EngineTimeout("late")
    assert isinstance(timeout, TimeoutError) and str(timeout) == "late"


def test_unknown_option_is_a_type_error_and_an_invalid_spec() -> None:
    err = UnknownOption("unknown container spec key(s): bogus")
    assert isinstance(err, TypeError)
    assert isinstance(err, InvalidSpec) and isinstance(err, ValueError)
    assert isinstance(err, EngineError)


def test_safe_address_drops_a_password() -> None:
    assert safe_address("tcp://user:s3cret@host:2376") == "tcp://user@host:2376"
    assert safe_address("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"
    assert safe_address("/var/lib/lxc") == "/var/lib/lxc"
    assert safe_address(None) is None


# -- the guard, over a driver that fails on purpose -------------------------------


class CallerError(Exception):
    """The caller's own exception."""


class FakeDriver:
    """A driver whose methods do what the test sets in ``behaviour``."""

    name = "ektfake"
    address = "ektfake://user:pw@somewhere"

    def __init__(self) -> None:
        self.capabilities = frozenset(Capability)
        self.unsupported: dict[Capability, str] = {}
        self.calls: list[str] = []
        self.behaviour: dict[str, Callable[..., Any]] = {}
        self.cleaned = False

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        if not attr.startswith(("container_", "image_")):
            raise AttributeError(attr)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(attr)
            if attr in self.behaviour:
                return self.behaviour[attr](*args, **kwargs)
            if attr == "container_inspect":
                return Container(id=CID, name="web", image="i:1", state=ContainerState.RUNNING)
            return None

        return call

    def close(self) -> None:
        pass


@contextmanager
def translating() -> Iterator[None]:
    """What an adapter's broad ``map_errors`` does: every Exception becomes an EngineError."""
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"unexpected answer ({type(exc).__name__})") from exc


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
def facade(driver: FakeDriver) -> Engine:
    """An Engine over the fake driver (not named ``engine``: the contract suite's
    plugin owns that fixture name)."""
    return Engine(driver)  # type: ignore[arg-type]


@pytest.fixture
def context(tmp_path: Path) -> str:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    return str(tmp_path)


def _building(driver: FakeDriver, at: int) -> None:
    """``image_build`` calls progress ``at`` times inside a translating
    ``map_errors``, with a cleanup that must run however it ends."""

    def build(request: BuildRequest, *, progress: Callable[[str], None] | None) -> Image:
        try:
            with translating():
                for n in range(at):
                    assert progress is not None
                    progress(f"Step {n + 1}/{at} : LABEL a=b")
        finally:
            driver.cleaned = True
        return Image(id=IMAGE_ID)

    driver.behaviour["image_build"] = build


def test_an_unknown_keyword_is_pythons_type_error(facade: Engine, driver: FakeDriver) -> None:
    anything: Any = facade
    with pytest.raises(TypeError) as info:
        anything.containers.logs("web", bogus=1)
    assert not isinstance(info.value, EngineError)
    assert str(info.value) == "ContainerService.logs() got an unexpected keyword argument 'bogus'"
    with pytest.raises(TypeError, match="missing a required argument: 'ref'"):
        anything.containers.get()
    with pytest.raises(TypeError, match="too many positional arguments"):
        anything.containers.stop("web", 5, 6)
    with pytest.raises(TypeError, match="unexpected keyword argument 'progres'"):
        anything.images.build("/nowhere", progres=print)
    assert driver.calls == []


def test_an_unknown_create_option_is_a_type_error_before_the_driver(
    facade: Engine, driver: FakeDriver
) -> None:
    for call in (facade.containers.create, facade.containers.run):
        with pytest.raises(TypeError) as info:
            call("i:1", ["true"], bogus_kw=1)
        assert isinstance(info.value, InvalidSpec)
        assert "bogus_kw" in str(info.value)
    assert driver.calls == []


@pytest.mark.parametrize("at", [1, 3])
def test_a_progress_exception_leaves_as_it_was_raised(
    facade: Engine, driver: FakeDriver, context: str, at: int
) -> None:
    _building(driver, 5)
    raised = CallerError("stop")
    seen: list[str] = []

    def progress(line: str) -> None:
        seen.append(line)
        if len(seen) == at:
            raise raised

    with pytest.raises(CallerError) as info:
        facade.images.build(context, tag="a:1", progress=progress)
    assert info.value is raised
    assert raised.__cause__ is None and raised.__context__ is None
    assert driver.cleaned
    assert len(seen) == at


def test_a_progress_engine_error_is_the_callers_too(
    facade: Engine, driver: FakeDriver, context: str
) -> None:
    _building(driver, 2)
    raised = Conflict("the caller's own")

    def progress(line: str) -> None:
        raise raised

    with pytest.raises(Conflict) as info:
        facade.images.build(context, progress=progress)
    assert info.value is raised
    assert raised.fields == dict.fromkeys(FIELDS)  # not dressed as the build's


def test_a_progress_keyboard_interrupt_leaves_too(
    facade: Engine, driver: FakeDriver, context: str
) -> None:
    _building(driver, 2)

    def progress(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        facade.images.build(context, progress=progress)
    assert driver.cleaned


def test_the_facade_called_from_a_callback_reports_its_own_operation(
    facade: Engine, driver: FakeDriver, context: str
) -> None:
    _building(driver, 1)

    def missing(ref: str) -> Container:
        raise ContainerNotFound(f"engine words for {ref}")

    driver.behaviour["container_inspect"] = missing

    def progress(line: str) -> None:
        facade.containers.get("nope")

    with pytest.raises(ContainerNotFound) as info:
        facade.images.build(context, progress=progress)
    assert info.value.operation == "containers.get"
    assert str(info.value) == "containers.get: no such container: nope"


def test_an_engine_side_failure_becomes_an_engine_error(facade: Engine, driver: FakeDriver) -> None:
    def unreadable(ref: str) -> Image:
        raise KeyError("Id")

    driver.behaviour["image_inspect"] = unreadable
    with pytest.raises(EngineError) as info:
        facade.images.get("web:1")
    err = info.value
    assert type(err) is EngineError
    assert str(err) == "unexpected KeyError in images.get"
    assert isinstance(err.__cause__, KeyError)
    assert err.fields == {
        "engine": "ektfake",
        "operation": "images.get",
        "address": "ektfake://user@somewhere",  # no password
        "ref": "web:1",
        "status": None,
    }


def test_fields_are_filled_and_kept(facade: Engine, driver: FakeDriver) -> None:
    def refused(cid: str) -> None:
        raise Conflict("engine says: is not running", status=409)

    driver.behaviour["container_pause"] = refused
    with pytest.raises(Conflict) as info:
        facade.containers.pause("web")
    err = info.value
    assert str(err) == "engine says: is not running"
    assert (err.engine, err.operation, err.ref, err.status) == (
        "ektfake",
        "containers.pause",
        "web",
        409,
    )


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("web", "containers.logs: no such container: web"),
        (CID, f"containers.logs: no such container: {CID}"),
        (
            "0123abc",
            "containers.logs: no such container: 0123abc (id prefixes need 12+ characters)",
        ),
    ],
)
def test_a_missing_container_reads_the_same_whatever_the_engine_said(
    facade: Engine, driver: FakeDriver, ref: str, message: str
) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ContainerNotFound("docker inspect: No such container: whatever", status=404)

    driver.behaviour["container_inspect"] = missing
    driver.behaviour["container_logs"] = missing
    with pytest.raises(ContainerNotFound) as info:
        facade.containers.logs(ref)
    err = info.value
    assert str(err) == message
    assert (err.ref, err.status, err.operation) == (ref, 404, "containers.logs")
    assert str(err.__cause__) == "docker inspect: No such container: whatever"


def test_a_container_given_as_a_model_is_named_by_its_id(
    facade: Engine, driver: FakeDriver
) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ContainerNotFound("gone")

    driver.behaviour["container_stop"] = missing
    c = Container(id=CID, name="web", image="i:1", state=ContainerState.RUNNING)
    with pytest.raises(ContainerNotFound) as info:
        facade.containers.stop(c)
    assert info.value.ref == CID
    assert str(info.value) == f"containers.stop: no such container: {CID}"


def test_a_missing_image_reads_the_same(facade: Engine, driver: FakeDriver) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ImageNotFound("no image 'whatever'")

    driver.behaviour["container_create"] = missing
    driver.behaviour["image_inspect"] = missing
    with pytest.raises(ImageNotFound) as info:
        facade.containers.run("busybox:1", ["true"])
    assert str(info.value) == "containers.run: no such image: busybox:1"
    assert info.value.ref == "busybox:1"
    with pytest.raises(ImageNotFound) as info:
        facade.images.tag("busybox:1", "other:2")
    assert str(info.value) == "images.tag: no such image: busybox:1"
    assert facade.images.exists("busybox:1") is False


def test_the_cores_own_not_found_keeps_its_words(facade: Engine) -> None:
    with pytest.raises(ImageNotFound) as info:
        facade.images.pull("busybox")
    assert "names no registry" in str(info.value)
    assert info.value.operation == "images.pull"


def test_unsupported_keeps_its_own_operation(facade: Engine, driver: FakeDriver) -> None:
    driver.capabilities = frozenset(Capability) - {Capability.PAUSE}
    with pytest.raises(Unsupported) as info:
        facade.containers.pause("web")
    err = info.value
    assert (err.engine, err.operation, err.ref) == ("ektfake", "pause", "web")
    assert driver.calls == []


def test_log_stream_errors_name_the_operation(facade: Engine, driver: FakeDriver) -> None:
    def lines(*args: Any, **kwargs: Any) -> Iterator[LogLine]:
        yield LogLine(stream=Stream.STDOUT, data=b"one\n")
        raise KeyError("stream")

    driver.behaviour["container_logs"] = lines
    stream = facade.containers.stream_logs("web")
    assert next(stream).data == b"one\n"
    with pytest.raises(EngineError) as info:
        next(stream)
    assert info.value.operation == "containers.stream_logs"
    assert isinstance(info.value.__cause__, KeyError)


def test_a_log_stream_ends_normally(facade: Engine, driver: FakeDriver) -> None:
    def lines(*args: Any, **kwargs: Any) -> Iterator[LogLine]:
        yield LogLine(stream=Stream.STDERR, data=b"two\n")

    driver.behaviour["container_logs"] = lines
    assert [line.data for line in facade.containers.stream_logs("web")] == [b"two\n"]


# -- the adapters' map_errors ---------------------------------------------------


def _map_errors() -> list[Callable[[str], Any]]:
    from enginekit_docker.errors import map_errors as docker_map
    from enginekit_podman.errors import map_errors as podman_map

    return [docker_map, podman_map]


@pytest.mark.parametrize("map_errors", _map_errors(), ids=["docker", "podman"])
def test_map_errors_translates_unreadable_answers_only(map_errors: Callable[[str], Any]) -> None:
    for unreadable in (ValueError("bad json"), KeyError("Id"), IndexError(0), EOFError()):
        with pytest.raises(EngineError) as info, map_errors("inspect"):
            raise unreadable
        assert "unexpected answer" in str(info.value)
        assert info.value.__cause__ is unreadable
    for passing in (TypeError("a bug"), AttributeError("a bug"), CallerError("mine")):
        with pytest.raises(type(passing)) as raised, map_errors("inspect"):
            raise passing
        assert raised.value is passing


def test_adapters_give_the_engines_status() -> None:
    from enginekit_docker.errors import error_for as docker_error
    from enginekit_lxc.errors import tool_error
    from enginekit_podman.errors import error_for as podman_error

    assert docker_error(404, "No such container: x", operation="logs").status == 404
    assert docker_error(409, "is paused", operation="kill").status == 409
    assert podman_error(500, "container state improper").status == 500
    assert podman_error(404, "no such container").status == 404
    failed = tool_error("lxc-start", 1, b"boom")
    assert failed.status == 1
    again = pickle.loads(pickle.dumps(failed))
    assert type(again) is type(failed) and again.fields == failed.fields


def test_a_build_error_names_the_tag_it_was_to_make(
    facade: Engine, driver: FakeDriver, context: str
) -> None:
    def missing_base(request: BuildRequest, *, progress: Any) -> Image:
        raise ImageNotFound("no such image: base:1 (nothing is pulled)")

    driver.behaviour["image_build"] = missing_base
    with pytest.raises(ImageNotFound) as info:
        facade.images.build(context, tag="app:1")
    # The missing image is the base, not the tag: the engine's words are kept.
    assert str(info.value) == "no such image: base:1 (nothing is pulled)"
    assert (info.value.ref, info.value.operation) == ("app:1", "images.build")
