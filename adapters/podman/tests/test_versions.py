"""Version negotiation: which libpod API is spoken, once per connection.

The headers are those Podman sends on ``/_ping`` (recorded from 4.3.1 on
this machine; 5.x sends the same names). The driver-level tests talk to a
stand-in HTTP service on a unix socket in a temporary folder, answering
``/_ping`` with a given version and ``/info`` with a recorded answer: they
check what the driver asks, in what order, and how often.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Iterator

import pytest
from enginekit_podman import connect
from enginekit_podman.versions import NEWEST, OLDEST, negotiate, parse_version

from enginekit.errors import EngineUnavailable, Unsupported

from .fakeservice import FakeService, serve

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture
def service(tmp_path: pathlib.Path) -> Iterator[FakeService]:
    with serve(tmp_path / "podman.sock") as server:
        server.ping_headers = dict(PING_586)
        info = json.loads((DATA / "info_4.3.1_rootful_v1.json").read_text())
        server.routes["/libpod/info"] = info
        yield server


# What Podman 4.3.1 answers on /_ping (recorded), and 5.8.6 (same names).
PING_431 = {
    "Api-Version": "1.41",
    "Libpod-Api-Version": "4.3.1",
    "Libpod-Buildah-Version": "1.28.2",
    "Server": "Libpod/4.3.1 (linux)",
}
PING_586 = {
    "Api-Version": "1.44",
    "Libpod-Api-Version": "5.8.6",
    "Server": "Libpod/5.8.6 (linux)",
}


def ping(libpod: str, compat: str = "1.41") -> dict[str, str]:
    return {"Api-Version": compat, "Libpod-Api-Version": libpod, "Server": f"Libpod/{libpod}"}


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("4.3.1", (4, 3, 1)),
        ("5.8.6", (5, 8, 6)),
        ("5.0.0-dev", (5, 0, 0)),
        ("v4.9", (4, 9, 0)),
        ("6.0.0-rc1", (6, 0, 0)),
        ("", None),
        ("four", None),
    ],
)
def test_parse_version(text: str, parsed: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == parsed


def test_the_engines_own_version_is_spoken() -> None:
    old = negotiate(PING_431, address="a", hint="h")
    assert old.prefix == "/v4.3.1/libpod" and old.api_version == "4.3.1"
    assert old.engine == (4, 3, 1) and old.compat == "1.41"
    assert not old.at_least(5)
    new = negotiate(PING_586, address="a", hint="h")
    assert new.prefix == "/v5.8.6/libpod" and new.at_least(5)


def test_a_later_5x_is_spoken_to_as_the_newest_known() -> None:
    later = negotiate(ping("5.12.0"), address="a", hint="h")
    assert later.spoken == NEWEST and later.engine == (5, 12, 0)
    assert later.prefix == "/v5.8.6/libpod"
    assert later.engine_text == "5.12.0"


def test_header_names_are_case_insensitive_and_server_is_a_fallback() -> None:
    lower = negotiate({"libpod-api-version": "5.0.0"}, address="a", hint="h")
    assert lower.engine == (5, 0, 0)
    by_server = negotiate({"Server": "Libpod/4.9.4 (linux)"}, address="a", hint="h")
    assert by_server.engine == (4, 9, 4)


@pytest.mark.parametrize("version", ["4.2.0", "4.0.0", "3.4.4"])
def test_too_old_is_unsupported_naming_both_versions(version: str) -> None:
    with pytest.raises(Unsupported) as err:
        negotiate(ping(version), address="a", hint="h")
    text = str(err.value)
    assert version in text
    assert f"{OLDEST[0]}.{OLDEST[1]}" in text and "5.x" in text
    assert "upgrade Podman" in text
    assert err.value.engine == "podman"


def test_an_unknown_major_is_unsupported() -> None:
    with pytest.raises(Unsupported) as err:
        negotiate(ping("6.0.0"), address="a", hint="h")
    text = str(err.value)
    assert "6.0.0" in text and "5.x" in text and "6.x" in text


def test_not_podman_is_unavailable_not_invalid() -> None:
    # A Docker socket given as Podman's: /_ping answers, without a libpod version.
    with pytest.raises(EngineUnavailable) as err:
        negotiate({"Api-Version": "1.51", "Server": "Docker/28.5.2 (linux)"}, address="a", hint="h")
    assert "1.51" in str(err.value) and "not Podman" in str(err.value)


def test_an_unreadable_version_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        negotiate(ping("next"), address="a", hint="h")


# --------------------------------------------------------------------------- driver


def test_negotiated_lazily_once_then_every_path_carries_it(service: FakeService) -> None:
    d = connect(service.address)
    assert service.seen == []  # connect does no I/O
    d.info()
    d.info()
    assert service.seen[0] == "/_ping"
    assert service.seen.count("/_ping") == 1
    assert [p for p in service.seen if p != "/_ping"][:1] == ["/v5.8.6/libpod/info"]
    assert all(p.startswith("/v5.8.6/libpod/") for p in service.seen[1:])
    d.close()


def test_many_threads_at_first_use_ping_once(service: FakeService) -> None:
    d = connect(service.address)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def use() -> None:
        start.wait()
        try:
            d.capabilities  # noqa: B018 - the property asks the engine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert service.seen.count("/_ping") == 1
    assert service.seen.count("/v5.8.6/libpod/info") == 1  # capabilities asked once
    d.close()


def test_ping_settles_the_version_without_another_round_trip(service: FakeService) -> None:
    d = connect(service.address)
    d.ping()
    d.info()
    assert service.seen.count("/_ping") == 1
    d.ping()  # ping still asks each time (it checks reachability)
    assert service.seen.count("/_ping") == 2
    d.close()


def test_info_names_both_api_versions(service: FakeService) -> None:
    service.ping_headers = ping("5.9.1", "1.44")
    d = connect(service.address)
    info = d.info()
    assert info.api_version == "5.8.6"  # what the adapter speaks
    assert info.max_api_version == "5.9.1"  # what the engine serves
    assert info.cgroup_version == 1 and info.rootless is False
    assert info.image_store == "overlay"
    d.close()


@pytest.mark.parametrize(("version", "wanted"), [("4.2.1", "4.3"), ("6.1.0", "5.x")])
def test_an_engine_out_of_range_is_unsupported_before_any_libpod_call(
    service: FakeService, version: str, wanted: str
) -> None:
    service.ping_headers = ping(version)
    d = connect(service.address)
    with pytest.raises(Unsupported) as err:
        d.ping()
    assert version in str(err.value) and wanted in str(err.value)
    with pytest.raises(Unsupported):
        d.info()
    with pytest.raises(Unsupported):
        d.container_list(all=True)
    assert set(service.seen) == {"/_ping"}
    d.close()


def test_a_docker_socket_is_unavailable(service: FakeService) -> None:
    service.ping_headers = {"Api-Version": "1.51", "Server": "Docker/28.5.2 (linux)"}
    d = connect(service.address)
    with pytest.raises(EngineUnavailable) as err:
        d.ping()
    assert str(service.server_address) in str(err.value)
    d.close()
