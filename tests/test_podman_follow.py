"""The Podman adapter's follow built from reads (enginekit_podman.follow), no engine.

A fake engine keeps a log as Podman's k8s-file does (entries in order, each
with the time conmon read it, many sharing one; long lines as partial entries)
and answers reads as libpod does: the entries stamped after ``since``, shown
with whole seconds (Podman before 5.8) or nanoseconds, the last ``tail`` lines
when asked, and an entry conmon is still writing shown cut short. Whatever the
reads meet, the follow must give every line once, whole, in order.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from enginekit_podman import follow as fw
from enginekit_podman.follow import FrameCursor, PolledFollow, format_stamp, stamp_ns

from enginekit.errors import ContainerNotFound, EngineError
from enginekit.models import LogLine, Stream

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}


def _show(ns: int, *, seconds: bool) -> bytes:
    text = format_stamp(ns)
    return (text[:19] + "Z").encode() if seconds else text.encode()


def frame(ns: int, text: bytes, *, stream: int = 1, seconds: bool = False) -> tuple[int, bytes]:
    return stream, _show(ns, seconds=seconds) + b" " + text


# -- stamps -------------------------------------------------------------------
def test_stamps_read_and_written() -> None:
    assert stamp_ns(b"2026-01-01T00:00:00Z x") == T0
    assert stamp_ns(b"2026-01-01T00:00:00.5Z x") == T0 + NS // 2
    assert stamp_ns(b"2026-01-01T00:00:00.000000001Z x") == T0 + 1
    assert stamp_ns(b"2026-01-01T02:00:00.000000001+02:00 x") == T0 + 1
    assert stamp_ns(b"2025-12-31T23:30:00-00:30 x") == T0
    assert stamp_ns(b"no stamp here") is None
    assert stamp_ns(b"2026-01-01T00:00:00Z") is None  # no space: not a prefix
    assert format_stamp(T0 + 1) == "2026-01-01T00:00:00.000000001Z"
    assert format_stamp(T0 - 1) == "2025-12-31T23:59:59.999999999Z"
    assert stamp_ns(format_stamp(T0 + 123456789).encode() + b" ") == T0 + 123456789


# -- the cursor ---------------------------------------------------------------
def _taken(
    cursor: FrameCursor, frames: list[tuple[int, bytes]], final: bool = False
) -> list[bytes]:
    return [payload.split(b" ", 1)[1] for _, payload in cursor.take(frames, final=final)]


def test_cursor_skips_what_it_took_at_the_boundary_stamp() -> None:
    cur = FrameCursor()
    assert cur.since() is None
    first = [frame(T0, b"a\n"), frame(T0, b"b\n"), frame(T0, b"c\n")]
    assert _taken(cur, first) == [b"a\n", b"b\n"]  # c waits: it may be cut short
    assert (cur.boundary, cur.at_boundary, cur.news) == (T0, 2, 3)
    assert cur.since() == format_stamp(T0 - 1)
    # The next read starts again at the boundary stamp (since is exclusive).
    second = [*first, frame(T0, b"d\n"), frame(T0 + 5, b"e\n")]
    assert _taken(cur, second) == [b"c\n", b"d\n"]
    assert (cur.boundary, cur.at_boundary, cur.news) == (T0, 4, 2)
    third = [*second[2:], frame(T0 + 5, b"f\n")]
    assert _taken(cur, third) == [b"e\n"]
    assert (cur.boundary, cur.at_boundary) == (T0 + 5, 1)


def test_cursor_takes_a_last_entry_seen_twice_unchanged() -> None:
    cur = FrameCursor()
    assert _taken(cur, [frame(T0, b"only\n")]) == []
    assert cur.held is not None and cur.news == 1
    assert _taken(cur, [frame(T0, b"only\n")]) == [b"only\n"]
    assert cur.held is None and cur.news == 0
    assert _taken(cur, [frame(T0, b"only\n")]) == []  # re-read, skipped
    assert cur.news == 0 and cur.at_boundary == 1


def test_cursor_never_takes_an_entry_cut_short() -> None:
    cur = FrameCursor()
    assert _taken(cur, [frame(T0, b"a\n"), frame(T0 + 1, b"lo\n")]) == [b"a\n"]
    # Conmon finished writing it: the whole entry differs from the part held.
    assert _taken(cur, [frame(T0, b"a\n"), frame(T0 + 1, b"long line\n")]) == []
    assert _taken(cur, [frame(T0, b"a\n"), frame(T0 + 1, b"long line\n")]) == [b"long line\n"]


def test_cursor_final_takes_everything() -> None:
    cur = FrameCursor()
    assert _taken(cur, [frame(T0, b"a\n"), frame(T0, b"b")], final=True) == [b"a\n", b"b"]
    assert cur.held is None


def test_cursor_with_whole_seconds() -> None:
    """Podman before 5.8 shows whole seconds: every entry of that second comes again."""
    cur = FrameCursor()
    log = [frame(T0 + i * 1000, b"%d\n" % i, seconds=True) for i in range(5)]
    assert _taken(cur, log[:3]) == [b"0\n", b"1\n"]
    assert cur.since() == format_stamp(T0 - 1)
    assert _taken(cur, log) == [b"2\n", b"3\n"]
    log.append(frame(T0 + NS, b"5\n", seconds=True))
    assert _taken(cur, log) == [b"4\n"]
    assert _taken(cur, log[-1:]) == [b"5\n"]  # since = the next second: only it
    assert (cur.boundary, cur.at_boundary) == (T0 + NS, 1)


def test_cursor_skips_entries_stamped_before_the_boundary() -> None:
    cur = FrameCursor()
    _taken(cur, [frame(T0 + 10, b"a\n"), frame(T0 + 10, b"b\n")], final=True)
    # An engine that ignored since, or an entry stamped earlier: not taken again.
    again = [frame(T0, b"old\n"), frame(T0 + 10, b"a\n"), frame(T0 + 10, b"b\n")]
    assert _taken(cur, [*again, frame(T0 + 11, b"c\n")], final=True) == [b"c\n"]


def test_counted_lines_as_libpod_counts_them() -> None:
    assert fw._counted_lines([]) == 0
    assert fw._counted_lines([frame(T0, b"a\n"), frame(T0, b"b"), frame(T0, b"c\n")]) == 2
    assert fw._counted_lines([frame(T0, b"a\n"), frame(T0, b"b")]) == 2


def test_alive() -> None:
    def info(status: str, finished: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
        return {"State": {"Status": status, "FinishedAt": finished}}

    assert fw.alive(info("running"), stopped_since=None, now=0)
    assert fw.alive(info("paused"), stopped_since=None, now=0)
    assert not fw.alive(info("exited"), stopped_since=None, now=0)
    assert not fw.alive(info("configured"), stopped_since=None, now=0)
    assert not fw.alive({}, stopped_since=None, now=0)
    # Stopped, its exit not recorded yet: conmon may still write, for a moment.
    assert fw.alive(info("stopped"), stopped_since=None, now=5)
    assert fw.alive(info("stopped"), stopped_since=5, now=6)
    assert not fw.alive(info("stopped"), stopped_since=5, now=5 + fw.EXIT_GRACE)
    assert not fw.alive(info("stopped", "2026-01-01T00:00:01Z"), stopped_since=None, now=0)
    assert fw.log_driver({"HostConfig": {"LogConfig": {"Type": "journald"}}}) == "journald"
    assert fw.log_driver({}) == ""


# -- a follow against a fake engine --------------------------------------------
class FakeResponse:
    def __init__(self, frames: list[tuple[int, bytes]]) -> None:
        self.body = b"".join(bytes([s, 0, 0, 0]) + len(p).to_bytes(4, "big") + p for s, p in frames)
        self.closed = False
        self.aborted = False

    def iter_chunks(self) -> Iterator[bytes]:
        for i in range(0, len(self.body), 1000):  # frames cut across reads too
            if self.aborted:
                raise EngineError("aborted")
            yield self.body[i : i + 1000]
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """A container writing at random, and libpod's reads of its k8s-file log."""

    def __init__(self, rng: random.Random, *, seconds: bool, writes: int, cut: float = 0.3) -> None:
        self.rng = rng
        self.seconds = seconds
        self.writes = writes
        self.cut = cut
        self.now = T0
        # (stamp, stream, partial, text): conmon's entries, in file order
        self.entries: list[tuple[int, int, bool, bytes]] = []
        self.open: dict[int, bool] = {1: False, 2: False}  # a line being written
        self.responses: list[FakeResponse] = []
        self.params: list[dict[str, Any]] = []

    @property
    def done(self) -> bool:
        return self.writes <= 0

    def _write(self) -> None:
        """One read from the container's pipe: entries sharing one stamp."""
        self.now += self.rng.choice([0, 0, 1, 7, 10_000, NS // 3])
        for _ in range(self.rng.randint(1, 6)):
            stream = self.rng.choice([1, 1, 2])
            text = bytes(self.rng.choice(b"abc\r\x00\xff") for _ in range(self.rng.randint(0, 9)))
            partial = self.rng.random() < 0.3
            self.entries.append((self.now, stream, partial, text))
            self.open[stream] = partial

    def _frames(self, entries: list[tuple[int, int, bool, bytes]]) -> list[tuple[int, bytes]]:
        return [
            (stream, _show(ns, seconds=self.seconds) + b" " + text + (b"" if p else b"\n"))
            for ns, stream, p, text in entries
        ]

    def read(self, params: Mapping[str, Any]) -> FakeResponse:
        self.params.append(dict(params))
        entries = list(self.entries)
        if not self.done:
            wrote = self.rng.randint(0, 3)
            for _ in range(wrote):
                self._write()
                self.writes -= 1
            entries = list(self.entries)
            if wrote and not self.done and self.rng.random() < self.cut:
                # conmon is writing the last entry: the reader sends what it found
                ns, stream, _, text = entries[-1]
                entries[-1] = (ns, stream, False, text[: self.rng.randint(0, len(text))])
        if "tail" in params:
            entries = _last_lines(entries, int(params["tail"]))
        since = params.get("since")
        if since is not None:
            bound = stamp_ns(str(since).encode() + b" ")
            assert bound is not None
            entries = [e for e in entries if e[0] > bound]
        resp = FakeResponse(self._frames(entries))
        self.responses.append(resp)
        return resp

    def inspect(self) -> dict[str, Any]:
        status = "exited" if self.done else "running"
        return {"State": {"Status": status}, "HostConfig": {"LogConfig": {"Type": "k8s-file"}}}

    def lines(self) -> list[tuple[Stream, bytes]]:
        """Every line written, in the order its end was written."""
        out: list[tuple[Stream, bytes]] = []
        buf = {1: b"", 2: b""}
        for _, stream, partial, text in self.entries:
            buf[stream] += text
            if not partial:
                out.append((STREAMS[stream], buf[stream] + b"\n"))
                buf[stream] = b""
        out.extend((STREAMS[s], b) for s, b in buf.items() if b)
        return out


def _last_lines(entries: list[tuple[int, int, bool, bytes]], tail: int) -> list[Any]:
    """libpod's tail (4.7 on): the entries of the last ``tail`` lines, counting
    full entries and a last one that is partial."""
    counted = 0
    for i in range(len(entries) - 1, -1, -1):
        if not entries[i][2] or i == len(entries) - 1:
            counted += 1
        if counted > tail:
            return entries[i + 1 :]
    return entries


def _ordered(lines: list[tuple[Stream, bytes]]) -> list[tuple[Stream, bytes]]:
    """Lines in order; the unfinished last line of each stream (at most one each,
    at the end) in stream order."""
    done = [x for x in lines if x[1].endswith(b"\n")]
    rest = [x for x in lines if not x[1].endswith(b"\n")]
    assert lines[len(done) :] == rest or not rest
    return done + sorted(rest, key=lambda x: x[0].value)


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw, "BASE_DELAY", 0.0)
    monkeypatch.setattr(fw, "IDLE_DELAY", 0.0)


def _follow(eng: FakeEngine, **kw: Any) -> PolledFollow:
    return PolledFollow(eng.read({}), read=eng.read, inspect=eng.inspect, **kw)


@pytest.mark.parametrize("seconds", [True, False], ids=["whole-seconds", "nanoseconds"])
@pytest.mark.parametrize("bounded", [False, True], ids=["full-reads", "tail-reads"])
@pytest.mark.parametrize("seed", range(25))
def test_follow_gives_every_line_once_in_order(seed: int, seconds: bool, bounded: bool) -> None:
    eng = FakeEngine(random.Random(seed), seconds=seconds, writes=300)
    follow = _follow(eng, bounded=bounded)
    got: list[LogLine] = list(follow.iterator())
    assert eng.done
    assert _ordered([(x.stream, x.data) for x in got]) == _ordered(eng.lines())
    assert all(r.closed for r in eng.responses), "a read left open"
    if bounded:
        assert any("tail" in p for p in eng.params)


def test_follow_of_an_ended_container_reads_once() -> None:
    eng = FakeEngine(random.Random(1), seconds=False, writes=0)
    eng.writes = 5
    while not eng.done:
        eng._write()
        eng.writes -= 1
    follow = _follow(eng, ended=True)
    assert [(x.stream, x.data) for x in follow.iterator()] == eng.lines()
    assert len(eng.params) == 1


@pytest.mark.parametrize("tail", [0, 3])
@pytest.mark.parametrize("seed", range(10))
def test_follow_keeps_the_last_lines_asked(seed: int, tail: int) -> None:
    eng = FakeEngine(random.Random(seed), seconds=True, writes=0)
    for _ in range(40):
        eng._write()
    first = eng.read({})
    ended = sum(1 for e in eng.entries if not e[2])  # lines ended before the follow
    eng.writes = 50  # it goes on writing while followed
    follow = PolledFollow(first, read=eng.read, inspect=eng.inspect, tail=tail)
    got = [(x.stream, x.data) for x in follow.iterator()]
    assert _ordered(got) == _ordered(eng.lines()[ended - tail :])
    # Of an ended container: the last lines, the unfinished ones too.
    for tail in (0, 5):
        again = PolledFollow(
            eng.read({}), read=eng.read, inspect=eng.inspect, tail=tail, ended=True
        )
        lines = eng.lines()
        want = lines[len(lines) - tail :]
        assert _ordered([(x.stream, x.data) for x in again.iterator()]) == _ordered(want)


def test_follow_ends_when_the_container_is_removed() -> None:
    eng = FakeEngine(random.Random(3), seconds=False, writes=10**6)
    seen: list[LogLine] = []

    def read(params: Mapping[str, Any]) -> FakeResponse:
        if len(eng.params) > 20:
            raise ContainerNotFound("gone")
        return eng.read(params)

    follow = PolledFollow(eng.read({}), read=read, inspect=eng.inspect)
    seen.extend(follow.iterator())
    assert seen  # what came before the removal, then the end


def test_abort_from_another_thread_ends_a_quiet_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw, "BASE_DELAY", 0.05)
    monkeypatch.setattr(fw, "IDLE_DELAY", 0.2)
    eng = FakeEngine(random.Random(4), seconds=False, writes=10**9, cut=0.0)
    eng.rng.randint = lambda a, b: 0  # type: ignore[method-assign]  # writes nothing
    follow = _follow(eng)
    it = follow.iterator()
    ended = threading.Event()

    def reader() -> None:
        list(it)
        ended.set()

    started = time.monotonic()
    threading.Thread(target=reader, daemon=True).start()
    deadline = started + 10
    while len(eng.params) < 3:  # it keeps asking while nothing comes
        assert time.monotonic() < deadline, f"{len(eng.params)} reads in 10 s of silence"
        time.sleep(0.01)
    assert not ended.is_set()
    # Backing off (0.05 s, up to 0.2 s between reads): not a busy loop. A slow
    # machine only reads less often.
    reads, took = len(eng.params), time.monotonic() - started
    assert reads <= 4 + took / 0.05, f"{reads} reads in {took:.2f} s of silence"
    at = time.monotonic()
    follow.abort()
    # The abort ends it (silent, the follow would read on forever); bounded
    # generously for a busy machine.
    assert ended.wait(10)
    assert time.monotonic() - at < 5
    it.close()
    assert all(r.closed for r in eng.responses)
