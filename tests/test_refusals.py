"""enginekit.refusals: each engine's words for a refusal only it can make, read one way."""

from __future__ import annotations

import pytest

from enginekit import refusals
from enginekit.errors import Conflict, InvalidSpec
from enginekit.models import PortBinding


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # Docker (start, HTTP 500), LXC's own words
            "unable to find user nosuch: no matching entries in passwd file",
            "unable to find user nosuch: no matching entries in passwd file",
        ),
        (  # Podman (start, HTTP 500)
            "unable to find group grp.x: no matching entries in group file",
            "unable to find group grp.x: no matching entries in group file",
        ),
        (  # an exec's output, as Docker sends it
            "unable to find user app-1: no matching entries in passwd file\r\n",
            "unable to find user app-1: no matching entries in passwd file",
        ),
    ],
)
def test_account_refusal(text: str, message: str) -> None:
    error = refusals.account_refusal(text)
    assert isinstance(error, InvalidSpec) and isinstance(error, ValueError)
    assert str(error) == message


@pytest.mark.parametrize(
    "text", ["unable to find user x", "no matching entries in passwd file", "exec failed"]
)
def test_account_refusal_needs_the_whole_wording(text: str) -> None:
    assert refusals.account_refusal(text) is None


BUSY = PortBinding(container_port=80, host_ip="127.0.0.1", host_port=37827)
OTHER = PortBinding(container_port=81, host_ip="127.0.0.1", host_port=3782)
RANDOM = PortBinding(container_port=82, host_ip="127.0.0.1", host_port=None)


@pytest.mark.parametrize(
    "text",
    [
        # Docker 20.10 (userland proxy), Docker 28 (native listener), its allocator
        "driver failed programming external connectivity on endpoint x (abc): Error starting"
        " userland proxy: listen tcp4 127.0.0.1:37827: bind: address already in use",
        "failed to set up container networking: driver failed programming external connectivity"
        " on endpoint x (abc): failed to bind host port for 127.0.0.1:37827:172.17.0.2:80/tcp:"
        " address already in use",
        "Bind for 127.0.0.1:37827 failed: port is already allocated",
        # Podman (4.3 and 5), LXC's relay
        "cannot listen on the TCP port: listen tcp4 127.0.0.1:37827: bind: address already in use",
    ],
)
def test_port_refusal_names_the_binding_the_engine_named(text: str) -> None:
    error = refusals.port_refusal(text, [OTHER, BUSY, RANDOM])
    assert isinstance(error, Conflict)
    assert str(error) == "host port 127.0.0.1:37827 is already in use"


def test_port_refusal_without_a_port_in_the_text() -> None:
    said = "starting some containers: address already in use"
    assert str(refusals.port_refusal(said, [BUSY, RANDOM])) == (
        "host port 127.0.0.1:37827 is already in use"
    )
    assert str(refusals.port_refusal(said, [BUSY, OTHER])) == (
        "a host port to publish is already in use"
    )
    assert refusals.port_refusal("no such container", [BUSY]) is None


def test_port_in_use_wording() -> None:
    udp6 = PortBinding(container_port=53, protocol="udp", host_ip="::1", host_port=5353)
    assert str(refusals.port_in_use(udp6)) == "host port [::1]:5353/udp is already in use"


def test_workdir_wording() -> None:
    error = refusals.workdir_not_a_directory("/bin/busybox")
    assert isinstance(error, InvalidSpec)
    assert str(error) == "cannot create the working directory /bin/busybox: not a directory"
    assert refusals.names_not_a_directory("Cannot mkdir: /bin/busybox is not a directory")
    assert refusals.names_not_a_directory("chdir to `/x`: Not a directory")
    assert not refusals.names_not_a_directory("no such file or directory")
