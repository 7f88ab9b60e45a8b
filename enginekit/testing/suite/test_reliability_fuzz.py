"""Reliability: bad inputs drawn by hypothesis, refused alike on every engine.

For ``create``/``run``, ``exec``, ``copy_to``/``copy_from``, ``build``, ``tag`` and
``pull``, hypothesis draws calls with one invalid value each (a wrong type, a
number out of range, a bad name or reference, a bad port or mount path, a NUL
byte, a lone surrogate, a huge string). Every chosen engine gets the same call
and must raise ``InvalidSpec`` with the same message, and nothing is made: no
container or image carrying the attempt's label, the run's images as they were,
nothing written on the host or into the container.

Examples are derandomized (the same ones on every run, in CI too) and bounded
(``EXAMPLES`` each, scaled by ``$ENGINEKIT_TEST_EXAMPLES_SCALE``). No drawn
reference names a registry other than a closed port on 127.0.0.1.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enginekit import validate
from enginekit.capabilities import Capability
from enginekit.errors import InvalidSpec
from enginekit.models import Container, Mount
from enginekit.testing.strategies import (
    InvalidCase,
    env_names,
    invalid_env_names,
    invalid_specs,
    names,
    printable_text,
)

from ..helpers import busy_host_port
from ._runs import examples, table
from .test_build import FINGERPRINT, _fingerprinted

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory
    from enginekit.testing.session import SuiteRun

EXAMPLES = 40
#: The label every object an attempt might make carries (a value per attempt).
MARK = "enginekit.test.fuzz"
#: A registry that never answers: any reference drawn for a pull names it.
NO_REGISTRY = "127.0.0.1:9"
HUGE = st.integers(min_value=validate.MAX_ARG_BYTES + 1, max_value=validate.MAX_ARG_BYTES + 4096)

FUZZ = settings(
    max_examples=examples(EXAMPLES),
    deadline=None,
    derandomize=True,
    database=None,  # the suite runs in other projects: leave no example database
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --------------------------------------------------------------------------- strategies


@attrs.frozen
class BadCall:
    """One call with one invalid value: ``why`` names it (shown in failures)."""

    why: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)


def _huge(char: str = "x") -> st.SearchStrategy[str]:
    return HUGE.map(lambda n: char * n)


def _surrogate(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return text.map(lambda t: t[:5] + "\udcff" + t[5:])


_WRONG_TYPES: st.SearchStrategy[Any] = st.sampled_from(
    [1, -1, 1.5, b"bytes", None, True, ["list"], ("tuple",), {"a": "b"}, object]
).filter(lambda v: v is not None)
_NUL_TEXT = st.builds(
    lambda a, b: a + "\0" + b, printable_text(max_size=8), printable_text(max_size=8)
)


def bad_image_refs() -> st.SearchStrategy[str]:
    """References the core refuses, all naming ``NO_REGISTRY`` or no registry."""
    repo = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
    base = repo.map(lambda r: f"{NO_REGISTRY}/ek/{r}")
    refs = st.one_of(
        st.just(""),
        base.map(lambda b: b.upper()),
        base.map(lambda b: b + " x:1"),
        base.map(lambda b: b + ":"),
        base.map(lambda b: b + "::1"),
        base.map(lambda b: b + ":-bad"),
        base.map(lambda b: b + ":" + "t" * 129),
        base.map(lambda b: b + "@sha256:" + "0" * 64),
        base.map(lambda b: b + "//x:1"),
        base.map(lambda b: b + "/:1"),
        base.map(lambda b: b + "/..:1"),
        base.map(lambda b: b + ":1\0"),
        base.map(lambda b: b + ":1\n"),
        base.map(lambda b: b + ":t\udcff"),
        st.sampled_from(["sha256:xyz", "sha256:" + "g" * 64, "sha256:abc", "-x:1", "_x:1"]),
        _huge("a").map(lambda h: f"{NO_REGISTRY}/{h}:1"),
    )
    return refs.filter(_refused_ref)


def _refused_ref(ref: str) -> bool:
    try:
        validate.image_ref(ref)
    except InvalidSpec:
        return True
    return False


def _long_paths() -> st.SearchStrategy[str]:
    """Absolute paths no engine can carry: a component over 255 bytes, or too long."""
    over = validate.MAX_PATH_BYTES + 1
    return st.one_of(
        st.integers(min_value=validate.MAX_NAME_BYTES + 1, max_value=400).map(
            lambda n: "/srv/" + "c" * n
        ),
        st.integers(min_value=over, max_value=over + 600).map(
            lambda n: ("/" + "/".join(["p" * 200] * (n // 201 + 1)))[:n]
        ),
    )


def _container_case(why: str, spec: Mapping[str, Any], command: Any = ("true",)) -> InvalidCase:
    return InvalidCase(
        why=why, command=list(command) if isinstance(command, tuple) else command, spec=dict(spec)
    )


def bad_container_specs() -> st.SearchStrategy[InvalidCase]:
    """The suite's invalid specs, and wrong types, huge strings, NUL bytes,
    surrogates and bad values of every spec key."""
    extra = st.one_of(
        _WRONG_TYPES.map(lambda v: _container_case("name of a wrong type", {"name": v})),
        names().map(lambda n: _container_case("name too long", {"name": (n + "x" * 64)[:200]})),
        _huge().map(lambda h: _container_case("huge name", {"name": h})),
        st.sampled_from([b"echo hi", [1], ["a", None], [b"x"], 5]).map(
            lambda c: _container_case("command of a wrong type", {}, command=c)
        ),
        _NUL_TEXT.map(lambda a: _container_case("command with NUL", {}, command=["echo", a])),
        _huge().map(lambda h: _container_case("huge argument", {}, command=["echo", h])),
        _surrogate(printable_text()).map(
            lambda a: _container_case("argument with a surrogate", {}, command=["echo", a])
        ),
        _huge().map(lambda h: _container_case("huge entrypoint", {"entrypoint": [h]})),
        st.sampled_from([5, {"a": "b"}, [1]]).map(
            lambda e: _container_case("entrypoint of a wrong type", {"entrypoint": e})
        ),
        st.sampled_from([["A=1"], "A=1", 5]).map(
            lambda e: _container_case("env not a mapping", {"env": e})
        ),
        st.sampled_from([1, b"v", None, ["v"], True]).map(
            lambda v: _container_case("env value of a wrong type", {"env": {"EK_A": v}})
        ),
        st.tuples(env_names(), _huge()).map(
            lambda kv: _container_case("huge env value", {"env": {kv[0]: kv[1]}})
        ),
        st.tuples(env_names(), _surrogate(printable_text())).map(
            lambda kv: _container_case("env value with a surrogate", {"env": {kv[0]: kv[1]}})
        ),
        invalid_env_names().map(lambda n: _container_case("bad env name", {"env": {n: "v"}})),
        st.sampled_from(["a=b", "", " lead", "trail ", "nl\n", "\udcff"]).map(
            lambda k: _container_case("bad label key", {"labels": {k: "v"}})
        ),
        st.sampled_from([1, None, b"v", ["v"]]).map(
            lambda v: _container_case("label value of a wrong type", {"labels": {"ek.k": v}})
        ),
        st.sampled_from(["x", ["a=b"], 5]).map(
            lambda v: _container_case("labels not a mapping", {"labels": v})
        ),
        st.one_of(
            st.integers(max_value=validate.MIN_MEMORY - 1),
            st.sampled_from([True, 1.5e9, "nan", "1e9", "64 mb x", "-1g", [64], float("nan")]),
        ).map(lambda m: _container_case("bad memory", {"memory": m})),
        st.one_of(
            st.floats(max_value=0.009),
            st.floats(min_value=10_000.0),
            st.sampled_from([True, "2", None, float("inf"), float("nan")]).filter(
                lambda c: c is not None
            ),
        ).map(lambda c: _container_case("bad cpus", {"cpus": c})),
        st.one_of(st.integers(max_value=0), st.sampled_from([True, 1.5, "10", [1]])).map(
            lambda p: _container_case("bad pids_limit", {"pids_limit": p})
        ),
        st.one_of(
            st.integers(max_value=0).map(lambda p: {p: 8080}),
            st.integers(min_value=65536, max_value=10**9).map(lambda p: {p: None}),
            st.integers(min_value=65536, max_value=10**9).map(lambda p: {80: p}),
            st.integers(max_value=-1).map(lambda p: {80: p}),
            st.sampled_from(
                [
                    {"80/sctp": 1},
                    {"80/": 1},
                    {"x/tcp": 1},
                    {"": 1},
                    {80: "8080"},
                    {80: ("nope", 8080)},
                    {80: ("127.0.0.1", 70000)},
                    {80: ("127.0.0.1", 1, 2)},
                    {80: (1, 2)},
                    {True: 80},
                    {1.5: 80},
                    {80: 1, "80/tcp": 2},
                ]
            ),
            st.sampled_from([[80], "80:80", 80]),
        ).map(lambda p: _container_case("bad ports", {"ports": p})),
        st.sampled_from(
            [
                [Mount(source="/tmp", target="/")],
                [Mount(source="/tmp", target="/a"), Mount(source="/tmp", target="/a/")],
                [Mount(source="/tmp:x", target="/mnt")],
                [Mount(source="/tmp", target="/m nt")],
                [Mount(source="/tmp", target="/m,nt")],
                [Mount(source="/nonexistent-enginekit-fuzz", target="/mnt")],
                [Mount(source="/tmp\0", target="/mnt")],
                [Mount(source="/tmp", target="/\udcff")],
                ["/tmp"],
                ["/tmp:/mnt:rx"],
                ["/tmp:/mnt:ro:x"],
                [5],
                {"/tmp": {"bind": "/mnt", "mode": "rx"}},
                {"/tmp": "relative"},
                "/tmp:/mnt",
                5,
            ]
        ).map(lambda m: _container_case("bad mounts", {"mounts": m})),
        st.one_of(
            st.sampled_from(["", "rel", "./x", 5, "/a\nb"]),
            _NUL_TEXT.map(lambda t: "/" + t),
            _surrogate(printable_text()).map(lambda t: "/" + t),
            _long_paths(),
        ).map(lambda w: _container_case("bad workdir", {"workdir": w})),
        st.sampled_from(["", "a b", "x" * 33, ":", "a:", ":b", "a:b:c", -1, True, 1.5]).map(
            lambda u: _container_case("bad user", {"user": u})
        ),
        st.one_of(
            st.sampled_from(["", "-a", "a-", "a_b", "a..b", ".a", 5]),
            st.integers(min_value=64, max_value=300).map(lambda n: "h" * n),
        ).map(lambda h: _container_case("bad hostname", {"hostname": h})),
        st.sampled_from(["weird", "", "NONE", "Bridge ", 1, True]).map(
            lambda n: _container_case("bad network", {"network": n})
        ),
        st.sampled_from(["SIGBOGUS", "", 0, -1, 999, True, "SIGSTOP", "SIGCONT", 1.5]).map(
            lambda s: _container_case("bad stop_signal", {"stop_signal": s})
        ),
    )
    return st.one_of(invalid_specs(), extra, extra)


def bad_exec_calls() -> st.SearchStrategy[BadCall]:
    return st.one_of(
        st.sampled_from(["echo hi", b"echo hi", [], [1], ["a", None], 5]).map(
            lambda c: BadCall("command of a wrong type", (c,))
        ),
        _NUL_TEXT.map(lambda a: BadCall("argument with NUL", (["echo", a],))),
        _huge().map(lambda h: BadCall("huge argument", (["echo", h],))),
        _surrogate(printable_text()).map(lambda a: BadCall("surrogate", (["echo", a],))),
        invalid_env_names().map(lambda n: BadCall("bad env name", (["true"],), {"env": {n: "v"}})),
        st.sampled_from([["A=1"], "A=1", {"EK_A": 1}, {"EK_A": "a\0b"}, {"EK_A": "a\nb"}]).map(
            lambda e: BadCall("bad env", (["true"],), {"env": e})
        ),
        _huge().map(lambda h: BadCall("huge env value", (["true"],), {"env": {"EK_A": h}})),
        st.one_of(st.sampled_from(["", "rel", "/a\0b", "/a\nb", 5, "/\udcff"]), _long_paths()).map(
            lambda w: BadCall("bad workdir", (["true"],), {"workdir": w})
        ),
        st.sampled_from(["", "a b", "x" * 33, -1, True, 1.5, "a:b:c"]).map(
            lambda u: BadCall("bad user", (["true"],), {"user": u})
        ),
    )


def bad_copy_calls() -> st.SearchStrategy[BadCall]:
    """``("to"|"from", container_path, host_path)``; the host path is relative to a
    fresh folder (``{tmp}`` is replaced), or an absolute value of its own."""
    good_host = st.just("{tmp}/f")
    bad_container = st.one_of(
        st.sampled_from(["", "rel", "./x", "/a\0b", "/a\nb", 5, None, b"/tmp", "/\udcff"]),
        _huge().map(lambda h: "/" + h),
        _long_paths(),
    )
    bad_host = st.sampled_from(
        ["", "{tmp}/a\0b", 5, None, b"/tmp", "{tmp}/missing/f", "{tmp}/nothing-here"]
    )
    return st.one_of(
        st.tuples(st.sampled_from(["to", "from"]), bad_container, good_host).map(
            lambda t: BadCall(f"copy_{t[0]}: bad container path", t)
        ),
        st.tuples(st.sampled_from(["to", "from"]), st.just("/tmp/ek-fuzz"), bad_host)
        .filter(lambda t: not (t[0] == "from" and t[2] == "{tmp}/nothing-here"))
        .map(lambda t: BadCall(f"copy_{t[0]}: bad host path", t)),
    )


def bad_build_calls() -> st.SearchStrategy[BadCall]:
    return st.one_of(
        bad_image_refs().map(lambda t: BadCall("bad tag", kwargs={"tag": t})),
        st.sampled_from(["one:1", b"x", 5]).map(
            lambda t: BadCall("tags not a list", kwargs={"tags": t})
        ),
        st.sampled_from([["ok:1", "Bad:1"], ["ok:1", ""], [5]]).map(
            lambda t: BadCall("a bad tag among tags", kwargs={"tags": t})
        ),
        st.sampled_from(["sha256:" + "a" * 64, "sha256:" + "a" * 12]).map(
            lambda t: BadCall("tag not name:tag", kwargs={"tag": t})
        ),
        st.one_of(
            invalid_env_names().map(lambda n: {n: "v"}),
            st.sampled_from([{"A": 1}, {"A": "a\0b"}, {"A": "a\nb"}, {"A": "\udcff"}, ["A=1"]]),
        ).map(lambda a: BadCall("bad build_args", kwargs={"build_args": a})),
        st.sampled_from([{"": "v"}, {"k": 1}, {"a=b": "v"}, {"k": "a\0b"}, "k=v"]).map(
            lambda v: BadCall("bad labels", kwargs={"labels": v})
        ),
        st.sampled_from(
            ["", "/etc/passwd", "../Dockerfile", "Docker\0file", "missing", 5, "sub/../../x"]
        ).map(lambda d: BadCall("bad dockerfile", kwargs={"dockerfile": d})),
        st.sampled_from(["", 5, "no-such-stage"]).map(
            lambda t: BadCall("bad target", kwargs={"target": t})
        ),
        st.sampled_from(["x", 5]).map(
            lambda p: BadCall("progress not callable", kwargs={"progress": p})
        ),
        st.sampled_from(["{tmp}/missing", "{tmp}\0x", "", 5, None, "{tmp}/Dockerfile"]).map(
            lambda c: BadCall("bad context", (c,))
        ),
    )


def bad_tag_calls() -> st.SearchStrategy[BadCall]:
    return st.one_of(
        bad_image_refs().map(lambda r: BadCall("bad new ref", ("{base}", r))),
        bad_image_refs().map(lambda r: BadCall("bad source ref", (r, "ek-fuzz/never:1"))),
        st.sampled_from(["sha256:" + "b" * 64, 5, None]).map(
            lambda r: BadCall("new ref not name:tag", ("{base}", r))
        ),
    )


# --------------------------------------------------------------------------- checks


def _outcome(call: Callable[..., object], *args: Any, **kwargs: Any) -> tuple[str, str]:
    """What ``call(*args, **kwargs)`` raised: its class name (``InvalidSpec`` for its
    subclasses too, such as ``UnknownOption``) and message."""
    try:
        call(*args, **kwargs)
    except InvalidSpec as exc:
        return InvalidSpec.__name__, str(exc)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "no error", ""


def _made(eng: Engine, mark: str) -> dict[str, list[str]]:
    wanted = {MARK: mark}
    return {
        "containers": sorted(c.id for c in eng.containers.list(all=True, labels=wanted)),
        "images": sorted(i.id for i in eng.images.list(labels=wanted))
        + sorted(i.id for i in eng.images.list(labels={FINGERPRINT: mark})),
    }


def _images(eng: Engine, labels: dict[str, str]) -> set[tuple[str, tuple[str, ...]]]:
    return {(i.id, i.tags) for i in eng.images.list(labels=labels)}


def _assert_refused_alike(rows: dict[str, dict[str, Any]], title: str) -> None:
    """Every engine raised InvalidSpec, with one message, and made nothing."""
    nothing: dict[str, list[str]] = {"containers": [], "images": []}
    for row in rows.values():
        outcomes = [v for v in row.values() if isinstance(v, tuple)]  # (class, message)
        if (
            any(o[0] != InvalidSpec.__name__ for o in outcomes)
            or row["made"] != nothing
            or not row.get("images kept", True)
        ):
            pytest.fail(table(rows, title=f"{title}: not refused alike"), pytrace=False)
    first = next(iter(rows.values()))
    if any(row != first for row in rows.values()):
        pytest.fail(table(rows, title=f"{title}: the engines differ"), pytrace=False)


def _with_tmp(value: Any, tmp: Path) -> Any:
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


class TestReliabilityFuzz:
    @pytest.fixture(scope="class")
    @staticmethod
    def sleepers(
        engines: dict[str, Engine], base_images: dict[str, str], enginekit_run: SuiteRun
    ) -> Iterator[dict[str, Container]]:
        """A running container per engine, for exec and copy (removed at the end)."""
        made: dict[str, Container] = {}
        try:
            for name, eng in engines.items():
                made[name] = eng.containers.run(
                    base_images[name], ["sleep", "3600"], labels=enginekit_run.labels
                )
            yield made
        finally:
            for name, c in made.items():
                engines[name].containers.remove(c, force=True)

    @FUZZ
    @given(case=bad_container_specs())
    def test_create_and_run(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        case: InvalidCase,
    ) -> None:
        mark = uuid.uuid4().hex[:12]
        spec = dict(case.spec)
        drawn = spec.get("labels", {})
        if isinstance(drawn, Mapping):
            spec["labels"] = {**labels, MARK: mark, **drawn}
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            rows[name] = {
                call: _outcome(
                    getattr(eng.containers, call), base_images[name], case.command, **spec
                )
                for call in ("create", "run")
            }
            rows[name]["made"] = _made(eng, mark)
        _assert_refused_alike(rows, case.why)

    @FUZZ
    @given(ref=bad_image_refs(), call=st.sampled_from(["create", "run"]))
    def test_bad_image_of_create_and_run(
        self, engines: dict[str, Engine], labels: dict[str, str], ref: str, call: str
    ) -> None:
        mark = uuid.uuid4().hex[:12]
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            method = getattr(eng.containers, call)
            rows[name] = {
                call: _outcome(method, ref, ["true"], labels={**labels, MARK: mark}),
                "made": _made(eng, mark),
            }
        _assert_refused_alike(rows, f"{call} of image {ref[:60]!r}")

    @pytest.mark.requires(Capability.EXEC)
    @FUZZ
    @given(case=bad_exec_calls())
    def test_exec(
        self, engines: dict[str, Engine], sleepers: dict[str, Container], case: BadCall
    ) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            c = sleepers[name]
            rows[name] = {
                "exec": _outcome(eng.containers.exec, c, *case.args, **case.kwargs),
                "made": {"containers": [], "images": []},
            }
        _assert_refused_alike(rows, case.why)

    @pytest.mark.requires(Capability.COPY)
    @FUZZ
    @given(case=bad_copy_calls())
    def test_copy(
        self,
        engines: dict[str, Engine],
        sleepers: dict[str, Container],
        tmp_path_factory: pytest.TempPathFactory,
        case: BadCall,
    ) -> None:
        direction, container_path, host_path = case.args
        # One host folder for every engine (emptied between them): a message naming
        # it reads the same everywhere.
        tmp = tmp_path_factory.mktemp("fuzz-copy")
        host = _with_tmp(host_path, tmp)
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            for leftover in tmp.iterdir():
                leftover.unlink()
            (tmp / "f").write_bytes(b"fuzz")
            c = sleepers[name]
            if direction == "to":
                outcome = _outcome(eng.containers.copy_to, c, host, container_path)
            else:
                outcome = _outcome(eng.containers.copy_from, c, container_path, host)
            seen = tmp_path_factory.mktemp("fuzz-seen")
            eng.containers.copy_from(c, "/tmp", seen)
            rows[name] = {
                f"copy_{direction}": outcome,
                "host folder": sorted(p.name for p in tmp.iterdir()),
                "container /tmp": sorted(p.name for p in (seen / "tmp").iterdir()),
                "made": {"containers": [], "images": []},
            }
        _assert_refused_alike(rows, case.why)
        for name, row in rows.items():
            assert (row["host folder"], row["container /tmp"]) == (["f"], []), (name, row)

    @pytest.mark.requires(Capability.BUILD)
    @FUZZ
    @given(case=bad_build_calls())
    def test_build(
        self,
        engines: dict[str, Engine],
        build_context: BuildContextFactory,
        labels: dict[str, str],
        case: BadCall,
    ) -> None:
        mark = uuid.uuid4().hex[:12]
        # One context for every engine: a message naming it reads the same everywhere.
        ctx = build_context(_fingerprinted("FROM scratch\nLABEL a=b\n", mark), busybox=False)
        args = tuple(_with_tmp(a, ctx) for a in case.args) or (str(ctx),)
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            kwargs: dict[str, Any] = {"tag": f"ek-fuzz-{mark}:1", "labels": {**labels, MARK: mark}}
            kwargs.update(case.kwargs)
            before = _images(eng, labels)
            rows[name] = {
                "build": _outcome(eng.images.build, *args, **kwargs),
                "made": _made(eng, mark),
                "images kept": _images(eng, labels) == before,
            }
        _assert_refused_alike(rows, case.why)

    @FUZZ
    @given(case=bad_tag_calls())
    def test_tag(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        case: BadCall,
    ) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            args = [base_images[name] if a == "{base}" else a for a in case.args]
            before = _images(eng, labels)
            rows[name] = {
                "tag": _outcome(eng.images.tag, *args),
                "made": {"containers": [], "images": []},
                "images kept": _images(eng, labels) == before,
            }
        _assert_refused_alike(rows, case.why)

    @pytest.mark.requires(Capability.PULL)
    @FUZZ
    @given(ref=bad_image_refs())
    def test_pull(self, engines: dict[str, Engine], labels: dict[str, str], ref: str) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            before = _images(eng, labels)
            rows[name] = {
                "pull": _outcome(eng.images.pull, ref),
                "made": {"containers": [], "images": []},
                "images kept": _images(eng, labels) == before,
            }
        _assert_refused_alike(rows, f"pull {ref[:60]!r}")


# --------------------------------------------------------------------------- refused by the engine

BUSY = "{busy port}"
ENGINE_SIDE = [
    pytest.param({"user": "nosuchuser"}, id="a user the image does not have"),
    pytest.param({"user": "0:nosuchgroup"}, id="a group the image does not have"),
    pytest.param({"workdir": "/bin/busybox"}, id="a workdir that is a file in the image"),
    pytest.param(
        {"ports": {80: BUSY}},
        id="a host port in use",
        marks=pytest.mark.requires(Capability.PORTS),
    ),
]


class TestReliabilityFuzzEngineSide:
    """Values the core cannot judge (they depend on the image or the host), which
    the engine refuses: ``run`` raises the same error class on every engine and
    leaves no container."""

    @pytest.mark.parametrize("spec", ENGINE_SIDE)
    def test_run_refused_alike(
        self,
        request: pytest.FixtureRequest,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
        spec: dict[str, Any],
    ) -> None:
        import contextlib

        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            mark = uuid.uuid4().hex[:12]
            with contextlib.ExitStack() as stack:
                run_spec = spec
                if spec.get("ports") == {80: BUSY}:
                    # Held where the engine publishes (its host's published address).
                    port = stack.enter_context(busy_host_port(eng, base_images[name], labels))
                    run_spec = {"ports": {80: port}}
                error, message = _outcome(
                    eng.containers.run,
                    base_images[name],
                    ["true"],
                    labels={**labels, MARK: mark},
                    **run_spec,
                )
            rows[name] = {"error": error, "message": message, "made": _made(eng, mark)}
        nothing: dict[str, list[str]] = {"containers": [], "images": []}
        classes = {row["error"] for row in rows.values()}
        if (
            len(classes) != 1
            or "no error" in classes
            or any(row["made"] != nothing for row in rows.values())
        ):
            title = request.node.callspec.id
            pytest.fail(table(rows, title=f"{title}: not refused alike"), pytrace=False)
