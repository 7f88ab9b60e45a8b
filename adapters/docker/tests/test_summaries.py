"""container_summaries: the container list read as it is (entries as the Engine API
documents them from 1.41 to 1.51; then live dockerd, no mocks of the engine). The
scenario Docker and Podman share is in :mod:`enginekit.testing.httpdriver`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from docker_support import RUN
from enginekit_docker import DockerDriver, convert
from enginekit_docker.names import NAME_LABEL, engine_name

from enginekit.models import ContainerState, ContainerSummary, PortBinding

Make = Callable[..., str]
SLEEP = ("sleep", "100")
IMAGE_ID = "sha256:" + "b" * 64


def entry(**fields: Any) -> dict[str, Any]:
    """A ``GET /containers/json`` entry (the fields every API version from 1.41 sends)."""
    base: dict[str, Any] = {
        "Id": "a" * 64,
        "Names": ["/web"],
        "Image": "app:1",
        "ImageID": IMAGE_ID,
        "Command": "sleep 100",
        "Created": 1700000000,
        "Ports": [],
        "Labels": {"k": "v"},
        "State": "running",
        "Status": "Up 3 seconds",
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }
    return {**base, **fields}


def read(**fields: Any) -> ContainerSummary:
    summary = convert.summary_from_list(entry(**fields))
    assert summary is not None
    return summary


def test_the_fields_of_an_entry() -> None:
    s = read()
    assert (s.id, s.name, s.image, s.image_id) == ("a" * 64, "web", "app:1", IMAGE_ID)
    assert s.state is ContainerState.RUNNING and s.exit_code is None
    assert s.created_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert dict(s.labels) == {"k": "v"} and s.engine == "docker" and s.ports == ()


@pytest.mark.parametrize(
    ("state", "status", "code"),
    [
        ("exited", "Exited (0) 2 minutes ago", 0),
        ("exited", "Exited (137) Less than a second ago", 137),
        ("exited", "Exited (255) 3 weeks ago", 255),
        ("exited", "", None),  # no FinishedAt: Docker writes no status
        ("dead", "Dead", None),
        ("removing", "Removal In Progress", None),
        ("created", "Created", None),
        ("running", "Restarting (1) 2 seconds ago", None),
    ],
)
def test_the_exit_code_only_where_the_status_says_it(
    state: str, status: str, code: int | None
) -> None:
    s = read(State=state, Status=status)
    assert s.exit_code == code
    assert s.state is convert.container_state(state)


def test_ports_of_a_live_container_only() -> None:
    ports = [
        {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 49153, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 8080, "PublicPort": 49153, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},  # exposed, not published
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8000, "Type": "tcp"},
    ]
    expected = (
        PortBinding(80, "tcp", "127.0.0.1", 8000),
        PortBinding(8080, "tcp", "0.0.0.0", 49153),
        PortBinding(8080, "tcp", "::", 49153),
    )
    assert read(Ports=ports).ports == expected
    assert read(Ports=ports, State="paused", Status="Up 1 second (Paused)").ports == expected
    for state in ("created", "exited"):
        assert read(Ports=[], State=state).ports is None


def test_names_a_one_character_name_and_leaves_link_names() -> None:
    mapped = engine_name("q")
    s = read(Names=["/other/alias", f"/{mapped}"], Labels={NAME_LABEL: "q", "k": "v"})
    assert s.name == "q" and dict(s.labels) == {"k": "v"}
    assert read(Names=["/web"], Labels={NAME_LABEL: "q"}).labels[NAME_LABEL] == "q"


def test_an_image_shown_by_id_is_left_to_an_inspect() -> None:
    assert convert.summary_from_list(entry(Image=IMAGE_ID)) is None
    assert convert.summary_from_list(entry(Image="")) is None


# -- live -----------------------------------------------------------------------


def test_a_container_whose_image_lost_its_name_is_inspected(
    driver: DockerDriver, make: Make, image: str
) -> None:
    moved = f"enginekit-docker-test/moved:{RUN}"
    driver.image_tag(image, moved)
    try:
        cid = make(SLEEP, image=moved, labels={"moved": RUN})
    finally:
        driver.image_remove(moved)  # the tag only: the image keeps its other name
    [entry_] = driver._list_rows(all=True, labels={"moved": RUN}, name=None)
    assert entry_["Image"] == entry_["ImageID"]  # what Docker shows then
    [s] = driver.container_summaries(all=True, labels={"moved": RUN})
    assert s.id == cid and s.image == moved == driver.container_inspect(cid).image
