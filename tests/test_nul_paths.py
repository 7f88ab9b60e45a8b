"""A NUL character in a path argument is ``InvalidSpec`` before any engine call.

The core's checks (:mod:`enginekit.validate`, :mod:`enginekit.archive`,
:mod:`enginekit.buildcontext`) are exercised here over a driver that records every
call it gets; the contract suite (``test_reliability_inputs``) checks the same
refusals on real engines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from enginekit import InvalidSpec, archive
from enginekit import validate as v
from enginekit.buildcontext import dockerfile_path, resolve_context, validate_build


class RecordingDriver:
    """Records every method called on it; any call is a failure of the test."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: object, **kwargs: object) -> None:
            self.calls.append(name)
            raise AssertionError(f"the engine was called ({name}) before the check")

        return call


@pytest.mark.parametrize("value", ["x\0y", "/tmp/a\0", "\0", Path("/tmp/a\0b"), "rel/a\0b"])
def test_host_path_refuses_nul(value: object) -> None:
    with pytest.raises(InvalidSpec, match="host_path must not contain a NUL character"):
        v.host_path(value, "host_path")


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "must not be empty"), (b"/tmp/x", "must be a str"), (12, "must be a path")],
)
def test_host_path_refuses_other_values(value: object, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        v.host_path(value, "host_path")


def test_host_path_accepts_str_and_pathlike(tmp_path: Path) -> None:
    assert v.host_path(str(tmp_path), "host_path") == str(tmp_path)
    assert v.host_path(tmp_path, "host_path") == str(tmp_path)
    assert v.host_path("relative/file", "host_path") == "relative/file"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda d, t: archive.copy_from(d, "c" * 64, "/etc/passwd", "x\0y"), "host_path"),
        (lambda d, t: archive.copy_from(d, "c" * 64, "/etc/passwd", f"{t}/a\0b"), "host_path"),
        (lambda d, t: archive.copy_from(d, "c" * 64, "/etc/pa\0sswd", t), "container_path"),
        (lambda d, t: archive.copy_to(d, "c" * 64, f"{t}/x\0y", "/tmp"), "host_path"),
        (lambda d, t: archive.copy_to(d, "c" * 64, t, "/tm\0p"), "container_path"),
    ],
)
def test_copy_refuses_nul_before_any_engine_call(tmp_path: Path, call: Any, field: str) -> None:
    driver = RecordingDriver()
    with pytest.raises(InvalidSpec, match=f"{field} must not contain a NUL character"):
        call(driver, str(tmp_path))
    assert driver.calls == []
    assert os.listdir(tmp_path) == []  # no staging folder left


def test_build_refuses_nul_in_the_context_and_the_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InvalidSpec, match="dockerfile must not contain a NUL character"):
        validate_build(str(tmp_path), "Docker\0file")
    with pytest.raises(InvalidSpec, match="dockerfile must not contain a NUL character"):
        dockerfile_path(str(tmp_path), "Docker\0file")
    with pytest.raises(InvalidSpec, match="build context must not contain a NUL character"):
        resolve_context(f"{tmp_path}\0x")
    with pytest.raises(InvalidSpec, match="build context must not contain a NUL character"):
        validate_build(f"{tmp_path}\0x")


class AllCapabilitiesDriver(RecordingDriver):
    """A recording driver that declares every capability (so the facade's checks run)."""

    name = "recording"
    address = "nowhere"
    unsupported: dict[str, str] = {}

    @property
    def capabilities(self) -> frozenset[Any]:
        from enginekit import Capability

        return frozenset(Capability)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e, t: e.containers.copy_to("c" * 64, 5, "/tmp"), "host_path must be a path"),
        (lambda e, t: e.containers.copy_to("c" * 64, None, "/tmp"), "host_path must be a path"),
        (lambda e, t: e.containers.copy_from("c" * 64, "/tmp", 5), "host_path must be a path"),
        (lambda e, t: e.containers.copy_from("c" * 64, "/tmp", b"/x"), "host_path must be a str"),
        (lambda e, t: e.images.build(t, tags=5), "tags must be a list of str, not int"),
    ],
)
def test_facade_refuses_values_of_a_wrong_type_before_any_engine_call(
    tmp_path: Path, call: Any, message: str
) -> None:
    from enginekit import Engine

    driver = AllCapabilitiesDriver()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InvalidSpec, match=message):
        call(Engine(driver), str(tmp_path))  # type: ignore[arg-type]
    assert driver.calls == []
