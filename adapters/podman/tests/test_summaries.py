"""container_summaries: rows of ``GET /libpod/containers/json`` read as they are (rows
as Podman 4.3 to 5.x send them). The live scenario Docker and Podman share is in
:mod:`enginekit.testing.httpdriver`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from enginekit_podman import convert

from enginekit.models import ContainerState, ContainerSummary, PortBinding

IMAGE_ID = "b" * 64


#: A libpod list row (the fields read; others as Podman sends them).
ROW: dict[str, Any] = {
    "AutoRemove": False,
    "Command": ["sleep", "100"],
    "Created": "2024-01-02T03:04:05.123456789Z",
    "CreatedAt": "",
    "Exited": False,
    "ExitedAt": -62135596800,
    "ExitCode": 0,
    "Id": "a" * 64,
    "Image": "localhost/app:1",
    "ImageID": IMAGE_ID,
    "IsInfra": False,
    "Labels": {"k": "v", "io.buildah.version": "1.28.0"},
    "Names": ["web"],
    "Pid": 0,
    "Ports": None,
    "StartedAt": 0,
    "State": "running",
    "Status": "",
}


def read(**fields: Any) -> ContainerSummary:
    """The summary of :data:`ROW` with ``fields`` changed."""
    summary = convert.summary_from_list({**ROW, **fields})
    assert summary is not None
    return summary


def test_the_fields_of_a_row() -> None:
    s = read()
    assert (s.id, s.name, s.image, s.image_id) == ("a" * 64, "web", "app:1", "sha256:" + IMAGE_ID)
    assert s.created_at == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    assert s.state is ContainerState.RUNNING and s.exit_code is None and s.ports == ()
    assert dict(s.labels) == {"k": "v"} and s.engine == "podman"
    assert read(Created=1704164645).created_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert read(Image="docker.io/library/busybox:latest").image == "busybox:latest"
    assert read(Image="127.0.0.1:5000/team/app:2").image == "127.0.0.1:5000/team/app:2"


@pytest.mark.parametrize(
    ("state", "code", "known"),
    [
        ("exited", 0, 0),
        ("stopped", 3, 3),
        ("exited", 137, 137),
        ("exited", 1, None),  # Podman's init: also "the command could not be started"
        ("created", 0, None),
        ("configured", 0, None),
        ("running", 0, None),
        ("paused", 0, None),
    ],
)
def test_the_exit_code_of_an_exited_container(state: str, code: int, known: int | None) -> None:
    assert read(State=state, ExitCode=code).exit_code == known


def test_ports_of_a_live_container_only() -> None:
    ports = [
        {"host_ip": "", "container_port": 8000, "host_port": 9000, "range": 2, "protocol": "tcp"},
        {"host_ip": "127.0.0.1", "container_port": 53, "host_port": 5353, "protocol": "tcp,udp"},
    ]
    expected = (
        PortBinding(53, "tcp", "127.0.0.1", 5353),
        PortBinding(53, "udp", "127.0.0.1", 5353),
        PortBinding(8000, "tcp", "0.0.0.0", 9000),
        PortBinding(8001, "tcp", "0.0.0.0", 9001),
    )
    assert read(Ports=ports).ports == expected
    assert read(Ports=ports, State="paused").ports == expected
    for state in ("created", "exited", "stopped"):
        assert read(Ports=ports, State=state).ports is None


@pytest.mark.parametrize("image", [IMAGE_ID, IMAGE_ID[:12], "sha256:" + IMAGE_ID, ""])
def test_an_image_named_by_id_is_left_to_an_inspect(image: str) -> None:
    assert convert.summary_from_list({**ROW, "Image": image}) is None
