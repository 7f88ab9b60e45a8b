"""Conversions of JSON recorded from each Docker the adapter is tested on.

``tests/data/<version>/`` holds what ``tests/record.py`` recorded, in the API
version the adapter negotiated: ``v1.41`` (Docker 20.10, this machine),
``v1.51`` (Docker 28.5, the test host, classic image store) and
``v1.51-containerd`` (the same Docker on the containerd image store). Every
test taking ``recorded`` runs on each. cgroup v2 answers (no host here runs
v2) are in ``tests/data/cgroup2/``: see ``test_cgroup2.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from enginekit_docker import convert, instance
from enginekit_docker.build import BuildLog
from enginekit_docker.locallog import PieceResolver, read_entries
from enginekit_docker.streams import in_time_order, joiner

from enginekit.capabilities import Capability
from enginekit.errors import BuildFailed
from enginekit.models import (
    ContainerSpec,
    ContainerState,
    LogLine,
    Mount,
    PortBinding,
    Resources,
    Stream,
)
from enginekit.toolkit.http import demux_frames
from enginekit.toolkit.time import unix_nanos

DATA = Path(__file__).parent / "data"
UTC = dt.UTC
VERSIONS = ("v1.41", "v1.51", "v1.51-containerd")


class Recorded:
    """The answers recorded from one Docker (``tests/data/<version>/``)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.dir = DATA / version
        self.containerd = version.endswith("-containerd")

    def load(self, name: str) -> Any:
        return json.loads((self.dir / name).read_text())

    def __repr__(self) -> str:
        return self.version


@pytest.fixture(params=VERSIONS)
def recorded(request: pytest.FixtureRequest) -> Recorded:
    return Recorded(request.param)


# -- containers ---------------------------------------------------------------


def test_created_container(recorded: Recorded) -> None:
    data = recorded.load("container_created.json")
    c = convert.container_from_inspect(data)
    assert c.id == data["Id"] and len(c.id) == 64
    assert c.name.startswith("rec-full-") and not c.name.startswith("/")
    assert c.image.startswith("enginekit-docker-record:")
    assert c.image_id.startswith("sha256:")
    assert c.state is ContainerState.CREATED
    assert c.exit_code is None and c.pid is None
    assert c.started_at is None and c.finished_at is None
    assert c.created_at is not None and c.created_at.tzinfo is UTC
    assert c.command == ("sh", "-c", "echo hi; echo oops >&2; exec sleep 100")
    assert c.entrypoint == ()
    # The image's env is merged in, the container's value winning.
    assert dict(c.env) == {"A": "1", "IMG": "2", "PATH": "/bin"}
    assert c.user == "1000:1000" and c.workdir == "/tmp" and c.hostname == "recorded"
    assert c.stop_signal == "SIGTERM"
    assert c.labels["enginekit.test"] == "docker-adapter-record"
    # Not running: the configured binding, host port still unknown.
    assert c.ports == (PortBinding(container_port=8080, host_ip="127.0.0.1", host_port=None),)
    assert c.mounts == (Mount(source=c.mounts[0].source, target="/mnt", read_only=True),)
    assert c.resources == Resources(memory=67108864, cpus=0.5, pids_limit=64)
    assert c.network == "bridge"
    assert c.engine == "docker" and c.raw is data
    assert "IMG" not in repr(c)


def test_running_container(recorded: Recorded) -> None:
    c = convert.container_from_inspect(recorded.load("container_running.json"))
    assert c.state is ContainerState.RUNNING and c.running
    assert isinstance(c.pid, int) and c.pid > 0
    assert c.exit_code is None and c.finished_at is None
    assert c.started_at is not None and c.created_at is not None
    assert c.started_at >= c.created_at
    # Running: the actual binding; unpublished exposed ports are left out.
    (port,) = c.ports
    assert port.container_port == 8080 and port.protocol == "tcp"
    assert port.host_ip == "127.0.0.1" and isinstance(port.host_port, int) and port.host_port > 0


def test_paused_container(recorded: Recorded) -> None:
    c = convert.container_from_inspect(recorded.load("container_paused.json"))
    assert c.state is ContainerState.PAUSED
    assert c.pid is not None and c.exit_code is None


def test_exited_container(recorded: Recorded) -> None:
    c = convert.container_from_inspect(recorded.load("container_exited.json"))
    assert c.state is ContainerState.EXITED
    assert c.exit_code == 143  # SIGTERM through docker-init
    assert c.pid is None
    assert c.finished_at is not None and c.started_at is not None
    assert c.finished_at >= c.started_at
    assert c.ports[0].host_port is None


def test_oom_killed_container(recorded: Recorded) -> None:
    c = convert.container_from_inspect(recorded.load("container_oom.json"))
    assert c.state is ContainerState.EXITED
    assert c.exit_code == 137 and c.oom_killed


def test_unlimited_container_and_network_none(recorded: Recorded) -> None:
    c = convert.container_from_inspect(recorded.load("container_plain_running.json"))
    assert c.resources == Resources()
    assert c.network == "none"
    assert c.ports == () and c.mounts == ()
    assert c.stop_signal == "SIGINT"  # the image's: the effective one


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("created", ContainerState.CREATED),
        ("running", ContainerState.RUNNING),
        ("restarting", ContainerState.RUNNING),
        ("paused", ContainerState.PAUSED),
        ("exited", ContainerState.EXITED),
        ("dead", ContainerState.EXITED),
        ("removing", ContainerState.EXITED),
    ],
)
def test_state_table(status: str, state: ContainerState) -> None:
    assert convert.container_state(status) is state


# -- images -------------------------------------------------------------------


def test_image(recorded: Recorded) -> None:
    data = recorded.load("image_inspect.json")
    image = convert.image_from_inspect(data)
    assert image.id.startswith("sha256:") and len(image.id) == 71
    # The id a container reports for its image is the image's id, on both stores.
    assert convert.container_from_inspect(recorded.load("container_running.json")).image_id == (
        image.id
    )
    if recorded.containerd:  # the manifest's digest
        assert data["Descriptor"]["digest"] == image.id
        assert data["Descriptor"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    else:  # the config's digest: no descriptor before the containerd store
        assert "Descriptor" not in data
    assert image.tags == tuple(sorted(data["RepoTags"]))
    assert image.created is not None and image.created.tzinfo is UTC
    assert image.size == data["Size"] > 0
    assert image.architecture == "amd64" and image.os == "linux"
    cfg = image.config
    assert cfg.cmd == ("sh",) and cfg.entrypoint is None
    assert dict(cfg.env) == {"PATH": "/bin", "IMG": "1"}
    assert cfg.workdir == "/srv" and cfg.user is None
    assert cfg.exposed_ports == ("53/udp", "80/tcp")
    assert cfg.stop_signal == "SIGINT"
    assert image.labels == cfg.labels and image.labels["a.b"] == "c"


def test_image_fields_left_out_by_newer_versions(recorded: Recorded) -> None:
    """API 1.52 leaves unset ``Config`` fields out, 1.44 an absent ``Created``
    (1.41 sends ``0001-01-01T00:00:00Z``), 1.45 ``ContainerConfig``, 1.44 ``VirtualSize``."""
    data = copy.deepcopy(recorded.load("image_inspect.json"))
    for key in ("Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "User", "Volumes", "WorkingDir"):
        data["Config"].pop(key, None)
    for key in ("Created", "Parent", "Comment", "DockerVersion", "Author", "VirtualSize"):
        data.pop(key, None)
    data.pop("ContainerConfig", None)
    image = convert.image_from_inspect(data)
    assert image.created is None
    cfg = image.config
    assert (cfg.cmd, cfg.entrypoint, cfg.workdir, cfg.user) == (None, None, None, None)
    assert dict(cfg.env) == {} and dict(image.labels) == {}
    assert cfg.exposed_ports == ("53/udp", "80/tcp") and cfg.stop_signal == "SIGINT"
    assert image.size == data["Size"]
    zero = dict(recorded.load("image_inspect.json"), Created="0001-01-01T00:00:00Z")
    assert convert.image_from_inspect(zero).created is None
    no_config = {k: v for k, v in recorded.load("image_inspect.json").items() if k != "Config"}
    assert convert.image_from_inspect(no_config).config.cmd is None


def test_builder_labels_are_not_shown(recorded: Recorded) -> None:
    data = recorded.load("image_inspect.json")
    data["Config"]["Labels"] = {"io.buildah.version": "1.28.2", "mine": "1"}
    image = convert.image_from_inspect(data)
    assert dict(image.labels) == dict(image.config.labels) == {"mine": "1"}
    container = recorded.load("container_running.json")
    container["Config"]["Labels"]["io.buildah.version"] = "1.28.2"
    assert "io.buildah.version" not in convert.container_from_inspect(container).labels


def test_image_hides_none_tags(recorded: Recorded) -> None:
    data = dict(recorded.load("image_inspect.json"), RepoTags=["<none>:<none>"])
    assert convert.image_from_inspect(data).tags == ()


# -- create body --------------------------------------------------------------


def test_create_body_full() -> None:
    spec = ContainerSpec(
        image="busybox:1",
        command=("sleep", "5"),
        entrypoint=("/bin/sh", "-c"),
        name="x",
        env={"A": "1"},
        workdir="/w",
        user="1000",
        labels={"k": "v"},
        hostname="h",
        ports=(
            PortBinding(container_port=80),
            PortBinding(container_port=80, host_ip="127.0.0.1", host_port=8080),
            PortBinding(container_port=53, protocol="udp", host_port=0),
        ),
        mounts=(Mount(source="/src", target="/dst", read_only=True),),
        memory=64 * 2**20,
        cpus=1.5,
        pids_limit=10,
        network="none",
        stop_signal="SIGINT",
    )
    body = convert.create_body(spec)
    host = body["HostConfig"]
    assert host["Init"] is True
    assert host["LogConfig"]["Type"] == "local"
    assert body["Cmd"] == ["sleep", "5"] and body["Entrypoint"] == ["/bin/sh", "-c"]
    assert body["Env"] == ["A=1"] and body["Labels"] == {"k": "v"}
    assert body["WorkingDir"] == "/w" and body["User"] == "1000" and body["Hostname"] == "h"
    assert body["StopSignal"] == "SIGINT"
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert host["PortBindings"] == {
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": ""},
            {"HostIp": "127.0.0.1", "HostPort": "8080"},
        ],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }
    assert host["Mounts"] == [
        {"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": True}
    ]
    assert host["Memory"] == host["MemorySwap"] == 64 * 2**20
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 10
    assert host["NetworkMode"] == "none"


def test_create_body_defaults_leave_image_defaults() -> None:
    body = convert.create_body(ContainerSpec(image="busybox:1"))
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User", "Hostname", "StopSignal"):
        assert key not in body
    assert body["HostConfig"]["NetworkMode"] == "bridge"
    assert "Memory" not in body["HostConfig"]


# -- stats, path stat, info ---------------------------------------------------


def test_stats(recorded: Recorded) -> None:
    limited = convert.stats(recorded.load("stats_limited.json"), limited=True)
    assert limited.memory_limit == 67108864
    assert limited.cpu_seconds > 0 and limited.memory_bytes > 0 and limited.pids == 2
    unlimited = convert.stats(recorded.load("stats_unlimited.json"), limited=False)
    assert unlimited.memory_limit is None


def test_stats_of_a_stopped_container() -> None:
    empty = {"read": "0001-01-01T00:00:00Z", "pids_stats": {}, "memory_stats": {}, "cpu_stats": {}}
    s = convert.stats(empty, limited=False)
    assert (s.cpu_seconds, s.memory_bytes, s.memory_limit, s.pids) == (0.0, 0, None, None)


def test_path_stat(recorded: Recorded) -> None:
    headers = recorded.load("path_stat.json")
    sh = convert.path_stat(headers["/bin/sh"])
    assert sh.name == "sh" and sh.is_symlink and not sh.is_dir
    assert sh.link_target == "/bin/busybox"
    bin_ = convert.path_stat(headers["/bin"])
    assert bin_.name == "bin" and bin_.is_dir and not bin_.is_symlink


ENGINES = {
    # version: (Docker, API max, API min, image store, storage root)
    "v1.41": ("20.10.", "1.41", "1.12", "overlay2", "/var/lib/docker"),
    "v1.51": ("28.5.", "1.51", "1.44", "overlay2", "/var/lib/docker"),
    "v1.51-containerd": ("28.5.", "1.51", "1.44", "containerd", "/var/lib/docker-containerd"),
}


def test_engine_info(recorded: Recorded) -> None:
    release, api_max, api_min, store, root = ENGINES[recorded.version]
    negotiated = api_max  # both are below the newest the adapter speaks
    info = convert.engine_info(
        recorded.load("version.json"), recorded.load("info.json"), api_version=negotiated
    )
    assert info.name == "docker" and info.version.startswith(release)
    assert (info.api_version, info.max_api_version, info.min_api_version) == (
        negotiated,
        api_max,
        api_min,
    )
    assert info.os == "linux" and info.arch == "amd64"
    assert info.storage_root == root and info.image_store == store
    assert info.cgroup_version == 1 and info.rootless is False  # both hosts: cgroup v1, rootful
    assert recorded.load("ping.json")["Api-Version"] == api_max
    described = instance.describe(recorded.load("info.json"))
    assert described.capabilities == frozenset(Capability) and not described.unsupported


# -- logs ---------------------------------------------------------------------


def test_log_lines_join_pieces_and_keep_bytes(recorded: Recorded) -> None:
    raw = (recorded.dir / "logs_frames.bin").read_bytes()
    lines = list(joiner().join(demux_frames([raw])))
    out = [line.data for line in lines if line.stream is Stream.STDOUT]
    err = [line.data for line in lines if line.stream is Stream.STDERR]
    assert out == [b"short\n", b"x" * 40000 + b"\n", b"y" * 16384 + b"\n", b"no-newline"]
    assert err == [b"\xff\xfebin\n"]
    assert all(line.timestamp is not None and line.timestamp.tzinfo is UTC for line in lines)
    stamps = [line.timestamp for line in lines]
    assert stamps == sorted(stamps)  # type: ignore[type-var]


def test_log_lines_byte_by_byte_chunks(recorded: Recorded) -> None:
    raw = (recorded.dir / "logs_frames.bin").read_bytes()
    whole = list(joiner().join(demux_frames([raw])))
    trickled = list(joiner().join(demux_frames(raw[i : i + 1] for i in range(len(raw)))))
    assert trickled == whole


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def test_log_lines_json_file_pieces_keep_their_newline() -> None:
    ts = b"2026-11-29T09:25:14.666541246Z "
    raw = _frame(1, ts + b"a" * 16384) + _frame(1, ts + b"b\n") + _frame(2, ts + b"e\n")
    lines = list(joiner().join(demux_frames([raw])))
    assert [(x.stream, x.data) for x in lines] == [
        (Stream.STDOUT, b"a" * 16384 + b"b\n"),
        (Stream.STDERR, b"e\n"),
    ]


def test_log_lines_interleaved_streams() -> None:
    t1, t2 = b"2026-11-29T09:25:14.1Z ", b"2026-11-29T09:25:14.2Z "
    raw = _frame(1, t1 + b"o" * 16384) + _frame(2, t2 + b"err\n") + _frame(1, t1 + b"tail")
    lines = list(joiner().join(demux_frames([raw])))
    assert [(x.stream, x.data) for x in lines] == [
        (Stream.STDERR, b"err\n"),
        (Stream.STDOUT, b"o" * 16384 + b"tail\n"),
    ]


def test_log_lines_ask_whether_a_last_piece_ended_its_line() -> None:
    ts = b"2026-11-29T09:25:14.666541246Z "
    raw = _frame(1, ts + b"a" * 16384) + _frame(1, ts + b"a" * 16384) + _frame(1, ts + b"tail")
    asked: list[tuple[str, int, int]] = []

    def unterminated(source: str, nanos: int, ordinal: int) -> bool:
        asked.append((source, nanos, ordinal))
        return False

    lines = list(joiner(unterminated).join(demux_frames([raw])))
    assert [x.data for x in lines] == [b"a" * 32768 + b"tail"]
    assert asked == [("stdout", unix_nanos(ts.decode().strip()), 3)]
    lines = list(joiner(lambda *_: True).join(demux_frames([raw])))
    assert [x.data for x in lines] == [b"a" * 32768 + b"tail\n"]


def test_local_driver_file_marks(tmp_path: Path) -> None:
    # Recorded: a 20000-byte stdout line with its newline, then 17000 bytes without one.
    with open(DATA / "local_container.log", "rb") as f:
        marks, end = read_entries(f)
    assert end == (DATA / "local_container.log").stat().st_size
    ends = sorted((ordinal, last) for (source, _, ordinal), last in marks.items())
    assert ends == [(1, False), (1, False), (2, False), (2, True)]
    cid = "c" * 64
    logs = tmp_path / "containers" / cid / "local-logs"
    logs.mkdir(parents=True)
    (logs / "container.log").write_bytes((DATA / "local_container.log").read_bytes())
    resolve = PieceResolver(
        cid, lambda: {"HostConfig": {"LogConfig": {"Type": "local"}}}, lambda: str(tmp_path)
    )
    by_last = {last: key for key, last in marks.items() if key[2] == 2}
    assert resolve(*by_last[True]) is True
    assert resolve(*by_last[False]) is False
    assert resolve("stdout", 1, 2) is True  # not in the file: a newline is the likelier
    rotated = tmp_path / "rotated"
    old = rotated / "containers" / cid / "local-logs"
    old.mkdir(parents=True)
    (old / "container.log").write_bytes(b"")
    with gzip.open(old / "container.log.1.gz", "wb") as gz:
        gz.write((DATA / "local_container.log").read_bytes())
    from_rotated = PieceResolver(
        cid, lambda: {"HostConfig": {"LogConfig": {"Type": "local"}}}, lambda: str(rotated)
    )
    assert from_rotated(*by_last[False]) is False
    assert from_rotated(*by_last[True]) is True
    json_file = PieceResolver(
        cid, lambda: {"HostConfig": {"LogConfig": {"Type": "json-file"}}}, lambda: "/nonexistent"
    )
    assert json_file("stdout", 1, 2) is False  # json-file pieces carry their own newline


# -- build stream -------------------------------------------------------------


def _feed(recorded: Recorded, name: str, log: BuildLog) -> None:
    for line in (recorded.dir / name).read_text().splitlines():
        log.feed(json.loads(line))
    log.flush()


def test_build_log_success(recorded: Recorded) -> None:
    seen: list[str] = []
    log = BuildLog(seen.append)
    _feed(recorded, "build_ok.jsonl", log)
    assert log.image_id is not None and log.image_id.startswith("sha256:")
    assert seen[0] == "Step 1/10 : FROM scratch"
    assert any(s.startswith("Step 3/10 : RUN") for s in seen)
    assert all("\x1b" not in s and "\n" not in s for s in seen)
    # FROM scratch makes nothing; every later step made one image, unless cached.
    cached = sum(s == " ---> Using cache" for s in seen)
    assert len(log.created) == 9 - cached
    assert log.image_id.removeprefix("sha256:").startswith(log.created[-1])


def test_build_log_failure(recorded: Recorded) -> None:
    log = BuildLog(None)
    with pytest.raises(BuildFailed) as info:
        _feed(recorded, "build_fail.jsonl", log)
    err = info.value
    assert err.step == "RUN echo out; echo err >&2; exit 3"
    assert err.exit_code == 3
    assert err.output.splitlines() == ["err", "out"] or err.output.splitlines() == ["out", "err"]
    # The FROM image is not this build's; the RUN step before the failure is.
    assert len(log.created) == 1


def test_build_log_cache_hits_are_not_created() -> None:
    log = BuildLog(None)
    for text in ["Step 2/2 : RUN x", "\n", " ---> Using cache\n", " ---> 0123456789ab\n"]:
        log.feed({"stream": text})
    assert log.created == []


def test_log_lines_put_in_time_order() -> None:
    """Docker 20.10 can write a stderr line stamped a few microseconds before the
    stdout line it follows: a log read to its end comes sorted, each stream in order."""
    t0 = dt.datetime(2026, 12, 5, 8, 3, 56, 958000, tzinfo=UTC)
    us = dt.timedelta(microseconds=1)
    came = [
        LogLine(stream=Stream.STDOUT, data=b"out1\n", timestamp=t0 + 10 * us),
        LogLine(stream=Stream.STDOUT, data=b"out2\n", timestamp=t0 + 44 * us),
        LogLine(stream=Stream.STDERR, data=b"err1\n", timestamp=t0 + 28 * us),
        LogLine(stream=Stream.STDERR, data=b"err2\n", timestamp=t0 + 44 * us),
        LogLine(stream=Stream.STDOUT, data=b"out3\n", timestamp=t0 + 50 * us),
        LogLine(stream=Stream.STDOUT, data=b"cut\n", timestamp=None),
    ]
    got = list(in_time_order(iter(came)))
    assert [x.data for x in got] == [
        b"out1\n",
        b"err1\n",
        b"out2\n",
        b"err2\n",
        b"out3\n",
        b"cut\n",
    ]
    assert list(in_time_order(iter(came), window=1))[:2] == [came[0], came[2]]
    assert list(in_time_order(iter([]))) == []
