"""Reliability: big, binary and interleaved output comes back byte for byte.

- 10 MiB of random bytes written by the container to stdout come back through
  ``logs()``, through ``stream_logs()`` read to the end, and through a follow that
  reads while the container writes: the sha256 the container computed itself (on
  stderr) matches what was received, and the lines are lines (each ends with
  ``\\n`` except the last; none holds a ``\\n`` inside).
- Every byte value (NUL, ``\\r``, invalid UTF-8 ...) comes back unchanged on both
  streams.
- 1000 alternating stdout/stderr lines keep their stream and their order within it.
- A line of 1 MiB without a newline is one ``LogLine`` (nothing split at 16 KiB).
- ``exec`` output of several MiB on both streams comes back byte for byte.
- ``copy_from`` of a 20 MiB file, from a stopped container, byte for byte.

The container computes every checksum itself (busybox ``sha256sum``): the bytes
never pass through anything but the engine and enginekit on their way here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from enginekit.capabilities import Capability
from enginekit.models import LogLine, Stream
from enginekit.testing.helpers import call_within

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

MIB = 1024 * 1024
BIG = 10 * MIB
LONG_LINE = 1 * MIB
INTERLEAVED = 1000
EXEC_OUT = 4 * MIB
EXEC_ERR = 3 * MIB
COPY_SIZE = 20 * MIB
WAIT = 60.0

# Every byte value, then the ones that trip decoders and line splitters.
ALL_BYTES = bytes(range(256))
TRICKY = b"\x00nul\rcr-alone\r\ncrlf\xff\xfe\xc3(\xe2\x82bad-utf8\x80\xbf\xed\xa0\x80end"


def _printf_arg(data: bytes) -> str:
    """A printf format that writes ``data`` exactly (every byte as an octal escape)."""
    return "".join(f"\\{b:03o}" for b in data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum_of(stderr: bytes) -> str:
    """The hex digest ``sha256sum FILE`` printed (``<hex>  FILE\\n``)."""
    fields = stderr.split()
    assert fields and len(fields[0]) == 64, f"no sha256sum line on stderr: {stderr[:200]!r}"
    return fields[0].decode()


def _assert_lines(lines: Sequence[LogLine], what: str) -> None:
    """Each line ends with a newline except the last of its stream; none holds one inside."""
    last: dict[Stream, int] = {}
    for i, line in enumerate(lines):
        last[line.stream] = i
    for i, line in enumerate(lines):
        inner = line.data[:-1] if line.data.endswith(b"\n") else line.data
        assert b"\n" not in inner, f"{what}: line {i} holds a newline inside ({len(line.data)} B)"
        if i != last[line.stream]:
            assert line.data.endswith(b"\n"), (
                f"{what}: line {i} ({line.stream}, {len(line.data)} B) is cut before its newline"
            )


def _joined(lines: Iterable[LogLine], stream: Stream) -> bytes:
    return b"".join(line.data for line in lines if line.stream is stream)


def _ended(engine: Engine, c: Container) -> int:
    return engine.containers.wait(c, timeout=WAIT)


class TestReliabilityOutput:
    def test_ten_mib_of_random_bytes(self, engine: Engine, run_container: ContainerFactory) -> None:
        # The checksum goes to stderr first; a pause lets the follow below start
        # before the 10 MiB are written, so it reads them as they come.
        script = (
            f"head -c {BIG} /dev/urandom > /tmp/x && sha256sum /tmp/x >&2 && "
            "sleep 1 && cat /tmp/x && rm /tmp/x"
        )
        c = run_container(["sh", "-c", script])

        def follow() -> list[LogLine]:
            return list(engine.containers.stream_logs(c, follow=True))

        followed = call_within(WAIT, follow)
        assert _ended(engine, c) == 0
        expected = _checksum_of(_joined(followed, Stream.STDERR))

        out = engine.containers.logs(c, stderr=False)
        assert (len(out), _sha(out)) == (BIG, expected), "logs(): not the bytes written"
        followed_out = _joined(followed, Stream.STDOUT)
        assert (len(followed_out), _sha(followed_out)) == (BIG, expected), (
            "stream_logs(follow=True): not the bytes written"
        )
        _assert_lines(followed, "follow")

        read = list(engine.containers.stream_logs(c, follow=False))
        read_out = _joined(read, Stream.STDOUT)
        assert (len(read_out), _sha(read_out)) == (BIG, expected), (
            "stream_logs(follow=False): not the bytes written"
        )
        _assert_lines(read, "stream_logs")
        assert _checksum_of(engine.containers.logs(c, stdout=False)) == expected

    def test_every_byte_value_on_both_streams(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        payload = ALL_BYTES + TRICKY + ALL_BYTES[::-1]
        fmt = _printf_arg(payload)
        c = run_container(["sh", "-c", 'printf "$1"; printf "$1" >&2; printf "$1"', "sh", fmt])
        assert _ended(engine, c) == 0
        assert engine.containers.logs(c, stderr=False) == payload * 2
        assert engine.containers.logs(c, stdout=False) == payload
        lines = list(engine.containers.stream_logs(c, follow=False))
        assert _joined(lines, Stream.STDOUT) == payload * 2
        assert _joined(lines, Stream.STDERR) == payload
        _assert_lines(lines, "binary")
        # A line break is \n alone: \r and the rest stay inside their line.
        newlines = payload.count(b"\n")
        assert len([x for x in lines if x.stream is Stream.STDERR]) == newlines + 1

    def test_interleaved_streams_keep_their_order(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        script = (
            f'i=0; while [ "$i" -lt {INTERLEAVED} ]; do '
            'echo "out-$i"; echo "err-$i" >&2; i=$((i+1)); done'
        )
        c = run_container(["sh", "-c", script])
        assert _ended(engine, c) == 0
        lines = list(engine.containers.stream_logs(c, follow=False))
        outs = [x.data for x in lines if x.stream is Stream.STDOUT]
        errs = [x.data for x in lines if x.stream is Stream.STDERR]
        assert outs == [f"out-{i}\n".encode() for i in range(INTERLEAVED)]
        assert errs == [f"err-{i}\n".encode() for i in range(INTERLEAVED)]
        assert len(lines) == 2 * INTERLEAVED
        for stream in (Stream.STDOUT, Stream.STDERR):
            stamps = [x.timestamp for x in lines if x.stream is stream and x.timestamp]
            assert stamps == sorted(stamps), f"{stream} lines out of time order"
        assert engine.containers.logs(c, stderr=False) == b"".join(outs)
        assert engine.containers.logs(c, stdout=False) == b"".join(errs)

    def test_a_line_of_one_mib(self, engine: Engine, run_container: ContainerFactory) -> None:
        script = (
            f"head -c {LONG_LINE} /dev/zero | tr '\\000' x; printf 'y\\nz'; "
            f"head -c {LONG_LINE // 2} /dev/zero | tr '\\000' e >&2"
        )
        c = run_container(["sh", "-c", script])
        assert _ended(engine, c) == 0
        lines = list(engine.containers.stream_logs(c, follow=False))
        got = [(x.stream, len(x.data)) for x in lines]
        assert sorted(got) == sorted(
            [(Stream.STDOUT, LONG_LINE + 2), (Stream.STDOUT, 1), (Stream.STDERR, LONG_LINE // 2)]
        ), f"the long lines came back as {got}"
        outs = [x.data for x in lines if x.stream is Stream.STDOUT]
        assert outs == [b"x" * LONG_LINE + b"y\n", b"z"]
        assert _joined(lines, Stream.STDERR) == b"e" * (LONG_LINE // 2)
        assert engine.containers.logs(c, stderr=False) == b"x" * LONG_LINE + b"y\nz"

    @pytest.mark.requires(Capability.EXEC)
    def test_exec_output_of_several_mib(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sleep", "600"])
        made = engine.containers.exec(
            c,
            [
                "sh",
                "-c",
                f"head -c {EXEC_OUT} /dev/urandom > /tmp/o && "
                f"head -c {EXEC_ERR} /dev/urandom > /tmp/e && sha256sum /tmp/o /tmp/e",
            ],
        )
        assert (made.exit_code, made.stderr) == (0, b""), made
        sums = {
            path: digest for digest, path in (x.split() for x in made.stdout.decode().splitlines())
        }
        res = call_within(
            WAIT,
            engine.containers.exec,
            c,
            ["sh", "-c", "cat /tmp/o; cat /tmp/e >&2; cat /tmp/o; exit 3"],
        )
        assert res.exit_code == 3
        assert len(res.stdout) == 2 * EXEC_OUT and len(res.stderr) == EXEC_ERR
        assert _sha(res.stdout[:EXEC_OUT]) == sums["/tmp/o"]
        assert res.stdout[EXEC_OUT:] == res.stdout[:EXEC_OUT]
        assert _sha(res.stderr) == sums["/tmp/e"]

    @pytest.mark.requires(Capability.COPY)
    def test_copy_from_a_big_file(
        self, engine: Engine, run_container: ContainerFactory, tmp_path: Path
    ) -> None:
        c = run_container(
            ["sh", "-c", f"head -c {COPY_SIZE} /dev/urandom > /big && sha256sum /big"]
        )
        assert _ended(engine, c) == 0
        expected = _checksum_of(engine.containers.logs(c, stderr=False))
        call_within(WAIT, engine.containers.copy_from, c, "/big", tmp_path / "big")
        data = (tmp_path / "big").read_bytes()
        assert (len(data), _sha(data)) == (COPY_SIZE, expected)
        (tmp_path / "into").mkdir()
        call_within(WAIT, engine.containers.copy_from, c, "/big", tmp_path / "into")
        assert sorted(p.name for p in (tmp_path / "into").iterdir()) == ["big"]
        again = (tmp_path / "into" / "big").read_bytes()
        assert (len(again), _sha(again)) == (COPY_SIZE, expected)
