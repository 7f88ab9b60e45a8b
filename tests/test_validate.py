"""The core's input checks: every engine gets the same refusals."""

from __future__ import annotations

import pytest

from enginekit import InvalidSpec
from enginekit import validate as v
from enginekit.models import Mount, PortBinding


def spec(**kw: object) -> object:
    return v.container_spec("busybox", ["true"], kw)


@pytest.mark.parametrize("name", ["a", "A0", "x" * 63, "a_b.c-d", "0abc"])
def test_valid_names(name: str) -> None:
    assert v.name(name) == name


@pytest.mark.parametrize("name", ["", "-a", ".a", "_a", "a/b", "a b", "x" * 64, "é", 5, None])
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidSpec):
        v.name(name)


def test_invalid_spec_is_value_error() -> None:
    with pytest.raises(ValueError):
        spec(name="bad name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("64m", 64 * 1024**2),
        ("64M", 64 * 1024**2),
        ("1g", 1024**3),
        ("512MiB", 512 * 1024**2),
        ("7000k", 7000 * 1024),
        (67108864, 67108864),
        ("1.5g", int(1.5 * 1024**3)),
    ],
)
def test_memory_units(value: object, expected: int) -> None:
    assert v.memory(value) == expected


@pytest.mark.parametrize("value", [-1, 0, "64x", "", "m", True, 1.5, "5m", 1024])
def test_memory_refused(value: object) -> None:
    with pytest.raises(InvalidSpec):
        v.memory(value)


def test_string_command_refused() -> None:
    with pytest.raises(InvalidSpec, match="not a string"):
        v.container_spec("busybox", "echo hi", {})
    with pytest.raises(InvalidSpec):
        v.container_spec("busybox", [], {})
    with pytest.raises(InvalidSpec):
        spec(entrypoint="sh -c")


def test_unknown_key_refused() -> None:
    with pytest.raises(InvalidSpec, match="unknown container spec key"):
        spec(volumes={"/a": "/b"})


@pytest.mark.parametrize(
    "env", [{"A=B": "x"}, {"": "x"}, {"A": "x\0y"}, {"A": "line\nbreak"}, {"A": 1}, {"1A": "x"}]
)
def test_env_refused(env: object) -> None:
    with pytest.raises(InvalidSpec):
        spec(env=env)


def test_env_values_kept_exactly() -> None:
    env = {"A": " spaced = value ", "B": "ünïcødé", "C": ""}
    assert dict(spec(env=env).env) == env  # type: ignore[attr-defined]


def test_env_value_not_in_message() -> None:
    with pytest.raises(InvalidSpec) as info:
        spec(env={"TOKEN": "s3cr3t\nvalue"})
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("labels", [{"": "x"}, {"a=b": "x"}, {"a": None}, {"a": "x\0"}, ["a"]])
def test_labels_refused(labels: object) -> None:
    with pytest.raises(InvalidSpec):
        spec(labels=labels)


def test_ports() -> None:
    got = v.ports({8080: None, "53/udp": 5353, 80: ("127.0.0.1", 8000)})
    assert got == (
        PortBinding(container_port=53, protocol="udp", host_ip="127.0.0.1", host_port=5353),
        PortBinding(container_port=80, protocol="tcp", host_ip="127.0.0.1", host_port=8000),
        PortBinding(container_port=8080, protocol="tcp", host_ip="127.0.0.1", host_port=None),
    )


@pytest.mark.parametrize(
    "ports", [{0: 1}, {70000: 1}, {80: -1}, {80: ("nope", 1)}, {"80/sctp": 1}, [80], {80: (1,)}]
)
def test_ports_refused(ports: object) -> None:
    with pytest.raises(InvalidSpec):
        v.ports(ports)


def test_mounts(tmp_path: object) -> None:
    src = str(tmp_path)
    assert v.mounts([f"{src}:/data:ro"]) == (Mount(source=src, target="/data", read_only=True),)
    assert v.mounts({src: {"bind": "/d", "mode": "rw"}}) == (Mount(source=src, target="/d"),)
    for bad in ([f"{src}:rel"], ["rel:/x"], [f"{src}/missing:/x"], [f"{src}:/x:zz"], "x"):
        with pytest.raises(InvalidSpec):
            v.mounts(bad)


@pytest.mark.parametrize("cpus", [0, -1, 0.001, 1e9, float("nan"), "1"])
def test_cpus_refused(cpus: object) -> None:
    with pytest.raises(InvalidSpec):
        spec(cpus=cpus)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("SIGTERM", "SIGTERM"), ("term", "SIGTERM"), (9, "SIGKILL"), ("15", "SIGTERM")],
)
def test_signals(value: object, expected: str) -> None:
    assert v.signal_name(value) == expected


@pytest.mark.parametrize("value", ["SIGNOPE", 999, "", None])
def test_bad_signals(value: object) -> None:
    with pytest.raises(InvalidSpec):
        v.signal_name(value)


# Image references: tests/test_reference.py.


@pytest.mark.parametrize("ref", ["", "UPPER", "a b", "x:", "x:-bad", "sha256:xyz", "a@sha256:00"])
def test_bad_image_refs(ref: str) -> None:
    with pytest.raises(InvalidSpec):
        v.image_ref(ref)


def test_other_fields() -> None:
    s = spec(
        workdir="/w",
        user="1000:1000",
        hostname="box-1",
        network="none",
        pids_limit=10,
        stop_signal="SIGINT",
    )
    assert (s.workdir, s.user, s.hostname, s.network, s.pids_limit, s.stop_signal) == (  # type: ignore[attr-defined]
        "/w",
        "1000:1000",
        "box-1",
        "none",
        10,
        "SIGINT",
    )
    for bad in (
        {"workdir": "rel"},
        {"user": "a b"},
        {"hostname": "-x"},
        {"network": "weird"},
        {"pids_limit": 0},
        {"stop_signal": "SIGSTOP"},
    ):
        with pytest.raises(InvalidSpec):
            spec(**bad)


def test_arguments_and_env_strings_up_to_the_kernels_limit() -> None:
    assert v.MAX_ARG_BYTES == 131071
    assert v.argv(["x" * v.MAX_ARG_BYTES]) == ("x" * v.MAX_ARG_BYTES,)
    assert v.argv(["é" * (v.MAX_ARG_BYTES // 2)])  # counted in UTF-8 bytes
    assert v.env({"A": "x" * (v.MAX_ARG_BYTES - 2)})  # "A=" + value
    for bad in (
        lambda: v.argv(["x" * (v.MAX_ARG_BYTES + 1)]),
        lambda: v.argv(["é" * (v.MAX_ARG_BYTES // 2 + 1)]),
        lambda: spec(entrypoint=["x" * (v.MAX_ARG_BYTES + 1)]),
        lambda: v.env({"A": "x" * (v.MAX_ARG_BYTES - 1)}),
    ):
        with pytest.raises(InvalidSpec, match="longer than 131071 bytes") as info:
            bad()
        assert "xxx" not in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"command": ["echo", "a\udcffb"]},
        {"env": {"A": "s3cr3t\udcff"}},
        {"labels": {"k": "\udcff"}},
        {"labels": {"\udcff": "v"}},
        {"workdir": "/a\udcffb"},
    ],
)
def test_a_lone_surrogate_is_refused(bad: dict[str, object]) -> None:
    command = bad.pop("command", ["true"])
    with pytest.raises(InvalidSpec, match="must be UTF-8 text") as info:
        v.container_spec("busybox", command, bad)
    assert "s3cr3t" not in str(info.value)


def test_a_host_path_may_name_a_file_that_is_not_utf8() -> None:
    assert v.host_path("/tmp/a\udcffb", "host_path") == "/tmp/a\udcffb"


def test_container_paths_within_the_kernels_limits() -> None:
    longest = ("/" + "/".join(["n" * 255] * 16))[: v.MAX_PATH_BYTES]
    assert len(longest) == v.MAX_PATH_BYTES == 3839
    assert v.abs_path(longest, "workdir") == longest
    for bad, says in (
        (longest + "x", "longer than 3839 bytes"),
        ("/" + "n" * 256, "component longer than 255 bytes"),
        ("/a/" + "é" * 128 + "/b", "component longer than 255 bytes"),
    ):
        with pytest.raises(InvalidSpec, match=says):
            v.abs_path(bad, "workdir")
    with pytest.raises(InvalidSpec, match="workdir has a component longer"):
        spec(workdir="/" + "w" * 300)
