#!/usr/bin/env python3
"""enginekit over ssh against raw requests sent through the same ssh connection.

Run::

    python benchmarks/bench_remote.py --loopback [-n 30] [--json]
    python benchmarks/bench_remote.py --engine docker+ssh://ci@build1 \\
        --engine podman+ssh://core@vm:2222 [--ssh-config FILE] [-n 30] [--json]

``--loopback`` starts an sshd of the benchmark's own on 127.0.0.1 (keys made
for the run, see :mod:`enginekit.testing.sshd`) and measures this machine's
Docker and Podman through it (``--engine docker`` or ``--engine podman`` with
it picks one).

Per engine URL, as ``bench_engines.py`` does (interleaved, the order rotating
each iteration; medians, ratios of medians and paired ratios):

- inspect of a running container: enginekit ``containers.get`` against a raw
  ``GET .../containers/{id}/json`` on one keep-alive HTTP connection that the
  Engine's own ssh dialer made (the same master connection);
- run to completion of ``true`` (network none): enginekit run + wait + remove
  against raw create/start/wait/delete on that connection;
- the handshake: a fresh Engine per round; its first call's time (the ssh
  login, the route to the engine, the API version) against the median of the
  calls after it, sequential and from several threads, and the ssh master
  connections its tunnel started ("masters started: 1" is the goal).

The image is built through enginekit from this machine's busybox (nothing
pulled). Everything created carries ``enginekit.bench=<runid>`` and is removed
at the end, also on failure, Ctrl-C or SIGTERM; leftovers make the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# the benchmark next to this one
from bench_engines import (
    APIS,
    SLEEPER,
    TRUE,
    Case,
    RawUnix,
    _check_zero,
    build_context,
    close_all,
    enginekit_run,
    http_cleanup,
    measure,
    summarize,
)

from enginekit.sshtunnel import SESSIONS_PER_MASTER, SshDialer, SshTunnel
from enginekit.transport import Dialer, Transport

KINDS = ("docker", "podman")
INSPECT_GOAL = 1.3
_RAW_TIMEOUT = 120.0


# --------------------------------------------------------------------------- the ssh way in


class CountingDialer:
    """The transport's own dialer, counting the connections it makes (benchmark-only)."""

    def __init__(self, inner: SshDialer) -> None:
        self.inner = inner
        self.dials = 0
        self._lock = threading.Lock()

    def dial(self, timeout: float | None) -> Any:
        with self._lock:
            self.dials += 1
        return self.inner.dial(timeout)

    def reachable(self) -> bool:
        return self.inner.reachable()

    def trouble(self) -> str:
        return self.inner.trouble()

    def close(self) -> None:
        self.inner.close()


def transport_of(engine: Any) -> Transport:
    transport = getattr(engine.driver, "transport", None)
    if not isinstance(transport, Transport):
        raise RuntimeError(f"{engine.address}: the driver has no HTTP transport")
    return transport


def count_dials(engine: Any) -> CountingDialer:
    """Put a counting wrapper around the Engine's ssh dialer; done before its first call.

    ``Transport._dialer`` is private to enginekit: a benchmark may look inside
    (it measures enginekit as it is, and fails loudly if the inside changes).
    The raw path uses the same :class:`SshDialer`, i.e. the same tunnel.
    """
    transport = transport_of(engine)
    inner: Dialer | None = transport._dialer
    if isinstance(inner, CountingDialer):
        return inner
    if not isinstance(inner, SshDialer):
        raise RuntimeError(f"{engine.address} is not reached over ssh")
    counting = CountingDialer(inner)
    transport._dialer = counting
    return counting


class RawDialed(RawUnix):
    """:class:`RawUnix`'s keep-alive HTTP/1.1 connection, on a socket the Engine's
    ssh dialer makes (a ``docker system dial-stdio`` session or a forwarded
    socket, over the Engine's master connection)."""

    def __init__(self, dialer: SshDialer, prefix: str) -> None:
        super().__init__("", prefix)
        self.dialer = dialer
        self.dials = 0

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("localhost", timeout=_RAW_TIMEOUT)
        sock = self.dialer.dial(_RAW_TIMEOUT)
        sock.settimeout(_RAW_TIMEOUT)
        conn.sock = sock
        self.dials += 1
        return conn


# --------------------------------------------------------------------------- one engine


class RemoteBench:
    """One ``docker+ssh://`` or ``podman+ssh://`` engine: set-up, cases, handshake, clean-up."""

    def __init__(
        self,
        url: str,
        runid: str,
        *,
        ssh_config: str | None = None,
        logins: Callable[[], int] | None = None,
    ) -> None:
        self.url = url
        self.kind = url.split("+", 1)[0]
        if self.kind not in KINDS or not url.startswith(f"{self.kind}+ssh://"):
            raise ValueError(f"{url!r}: give a docker+ssh:// or podman+ssh:// URL")
        self.runid = runid
        self.ssh_config = ssh_config
        self.logins = logins  # ssh logins the server has seen so far (loopback only)
        self.labels = {"enginekit.bench": runid}
        self.api = APIS[self.kind]
        self.image = f"{self.api.image_prefix}enginekit-bench:{runid}"
        self.prefix = self.api.prefix(self.api.first_version)
        self.engine: Any = None
        self.counting: CountingDialer | None = None
        self.raw: RawDialed | None = None
        self.running = ""
        self.made = False  # whether anything may have been created on the engine
        self.fresh: list[Any] = []
        self.notes: list[str] = []

    def connect(self) -> Any:
        import enginekit

        options = {"ssh_config": self.ssh_config} if self.ssh_config else {}
        return enginekit.connect(self.url, **options)

    @property
    def tunnel(self) -> SshTunnel:
        assert self.counting is not None
        return self.counting.inner.tunnel

    def setup(self) -> list[Case]:
        self.engine = engine = self.connect()
        self.counting = count_dials(engine)
        info = engine.info()
        api = self.api
        self.prefix = api.prefix(info.api_version)
        self.raw = raw = RawDialed(self.counting.inner, self.prefix)
        route = self.counting.inner.route
        self.notes.append(
            f"{info.name} {info.version}, API {info.api_version}, reached through "
            f"{route.describe()} over ssh"
        )
        self.made = True
        with build_context() as ctx:
            engine.images.build(ctx, tag=self.image, labels=self.labels)
        running = raw.request(
            "POST", "/containers/create", api.spec(self.image, self.labels, SLEEPER)
        )["Id"]
        self.running = running
        raw.request("POST", f"/containers/{running}/start")

        inspect = Case("inspect", "raw")
        inspect.add("enginekit", lambda: engine.containers.get(running))
        inspect.add("raw", lambda: raw.request("GET", f"/containers/{running}/json"))

        def raw_run() -> None:
            cid = raw.request(
                "POST", "/containers/create", api.spec(self.image, self.labels, TRUE)
            )["Id"]
            raw.request("POST", f"/containers/{cid}/start")
            _check_zero(api.wait(raw, cid), "raw")
            raw.request("DELETE", f"/containers/{cid}")

        run = Case("run", "raw")
        run.add("enginekit", enginekit_run(engine, self.image, self.labels))
        run.add("raw", raw_run)
        self.counting.dials = 0  # from here on: the measured calls only
        raw.dials = 0
        return [inspect, run]

    def connections(self) -> dict[str, int]:
        """Connections dialed (ssh sessions or forwarded channels) during the measured calls."""
        return {
            "enginekit": self.counting.dials if self.counting else 0,
            "raw": self.raw.dials if self.raw else 0,
        }

    # -- the handshake ------------------------------------------------------------
    def handshake(self, rounds: int, calls: int, threads: int) -> dict[str, Any]:
        """Per round a fresh Engine: its first inspect, ``calls`` more, then ``calls``
        from each of ``threads`` threads at once; the masters its tunnel started."""
        out: list[dict[str, Any]] = []
        for _ in range(rounds):
            before = self.logins() if self.logins else 0
            fresh = self.connect()
            self.fresh.append(fresh)
            counting = count_dials(fresh)
            tunnel = counting.inner.tunnel
            inspect = functools.partial(fresh.containers.get, self.running)
            first = _timed(inspect)
            masters_first = tunnel.handshakes
            later = [_timed(inspect) for _ in range(calls)]
            masters_seq, dials_seq = tunnel.handshakes, counting.dials
            threaded = _from_threads(inspect, threads, calls)
            masters = tunnel.handshakes
            fresh.close()
            gone = not tunnel.alive()
            record: dict[str, Any] = {
                "first_ms": first * 1000,
                "later_median_ms": statistics.median(later) * 1000,
                "threads_median_ms": statistics.median(threaded) * 1000,
                "masters_after_first": masters_first,
                "masters_after_sequential": masters_seq,
                "masters_started": masters,
                "dials_sequential": dials_seq,
                "dials_total": counting.dials,
                "tunnel_closed": gone,
            }
            if self.logins:
                record["sshd_logins"] = self.logins() - before
            # What of the first call is ssh's own: another fresh Engine's tunnel
            # logging in and running `true` (nothing sent to the engine).
            probe = self.connect()
            self.fresh.append(probe)
            login = count_dials(probe).inner.tunnel
            record["login_ms"] = (
                _timed(functools.partial(login.run, ("true",), timeout=60.0)) * 1000
            )
            probe.close()
            out.append(record)
        firsts = [r["first_ms"] for r in out]
        laters = [r["later_median_ms"] for r in out]
        return {
            "rounds": out,
            "calls": calls,
            "threads": threads,
            "first_ms": statistics.median(firsts),
            "later_median_ms": statistics.median(laters),
            "threads_median_ms": statistics.median(r["threads_median_ms"] for r in out),
            "login_ms": statistics.median(r["login_ms"] for r in out),
            "first_over_later": statistics.median(firsts) / statistics.median(laters),
            "masters_started": max(r["masters_started"] for r in out),
            "once_per_engine": all(r["masters_started"] == 1 and r["tunnel_closed"] for r in out),
        }

    # -- the end ------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        problems: list[str] = []
        for fresh in self.fresh:
            close_all(fresh)
        if self.raw is not None:
            self.raw.close()  # an interrupted request leaves it unusable
        if self.counting is None or not self.made:
            close_all(self.engine)
            return problems  # nothing made
        attempt = self._remove_all(self.counting.inner)
        if attempt:
            # The Engine's own tunnel may be what failed: once more on a new one.
            try:
                again = self.connect()
                try:
                    attempt = self._remove_all(count_dials(again).inner)
                finally:
                    close_all(again)
            except Exception as exc:
                attempt.append(f"a new connection for the clean-up: {exc}")
        problems += attempt
        close_all(self.engine)
        return problems

    def _remove_all(self, dialer: SshDialer) -> list[str]:
        flag = self.api.true
        problems = http_cleanup(
            RawDialed(dialer, self.prefix), self.runid, self.image, all_value=flag, force=flag
        )
        checker = RawDialed(dialer, self.prefix)
        try:
            checker.request("GET", f"/images/{self.image}/json", ok=(404,))
        except Exception as exc:
            problems.append(f"the image {self.image} is still there ({exc})")
        finally:
            checker.close()
        return problems


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _from_threads(fn: Callable[[], object], threads: int, calls: int) -> list[float]:
    """``calls`` timed calls of ``fn`` from each of ``threads`` threads started together."""
    barrier = threading.Barrier(threads)
    times: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            barrier.wait(timeout=60)
            mine = [_timed(fn) for _ in range(calls)]
        except BaseException as exc:
            with lock:
                errors.append(exc)
            barrier.abort()
            return
        with lock:
            times.extend(mine)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"a thread failed: {type(errors[0]).__name__}: {errors[0]}")
    return times


# --------------------------------------------------------------------------- report


def goal_lines(results: dict[str, Any]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for url, data in results.items():
        variants = data.get("cases", {}).get("inspect", {}).get("variants", {})
        if "enginekit" in variants and "raw" in variants:
            ratio = variants["enginekit"]["median_ms"] / variants["raw"]["median_ms"]
            lines.append(
                {
                    "goal": f"{url} inspect: enginekit within {INSPECT_GOAL}x of raw over ssh",
                    "ratio": ratio,
                    "met": ratio <= INSPECT_GOAL,
                }
            )
        shake = data.get("handshake")
        if shake is not None:
            lines.append(
                {
                    "goal": f"{url}: one ssh handshake per Engine, never per call",
                    "masters_started": shake["masters_started"],
                    "met": bool(shake["once_per_engine"]),
                }
            )
    return lines


def print_table(results: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    for url, data in results.items():
        print(f"\n== {url} ({data['iterations']} iterations, medians)")
        if "error" in data:
            print(f"   FAILED: {data['error']}")
        if "cases" in data:
            print(f"   {'case':<10} {'variant':<12} {'median ms':>10} {'ratio':>7} {'paired':>7}")
            for case, info in data["cases"].items():
                for variant, v in info["variants"].items():
                    mark = " (base)" if variant == info["base"] else ""
                    print(
                        f"   {case:<10} {variant:<12} {v['median_ms']:>10.2f} {v['ratio']:>6.2f}x"
                        f" {v['paired_ratio']:>6.2f}x{mark}"
                    )
        conns = data.get("connections")
        if conns:
            print(
                f"   new connections during the iterations (warm-up too): "
                f"enginekit {conns['enginekit']}, raw {conns['raw']} (0: all on kept ones)"
            )
        shake = data.get("handshake")
        if shake:
            rounds = shake["rounds"]
            print(
                f"   handshake ({len(rounds)} fresh Engines): first call "
                f"{shake['first_ms']:.1f} ms, later calls {shake['later_median_ms']:.2f} ms "
                f"({shake['first_over_later']:.0f}x), from {shake['threads']} threads "
                f"{shake['threads_median_ms']:.2f} ms"
            )
            print(
                f"   of the first call, ssh's own login + a `true` session: "
                f"{shake['login_ms']:.1f} ms (another fresh Engine's tunnel)"
            )
            print(
                f"   masters started: {shake['masters_started']} (per Engine: "
                + ", ".join(str(r["masters_started"]) for r in rounds)
                + f"; after {shake['calls']} sequential and {shake['threads']}x{shake['calls']}"
                " threaded calls)"
            )
            dials = ", ".join(f"{r['dials_sequential']}/{r['dials_total']}" for r in rounds)
            logins = [str(r["sshd_logins"]) for r in rounds if "sshd_logins" in r]
            print(
                f"   connections dialed per Engine (sequential/all): {dials}"
                + (f"; ssh logins sshd saw per Engine: {', '.join(logins)}" if logins else "")
            )
        for note in data.get("notes", []):
            print(f"   note: {note}")
    if goals:
        print("\n== goals")
        for g in goals:
            figure = f"{g['ratio']:.2f}x" if "ratio" in g else f"masters {g['masters_started']}"
            print(f"   [{'met' if g['met'] else 'MISSED'}] {g['goal']}: {figure}")


# --------------------------------------------------------------------------- main


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """A second Ctrl-C must not cut a clean-up short."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _login_counter(log: Path) -> Callable[[], int]:
    def count() -> int:
        try:
            return log.read_text(errors="replace").count("Accepted publickey")
        except OSError:
            return 0

    return count


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        help="docker+ssh://... or podman+ssh://... (repeatable); with --loopback: docker or podman",
    )
    parser.add_argument(
        "--loopback",
        action="store_true",
        help="start an sshd on 127.0.0.1 and measure this machine's docker and podman through it",
    )
    parser.add_argument("--ssh-config", help="an ssh config file (ssh -F) for the URLs given")
    parser.add_argument("-n", "--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="fresh Engines for the handshake")
    parser.add_argument("--calls", type=int, default=30, help="calls after the first, per thread")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not 1 <= args.threads <= SESSIONS_PER_MASTER:
        # Past that many connections at once, a second master is opened on purpose.
        parser.error(f"--threads takes 1 to {SESSIONS_PER_MASTER} (sessions per ssh master)")
    if min(args.iterations, args.rounds, args.calls) < 1 or args.warmup < 0:
        parser.error("-n, --rounds and --calls take 1 or more, --warmup 0 or more")
    if args.loopback:
        bad = [e for e in args.engine if e not in KINDS]
        if bad:
            parser.error(f"with --loopback, --engine takes docker or podman (not {bad[0]!r})")
        args.engine = list(dict.fromkeys(args.engine)) or list(KINDS)
    else:
        if not args.engine:
            parser.error("give --engine URL (docker+ssh://... or podman+ssh://...) or --loopback")
        for url in args.engine:
            if not url.startswith(("docker+ssh://", "podman+ssh://")):
                parser.error(f"{url!r}: give a docker+ssh:// or podman+ssh:// URL")
    return args


def run_all(
    args: argparse.Namespace,
    urls: list[str],
    runid: str,
    ssh_config: str | None,
    logins: Callable[[], int] | None,
    results: dict[str, Any],
    status: dict[str, bool],
) -> None:
    """Each engine in turn, into ``results``; ``status``: failed, leftovers."""
    for url in urls:
        bench = RemoteBench(url, runid, ssh_config=ssh_config, logins=logins)
        print(f"{url}: setting up (run {runid})", file=sys.stderr)
        data: dict[str, Any] = {"iterations": args.iterations}
        results[url] = data
        try:
            cases = bench.setup()
            # One case after the other (its variants interleaved): the engine's
            # own clean-up after a run to completion goes on for a while and
            # would fall on whichever inspect came next.
            for case in cases:
                measure([case], args.iterations, args.warmup, progress=not args.json)
            data["cases"] = summarize(cases)
            data["connections"] = bench.connections()
            data["handshake"] = bench.handshake(args.rounds, args.calls, args.threads)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            status["failed"] = True
            data["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            data["notes"] = bench.notes
            print(f"{url}: cleaning up", file=sys.stderr)
            with _no_sigint():
                problems = bench.cleanup()
            if problems:
                status["leftovers"] = True
                data["leftovers"] = problems
                print(f"{url}: clean-up problems: {'; '.join(problems)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runid = uuid.uuid4().hex[:12]
    signal.signal(signal.SIGTERM, _sigterm)
    # also when started with SIGINT ignored (a background job of a shell script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results: dict[str, Any] = {}
    status = {"failed": False, "leftovers": False}
    server_cm: contextlib.AbstractContextManager[Any] | None = None
    try:
        if args.loopback:
            from enginekit.testing.sshd import loopback_sshd

            server_cm = loopback_sshd()
            server = server_cm.__enter__()  # stopped below, its keys removed
            urls = [server.url(kind) for kind in args.engine]
            ssh_config: str | None = str(server.client_config)
            logins: Callable[[], int] | None = _login_counter(server.log)
        else:
            urls, ssh_config, logins = args.engine, args.ssh_config, None
        run_all(args, urls, runid, ssh_config, logins, results, status)
    except KeyboardInterrupt:
        outcome = "some objects may be left" if status["leftovers"] else "what it made was removed"
        print(f"interrupted: {outcome} (label enginekit.bench={runid})", file=sys.stderr)
        return 130
    finally:
        if server_cm is not None:
            with _no_sigint():
                server_cm.__exit__(None, None, None)
    goals = goal_lines(results)
    loadavg = list(os.getloadavg())
    machine: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_at_end": loadavg}
    if args.json:
        out = {"runid": runid, "machine": machine, "engines": results, "goals": goals}
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        print_table(results, goals)
        load = ", ".join(f"{x:.1f}" for x in loadavg)
        print(f"\n(machine: {machine['cpus']} cpus, load average at the end {load})")
    once = all(g["met"] for g in goals if "masters_started" in g)
    return 1 if status["failed"] or status["leftovers"] or not once else 0


if __name__ == "__main__":
    sys.exit(main())
