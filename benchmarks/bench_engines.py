#!/usr/bin/env python3
"""enginekit against each engine's own Python client and raw API requests.

Run::

    pip install -r benchmarks/requirements.txt
    python benchmarks/bench_engines.py --engine docker --engine podman --engine lxc [-n 30] [--json]

Per engine, every case runs all its variants interleaved in one loop (the
variants' order rotates each iteration, so drift hits them alike), and the
table shows each variant's median, its ratio to the raw path's median, and
the "paired" ratio (the median over iterations of variant/raw within the same
iteration, steadier on a busy machine). The goals are judged on the ratio of
medians:

- Docker: inspect of a running container, list of 200 labelled created
  containers, pause+unpause, run to completion (create+start+wait+remove of
  ``true``, network none), through enginekit, the ``docker`` package and a raw
  HTTP request on the socket (``http.client`` on AF_UNIX, written here).
- Podman: the same through enginekit, the ``podman`` package and raw libpod
  requests (wait with a 10 ms poll interval for raw and enginekit; podman-py's
  default ``containers.run`` as its own variant).
- LXC: inspect vs the bindings' own calls, pause+unpause vs freeze+unfreeze,
  run to completion vs ``lxc-execute`` of the same command.
- ``import enginekit`` over a bare interpreter (medians of ``python -c``).

Everything the benchmark creates carries the label ``enginekit.bench=<runid>``
and is removed at the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
DOCKER_SOCK = "/var/run/docker.sock"
PODMAN_SOCK = "/run/podman/podman.sock"

# Goals from the issues: (engine, case, variant, limit, what the limit is relative to).
GOALS: list[tuple[str, str, str, float, str]] = [
    ("docker", "inspect", "enginekit", 1.3, "raw"),
    ("docker", "list", "enginekit", 1.3, "raw"),
    ("docker", "run", "enginekit", 1.05, "raw"),
    ("docker", "pause", "enginekit", 1.05, "raw"),
    ("podman", "inspect", "enginekit", 1.3, "raw"),
    ("podman", "list", "enginekit", 1.3, "raw"),
    ("podman", "run", "enginekit", 1.05, "raw"),
    ("podman", "run", "enginekit", 1.0, "podman-py run()"),
    ("lxc", "inspect", "enginekit", 2.0, "bindings"),
    ("lxc", "pause", "enginekit", 1.5, "bindings"),
]
IMPORT_GOAL_MS = 25.0
SLEEPER = ["/bin/busybox", "sleep", "100000"]
TRUE = ["/bin/busybox", "true"]


# --------------------------------------------------------------------------- raw HTTP


class RawUnix:
    """One keep-alive HTTP/1.1 connection on a unix socket: the floor to compare with."""

    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("localhost")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        conn.sock = sock
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 304),
    ) -> Any:
        url = self.prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.request(method, url, body=data, headers=headers)
                resp = self._conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {payload[:300]!r}")
        if payload and resp.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(payload)
        return payload

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --------------------------------------------------------------------------- timing


class Case:
    """One operation measured through several variants; ``raw`` (or a named base) is the floor."""

    def __init__(self, name: str, base: str, *, resync: Callable[[], None] | None = None) -> None:
        self.name = name
        self.base = base
        self.variants: dict[str, Callable[[], object]] = {}
        self.times: dict[str, list[float]] = {}
        self.by_iteration: dict[str, dict[int, float]] = {}
        # A case with ``resync`` tolerates an engine's own glitch: the failed
        # sample is dropped and counted, ``resync`` restores the state.
        self.resync = resync
        self.glitches: dict[str, list[str]] = {}

    def add(self, variant: str, fn: Callable[[], object]) -> None:
        self.variants[variant] = fn
        self.times[variant] = []
        self.by_iteration[variant] = {}


def measure(cases: list[Case], iterations: int, warmup: int, progress: bool) -> None:
    for i in range(warmup + iterations):
        for case in cases:
            names = list(case.variants)
            shift = i % len(names)
            for variant in names[shift:] + names[:shift]:
                start = time.perf_counter()
                try:
                    case.variants[variant]()
                except Exception as exc:
                    if case.resync is None:
                        raise
                    case.glitches.setdefault(variant, []).append(f"{type(exc).__name__}: {exc}")
                    case.resync()
                    continue
                elapsed = time.perf_counter() - start
                if i >= warmup:
                    case.times[variant].append(elapsed)
                    case.by_iteration[variant][i] = elapsed
        if progress:
            print(f"\r  iteration {i + 1}/{warmup + iterations}", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)


def paired_ratio(case: Case, variant: str) -> float:
    """Median over iterations of variant/base time in the same iteration (robust to drift)."""
    mine, base = case.by_iteration[variant], case.by_iteration[case.base]
    ratios = [mine[i] / base[i] for i in mine if i in base]
    return statistics.median(ratios) if ratios else float("nan")


def summarize(cases: list[Case]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        base = statistics.median(case.times[case.base])
        out[case.name] = {
            "base": case.base,
            "variants": {
                variant: {
                    "median_ms": statistics.median(times) * 1000,
                    "ratio": statistics.median(times) / base,
                    "paired_ratio": paired_ratio(case, variant),
                    "n": len(times),
                    "glitches": len(case.glitches.get(variant, ())),
                }
                for variant, times in case.times.items()
            },
        }
        if case.glitches:
            out[case.name]["glitch_examples"] = {
                variant: errors[0][-200:] for variant, errors in case.glitches.items()
            }
    return out


# --------------------------------------------------------------------------- helpers


def cli(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} {args[1]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@contextlib.contextmanager
def build_context() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="enginekit-bench-") as ctx:
        shutil.copy(BUSYBOX, os.path.join(ctx, "busybox"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
            fh.write("FROM scratch\nCOPY busybox /bin/busybox\n")
        yield ctx


def http_cleanup(raw: RawUnix, runid: str, image: str, *, all_value: str, force: str) -> list[str]:
    """Remove every container labelled with the run id, then the image; what was left."""
    problems: list[str] = []
    filters = json.dumps({"label": [f"enginekit.bench={runid}"]})
    try:

        def remaining() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = raw.request(
                "GET", "/containers/json", query=[("all", all_value), ("filters", filters)]
            )
            return found

        for _ in range(3):
            found = remaining()
            if not found:
                break
            for c in found:
                try:
                    raw.request(
                        "DELETE",
                        f"/containers/{c['Id']}",
                        query=[("force", force)],
                        ok=(200, 204, 404),
                    )
                except Exception as exc:
                    problems.append(f"container {c['Id'][:12]}: {exc}")
        if remaining():
            problems.append("some labelled containers could not be removed")
        raw.request("DELETE", f"/images/{image}", query=[("force", force)], ok=(200, 404))
    except Exception as exc:
        problems.append(f"cleanup: {exc}")
    finally:
        raw.close()
    return problems


def close_all(*closeables: Any) -> None:
    for obj in closeables:
        if obj is not None:
            with contextlib.suppress(Exception):
                obj.close()


def settle_running(state: Callable[[], Any], unpause: Callable[[], object]) -> None:
    """After a glitch: let the engine settle, then make sure the container runs again."""
    for _ in range(50):
        time.sleep(0.1)
        current = state()
        if current.get("Status") == "running" and not current.get("Paused"):
            return
        if current.get("Paused") or current.get("Status") == "paused":
            unpause()
    raise RuntimeError("the paused container did not come back to running")


def _check_zero(code: int, what: str) -> None:
    if code != 0:
        raise RuntimeError(f"{what}: run to completion exited {code}")


def enginekit_run(engine: Any, image: str, labels: Mapping[str, str]) -> Callable[[], None]:
    """The run case through enginekit: run ``true`` (network none), wait, remove."""

    def run() -> None:
        c = engine.containers.run(image, TRUE, network="none", labels=dict(labels))
        _check_zero(engine.containers.wait(c), "enginekit")
        engine.containers.remove(c)

    return run


# --------------------------------------------------------------------------- docker, podman


@dataclasses.dataclass(frozen=True)
class HttpApi:
    """How the raw floor speaks an engine's REST API: what differs between
    Docker's API and Podman's libpod API (bench_remote.py uses these too)."""

    socket: str
    #: After ``/v{api version}``: ``/libpod`` for Podman's own API.
    api_path: str
    #: The API version spoken before enginekit has agreed one (set in setup()).
    first_version: str
    #: How a query's true is written.
    true: str
    #: Keys of the create request: image, labels, command; and network none.
    keys: tuple[str, str, str]
    no_network: Mapping[str, Any]
    #: The query of ``POST /containers/{id}/wait`` (libpod: poll every 10 ms).
    wait_query: tuple[tuple[str, str], ...] = ()
    image_prefix: str = ""

    def prefix(self, version: str) -> str:
        return f"/v{version}{self.api_path}"

    def spec(self, image: str, labels: Mapping[str, str], cmd: list[str]) -> dict[str, Any]:
        image_key, labels_key, cmd_key = self.keys
        return {image_key: image, labels_key: dict(labels), cmd_key: cmd, **self.no_network}

    def wait(self, raw: RawUnix, cid: str) -> int:
        """The exit code, through the engine's own wait."""
        answer = raw.request("POST", f"/containers/{cid}/wait", query=list(self.wait_query))
        return int(answer["StatusCode"] if isinstance(answer, dict) else answer)


APIS = {
    "docker": HttpApi(
        socket=DOCKER_SOCK,
        api_path="",
        first_version="1.41",
        true="1",
        keys=("Image", "Labels", "Cmd"),
        no_network={"HostConfig": {"NetworkMode": "none"}},
    ),
    "podman": HttpApi(
        socket=PODMAN_SOCK,
        api_path="/libpod",
        first_version="4.0.0",
        true="true",
        keys=("image", "labels", "command"),
        no_network={"netns": {"nsmode": "none"}},
        wait_query=(("condition", "stopped"), ("condition", "exited"), ("interval", "10ms")),
        image_prefix="localhost/",
    ),
}


class HttpBench:
    """The four cases on an engine with a REST API: enginekit, the engine's own
    Python client (the variants a subclass adds) and raw requests (the base)."""

    name = ""
    client_name = ""

    def __init__(self, runid: str, n_list: int) -> None:
        self.api = APIS[self.name]
        self.runid = runid
        self.n_list = n_list
        self.labels = {"enginekit.bench": runid}
        self.list_labels = {**self.labels, "enginekit.bench.set": "list"}
        self.label_list = [f"{k}={v}" for k, v in self.list_labels.items()]
        self.image = f"{self.api.image_prefix}enginekit-bench:{runid}"
        # The raw floor speaks the API version enginekit agreed (set in setup()).
        self.prefix = self.api.prefix(self.api.first_version)
        self.raw = RawUnix(self.api.socket, self.prefix)
        self.client: Any = None
        self.engine: Any = None
        self.notes: list[str] = []

    # -- what each engine does its own way --------------------------------------
    def _connect(self) -> Any:
        import enginekit

        return enginekit.connect(self.name)

    def _describe(self, info: Any) -> str:
        raise NotImplementedError

    def _client(self, info: Any) -> Any:
        raise NotImplementedError

    def _client_list(self) -> list[tuple[str, Callable[[], object]]]:
        """The client's variants of the list case."""
        raise NotImplementedError

    def _client_run(self) -> list[tuple[str, Callable[[], object]]]:
        """The client's variants of the run case."""
        raise NotImplementedError

    # -- the cases ----------------------------------------------------------------
    def setup(self) -> list[Case]:
        with build_context() as ctx:
            cli(
                self.name,
                "build",
                "-q",
                "-t",
                self.image,
                "--label",
                f"enginekit.bench={self.runid}",
                ctx,
            )
        self.engine = self._connect()
        info = self.engine.info()
        self.prefix = self.api.prefix(info.api_version)
        self.raw.close()
        self.raw = RawUnix(self.api.socket, self.prefix)
        self.notes.append(self._describe(info))
        self.client = self._client(info)
        api, engine, client, raw = self.api, self.engine, self.client, self.raw
        running = raw.request(
            "POST", "/containers/create", api.spec(self.image, self.labels, SLEEPER)
        )["Id"]
        raw.request("POST", f"/containers/{running}/start")
        for _ in range(self.n_list):
            raw.request("POST", "/containers/create", api.spec(self.image, self.list_labels, TRUE))
        filters = json.dumps({"label": self.label_list})
        cobj = client.containers.get(running)

        def ek_list() -> None:
            found = engine.containers.list(all=True, labels=self.list_labels)
            assert len(found) == self.n_list, len(found)

        def raw_list() -> None:
            found = raw.request(
                "GET", "/containers/json", query=[("all", api.true), ("filters", filters)]
            )
            assert len(found) == self.n_list

        def ek_pause() -> None:
            engine.containers.pause(running)
            engine.containers.unpause(running)

        def client_pause() -> None:
            cobj.pause()
            cobj.unpause()

        def raw_pause() -> None:
            raw.request("POST", f"/containers/{running}/pause")
            raw.request("POST", f"/containers/{running}/unpause")

        def resync() -> None:
            settle_running(
                lambda: raw.request("GET", f"/containers/{running}/json")["State"],
                lambda: raw.request(
                    "POST", f"/containers/{running}/unpause", ok=(200, 204, 409, 500)
                ),
            )

        def raw_run() -> None:
            cid = raw.request(
                "POST", "/containers/create", api.spec(self.image, self.labels, TRUE)
            )["Id"]
            raw.request("POST", f"/containers/{cid}/start")
            _check_zero(api.wait(raw, cid), "raw")
            raw.request("DELETE", f"/containers/{cid}")

        def case(
            name: str,
            ours: Callable[[], object],
            theirs: list[tuple[str, Callable[[], object]]],
            floor: Callable[[], object],
            resync: Callable[[], None] | None = None,
        ) -> Case:
            made = Case(name, "raw", resync=resync)
            for variant, fn in [("enginekit", ours), *theirs, ("raw", floor)]:
                made.add(variant, fn)
            return made

        return [
            case(
                "inspect",
                lambda: engine.containers.get(running),
                [(self.client_name, lambda: client.containers.get(running))],
                lambda: raw.request("GET", f"/containers/{running}/json"),
            ),
            case("list", ek_list, self._client_list(), raw_list),
            # Docker 20.10 applies containerd's paused/resumed events late: a quick
            # pause+unpause now and then gets "already paused"/"is not paused"
            # from the daemon itself (raw requests too). Those samples are counted.
            case("pause", ek_pause, [(self.client_name, client_pause)], raw_pause, resync),
            case(
                "run", enginekit_run(engine, self.image, self.labels), self._client_run(), raw_run
            ),
        ]

    def cleanup(self) -> list[str]:
        self.raw.close()  # an interrupted request leaves it unusable
        problems = http_cleanup(
            RawUnix(self.api.socket, self.prefix),
            self.runid,
            self.image,
            all_value=self.api.true,
            force=self.api.true,
        )
        close_all(self.client, self.engine)
        return problems


class DockerBench(HttpBench):
    name = "docker"
    client_name = "docker-py"

    def _describe(self, info: Any) -> str:
        return (
            f"Docker {info.version}, API {info.api_version} (engine offers "
            f"{info.min_api_version or '?'} to {info.max_api_version or '?'}), "
            f"image store {info.image_store or '?'}, cgroup v{info.cgroup_version or '?'}"
        )

    def _client(self, info: Any) -> Any:
        import docker

        return docker.DockerClient(base_url=f"unix://{self.api.socket}", version=info.api_version)

    def _client_list(self) -> list[tuple[str, Callable[[], object]]]:
        def listing(sparse: bool) -> Callable[[], None]:
            def go() -> None:
                found = self.client.containers.list(
                    all=True, sparse=sparse, filters={"label": self.label_list}
                )
                assert len(found) == self.n_list, len(found)

            return go

        return [("docker-py", listing(False)), ("docker-py sparse", listing(True))]

    def _client_run(self) -> list[tuple[str, Callable[[], object]]]:
        def run() -> None:
            c = self.client.containers.create(
                self.image, TRUE, network_mode="none", labels=self.labels
            )
            c.start()
            _check_zero(c.wait()["StatusCode"], "docker-py")
            c.remove()

        return [("docker-py", run)]


class PodmanBench(HttpBench):
    name = "podman"
    client_name = "podman-py"

    def _connect(self) -> Any:
        import enginekit
        from enginekit.errors import InvalidSpec

        try:
            return enginekit.connect("podman", wait_interval=0.01)
        except (InvalidSpec, TypeError):
            self.notes.append(
                "the podman adapter takes no wait_interval option: enginekit ran with its default"
            )
            return enginekit.connect("podman")

    def _describe(self, info: Any) -> str:
        return (
            f"Podman {info.version}, libpod API {info.api_version}, "
            f"store {info.image_store or '?'}, cgroup v{info.cgroup_version or '?'}"
        )

    def _client(self, info: Any) -> Any:
        import podman

        return podman.PodmanClient(base_url=f"unix://{self.api.socket}")

    def _client_list(self) -> list[tuple[str, Callable[[], object]]]:
        def listing() -> None:
            # podman-py 5.8 turns a list value in a filters dict into one
            # string ("['a=b', 'c=d']"): the list-of-"key=value" form works.
            found = self.client.containers.list(
                all=True, filters=[f"label={label}" for label in self.label_list]
            )
            assert len(found) == self.n_list, len(found)

        return [("podman-py", listing)]

    def _client_run(self) -> list[tuple[str, Callable[[], object]]]:
        def run() -> None:
            # podman-py's default: run() waits with libpod's default poll interval
            self.client.containers.run(
                self.image, TRUE, network_mode="none", labels=self.labels, remove=True
            )

        return [("podman-py run()", run)]


# --------------------------------------------------------------------------- lxc


class LxcBench:
    """LXC: enginekit vs the ``lxc`` bindings and the ``lxc-*`` tools."""

    name = "lxc"

    def __init__(self, runid: str, n_list: int) -> None:
        self.runid = runid
        self.labels = {"enginekit.bench": runid}
        self.image = f"enginekit-bench:{runid}"
        self.engine: Any = None
        self.running: Any = None
        self.workdir = tempfile.mkdtemp(prefix="enginekit-bench-lxc-")
        self.raw_name = f"ekbench-{runid}-raw"

    def setup(self) -> list[Case]:
        import lxc

        import enginekit

        self.engine = engine = enginekit.connect("lxc")
        info = engine.info()
        self.notes = [
            f"LXC {info.version}, cgroup v{info.cgroup_version or '?'}, "
            f"image store {info.image_store or '?'}"
        ]
        with build_context() as ctx:
            engine.images.build(ctx, tag=self.image, labels=self.labels)
        self.running = engine.containers.run(
            self.image, SLEEPER, network="none", labels=self.labels
        )
        cid = self.running.id
        handle = self._bindings_handle(self.running)

        inspect = Case("inspect", "bindings")
        inspect.add("enginekit", lambda: engine.containers.get(cid))

        def bindings_inspect() -> None:
            c = lxc.Container(handle[0], handle[1])
            _ = (c.state, c.init_pid, c.get_config_item("lxc.rootfs.path"))

        inspect.add("bindings", bindings_inspect)

        def ek_pause() -> None:
            engine.containers.pause(cid)
            engine.containers.unpause(cid)

        def raw_pause() -> None:
            c = lxc.Container(handle[0], handle[1])
            if not c.freeze() or not c.unfreeze():
                raise RuntimeError("lxc freeze/unfreeze failed")

        pause = Case("pause", "bindings")
        pause.add("enginekit", ek_pause)
        pause.add("bindings", raw_pause)

        config = self._raw_config()

        def raw_run() -> None:
            proc = subprocess.run(
                [
                    "lxc-execute",
                    "-n",
                    self.raw_name,
                    "-P",
                    self.workdir,
                    "-f",
                    config,
                    "--",
                    *TRUE,
                ],
                capture_output=True,
                timeout=60,
            )
            _check_zero(proc.returncode, "lxc-execute")

        run = Case("run", "lxc-execute")
        run.add("enginekit", enginekit_run(engine, self.image, self.labels))
        run.add("lxc-execute", raw_run)
        return [inspect, pause, run]

    def _bindings_handle(self, container: Any) -> tuple[str, str]:
        """(name, lxcpath) of the LXC container behind an enginekit container.

        This reads the adapter's own records (benchmark-only introspection).
        """
        driver = self.engine.driver
        return str(driver._meta(container.id)["lxc_name"]), str(driver.lxcpath)

    def _raw_config(self) -> str:
        """A config + rootfs with busybox for ``lxc-execute`` (same content as the image)."""
        root = os.path.join(self.workdir, "rootfs")
        for sub in ("bin", "proc", "sys", "dev", "tmp"):
            os.makedirs(os.path.join(root, sub))
        shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
        config = os.path.join(self.workdir, "config")
        with open(config, "w") as fh:
            fh.write(
                f"lxc.rootfs.path = dir:{root}\n"
                "lxc.net.0.type = empty\n"
                "lxc.apparmor.profile = unconfined\n"
                "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n"
            )
        return config

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        if self.engine is not None:
            try:
                for c in self.engine.containers.list(all=True, labels=self.labels):
                    try:
                        self.engine.containers.remove(c, force=True)
                    except Exception as exc:
                        problems.append(f"container {c.id[:12]}: {exc}")
                if self.engine.images.exists(self.image):
                    self.engine.images.remove(self.image, force=True)
            except Exception as exc:
                problems.append(f"cleanup: {exc}")
            close_all(self.engine)
        subprocess.run(
            ["lxc-stop", "-k", "-n", self.raw_name, "-P", self.workdir],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems


# --------------------------------------------------------------------------- import


def import_times(runs: int) -> dict[str, float]:
    """Median wall time of ``python -c CODE`` minus that of ``python -c pass``, interleaved."""
    variants = {
        "bare": "pass",
        "import enginekit": "import enginekit",
        "import enginekit + connect('docker')": "import enginekit; enginekit.connect('docker')",
        "import docker": "import docker",
        "import podman": "import podman",
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", variants[name]], capture_output=True)
            elapsed = time.perf_counter() - start
            if proc.returncode == 0:
                times[name].append(elapsed)
    bare = statistics.median(times["bare"]) * 1000
    out = {"bare_ms": bare}
    for name, values in times.items():
        if name != "bare" and values:
            out[name] = statistics.median(values) * 1000 - bare
    # -X importtime: the interpreter's own count of enginekit's cumulative import time
    cumulative = []
    for _ in range(runs):
        timed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import enginekit"],
            capture_output=True,
            text=True,
        )
        for line in timed.stderr.splitlines():
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if len(parts) == 3 and parts[2] == "enginekit":
                cumulative.append(int(parts[1]) / 1000)
    if cumulative:
        out["import enginekit (-X importtime)"] = statistics.median(cumulative)
    return out


# --------------------------------------------------------------------------- report


def goal_lines(results: dict[str, Any], imports: dict[str, float] | None) -> list[dict[str, Any]]:
    lines = ratio_goals(results, GOALS)
    if imports is not None and "import enginekit" in imports:
        # -X importtime counts the import itself; the wall-time difference of two
        # interpreter runs carries the machine's noise (shown beside it).
        value = imports.get("import enginekit (-X importtime)", imports["import enginekit"])
        lines.append(
            {
                "goal": f"import enginekit < {IMPORT_GOAL_MS:.0f} ms over a bare interpreter",
                "value_ms": value,
                "met": value < IMPORT_GOAL_MS,
            }
        )
    return lines


def ratio_goals(
    results: dict[str, Any], goals: list[tuple[str, str, str, float, str]]
) -> list[dict[str, Any]]:
    """Each goal ``(engine, case, variant, limit, base)`` that was measured: the
    ratio of the variant's median to the base's, and whether it is within ``limit``."""
    lines = []
    for engine, case, variant, limit, base in goals:
        data = results.get(engine, {}).get("cases", {}).get(case)
        if data is None:
            continue
        variants = data["variants"]
        if variant not in variants or base not in variants:
            continue
        ratio = variants[variant]["median_ms"] / variants[base]["median_ms"]
        lines.append(
            {
                "goal": f"{engine} {case}: {variant} within {limit}x of {base}",
                "ratio": ratio,
                "met": ratio <= limit,
            }
        )
    return lines


def print_table(
    results: dict[str, Any], imports: dict[str, float] | None, goals: list[dict[str, Any]]
) -> None:
    for engine, data in results.items():
        print(
            f"\n== {engine} ({data['iterations']} iterations, medians"
            + (
                f"; list of {data['containers']} containers)"
                if "list" in data.get("cases", {})
                else ")"
            )
        )
        if "error" in data:
            print(f"   FAILED: {data['error']}")
            continue
        print(f"   {'case':<10} {'variant':<18} {'median ms':>10} {'ratio':>7} {'paired':>7}")
        for case, info in data["cases"].items():
            for variant, v in info["variants"].items():
                mark = " (base)" if variant == info["base"] else ""
                glitch = f"  ({v['glitches']} engine glitches dropped)" if v["glitches"] else ""
                print(
                    f"   {case:<10} {variant:<18} {v['median_ms']:>10.2f} {v['ratio']:>6.2f}x"
                    f" {v['paired_ratio']:>6.2f}x{mark}{glitch}"
                )
        for note in data.get("notes", []):
            print(f"   note: {note}")
    if imports is not None:
        print(f"\n== import time over a bare interpreter ({imports['bare_ms']:.1f} ms)")
        for name, value in imports.items():
            if name != "bare_ms":
                print(f"   {name:<38} {value:>7.1f} ms")
    if goals:
        print("\n== goals")
        for g in goals:
            figure = f"{g['ratio']:.2f}x" if "ratio" in g else f"{g['value_ms']:.1f} ms"
            print(f"   [{'met' if g['met'] else 'MISSED'}] {g['goal']}: {figure}")


def report(
    runid: str,
    results: dict[str, Any],
    imports: dict[str, float] | None,
    goals: list[dict[str, Any]],
    *,
    as_json: bool,
) -> None:
    """The results and goals as a table (:func:`print_table`) or JSON, with the
    machine's CPUs and load average at the end."""
    loadavg = list(os.getloadavg())
    machine: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_at_end": loadavg}
    if as_json:
        json.dump(
            {
                "runid": runid,
                "machine": machine,
                "engines": results,
                "import_ms": imports,
                "goals": goals,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(results, imports, goals)
        load = ", ".join(f"{x:.1f}" for x in loadavg)
        print(f"\n(machine: {machine['cpus']} cpus, load average at the end {load})")


# --------------------------------------------------------------------------- main


class Bench(Protocol):
    name: str

    def setup(self) -> list[Case]: ...

    def cleanup(self) -> list[str]: ...


BENCHES: dict[str, Callable[[str, int], Bench]] = {
    "docker": DockerBench,
    "podman": PodmanBench,
    "lxc": LxcBench,
}


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def interrupted(runid: str, leftovers: bool) -> int:
    """Say on stderr what an interrupt left; the exit status to return."""
    outcome = "some objects may be left" if leftovers else "everything it made was removed"
    print(f"interrupted: {outcome} (label enginekit.bench={runid})", file=sys.stderr)
    return 130


def run_benches(
    benches: Sequence[Callable[[], Bench]],
    runid: str,
    iterations: int,
    warmup: int,
    *,
    progress: bool,
) -> tuple[dict[str, Any], bool, bool]:
    """Make, set up, measure and clean up each bench in turn: ``(results, failed,
    leftovers)``.

    Everything a bench made is removed whatever happens (a second Ctrl-C does
    not cut the clean-up short); SIGTERM is taken as Ctrl-C. An interrupt is
    said on stderr (:func:`interrupted`) and raised again once the clean-up is done.
    """
    signal.signal(signal.SIGTERM, _sigterm)
    # also when started with SIGINT ignored (a background job of a shell script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results: dict[str, Any] = {}
    failed = False
    leftovers = False
    try:
        for make in benches:
            bench = make()
            name = bench.name
            print(f"{name}: setting up (run {runid})", file=sys.stderr)
            try:
                cases = bench.setup()
                measure(cases, iterations, warmup, progress=progress)
                results[name] = {
                    "iterations": iterations,
                    "cases": summarize(cases),
                    "notes": getattr(bench, "notes", []),
                }
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                failed = True
                results[name] = {"iterations": iterations, "error": f"{type(exc).__name__}: {exc}"}
            finally:
                print(f"{name}: cleaning up", file=sys.stderr)
                # a second Ctrl-C must not cut the clean-up short
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    problems = bench.cleanup()
                finally:
                    signal.signal(signal.SIGINT, previous)
                if problems:
                    leftovers = True
                    print(f"{name}: clean-up problems: {'; '.join(problems)}", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted(runid, leftovers)
        raise
    return results, failed, leftovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        choices=sorted(BENCHES),
        default=[],
        help="engine to measure (repeatable)",
    )
    parser.add_argument("-n", "--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--containers",
        type=int,
        default=200,
        help="created containers for the list case (docker, podman)",
    )
    parser.add_argument("--import-runs", type=int, default=20)
    parser.add_argument("--no-import", action="store_true", help="skip the import timing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    engines = args.engine or ["docker"]
    runid = uuid.uuid4().hex[:12]
    benches = [functools.partial(BENCHES[name], runid, args.containers) for name in engines]
    try:
        results, failed, leftovers = run_benches(
            benches, runid, args.iterations, args.warmup, progress=not args.json
        )
    except KeyboardInterrupt:
        return 130
    for entry in results.values():
        entry["containers"] = args.containers
    try:
        imports = None if args.no_import else import_times(args.import_runs)
    except KeyboardInterrupt:
        return interrupted(runid, leftovers)
    report(runid, results, imports, goal_lines(results, imports), as_json=args.json)
    return 1 if failed or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
