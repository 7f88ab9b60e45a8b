"""benchmarks/bench_remote.py without an engine: its raw path keeps one connection
alive, its goals read the figures right, and it refuses what it cannot measure."""

from __future__ import annotations

import importlib
import json
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("bench_remote")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _serve(sock: socket.socket, answers: int) -> None:
    """Answer ``answers`` GETs on one connection, keep-alive, then close."""
    with sock, sock.makefile("rb") as reader:
        for n in range(answers):
            while reader.readline() not in (b"\r\n", b""):
                pass
            body = json.dumps({"n": n}).encode()
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


class FakeDialer:
    def __init__(self) -> None:
        self.servers: list[threading.Thread] = []

    def dial(self, timeout: float | None) -> socket.socket:
        ours, theirs = socket.socketpair()
        server = threading.Thread(target=_serve, args=(theirs, 3), daemon=True)
        server.start()
        self.servers.append(server)
        return ours


def test_the_raw_path_sends_every_request_on_one_dialed_connection(bench: ModuleType) -> None:
    dialer = FakeDialer()
    raw = bench.RawDialed(dialer, "/v1.51")
    try:
        answers = [raw.request("GET", "/containers/x/json")["n"] for _ in range(3)]
    finally:
        raw.close()
    assert answers == [0, 1, 2]
    assert raw.dials == 1
    assert len(dialer.servers) == 1


def _results(ratio: float, masters: int) -> dict[str, Any]:
    variants = {"enginekit": {"median_ms": ratio}, "raw": {"median_ms": 1.0}}
    return {
        "docker+ssh://h": {
            "cases": {"inspect": {"variants": variants}},
            "handshake": {"masters_started": masters, "once_per_engine": masters == 1},
        }
    }


def test_goals_judge_the_ratio_and_the_masters(bench: ModuleType) -> None:
    met = bench.goal_lines(_results(1.2, 1))
    assert [g["met"] for g in met] == [True, True]
    missed = bench.goal_lines(_results(1.4, 2))
    assert [g["met"] for g in missed] == [False, False]
    assert missed[1]["masters_started"] == 2


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--engine", "ssh://h"],
        ["--engine", "docker"],
        ["--loopback", "--engine", "lxc"],
        ["--loopback", "--threads", "9"],
    ],
)
def test_refuses_what_it_cannot_measure(bench: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(argv)
    assert exc.value.code == 2
