"""lxc+ssh without an engine: the JSON wire (values and errors), the agent bundle and
its start-up and end, and the agent's HTTP protocol driven through the proxy driver
with a stand-in driver behind it (streams both ways, errors, a follow closed from
another thread). Nothing here runs an LXC tool."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from enginekit_lxc import agent as agent_mod
from enginekit_lxc import connect, remoteagent, wire
from enginekit_lxc.remote import RemoteLxcDriver

from enginekit import errors
from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    Unsupported,
)
from enginekit.logstream import ClosableLines
from enginekit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecResult,
    FrozenDict,
    Image,
    ImageConfig,
    LogLine,
    Mount,
    PathStat,
    PortBinding,
    Resources,
    Stats,
    Stream,
)
from enginekit.transport import Transport

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def _container() -> Container:
    return Container(
        id="a" * 64,
        name="web",
        image="busybox:latest",
        image_id="sha256:" + "b" * 64,
        state=ContainerState.EXITED,
        exit_code=3,
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW,
        labels={"k": "v"},
        command=("sh", "-c", "exit 3"),
        env={"SECRET": "x"},
        ports=(PortBinding(80, "tcp", "127.0.0.1", 8080),),
        mounts=(Mount("/src", "/dst", True),),
        resources=Resources(memory=1 << 20, cpus=0.5, pids_limit=10),
        engine="lxc",
        raw={"meta": {"list": [1, 2]}, "status": None},
    )


VALUES: list[Any] = [
    None,
    True,
    0,
    -7,
    1.5,
    "text",
    b"\x00\xffbytes",
    (1, "two", (3,)),
    [1, [2, (3,)]],
    {"a": 1, 2: "b"},
    FrozenDict({"x": "y"}),
    frozenset({Capability.BUILD, Capability.EXEC}),
    {Capability.PAUSE: "cgroup v1 without the freezer"},
    NOW,
    ContainerState.RUNNING,
    Stream.STDERR,
    _container(),
    Image(
        id="sha256:" + "c" * 64,
        tags=("a:1", "b:2"),
        created=NOW,
        size=12,
        labels={"l": "1"},
        config=ImageConfig(cmd=("sh",), env={"A": "1"}),
        engine="lxc",
    ),
    ExecResult(0, b"out\n", b"err\n"),
    Stats(1.25, 100, None, 3),
    EngineInfo(name="lxc", version="5.0.2", cgroup_version=1, rootless=False),
    PathStat(name="f", size=3),
    ContainerSpec(image="busybox:latest", command=("true",), env={"A": "b"}, memory=1 << 24),
    LogLine(Stream.STDOUT, b"line\n", NOW),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_round_trip_with_their_types(value: Any) -> None:
    back = wire.loads(wire.dumps(value))
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, Container):
        assert back.raw == value.raw
        assert back.created_at.tzinfo is not None


def test_tuples_lists_and_bytes_stay_apart() -> None:
    back = wire.loads(wire.dumps({"t": (b"a",), "l": [b"a"]}))
    assert back == {"t": (b"a",), "l": [b"a"]}
    assert isinstance(back["t"], tuple) and isinstance(back["l"], list)


@pytest.mark.parametrize(
    "value",
    [dt.datetime(2026, 1, 1), object(), errors.Conflict("x"), {1, 2}.__iter__(), Path("/")],
    ids=["naive", "object", "error", "iterator", "path"],
)
def test_encode_refuses_what_it_does_not_know(value: Any) -> None:
    with pytest.raises(TypeError):
        wire.encode(value)


@pytest.mark.parametrize(
    "data",
    [
        {"$o": "Popen", "f": {}},
        {"$o": "Container", "f": {"id": "x", "__class__": "y"}},
        {"$e": "Signals", "v": 9},
        {"$e": "ContainerState", "v": "nonsense"},
        {"$dt": "2026-01-01T00:00:00"},
        {"$b": "not base64!"},
        {"$m": [[1]]},
        {"unknown": 1},
        {"$b": "AA==", "extra": 1},
        {"__reduce__": ["os.system", ["true"]]},
        json.loads("[" * 100 + "]" * 100),
    ],
    ids=lambda d: str(d)[:24],
)
def test_decode_refuses_unknown_shapes(data: Any) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_decode_never_unpickles() -> None:
    import pickle

    with pytest.raises(wire.WireError):
        wire.loads(pickle.dumps(ExecResult(0)))


ERRORS: list[EngineError] = [
    EngineError("plain", engine="lxc", operation="info", status=2),
    EngineUnavailable("gone", address="/var/lib/lxc", hint="start it"),
    errors.NotFound("no such file"),
    errors.ImageNotFound("no such image: x", ref="x"),
    ContainerNotFound("no such container: y", ref="y"),
    errors.Conflict("running"),
    errors.InvalidSpec("bad"),
    errors.UnknownOption("bogus"),
    BuildFailed("build failed", step="RUN exit 3", exit_code=3, output="a\nb"),
    Unsupported("lxc", "pause", "no freezer", capability="pause"),
    errors.EngineTimeout("late"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_come_back_as_their_class_with_fields(error: EngineError) -> None:
    back = wire.decode_error(json.loads(json.dumps(wire.encode_error(error))))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.fields == error.fields
    if isinstance(error, errors.EngineTimeout):
        assert isinstance(back, TimeoutError)


def test_other_errors_are_engine_errors() -> None:
    back = wire.decode_error(wire.encode_error(KeyError("boom")))
    assert type(back) is EngineError
    assert "KeyError" in str(back) and "boom" in str(back)

    class Own(errors.Conflict):
        pass

    back = wire.decode_error(wire.encode_error(Own("mine", ref="r")))
    assert type(back) is errors.Conflict and back.ref == "r"


def test_decode_error_takes_only_known_classes_and_plain_fields() -> None:
    back = wire.decode_error({"class": "SystemExit", "args": ["x"], "fields": {}})
    assert type(back) is EngineError
    back = wire.decode_error(
        {"class": "Conflict", "args": ["m"], "fields": {"ref": {"$o": "x"}, "__class__": "y"}}
    )
    assert type(back) is errors.Conflict and back.ref is None
    assert type(wire.decode_error("nonsense")) is wire.WireError


# -- the bundle and the agent's start-up ----------------------------------------------
def test_bundle_is_the_same_bytes_named_by_its_sha() -> None:
    import hashlib

    data, sha = remoteagent.bundle()
    assert remoteagent.bundle() == (data, sha)
    assert hashlib.sha256(data).hexdigest() == sha
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == sorted(names)
    for name in (
        "__main__.py",
        "enginekit_lxc/agent.py",
        "enginekit/models.py",
        "attr/__init__.py",
    ):
        assert name in names
    assert "attrs/__init__.py" in names
    assert not any(n.startswith(("enginekit/testing/", "enginekit/cli/")) for n in names)
    assert not any("__pycache__" in n for n in names)


def _shell_words(words: list[str]) -> str:
    return " ".join(words)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _start_local_agent(home: Path, tmpdir: Path) -> tuple[subprocess.Popen[bytes], bool, str]:
    """The bootstrap run as the remote shell would run it (sh -c), on this machine."""
    data, sha = remoteagent.bundle()
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        ["sh", "-c", _shell_words(remoteagent.bootstrap_command(sha))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    need = bool(first["need"])
    if need:
        proc.stdin.write(b"%d\n" % len(data) + data)
    proc.stdin.write(json.dumps({"lxcpath": "/nonexistent/lxc", "options": {}}).encode() + b"\n")
    proc.stdin.flush()
    ready = json.loads(proc.stdout.readline())
    return proc, need, ready["socket"]


def test_bootstrap_uploads_once_serves_and_ends_with_its_stdin(home: Path, tmp_path: Path) -> None:
    _, sha = remoteagent.bundle()
    work = tmp_path / "work"
    work.mkdir()
    proc, need, path = _start_local_agent(home, work)
    try:
        assert need
        cache = home / ".cache" / "enginekit"
        assert (cache.stat().st_mode & 0o777) == 0o700
        assert sorted(p.name for p in cache.iterdir()) == [f"agent-{sha}.pyz"]
        folder = Path(path).parent
        assert folder.parent == work and (folder.stat().st_mode & 0o777) == 0o700
        transport = Transport("agent", dialer=_LocalDialer(path))
        try:
            answer = transport.request(
                "POST", "/call/host_path_exists", json=wire.encode({"a": ["/"], "k": {}})
            ).json()
            assert wire.decode(answer["r"]) is True
            answer = transport.request(
                "POST", "/call/host_cpus", json=wire.encode({"a": [], "k": {}})
            ).json()
            assert wire.decode(answer["r"]) == os.cpu_count()
            refused = transport.request(
                "POST", "/call/__init__", json=wire.encode({"a": [], "k": {}})
            )
            assert refused.status == 500 and "no driver method" in refused.read().decode()
        finally:
            transport.close()
        # Its command line: python3 and the bundle (what ps shows on the remote host).
        pids = [
            proc.pid,
            *map(int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()),
        ]
        lines = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in pids]
        assert any(argv[1].endswith(f"agent-{sha}.pyz".encode()) for argv in lines)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    assert not folder.exists()  # the agent's directory went with it
    assert list(work.iterdir()) == []
    # A second start finds the bundle there: nothing is sent again.
    proc, need, path = _start_local_agent(home, work)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert not need
    assert [p.name for p in (home / ".cache" / "enginekit").iterdir()] == [f"agent-{sha}.pyz"]


def test_bootstrap_refuses_a_damaged_bundle(home: Path) -> None:
    data, sha = remoteagent.bundle()
    proc = subprocess.run(
        ["sh", "-c", _shell_words(remoteagent.bootstrap_command(sha))],
        input=b"%d\n" % len(data) + b"x" * len(data),
        capture_output=True,
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        timeout=30,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines == [{"need": True}, {"error": "the agent bundle arrived damaged"}]
    assert proc.returncode == 5
    assert list((home / ".cache" / "enginekit").iterdir()) == []


def test_bootstrap_refuses_an_old_python(home: Path) -> None:
    _, sha = remoteagent.bundle()
    code = remoteagent._BOOTSTRAP.replace("(3, 11)", "(99, 0)")
    proc = subprocess.run(
        [sys.executable, "-c", code, sha],
        capture_output=True,
        env={"HOME": str(home)},
        timeout=30,
        check=False,
    )
    said = json.loads(proc.stdout)
    assert "needs Python 3.11 or newer" in said["error"] and proc.returncode == 3
    assert not (home / ".cache").exists()


def test_a_host_that_does_not_answer_is_unavailable_naming_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    driver = connect(f"ssh://root@127.0.0.1:{port}/var/lib/lxc", connect_timeout=5)
    assert isinstance(driver, RemoteLxcDriver)
    assert driver.address == f"lxc+ssh://root@127.0.0.1:{port}/var/lib/lxc"
    try:
        with pytest.raises(EngineUnavailable) as info:
            driver.ping()
        assert f"127.0.0.1:{port}" in str(info.value)
        assert info.value.address is not None and f":{port}" in info.value.address
    finally:
        driver.close()


def test_connect_refuses_bad_options_without_io() -> None:
    with pytest.raises(errors.InvalidSpec):
        connect("ssh://root@host", bogus=1)
    with pytest.raises(errors.InvalidSpec):
        connect("ssh://root@host", storage_root="relative")
    with pytest.raises(errors.InvalidSpec):
        connect("ssh://-oProxyCommand=x")
    driver = connect("lxc+ssh://me@build1:2222", storage_root="/srv/ek")
    assert driver.address == "lxc+ssh://me@build1:2222" and driver.name == "lxc"
    driver.close()


# -- the protocol, with a stand-in driver behind the agent ----------------------------
class _LocalDialer:
    def __init__(self, path: str) -> None:
        self.path = path

    def dial(self, timeout: float | None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.path)
        return sock

    def reachable(self) -> bool:
        return os.path.exists(self.path)

    def trouble(self) -> str:
        return ""

    def close(self) -> None:
        pass


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class StandIn:
    """Answers as a driver would, and keeps what it was given."""

    name = "lxc"
    address = "/var/lib/lxc"
    capabilities = frozenset({Capability.BUILD, Capability.EXEC})
    unsupported = {Capability.PAUSE: "no freezer"}

    def __init__(self) -> None:
        self.put: bytes = b""
        self.loaded: bytes = b""
        self.context: dict[str, bytes] = {}
        self.aborted = threading.Event()
        self.removed: list[tuple[str, bool]] = []

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        self.removed.append((ref, force))

    def container_inspect(self, ref: str) -> Container:
        if ref != "web":
            raise ContainerNotFound(f"no such container: {ref}", ref=ref)
        return _container()

    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        time.sleep(0.3)
        return 7

    def container_logs(self, id: str, **kwargs: Any) -> Iterator[LogLine]:
        stop = threading.Event()

        def lines() -> Iterator[LogLine]:
            for i in range(3):
                yield LogLine(Stream.STDOUT, b"%d\n" % i, NOW)
            if kwargs.get("follow"):
                stop.wait(30)
                self.aborted.set()
                return
            raise errors.Conflict("broken log")

        return ClosableLines(lines(), abort=stop.set)

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        return io.BytesIO(_tar({"f": b"x" * 3_000_000}))

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        self.put = data.read()

    def image_save(self, ref: str, path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(b"saved" * 500_000)

    def image_load(self, path: str) -> list[Image]:
        with open(path, "rb") as fh:
            self.loaded = fh.read()
        return [Image(id="sha256:" + "d" * 64, engine="lxc")]

    def image_build(self, request: BuildRequest, *, progress: Any = None) -> Image:
        for folder, _, files in os.walk(request.context):
            for name in files:
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    self.context[os.path.relpath(full, request.context)] = os.readlink(
                        full
                    ).encode()
                    continue
                with open(full, "rb") as fh:
                    self.context[os.path.relpath(full, request.context)] = fh.read()
        assert request.tags == ("t:1",) and request.build_args == {"A": "1"}
        if progress is not None:
            progress("Step 1/1 : FROM scratch")
        if request.target == "fail":
            raise BuildFailed("failed", step="RUN false", exit_code=1)
        return Image(id="sha256:" + "e" * 64, tags=request.tags, engine="lxc")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RemoteLxcDriver, StandIn, str]]:
    stand_in = StandIn()
    folder = tempfile.mkdtemp(dir=tmp_path)
    path = os.path.join(folder, "s")
    address: Any = path
    server = agent_mod._Server(address, agent_mod._Handler)
    server.agent = agent_mod.Agent(stand_in, folder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    driver = RemoteLxcDriver("lxc+ssh://root@127.0.0.1:1")
    driver._transport = Transport(driver.address, name="lxc", dialer=_LocalDialer(path))
    try:
        yield driver, stand_in, folder
    finally:
        driver.close()
        server.shutdown()
        server.server_close()


def test_calls_results_and_errors(served: tuple[RemoteLxcDriver, StandIn, str]) -> None:
    driver, _, folder = served
    assert driver.container_inspect("web") == _container()
    with pytest.raises(ContainerNotFound) as info:
        driver.container_inspect("nope")
    assert info.value.ref == "nope" and "no such container: nope" in str(info.value)
    assert driver.capabilities == {Capability.BUILD, Capability.EXEC}
    assert driver.unsupported == {Capability.PAUSE: "no freezer"}
    assert driver.host_path_exists(folder) and not driver.host_path_exists(folder + "/none")
    with pytest.raises(EngineError):
        driver.container_stats("x")  # the stand-in has none: an EngineError, not a crash
    started = time.monotonic()
    assert driver.container_wait("a" * 64) == 7
    assert time.monotonic() - started >= 0.3


def test_logs_stream_and_end_with_the_remote_error(
    served: tuple[RemoteLxcDriver, StandIn, str],
) -> None:
    driver, _, _ = served
    lines = driver.container_logs("a" * 64)
    got = [next(lines) for _ in range(3)]
    assert [line.data for line in got] == [b"0\n", b"1\n", b"2\n"]
    assert got[0].timestamp == NOW and got[0].stream is Stream.STDOUT
    with pytest.raises(errors.Conflict):
        next(lines)


def test_a_follow_closed_from_another_thread_ends_both_sides(
    served: tuple[RemoteLxcDriver, StandIn, str],
) -> None:
    driver, stand_in, _ = served
    lines: Any = driver.container_logs("a" * 64, follow=True)
    assert [next(lines).data for _ in range(3)] == [b"0\n", b"1\n", b"2\n"]
    ended = threading.Event()

    def read() -> None:
        for _ in lines:
            pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.2)
    lines.abort()
    assert ended.wait(5), "the reader did not end"
    lines.close()
    assert stand_in.aborted.wait(5), "the agent's follow was not aborted"


def test_archives_both_ways(served: tuple[RemoteLxcDriver, StandIn, str]) -> None:
    driver, stand_in, folder = served
    stream = driver.container_get_archive("a" * 64, "/f")
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        member = next(iter(tar))
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b"x" * 3_000_000
    stream.close()
    data = _tar({"g": b"y" * 2_500_000})
    driver.container_put_archive("a" * 64, "/", io.BytesIO(data))
    assert stand_in.put == data
    assert os.listdir(folder) == ["s"]


def test_save_and_load_leave_no_temporary_file(
    served: tuple[RemoteLxcDriver, StandIn, str], tmp_path: Path
) -> None:
    driver, stand_in, folder = served
    target = tmp_path / "saved.tar"
    driver.image_save("busybox:latest", str(target))
    assert target.read_bytes() == b"saved" * 500_000
    source = tmp_path / "load.tar"
    source.write_bytes(b"L" * 3_000_001)
    images = driver.image_load(str(source))
    assert [i.id for i in images] == ["sha256:" + "d" * 64]
    assert stand_in.loaded == source.read_bytes()
    assert os.listdir(folder) == ["s"]


def test_build_sends_the_context_and_streams_progress(
    served: tuple[RemoteLxcDriver, StandIn, str], tmp_path: Path
) -> None:
    driver, stand_in, folder = served
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / "sub" / "a.txt").write_bytes(b"A" * 100)
    (ctx / "ignored").write_text("no")
    (ctx / ".dockerignore").write_text("ignored\n")
    (ctx / "link").symlink_to("/etc/passwd")
    seen: list[str] = []
    request = BuildRequest(context=str(ctx), tags=("t:1",), build_args={"A": "1"})
    image = driver.image_build(request, progress=seen.append)
    assert image.tags == ("t:1",)
    assert seen == ["Step 1/1 : FROM scratch"]
    assert stand_in.context == {
        "Dockerfile": b"FROM scratch\n",
        ".dockerignore": b"ignored\n",
        os.path.join("sub", "a.txt"): b"A" * 100,
        "link": b"/etc/passwd",
    }
    assert os.listdir(folder) == ["s"]
    assert stand_in.removed == []  # kept: every line was taken
    failing = BuildRequest(context=str(ctx), tags=("t:1",), build_args={"A": "1"}, target="fail")
    with pytest.raises(BuildFailed) as info:
        driver.image_build(failing)
    assert info.value.step == "RUN false" and info.value.exit_code == 1
    assert os.listdir(folder) == ["s"]


def test_a_progress_callback_that_raises_leaves_as_it_is(
    served: tuple[RemoteLxcDriver, StandIn, str], tmp_path: Path
) -> None:
    driver, stand_in, _ = served
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    class Mine(BaseException):
        pass

    def progress(line: str) -> None:
        raise Mine(line)

    request = BuildRequest(context=str(tmp_path), tags=("t:1",), build_args={"A": "1"})
    with pytest.raises(Mine):
        driver.image_build(request, progress=progress)
    # The connection was not left half-read: the next call works.
    assert driver.container_inspect("web").name == "web"
    # The build had ended there: the image it made went before the call returned,
    # as the builder does here.
    assert stand_in.removed == [("sha256:" + "e" * 64, True)]


def test_extract_context_keeps_links_modes_and_refuses_escapes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo("dir")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 1000
        tar.addfile(d)
        f = tarfile.TarInfo("dir/f")
        f.size, f.mode, f.mtime = 2, 0o640, 2000
        tar.addfile(f, io.BytesIO(b"hi"))
        s = tarfile.TarInfo("up")
        s.type, s.linkname = tarfile.SYMTYPE, "../../outside"
        tar.addfile(s)
        h = tarfile.TarInfo("hard")
        h.type, h.linkname = tarfile.LNKTYPE, "dir/f"
        tar.addfile(h)
    buf.seek(0)
    dest = tmp_path / "ctx"
    dest.mkdir()
    agent_mod.extract_context(buf, str(dest))
    assert (dest / "dir").stat().st_mode & 0o7777 == 0o750
    assert (dest / "dir").stat().st_mtime == 1000
    assert (dest / "dir" / "f").stat().st_mode & 0o7777 == 0o640
    assert os.readlink(dest / "up") == "../../outside"
    assert (dest / "hard").read_bytes() == b"hi"
    for n, bad in enumerate(("../x", "/abs", "up/through")):
        evil = io.BytesIO()
        with tarfile.open(fileobj=evil, mode="w") as tar:
            if bad == "up/through":
                s = tarfile.TarInfo("up")
                s.type, s.linkname = tarfile.SYMTYPE, str(tmp_path)
                tar.addfile(s)
            info = tarfile.TarInfo(bad)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"!"))
        evil.seek(0)
        target = tmp_path / f"evil{n}"
        target.mkdir()
        with pytest.raises(errors.InvalidSpec):
            agent_mod.extract_context(evil, str(target))
    assert not (tmp_path / "through").exists() and not (tmp_path / "x").exists()


def test_an_upload_whose_read_fails_raises_that_and_hangs_nothing(
    served: tuple[RemoteLxcDriver, StandIn, str],
) -> None:
    driver, stand_in, _ = served

    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            self.reads += 1
            if self.reads > 2:
                raise OSError("the disk went away")
            buffer[:10] = b"x" * 10
            return 10

    done = threading.Event()
    caught: list[BaseException] = []

    def put() -> None:
        try:
            source: Any = Failing()
            driver.container_put_archive("a" * 64, "/", source)
        except BaseException as exc:
            caught.append(exc)
        done.set()

    threading.Thread(target=put, daemon=True).start()
    assert done.wait(10), "the upload hung"
    assert len(caught) == 1 and isinstance(caught[0], EngineError)
    assert "the disk went away" in str(caught[0])
    assert stand_in.put == b"x" * 20  # what was read before, then the body ended
    assert driver.container_inspect("web").name == "web"
