"""The follow of a container's log (enginekit_podman.follow), against the live service.

libpod's own follow of the log file loses lines under a fast writer; the
adapter's follow, made of reads with ``since``, must give every line once, in
order, while the container writes, with ``since`` and ``tail`` honoured.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from enginekit_podman import PodmanDriver

from enginekit.models import Stream
from enginekit.testing.helpers import call_within

Make = Callable[..., str]


def test_a_fast_writer_is_followed_whole_and_in_order(driver: PodmanDriver, make: Make) -> None:
    # Conmon stamps all the lines of one read from the pipe alike: hundreds share
    # a stamp, which the follow must pass over by count when it reads again.
    cid = make(["sh", "-c", "sleep 1; seq 1 40000; seq 1 10000 >&2; seq 40001 50000"])
    t0 = time.monotonic()
    lines = list(driver.container_logs(cid, follow=True))
    assert time.monotonic() - t0 < 120
    out = [line.data for line in lines if line.stream is Stream.STDOUT]
    err = [line.data for line in lines if line.stream is Stream.STDERR]
    assert len(out) == 50000 and out == [b"%d\n" % i for i in range(1, 50001)]
    assert err == [b"%d\n" % i for i in range(1, 10001)]
    # Stamped per read, each stream in order; conmon reads stdout and stderr
    # apart, so across the two a stamp can come before the other stream's last.
    for stream in (Stream.STDOUT, Stream.STDERR):
        stamps = [line.timestamp for line in lines if line.stream is stream]
        assert None not in stamps and stamps == sorted(stamps)  # type: ignore[type-var]


def test_lines_come_while_the_container_runs(driver: PodmanDriver, make: Make) -> None:
    # The command writes its next line only once the test has seen the last one
    # (it waits for the file the test then makes): a follow that gave lines late,
    # in batches or at the exit would never get the next one.
    script = (
        "i=0; while [ $i -lt 5 ]; do echo line-$i; "
        "while [ ! -e /tmp/seen-$i ]; do usleep 20000; done; i=$((i+1)); done; sleep 600"
    )
    cid = make(["sh", "-c", script])
    it = driver.container_logs(cid, follow=True)

    def follow() -> list[bytes]:
        got: list[bytes] = []
        for line in it:
            got.append(line.data)
            driver.container_exec(cid, ("touch", f"/tmp/seen-{len(got) - 1}"))
            if len(got) == 5:
                break
        return got

    try:
        assert call_within(120, follow) == [b"line-%d\n" % i for i in range(5)]
    finally:
        it.close()  # type: ignore[attr-defined]


def test_since_and_tail(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "echo a; sleep 1.1; echo b; sleep 2; echo c"])
    deadline = time.monotonic() + 30
    while True:
        seen = list(driver.container_logs(cid))
        if [line.data for line in seen] == [b"a\n", b"b\n"]:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)
    b_at = seen[1].timestamp
    assert b_at is not None
    # ``since`` takes what was stamped after it: ``a`` was a second before ``b``.
    since = [x.data for x in driver.container_logs(cid, follow=True, since=int(b_at.timestamp()))]
    assert since == [b"b\n", b"c\n"]
    tail = [x.data for x in driver.container_logs(cid, follow=True, tail=1)]
    assert tail == [b"c\n"]
    assert [x.data for x in driver.container_logs(cid, follow=True, tail=0)] == []
    assert [x.data for x in driver.container_logs(cid, follow=True, tail=5)] == [
        b"a\n",
        b"b\n",
        b"c\n",
    ]


def test_tail_of_a_running_container_then_what_comes(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "echo a; echo b; echo c; sleep 1.5; echo d; sleep 1.5; echo e"])
    deadline = time.monotonic() + 30
    while len(list(driver.container_logs(cid))) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    got = [x.data for x in driver.container_logs(cid, follow=True, tail=2)]
    assert got == [b"b\n", b"c\n", b"d\n", b"e\n"]
