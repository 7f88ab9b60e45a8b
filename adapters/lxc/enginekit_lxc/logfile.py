"""The container log: framed records, binary-safe, appended by the monitor.

A record is a 13-byte header, ``kind`` (1 byte: 1 stdout, 2 stderr, 3 a run
started, 4 a run ended), ``timestamp`` (int64 ns since the epoch, UTC) and
``length`` (uint32), then ``length`` bytes of output exactly as read from the
container. Lines are assembled only when reading, so a line of any length
comes back whole. A restart appends a new run to the same file (as Docker).

Writing uses the standard library only: the monitor imports this module.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "END",
    "START",
    "STDERR",
    "STDOUT",
    "iter_lines",
    "iter_records",
    "record",
]

STDOUT, STDERR, START, END = 1, 2, 3, 4
_HEADER = struct.Struct(">BqI")


def record(kind: int, data: bytes = b"", ts_ns: int | None = None) -> bytes:
    """One framed record (write it with a single ``os.write`` on an O_APPEND fd)."""
    return _HEADER.pack(kind, time.time_ns() if ts_ns is None else ts_ns, len(data)) + data


def iter_records(
    path: str,
    *,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
    poll: float = 0.01,
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, int, bytes]]:
    """``(kind, ts_ns, data)`` for each record; with ``follow`` keeps reading
    until an END record is the last one and ``still_running()`` is False (or
    the file ends while ``still_running()`` says the container is not running),
    or until ``stop`` is set (from any thread: a wait for more ends at once)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally, across yields
    except FileNotFoundError:
        return
    try:
        buf = b""
        while True:
            if stop is not None and stop.is_set():
                return
            chunk = fh.read(1 << 16)
            if not chunk:
                if not follow:
                    return
                # At the end (perhaps inside a record being written).
                if still_running is None or not still_running():
                    # One more read: output written just before the state changed.
                    chunk = fh.read(1 << 16)
                    if not chunk:
                        return  # a record cut short by a dead writer is dropped
                else:
                    if stop is None:
                        time.sleep(poll)
                    else:
                        stop.wait(poll)
                    continue
            buf += chunk
            pos = 0
            while len(buf) - pos >= _HEADER.size:
                kind, ts, length = _HEADER.unpack_from(buf, pos)
                end = pos + _HEADER.size + length
                if end > len(buf):
                    break
                yield kind, ts, buf[pos + _HEADER.size : end]
                pos = end
            buf = buf[pos:]
    finally:
        fh.close()


def iter_lines(
    records: Iterator[tuple[int, int, bytes]],
    *,
    stdout: bool = True,
    stderr: bool = True,
    flush_partial: bool = True,
) -> Iterator[tuple[int, int, bytes]]:
    """``(stream, ts_ns, line)`` from records: lines end in ``\\n`` except a
    last one cut by the end of a run (or of the records when ``flush_partial``)."""
    pending: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
    first_ts: dict[int, int] = {STDOUT: 0, STDERR: 0}
    wanted = {STDOUT: stdout, STDERR: stderr}

    def flush() -> Iterator[tuple[int, int, bytes]]:
        for stream in (STDOUT, STDERR):
            if pending[stream]:
                if wanted[stream]:
                    yield stream, first_ts[stream], bytes(pending[stream])
                pending[stream].clear()

    for kind, ts, data in records:
        if kind in (START, END):
            yield from flush()
            continue
        if kind not in pending:
            continue
        buf = pending[kind]
        if not buf:
            first_ts[kind] = ts
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            buf += data[start : nl + 1]
            if wanted[kind]:
                yield kind, first_ts[kind], bytes(buf)
            buf.clear()
            first_ts[kind] = ts
            start = nl + 1
        if start < len(data):
            if not buf:
                first_ts[kind] = ts
            buf += data[start:]
    if flush_partial:
        yield from flush()


def open_for_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
