#!/usr/bin/env python3
"""How fast enginekit starts: a command, and a program's first call, against a bare
interpreter and the engines' own command-line tools.

Run::

    python benchmarks/bench_startup.py [--engine docker] [-n 30] [--rounds 3] [--json]

Timed by hyperfine (Debian package ``hyperfine``, installed by
``scripts/setup-engines.sh``), side by side in one run, each variant's wall time
from process start to exit:

- ``python -c pass`` (the floor: the interpreter of this enginekit, with its site)
- ``python -c "import enginekit"``
- ``enginekit --engine ENGINE ps -a`` (the installed console script)
- ``import enginekit; enginekit.connect(ENGINE).containers.get(ID)`` as ``python -c``
- ``docker ps -a`` and ``podman ps -a``, when installed

The variants are measured in ``--rounds`` hyperfine runs, their order rotated
each round, and the medians taken over all rounds' times (drift on a busy
machine falls on every variant alike). The goals, judged on the medians:

- ``enginekit ps -a`` within 6x ``python -c pass``
- import + connect + ``containers.get`` within 60 ms over ``python -c pass``

enginekit and its adapters are byte-compiled first, as an installed package is
(with ``PYTHONDONTWRITEBYTECODE`` set, a checkout's modules would otherwise be
compiled again by every run). Beside the wall-time medians, the mean CPU time
(user + system, from hyperfine) is shown: it moves less when the machine is busy.

With ``--instructions`` each variant also runs once under valgrind's
callgrind (Debian package ``valgrind``), and the instructions it executed are
counted: a figure the machine's load does not move, whose ratio to the bare
interpreter's tracks the wall-time ratio (the engines' own answers are not in
it, nor are the docker and podman commands, which are not Python).

A missed goal is printed as missed (the exit status stays 0; it is 1 when a
variant could not be run or something made was left). The container that
``get`` reads is created here from an image built from this machine's busybox
(nothing is pulled), labelled ``enginekit.bench=<runid>``; it and its image are
removed at the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
PS_GOAL_RATIO = 6.0  # enginekit ps -a / python -c pass
GET_GOAL_MS = 60.0  # import + connect + get, over python -c pass
BARE = "python -c pass"
IMPORT = "python -c 'import enginekit'"
PS = "enginekit ps -a"
GET = "import + connect + get"


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def enginekit_command() -> list[str]:
    """The console script next to this interpreter (as installed), else ``-m``."""
    script = Path(sys.executable).parent / "enginekit"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "enginekit.cli"]


def _remove(remove: Any, ref: str, problems: list[str]) -> None:
    """``remove(ref, force=True)``; a failure other than "gone already" noted in ``problems``."""
    from enginekit.errors import EngineError, NotFound

    try:
        remove(ref, force=True)
    except NotFound:
        pass
    except EngineError as exc:
        problems.append(f"{ref}: {exc}")


@contextlib.contextmanager
def bench_container(engine_name: str, runid: str) -> Iterator[tuple[str, list[str]]]:
    """A created container of an image built from busybox: (its id, clean-up problems)."""
    import enginekit

    problems: list[str] = []
    labels = {"enginekit.bench": runid}
    tag = f"enginekit-bench-startup:{runid}"
    with enginekit.connect(engine_name) as engine:
        try:
            with tempfile.TemporaryDirectory(prefix="enginekit-bench-") as ctx:
                shutil.copy(BUSYBOX, os.path.join(ctx, "busybox"))
                Path(ctx, "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
                engine.images.build(ctx, tag=tag, labels=labels)
            container = engine.containers.create(
                tag, ["/bin/busybox", "true"], labels=labels, network="none"
            )
            yield container.id, problems
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                for c in engine.containers.list(all=True, labels=labels):
                    _remove(engine.containers.remove, c.id, problems)
                _remove(engine.images.remove, tag, problems)
            finally:
                signal.signal(signal.SIGINT, previous)


def precompile() -> list[str]:
    """Byte-compile enginekit and the installed adapters' packages; the folders done."""
    import compileall
    import importlib.util

    from enginekit import registry

    done = []
    names = ["enginekit", *(f"enginekit_{name}" for name in registry.adapter_names())]
    for name in names:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)
            done.append(folder)
    return done


def container_count(engine_name: str) -> int | None:
    import enginekit
    from enginekit.errors import EngineError

    try:
        with enginekit.connect(engine_name) as engine:
            return len(engine.containers.list(all=True))
    except EngineError:
        return None


def variants(engine_name: str, container_id: str) -> tuple[dict[str, list[str]], list[str]]:
    """name -> argv of every variant that runs here; notes on those left out."""
    py = sys.executable
    connect = f"enginekit.connect({engine_name!r})"
    get = f"import enginekit; {connect}.containers.get({container_id!r})"
    found: dict[str, list[str]] = {
        BARE: [py, "-c", "pass"],
        IMPORT: [py, "-c", "import enginekit"],
        PS: [*enginekit_command(), "--engine", engine_name, "ps", "-a"],
        GET: [py, "-c", get],
    }
    for tool in ("docker", "podman"):
        path = shutil.which(tool)
        if path is not None:
            found[f"{tool} ps -a"] = [path, "ps", "-a"]
    notes: list[str] = []
    for name, argv in list(found.items()):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            if name in (BARE, PS, GET):
                raise RuntimeError(f"{name} failed: {proc.stderr.strip()[-400:]}")
            notes.append(f"{name} left out: exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
            del found[name]
    return found, notes


def hyperfine(
    commands: dict[str, list[str]], runs: int, warmup: int
) -> dict[str, tuple[list[float], float]]:
    """Each command's wall times (seconds) and mean CPU time (user + system, seconds)
    from one hyperfine run of them all."""
    with tempfile.TemporaryDirectory(prefix="enginekit-bench-") as tmp:
        export = os.path.join(tmp, "times.json")
        argv = ["hyperfine", "--shell=none", "--style", "none", "--export-json", export]
        argv += ["--runs", str(runs), "--warmup", str(warmup)]
        for name, command in commands.items():
            argv += ["--command-name", name, shlex.join(command)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"hyperfine failed: {proc.stderr.strip()[-400:]}")
        with open(export) as fh:
            results = json.load(fh)["results"]
    return {
        r["command"]: ([float(t) for t in r["times"]], float(r["user"]) + float(r["system"]))
        for r in results
    }


def measure(
    commands: dict[str, list[str]], runs: int, warmup: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall times of every run of each command, and its mean CPU time (seconds)."""
    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    per_round = max(2, -(-runs // rounds))
    for i in range(rounds):
        shift = i % len(names)
        order = names[shift:] + names[:shift]
        print(f"  round {i + 1}/{rounds}", file=sys.stderr)
        got = hyperfine({n: commands[n] for n in order}, per_round, warmup)
        for name in names:
            times[name].extend(got[name][0])
            cpu[name].append(got[name][1])
    return times, {name: statistics.mean(values) for name, values in cpu.items()}


def instructions(commands: dict[str, list[str]]) -> dict[str, int]:
    """Instructions each Python variant executes (valgrind's callgrind, one run each)."""
    counts: dict[str, int] = {}
    for name, argv in commands.items():
        if name not in (BARE, IMPORT, PS, GET):
            continue
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        found = [line for line in proc.stderr.splitlines() if "Collected :" in line]
        if proc.returncode == 0 and found:
            counts[name] = int(found[-1].rsplit(":", 1)[1])
    return counts


#: Where an imported module's own time is counted (first match of its name).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("enginekit.toolkit", ("enginekit.toolkit",)),
    ("enginekit (the core)", ("enginekit",)),
    ("the adapters (enginekit_*)", ("enginekit_",)),
    ("attrs", ("attr", "attrs")),
    ("http.client, email, ssl", ("http", "email", "ssl", "_ssl")),
    ("typing", ("typing",)),
    ("the interpreter's start (site, encodings)", ("site", "encodings", "_distutils_hack")),
)


def _group(module: str) -> str:
    for group, prefixes in GROUPS:
        if any(
            module == p or module.startswith(p if p.endswith("_") else p + ".") for p in prefixes
        ):
            return group
    return "other stdlib"


def importtime_breakdown(program: str, runs: int) -> list[tuple[str, float]]:
    """Where the program's imports spend their time (``-X importtime``): the median
    over runs of each module's own time, summed by group, biggest first."""
    own: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", program],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "[us]" in line:
                continue
            spent, _, name = line.removeprefix("import time:").split("|")
            own.setdefault(name.strip(), []).append(int(spent) / 1000)
    groups: dict[str, float] = {}
    for name, values in own.items():
        group = _group(name)
        groups[group] = groups.get(group, 0.0) + statistics.median(values)
    return sorted(groups.items(), key=lambda item: -item[1])


def report(
    times: dict[str, list[float]],
    cpu: dict[str, float],
    containers: int | None,
    engine_name: str,
) -> dict[str, Any]:
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    bare = medians[BARE]
    ps_ratio = medians[PS] / bare
    get_over = medians[GET] - bare
    goals = [
        {
            "goal": f"enginekit --engine {engine_name} ps -a within {PS_GOAL_RATIO:g}x "
            f"python -c pass",
            "figure": f"{ps_ratio:.2f}x ({medians[PS]:.1f} ms against {bare:.1f} ms)",
            "value": ps_ratio,
            "met": ps_ratio <= PS_GOAL_RATIO,
        },
        {
            "goal": f"import enginekit; connect({engine_name!r}).containers.get(id) within "
            f"{GET_GOAL_MS:g} ms over python -c pass",
            "figure": f"{get_over:.1f} ms over ({medians[GET]:.1f} ms against {bare:.1f} ms)",
            "value": get_over,
            "met": get_over <= GET_GOAL_MS,
        },
    ]
    return {
        "medians_ms": medians,
        "runs": {name: len(values) for name, values in times.items()},
        "over_bare_ms": {name: m - bare for name, m in medians.items()},
        "ratio_to_bare": {name: m / bare for name, m in medians.items()},
        "cpu_mean_ms": {name: value * 1000 for name, value in cpu.items()},
        "containers_listed": containers,
        "goals": goals,
    }


def print_report(result: dict[str, Any], notes: list[str]) -> None:
    medians = result["medians_ms"]
    listed = result["containers_listed"]
    where = f"; ps lists {listed} containers" if listed is not None else ""
    runs = max(result["runs"].values())
    print(f"\n== start-up (wall time, medians of {runs} runs each{where})")
    print(f"   {'variant':<28} {'median ms':>10} {'over bare':>10} {'ratio':>7} {'cpu ms':>7}")
    for name, median in medians.items():
        print(
            f"   {name:<28} {median:>10.1f} {result['over_bare_ms'][name]:>10.1f}"
            f" {result['ratio_to_bare'][name]:>6.2f}x {result['cpu_mean_ms'][name]:>7.1f}"
        )
    for note in notes:
        print(f"   note: {note}")
    counted = result.get("instructions")
    if counted:
        print("\n== instructions executed (valgrind; the machine's load does not move them)")
        for name, count in counted.items():
            ratio = count / counted[BARE] if BARE in counted else float("nan")
            print(f"   {name:<28} {count / 1e6:>10.1f} M {ratio:>6.2f}x")
    if result.get("breakdown"):
        total = sum(ms for _, ms in result["breakdown"])
        print(f"\n== {GET}: where its imports spend {total:.1f} ms (-X importtime, own times)")
        for name, ms in result["breakdown"]:
            print(f"   {name:<42} {ms:>7.1f}")
    print("\n== goals")
    for g in result["goals"]:
        print(f"   [{'met' if g['met'] else 'MISSED'}] {g['goal']}: {g['figure']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="docker", help="engine of ps and get (docker)")
    parser.add_argument("-n", "--runs", type=int, default=30, help="runs of each variant")
    parser.add_argument("--rounds", type=int, default=3, help="hyperfine runs, order rotated")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per round")
    parser.add_argument("--no-breakdown", action="store_true", help="skip -X importtime")
    parser.add_argument("--breakdown-runs", type=int, default=7, help="-X importtime runs")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions under valgrind"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if shutil.which("hyperfine") is None:
        print(
            "bench_startup: hyperfine is not installed (Debian: apt-get install hyperfine; "
            "scripts/setup-engines.sh installs it)",
            file=sys.stderr,
        )
        return 2
    runid = uuid.uuid4().hex[:12]
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    problems: list[str] = []
    try:
        print(f"{args.engine}: setting up (run {runid})", file=sys.stderr)
        with bench_container(args.engine, runid) as (container_id, problems):
            compiled = precompile()
            commands, notes = variants(args.engine, container_id)
            notes.append(f"byte-compiled first: {', '.join(compiled)}")
            containers = container_count(args.engine)
            times, cpu = measure(commands, args.runs, args.warmup, max(1, args.rounds))
            result = report(times, cpu, containers, args.engine)
            if args.instructions:
                if shutil.which("valgrind") is None:
                    notes.append("--instructions: valgrind is not installed")
                else:
                    result["instructions"] = instructions(commands)
            if not args.no_breakdown:
                result["breakdown"] = importtime_breakdown(commands[GET][-1], args.breakdown_runs)
            print(f"{args.engine}: cleaning up", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"interrupted (label enginekit.bench={runid})", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        if problems:
            print(f"clean-up problems: {'; '.join(problems)}", file=sys.stderr)
        return 1
    if problems:
        print(f"clean-up problems: {'; '.join(problems)}", file=sys.stderr)
    loadavg = list(os.getloadavg())
    if args.json:
        json.dump(
            {
                "runid": runid,
                "engine": args.engine,
                "machine": {"cpus": os.cpu_count(), "loadavg_at_end": loadavg},
                "notes": notes,
                **result,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_report(result, notes)
        load = ", ".join(f"{x:.1f}" for x in loadavg)
        print(f"\n(machine: {os.cpu_count()} cpus, load average at the end {load})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
