"""Containers: logs and stream_logs, and what outlives the starting process.

CONTRACT.md, "Containers" (``logs``/``stream_logs``: streams apart, bytes
unchanged, nothing split at 16 KiB, follow ends at exit, closable) and
"Semantics" (an exit code and the logs outlive the process that started the
container: another process, or a new ``Engine``, sees the same).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import enginekit
from enginekit import ContainerState, LogLine, Stream
from enginekit.testing.helpers import (
    RFC3339,
    assert_utc,
    call_within,
    parse_rfc3339,
    wait_state,
)

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory


def _finished(engine: Engine, c: Container, code: int = 0) -> Container:
    assert engine.containers.wait(c, timeout=30) == code
    return engine.containers.get(c)


def _lines(engine: Engine, c: Container, **kwargs: Any) -> list[LogLine]:
    def collect() -> list[LogLine]:
        return list(engine.containers.stream_logs(c, **kwargs))

    return call_within(30, collect)


class TestContainerLogs:
    def test_stdout_and_stderr_apart(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"])
        _finished(engine, c)
        assert engine.containers.logs(c, stderr=False) == b"out1\nout2\n"
        assert engine.containers.logs(c, stdout=False) == b"err1\nerr2\n"
        both = engine.containers.logs(c)
        assert sorted(both.splitlines(keepends=True)) == [
            b"err1\n",
            b"err2\n",
            b"out1\n",
            b"out2\n",
        ]
        assert engine.containers.logs(c, stdout=False, stderr=False) == b""

    def test_long_line_is_not_split(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo next"])
        _finished(engine, c)
        assert engine.containers.logs(c) == b"a" * 40000 + b"\nnext\n"
        lines = _lines(engine, c, follow=False)
        assert [line.data for line in lines] == [b"a" * 40000 + b"\n", b"next\n"]

    def test_long_stderr_line_is_not_split(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "head -c 70000 /dev/zero | tr '\\0' b >&2"])
        _finished(engine, c)
        assert engine.containers.logs(c, stdout=False) == b"b" * 70000
        assert engine.containers.logs(c, stderr=False) == b""

    def test_invalid_utf8_unchanged(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["printf", "\\377\\376\\n\\000\\001x\\n"])
        _finished(engine, c)
        assert engine.containers.logs(c) == b"\xff\xfe\n\x00\x01x\n"

    def test_last_line_without_newline(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["printf", "a\\nb"])
        _finished(engine, c)
        assert engine.containers.logs(c) == b"a\nb"
        assert [line.data for line in _lines(engine, c, follow=False)] == [b"a\n", b"b"]

    def test_crlf_kept(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["printf", "x\\r\\ny\\r\\n\\rz\\n"])
        _finished(engine, c)
        assert engine.containers.logs(c) == b"x\r\ny\r\n\rz\n"

    def test_empty_output(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["true"])
        _finished(engine, c)
        assert engine.containers.logs(c) == b""
        assert _lines(engine, c, follow=False) == []

    def test_timestamps_prefix(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "echo one; echo two; printf three"])
        _finished(engine, c)
        stamped = engine.containers.logs(c, timestamps=True)
        lines = stamped.splitlines(keepends=True)
        assert len(lines) == 3, stamped
        for line, want in zip(lines, [b"one\n", b"two\n", b"three"], strict=True):
            match = RFC3339.match(line)
            assert match, line
            assert line[match.end() :] == want
            parsed = parse_rfc3339(match.group(0)[:-1])
            assert abs(parsed - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=10)

    def test_stream_logs_lines(self, engine: Engine, run_container: ContainerFactory) -> None:
        script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"
        c = run_container(["sh", "-c", script])
        _finished(engine, c)
        lines = _lines(engine, c, follow=False)
        assert all(isinstance(line, LogLine) for line in lines)
        out = [line.data for line in lines if line.stream is Stream.STDOUT]
        err = [line.data for line in lines if line.stream is Stream.STDERR]
        assert out == [f"out{i}\n".encode() for i in range(1, 6)]
        assert err == [f"err{i}\n".encode() for i in range(1, 6)]
        stamps = [assert_utc(line.timestamp, "LogLine.timestamp") for line in lines]
        assert stamps == sorted(stamps)

    def test_streams_interleaved_in_time_order(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        script = (
            "echo a; usleep 200000; echo b >&2; usleep 200000; echo c; usleep 200000; echo d >&2"
        )
        c = run_container(["sh", "-c", script])
        _finished(engine, c)
        lines = _lines(engine, c, follow=False)
        assert [(line.stream, line.data) for line in lines] == [
            (Stream.STDOUT, b"a\n"),
            (Stream.STDERR, b"b\n"),
            (Stream.STDOUT, b"c\n"),
            (Stream.STDERR, b"d\n"),
        ]

    def test_much_output_complete(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["seq", "1", "100000"])
        _finished(engine, c)
        want = b"".join(b"%d\n" % i for i in range(1, 100001))
        assert engine.containers.logs(c) == want
        lines = _lines(engine, c, follow=False)
        assert len(lines) == 100000
        assert b"".join(line.data for line in lines) == want

    def test_follow_ends_when_container_exits(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "for i in 1 2 3; do echo $i; usleep 300000; done; exit 4"])
        lines = _lines(engine, c, follow=True)
        assert [line.data for line in lines if line.stream is Stream.STDOUT] == [
            b"1\n",
            b"2\n",
            b"3\n",
        ]
        assert engine.containers.get(c).state is ContainerState.EXITED

    def test_follow_of_exited_container_ends(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "echo done"])
        _finished(engine, c)
        assert [line.data for line in _lines(engine, c, follow=True)] == [b"done\n"]

    def test_follow_sees_lines_as_they_come(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "echo first; sleep 100"])
        stream = engine.containers.stream_logs(c, follow=True)
        try:
            first = call_within(30, next, stream)
            assert first.data == b"first\n"
            assert first.stream is Stream.STDOUT
        finally:
            call_within(10, _close, stream)
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_close_early_does_not_hang(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "while true; do echo tick; usleep 50000; done"])
        stream = engine.containers.stream_logs(c, follow=True)
        got = call_within(30, lambda: [next(stream) for _ in range(3)])
        assert [line.data for line in got] == [b"tick\n"] * 3
        call_within(10, _close, stream)
        with pytest.raises(StopIteration):
            next(stream)
        assert engine.containers.get(c).state is ContainerState.RUNNING

    def test_blocked_follow_ends_when_killed(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "echo once; sleep 100"])
        stream = engine.containers.stream_logs(c, follow=True)
        assert call_within(30, next, stream).data == b"once\n"
        # The reader now blocks waiting for output that never comes; stopping
        # the container must end the iteration.
        done = threading.Event()
        rest: list[LogLine] = []

        def drain() -> None:
            rest.extend(stream)
            done.set()

        threading.Thread(target=drain, daemon=True).start()
        engine.containers.kill(c)
        assert done.wait(30), "a followed stream did not end when its container was killed"
        assert rest == []
        call_within(10, _close, stream)

    def test_logs_of_created_container_are_empty(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        c = create_container(["echo", "never"])
        assert engine.containers.logs(c) == b""


def _close(stream: Iterator[LogLine]) -> None:
    close: Callable[[], None] | None = getattr(stream, "close", None)
    assert close is not None, "stream_logs must return a closable iterator"
    close()


_READER = """
import base64, json, sys
import enginekit
with enginekit.connect(sys.argv[1]) as engine:
    c = engine.containers.get(sys.argv[2])
    code = engine.containers.wait(c, timeout=60)
    c = engine.containers.get(sys.argv[2])
    print(json.dumps({
        "wait": code,
        "exit_code": c.exit_code,
        "state": c.state.name,
        "finished_at": c.finished_at.isoformat(),
        "stdout": base64.b64encode(engine.containers.logs(c, stderr=False)).decode(),
        "stderr": base64.b64encode(engine.containers.logs(c, stdout=False)).decode(),
    }))
"""

_STARTER = """
import json, sys
import enginekit
engine = enginekit.connect(sys.argv[1])
c = engine.containers.run(sys.argv[2], json.loads(sys.argv[3]), name=sys.argv[4],
                          labels=json.loads(sys.argv[5]))
print(c.id)
engine.close()
"""

_SCRIPT = "echo to-out; echo to-err >&2; printf '\\377'; exit 3"


def _python(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", *args], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode()


class TestContainerOutlivesProcess:
    def test_another_process_sees_exit_code_and_logs(
        self, engine: Engine, engine_name: str, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", _SCRIPT])
        assert engine.containers.wait(c, timeout=30) == 3
        here = engine.containers.get(c)
        seen = json.loads(_python(_READER, engine_name, c.id))
        assert seen["wait"] == 3
        assert seen["exit_code"] == 3
        assert seen["state"] == "EXITED"
        assert here.finished_at is not None
        assert dt.datetime.fromisoformat(seen["finished_at"]) == here.finished_at
        assert base64.b64decode(seen["stdout"]) == b"to-out\n\xff"
        assert base64.b64decode(seen["stderr"]) == b"to-err\n"
        assert base64.b64decode(seen["stdout"]) == engine.containers.logs(c, stderr=False)

    def test_new_engine_sees_the_same(
        self, engine: Engine, engine_name: str, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", _SCRIPT])
        assert engine.containers.wait(c, timeout=30) == 3
        here = engine.containers.get(c)
        with enginekit.connect(engine_name) as other:
            there = other.containers.get(c.id)
            assert there.exit_code == 3
            assert there.finished_at == here.finished_at
            assert there == here
            assert other.containers.logs(c.id, stderr=False) == b"to-out\n\xff"
            assert other.containers.logs(c.id, stdout=False) == b"to-err\n"

    def test_container_outlives_the_process_that_started_it(
        self,
        engine: Engine,
        engine_name: str,
        base_image: str,
        labels: dict[str, str],
        make_name: Callable[..., str],
    ) -> None:
        # The starting process exits while the container still runs; this
        # process then sees it finish, with its exit code and all its output.
        name = make_name()
        command = ["sh", "-c", "sleep 2; " + _SCRIPT]
        t0 = time.monotonic()
        cid = _python(
            _STARTER, engine_name, base_image, json.dumps(command), name, json.dumps(labels)
        ).strip()
        assert time.monotonic() - t0 < 60
        c = engine.containers.get(cid)
        assert c.name == name
        assert engine.containers.wait(cid, timeout=60) == 3
        done = wait_state(engine, cid, ContainerState.EXITED)
        assert done.exit_code == 3
        assert done.finished_at is not None
        assert engine.containers.logs(cid, stderr=False) == b"to-out\n\xff"
        assert engine.containers.logs(cid, stdout=False) == b"to-err\n"
