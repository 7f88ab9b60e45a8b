"""enginekit.toolkit: the one surface adapters import from the core, its base
driver's defaults and its HTTP driver base (no engine: an in-memory driver and
a loopback HTTP server stand in)."""

from __future__ import annotations

import ast
import http.server
import importlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import attrs
import pytest

import enginekit.errors
import enginekit.models
from enginekit import toolkit
from enginekit.toolkit import errors
from enginekit.toolkit.driver import (
    BaseDriver,
    Capability,
    Driver,
    LabelFilter,
    label_filters,
    labels_match,
)
from enginekit.toolkit.http import HttpDriver, Row, error_message, map_errors
from enginekit.toolkit.models import (
    BuildRequest,
    Container,
    ContainerState,
    ContainerSummary,
    Image,
)

ROOT = Path(__file__).resolve().parent.parent


# -- the rule: adapters import only the toolkit from the core ---------------------------


def _core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of each import in ``path`` that reaches the core elsewhere
    than through ``enginekit.toolkit``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "enginekit":
                modules = [f"enginekit.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        for module in modules:
            top, _, rest = module.partition(".")
            if top == "enginekit" and rest.partition(".")[0] != "toolkit":
                found.append((getattr(node, "lineno", 0), module))
    return found


def _adapter_modules() -> list[Path]:
    return sorted(ROOT.glob("adapters/*/enginekit_*/**/*.py"))


def test_adapter_modules_are_found() -> None:
    names = {p.parts[len(ROOT.parts) + 1] for p in _adapter_modules()}
    assert {"docker", "podman", "lxc"} <= names


def test_adapters_import_only_the_toolkit_from_the_core() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _adapter_modules()
        for line, module in _core_imports(path)
    ]
    assert wrong == [], "adapters import the core only through enginekit.toolkit:\n" + "\n".join(
        wrong
    )


def test_the_rule_sees_every_way_of_importing(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import enginekit.errors\n"
        "from enginekit import models\n"
        "from enginekit import toolkit\n"
        "from enginekit.toolkit.http import Transport\n"
        "from enginekit.transport import Response\n"
        "import enginekit_docker\n"
        "def f():\n"
        "    from enginekit.timeutil import parse_rfc3339\n"
    )
    assert _core_imports(src) == [
        (1, "enginekit.errors"),
        (2, "enginekit.models"),
        (5, "enginekit.transport"),
        (8, "enginekit.timeutil"),
    ]


# -- the surface --------------------------------------------------------------------------


@pytest.mark.parametrize("name", toolkit.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(f"enginekit.toolkit.{name}")
    assert getattr(toolkit, name) is module
    assert module.__all__, name
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_every_toolkit_module_is_listed() -> None:
    files = {p.stem for p in (ROOT / "enginekit" / "toolkit").glob("*.py")} - {"__init__"}
    assert files == set(toolkit.__all__)


@pytest.mark.parametrize(
    ("mine", "core"), [("errors", enginekit.errors), ("models", enginekit.models)]
)
def test_errors_and_models_are_all_there(mine: str, core: Any) -> None:
    module = importlib.import_module(f"enginekit.toolkit.{mine}")
    assert set(core.__all__) <= set(module.__all__)
    for name in core.__all__:
        assert getattr(module, name) is getattr(core, name)


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = (
        "import sys, enginekit.toolkit as t; "
        "print(sorted(m for m in sys.modules if m.startswith('enginekit.toolkit.')"
        " or m in ('attrs', 'http.client', 'typing', 'importlib')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        toolkit.nothing_here  # noqa: B018


# -- BaseDriver ---------------------------------------------------------------------------


@attrs.define
class _Box:
    container: Container
    started: int = 0


class Memory(BaseDriver):
    """A driver of containers held in memory: the primitives only."""

    name = "memory"
    address = "memory:"
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[str, _Box] = {}
        self.calls: list[str] = []

    def add(self, id: str, name: str, state: ContainerState, **labels: str) -> None:
        container = Container(
            id=id, name=name, image="img", state=state, labels=labels, engine=self.name
        )
        self.boxes[id] = _Box(container)

    def info(self) -> Any:
        self.calls.append("info")
        return {}

    def container_inspect(self, ref: str) -> Container:
        for box in self.boxes.values():
            if ref in (box.container.id, box.container.name):
                return box.container
        raise errors.ContainerNotFound(f"no container {ref}")

    def _container_ids(
        self, *, all: bool, labels: Mapping[str, str | None] | None, name: str | None
    ) -> Sequence[str]:
        self.calls.append(f"list all={all}")
        return [*self.boxes, "gone-meanwhile"]

    def _set(self, id: str, **changes: Any) -> None:
        box = self.boxes[id]
        box.container = attrs.evolve(box.container, **changes)

    def container_stop(self, id: str, *, timeout: float) -> None:
        self.calls.append(f"stop {id}")
        if self.boxes[id].container.state is ContainerState.RUNNING:
            self._set(id, state=ContainerState.EXITED, exit_code=143)

    def container_start(self, id: str) -> None:
        self.calls.append(f"start {id}")
        self._set(id, state=ContainerState.RUNNING, exit_code=None)

    def image_inspect(self, ref: str) -> Image:
        if ref != "img":
            raise errors.ImageNotFound(ref)
        return Image(id="sha256:" + "0" * 64, tags=("img:latest",))


@pytest.fixture
def memory() -> Memory:
    driver = Memory()
    driver.add("a" * 64, "one", ContainerState.RUNNING, app="x")
    driver.add("b" * 64, "two", ContainerState.EXITED, app="y")
    driver.add("c" * 64, "three", ContainerState.PAUSED)
    return driver


def test_what_a_driver_on_the_base_writes_itself(memory: Memory) -> None:
    methods = {n for n, v in vars(Driver).items() if callable(v) and not n.startswith("_")}
    defaults = {n for n in methods if hasattr(BaseDriver, n)}
    # The primitives: the base has them only as NotImplementedError stand-ins...
    stand_ins = {"info", "image_inspect", "container_inspect", "container_start", "container_stop"}
    assert stand_ins <= defaults
    # ...or not at all; every other method of the contract has a default.
    assert methods - defaults == {
        "container_create",
        "container_kill",
        "container_logs",
        "container_remove",
        "image_list",
        "image_remove",
        "image_tag",
    }
    assert not isinstance(memory, Driver)  # Memory writes only what its test needs
    assert memory.unsupported == {}


def test_list_inspects_what_the_engine_lists_and_filters_again(memory: Memory) -> None:
    assert [c.name for c in memory.container_list()] == ["one", "three"]
    assert [c.name for c in memory.container_list(all=True)] == ["one", "two", "three"]
    assert [c.name for c in memory.container_list(all=True, name="two")] == ["two"]
    assert [c.name for c in memory.container_list(all=True, labels={"app": None})] == [
        "one",
        "two",
    ]
    assert [c.name for c in memory.container_list(all=True, labels={"app": "y"})] == ["two"]
    assert memory.container_list(labels={"app": "y"}) == []


def test_restart_is_stop_then_start(memory: Memory) -> None:
    memory.container_restart("b" * 64, timeout=3)
    memory.container_restart("a" * 64, timeout=3)
    a, b = "a" * 64, "b" * 64
    assert memory.calls == [f"stop {b}", f"start {b}", f"stop {a}", f"start {a}"]
    assert memory.container_inspect("one").state is ContainerState.RUNNING


def test_exists_from_inspect(memory: Memory) -> None:
    assert memory.container_exists("one") and not memory.container_exists("nine")
    assert memory.image_exists("img") and not memory.image_exists("other")


def test_ping_asks_info(memory: Memory) -> None:
    memory.ping()
    assert memory.calls == ["info"]
    memory.close()


def test_wait_polls_until_exited(memory: Memory) -> None:
    cid = "a" * 64
    timer = threading.Timer(0.2, memory.container_stop, args=(cid,), kwargs={"timeout": 0})
    timer.start()
    try:
        assert memory.container_wait(cid) == 143
    finally:
        timer.cancel()
    assert memory.container_wait("b" * 64, timeout=0) == 0  # exited: at once


def test_wait_times_out(memory: Memory) -> None:
    started = time.monotonic()
    with pytest.raises(errors.EngineTimeout, match=r"did not exit within 0\.2 s"):
        memory.container_wait("a" * 64, timeout=0.2)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("call", "capability"),
    [
        (lambda d: d.image_build(BuildRequest(context=".")), Capability.BUILD),
        (lambda d: d.image_save("img", "/nowhere"), Capability.IMAGE_SAVE),
        (lambda d: d.image_load("/nowhere"), Capability.IMAGE_LOAD),
        (lambda d: d.image_pull("img"), Capability.PULL),
        (lambda d: d.image_push("img"), Capability.PUSH),
        (lambda d: d.container_exec("a" * 64, ("true",)), Capability.EXEC),
        (lambda d: d.container_pause("a" * 64), Capability.PAUSE),
        (lambda d: d.container_unpause("a" * 64), Capability.PAUSE),
        (lambda d: d.container_stats("a" * 64), Capability.STATS),
        (lambda d: d.container_stat_path("a" * 64, "/"), Capability.COPY),
        (lambda d: d.container_get_archive("a" * 64, "/"), Capability.COPY),
    ],
)
def test_optional_operations_are_unsupported(memory: Memory, call: Any, capability: str) -> None:
    with pytest.raises(errors.Unsupported) as info:
        call(memory)
    assert info.value.engine == "memory"
    assert info.value.capability == capability


def test_once_makes_a_value_once_however_many_threads_ask(memory: Memory) -> None:
    made: list[int] = []
    gate = threading.Barrier(8)

    def make() -> int:
        made.append(1)
        time.sleep(0.05)
        return 42

    def ask() -> int:
        gate.wait()
        return memory._once("answer", make)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1]
    assert memory._once("answer", make) == 42
    memory._forget("answer")
    assert memory._once("answer", lambda: 7) == 7


def test_label_helpers() -> None:
    assert label_filters({"a": "1", "b": None}) == ["a=1", "b"]
    assert label_filters(None) == []
    assert labels_match({"a": "1", "b": "2"}, {"a": "1", "b": None})
    assert not labels_match({"a": "1"}, {"a": "2"})
    assert not labels_match({"a": "1"}, {"b": None})
    assert labels_match({}, None)


# -- HttpDriver ---------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/_ping`` says API 9; ``/v9/containers/json`` lists two; ``/v9/containers/{id}/json``
    inspects ``a`` (``b`` is gone); ``/v9/nothing`` is 304; ``/v9/broken`` 500 in JSON."""

    seen: list[str]

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None, **headers: str) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(self.path)
        path = self.path.split("?")[0]
        if path == "/_ping":
            self._answer(200, None, **{"Api-Version": "9"})
        elif path == "/v9/containers/json":
            self._answer(200, [{"Id": "a"}, {"Id": "b"}])
        elif path == "/v9/containers/a/json":
            self._answer(200, {"Id": "a" * 64, "Name": "one", "State": "running"})
        elif path == "/v9/nothing":
            self._answer(304)
        elif path == "/v9/broken":
            self._answer(500, {"message": "it broke", "cause": "why"})
        else:
            self._answer(404, {"message": "no such container"})


class Fake(HttpDriver[str]):
    name = "fake"
    hint = "start the fake"

    def _negotiate(self, ping: Message) -> str:
        return str(ping.get("Api-Version"))

    def _path(self, path: str) -> str:
        return f"/v{self._api()}{path}"

    def _error(
        self, status: int, message: str, *, operation: str, missing: type[errors.NotFound]
    ) -> errors.EngineError:
        if status == 404:
            return missing(f"fake {operation}: {message}", status=status)
        return errors.EngineError(f"fake {operation}: {message}", status=status)

    def container_inspect(self, ref: str) -> Container:
        return self._container_from(self._inspect_raw(ref))

    def _container_from(self, data: dict[str, Any]) -> Container:
        return Container(
            id=data["Id"], name=data["Name"], image="img", state=ContainerState(data["State"])
        )

    def _list_rows(self, *, all: bool, labels: LabelFilter, name: str | None) -> list[Row]:
        rows: list[Row] = self._json(
            "GET", "/containers/json", operation="list", params={"all": all}
        )
        return rows

    def _summary_of(self, row: Row) -> ContainerSummary | str:
        return str(row["Id"])  # not enough said: inspected instead


@pytest.fixture
def fake() -> Iterator[tuple[Fake, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    driver = Fake(f"tcp://127.0.0.1:{server.server_address[1]}")
    try:
        yield driver, seen
    finally:
        driver.close()
        server.shutdown()
        server.server_close()


def test_the_version_is_agreed_once_on_first_need(fake: tuple[Fake, list[str]]) -> None:
    driver, seen = fake
    assert seen == []  # nothing sent by the constructor
    assert [c.name for c in driver.container_list()] == ["one"]  # b: gone meanwhile
    assert [s.name for s in driver.container_summaries()] == ["one"]
    driver.ping()
    assert seen.count("/_ping") == 2 and seen[0] == "/_ping"  # the second: ping() itself
    assert seen[1].startswith("/v9/containers/json")


def test_checked_calls(fake: tuple[Fake, list[str]]) -> None:
    driver, _ = fake
    driver._empty("GET", "/nothing", operation="nothing")  # 304: already so
    with pytest.raises(errors.EngineError, match="fake broken: it broke") as info:
        driver._json("GET", "/broken", operation="broken")
    assert info.value.status == 500
    with pytest.raises(errors.ImageNotFound, match="fake look: no such container"):
        driver._call("GET", "/missing", operation="look", missing=errors.ImageNotFound)
    with pytest.raises(errors.ContainerNotFound):
        driver.container_logs("gone", stdout=False, stderr=False)
    assert list(driver.container_logs("a", stdout=False, stderr=False)) == []


def test_nothing_listening_is_unavailable_with_the_hint() -> None:
    driver = Fake("tcp://127.0.0.1:9")
    with pytest.raises(errors.EngineUnavailable) as info:
        driver.ping()
    assert info.value.hint == "start the fake"


def test_error_message_and_map_errors() -> None:
    assert error_message(b'{"message": "no such image"}') == "no such image"
    assert error_message(b'{"cause": "image not known"}') == "image not known"
    assert error_message(b"plain words\n") == "plain words"
    assert error_message(b"") == ""
    empty: dict[str, int] = {}
    unreadable = pytest.raises(
        errors.EngineError, match=r"fake read: unexpected answer \(KeyError\)"
    )
    with unreadable, map_errors("fake", "read"):
        empty["x"]
    no_file = pytest.raises(errors.EngineError, match="fake write: No such file or directory")
    with no_file, map_errors("fake", "write"), open("/nonexistent/dir/file"):
        pass
    with pytest.raises(errors.Conflict), map_errors("fake", "pass"):
        raise errors.Conflict("through")
    with pytest.raises(TypeError), map_errors("fake", "bug"):
        raise TypeError("a bug is not translated")
