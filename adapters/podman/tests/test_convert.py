"""Conversions of recorded libpod JSON (tests/data/, recorded from Podman 4.3.1)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
from typing import Any

import pytest
from enginekit_podman import convert
from enginekit_podman.build import BuildLog
from enginekit_podman.errors import error_for, exec_start_failure, init_exec_failure
from enginekit_podman.streams import joiner

from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidSpec,
)
from enginekit.models import ContainerState, Mount, PortBinding, Stream
from enginekit.toolkit.http import demux_frames

DATA = pathlib.Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def documented_states() -> dict[str, ContainerState]:
    """The state table of :mod:`enginekit_podman.convert`'s docstring: libpod's state -> ours."""
    rows = re.findall(r"^``(\w+)``\s+([A-Z]+)\b", convert.__doc__ or "", re.M)
    return {status: ContainerState[state] for status, state in rows}


STATES = documented_states()


def test_every_libpod_state_is_documented() -> None:
    assert set(STATES) == {
        "configured",
        "created",
        "initialized",
        "running",
        "stopping",
        "paused",
        "stopped",
        "exited",
        "removing",
        "unknown",
    }


@pytest.mark.parametrize(("status", "state"), STATES.items())
def test_state_table(status: str, state: ContainerState) -> None:
    assert convert.container_state(status) is state


def test_running_container() -> None:
    c = convert.container_from_inspect(load("container_running.json"))
    assert c.state is ContainerState.RUNNING
    assert c.name == "ekpm-rec" and c.image == "ekpm-grp:1"
    assert c.image_id.startswith("sha256:") and len(c.image_id) == 71
    assert c.exit_code is None and c.finished_at is None and c.pid
    assert c.started_at is not None and c.started_at.tzinfo is dt.UTC
    assert c.command == ("sleep", "100") and c.entrypoint == ()
    assert dict(c.env) == {
        "A": "1",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    assert c.labels == {"enginekit.test": "pm"}
    assert c.workdir == "/w" and c.user is None and c.stop_signal is None
    assert c.mounts == (Mount(source="/tmp/pm/mnt", target="/mnt/x", read_only=True),)
    assert c.resources.memory == 67108864 and c.resources.cpus == 0.5
    assert c.resources.pids_limit is None
    assert c.network == "bridge" and c.engine == "podman"
    ports = {(p.container_port, p.protocol): p for p in c.ports}
    assert ports[(53, "udp")] == PortBinding(
        container_port=53, protocol="udp", host_ip="127.0.0.1", host_port=15353
    )
    assert ports[(80, "tcp")].host_port  # picked by the engine, reported while running


def test_created_and_exited_container() -> None:
    created = convert.container_from_inspect(load("container_created.json"))
    assert created.state is ContainerState.CREATED
    assert created.started_at is None and created.pid is None and created.exit_code is None
    ports = {p.container_port: p.host_port for p in created.ports}
    assert ports == {53: 15353, 80: None}  # "any port" is None outside a run, as on Docker
    exited = convert.container_from_inspect(load("container_exited.json"))
    assert exited.state is ContainerState.EXITED
    assert exited.exit_code == 143 and exited.pid is None
    assert exited.finished_at is not None and exited.finished_at >= exited.started_at  # type: ignore[operator]


def test_paused_container() -> None:
    c = convert.container_from_inspect(load("container_paused.json"))
    assert c.state is ContainerState.PAUSED and c.pid


def test_container_without_enginekit_annotations() -> None:
    data = load("container_running.json")
    data["Config"]["Annotations"] = {}
    data["Config"]["WorkingDir"] = "/"
    c = convert.container_from_inspect(data)
    assert c.image == "ekpm-grp:1"  # from ImageName, localhost/ taken off
    assert "HOSTNAME" not in c.env and "HOME" not in c.env
    assert c.workdir == "/" and c.stop_signal == "SIGTERM"


def test_image() -> None:
    img = convert.image_from_inspect(load("image.json"))
    assert img.tags == ("ekpm-grp:1",)
    assert img.id.startswith("sha256:") and len(img.id) == 71
    assert "io.buildah.version" not in img.labels
    assert img.architecture == "amd64" and img.os == "linux"
    assert img.created is not None and img.created.tzinfo is dt.UTC
    assert img.config.env["PATH"].startswith("/usr/local/sbin")


def test_stats() -> None:
    (entry,) = load("stats.json")["Stats"]
    s = convert.stats_from_libpod(entry, host_memory=25276502016)
    assert s.memory_limit == 67108864
    assert s.memory_bytes > 0 and s.pids == 2 and s.cpu_seconds >= 0  # init + sleep
    unlimited = dict(entry, MemLimit=25276502016)
    assert convert.stats_from_libpod(unlimited, host_memory=25276502016).memory_limit is None


def test_path_stat() -> None:
    header = load("path_stat.json")["/bin/sh"]
    st = convert.path_stat(header, "/bin/sh")
    assert st.name == "sh" and st.is_symlink and not st.is_dir
    assert st.link_target == "/bin/busybox"


def test_log_lines_join_partial_frames() -> None:
    raw = (DATA / "logs_timestamps.bin").read_bytes()
    lines = list(joiner().join(demux_frames([raw])))
    out = [line.data for line in lines if line.stream is Stream.STDOUT]
    err = [line.data for line in lines if line.stream is Stream.STDERR]
    assert out == [b"a" * 20000 + b"\n", b"\xffxtail"]
    assert err == [b"e\n"]
    assert all(line.timestamp and line.timestamp.tzinfo is dt.UTC for line in lines)


def test_log_lines_interleaved_streams() -> None:
    f = [(1, b"par"), (2, b"err\n"), (1, b"tial\nnext\nlast"), (0, b"ignored")]
    lines = [(line.stream, line.data) for line in joiner(timestamps=False).join(f)]
    assert lines == [
        (Stream.STDERR, b"err\n"),
        (Stream.STDOUT, b"partial\n"),
        (Stream.STDOUT, b"next\n"),
        (Stream.STDOUT, b"last"),
    ]


def test_log_lines_an_engine_error_in_the_stream_is_raised() -> None:
    f = [(1, b"ok\n"), (3, b"the log file went away\n")]
    lines = joiner(timestamps=False).join(f)
    assert next(lines).data == b"ok\n"
    with pytest.raises(EngineError, match="podman logs: the log file went away"):
        next(lines)


def test_names() -> None:
    assert convert.engine_image_ref("app:1") == "localhost/app:1"
    assert convert.engine_image_ref("team/app:1") == "localhost/team/app:1"
    assert convert.engine_image_ref("example.com/app:1") == "example.com/app:1"
    assert convert.engine_image_ref("localhost/app:1") == "localhost/app:1"
    assert convert.engine_image_ref("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert convert.engine_image_ref("abcdef012345") == "abcdef012345"
    assert convert.user_image_name("localhost/app:1") == "app:1"
    assert convert.user_image_name("docker.io/library/busybox:1") == "busybox:1"
    assert convert.user_image_name("example.com/app:1") == "example.com/app:1"


@pytest.mark.parametrize(
    ("ref", "candidates"),
    [
        # A Docker Hub reference, however written, is one image, as on Docker.
        ("app:1", ["localhost/app:1", "docker.io/library/app:1"]),
        ("busybox", ["localhost/busybox:latest", "docker.io/library/busybox:latest"]),
        ("library/app:1", ["localhost/app:1", "docker.io/library/app:1"]),
        ("docker.io/app:1", ["localhost/app:1", "docker.io/library/app:1"]),
        ("team/app:1", ["localhost/team/app:1", "docker.io/team/app:1"]),
        ("localhost/app:1", ["localhost/app:1"]),
        ("LOCALHOST:5000/app:1", ["localhost:5000/app:1"]),
        ("example.com/app", ["example.com/app:latest"]),
        ("sha256:" + "a" * 64, ["sha256:" + "a" * 64]),
        ("sha256:abcdef012345", ["abcdef012345", "sha256:abcdef012345"]),
        ("abcdef012345", ["abcdef012345"]),
    ],
)
def test_image_names_podman_looks_up(ref: str, candidates: list[str]) -> None:
    assert convert.engine_image_candidates(ref) == candidates
    assert convert.engine_image_ref(ref) == candidates[0]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("localhost/app:v1", "app:v1"),
        ("localhost/team/app:v1", "team/app:v1"),
        ("docker.io/library/busybox:1", "busybox:1"),
        ("docker.io/team/app:1", "team/app:1"),
        ("quay.io/a:1", "quay.io/a:1"),
        ("localhost:5000/a:1", "localhost:5000/a:1"),
    ],
)
def test_names_as_the_contract_shows_them(name: str, shown: str) -> None:
    assert convert.user_image_name(name) == shown
    # and back: a loaded archive's tag lands as Podman names its own images
    assert convert.user_image_name(convert.engine_image_ref(shown)) == shown


def test_loopback_registries_are_plain_http() -> None:
    from enginekit_podman.images import _tls

    for ref in ("127.0.0.1:5000/a:1", "localhost:5000/a:1", "LOCALHOST:5000/a:1", "localhost/a"):
        assert _tls(ref) == {"tlsVerify": False}
    for ref in ("example.com/a:1", "localhost.example.com:5000/a:1"):
        assert _tls(ref) == {}


def test_stop_signal_names() -> None:
    assert convert.stop_signal_name(9) == "SIGKILL"  # 4.x: a number
    assert convert.stop_signal_name("SIGTERM") == "SIGTERM"  # 5.x: a name
    assert convert.stop_signal_name("37") == "SIGRTMIN+3"
    assert convert.stop_signal_name(0) is None
    assert convert.stop_signal_name(None) is None


def test_error_mapping() -> None:
    assert isinstance(error_for(404, "no such container"), ContainerNotFound)
    assert isinstance(
        error_for(404, "nonexist:1: image not known", missing=ImageNotFound), ImageNotFound
    )
    assert isinstance(error_for(500, "container state improper"), Conflict)
    assert isinstance(error_for(409, "anything"), Conflict)
    assert isinstance(error_for(400, "bad"), InvalidSpec)
    other = error_for(500, "something else")
    assert type(other) is EngineError


def test_init_and_exec_failures() -> None:
    assert (
        init_exec_failure(b"ERROR (catatonit:6): failed to exec pid1: No such file or directory\n")
        == 127
    )
    assert (
        init_exec_failure(b"ERROR (catatonit:6): failed to exec pid1: Permission denied\n") == 126
    )
    assert init_exec_failure(b"exit 1 for another reason\n") is None
    stderr = (
        b'Error: runc: exec failed: unable to start container process: exec: "x": '
        b"executable file not found in $PATH\n"
        b"Error: read unixpacket @->/proc/self/fd/14/attach: read: connection reset by peer\n"
    )
    failed = exec_start_failure(127, stderr)
    assert failed is not None and failed[0] == 126 and b"unixpacket" not in failed[1]
    assert exec_start_failure(127, b"sh: x: not found\n") is None


def test_build_log_failure() -> None:
    seen: list[str] = []
    log = BuildLog(progress=seen.append)
    for item in [
        {"stream": "STEP 1/3: FROM scratch\n"},
        {"stream": "STEP 2/3: RUN echo some-output; exit 3\nsome-"},
        {"stream": "output\n"},
        {
            "error": 'building at STEP "RUN echo some-output; exit 3": while running runtime: '
            "exit status 3\n"
        },
    ]:
        log.feed(item)
    with pytest.raises(EngineError) as err:
        log.finish()
    assert seen == [
        "STEP 1/3: FROM scratch",
        "STEP 2/3: RUN echo some-output; exit 3",
        "some-output",
    ]
    assert err.value.step == "RUN echo some-output; exit 3"  # type: ignore[attr-defined]
    assert err.value.exit_code == 3  # type: ignore[attr-defined]
    assert "some-output" in err.value.output  # type: ignore[attr-defined]


def test_build_log_failure_of_a_silent_step_quotes_no_earlier_step() -> None:
    log = BuildLog()
    for item in [
        {"stream": "STEP 1/3: FROM scratch\n"},
        {"stream": "STEP 2/3: ENV TOKEN=s3cr3t-value\n"},
        {"stream": "--> 5752490f4a0\n"},
        {"stream": "STEP 3/3: RUN exit 4\n"},
        {"error": 'building at STEP "RUN exit 4": while running runtime: exit status 4\n'},
    ]:
        log.feed(item)
    with pytest.raises(EngineError) as err:
        log.finish()
    assert err.value.step == "RUN exit 4"  # type: ignore[attr-defined]
    assert err.value.exit_code == 4  # type: ignore[attr-defined]
    assert "s3cr3t-value" not in str(err.value)
    assert "STEP" not in err.value.output.replace("building at STEP", "")  # type: ignore[attr-defined]


def test_build_log_success_image_id() -> None:
    log = BuildLog()
    log.feed({"stream": "--> 5752490f4a0\n"})
    log.feed({"stream": "5752490f4a0f4b37b9612b65382b52e80b7c654f6f90db7454442c2700e66b0f\n"})
    log.finish()
    assert log.image_id == "sha256:5752490f4a0f4b37b9612b65382b52e80b7c654f6f90db7454442c2700e66b0f"
    assert log.committed == ["5752490f4a0"]


def test_oom_from_events() -> None:
    def ev(*names: str) -> list[dict[str, str]]:
        return [{"status": n} for n in names]

    assert convert.oom_killed_from_events(ev("create", "init", "start", "died")) == (True, True)
    assert convert.oom_killed_from_events(ev("create", "start")) == (True, False)
    assert convert.oom_killed_from_events(ev("start", "kill", "died")) == (False, True)
    assert convert.oom_killed_from_events(ev("start", "stop", "died")) == (False, True)
    assert convert.oom_killed_from_events(ev("start", "kill", "died", "start", "died")) == (
        True,
        True,
    )
    assert convert.oom_killed_from_events([]) == (False, False)
