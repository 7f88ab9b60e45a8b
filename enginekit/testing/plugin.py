"""The enginekit contract suite's pytest plugin (entry point ``pytest11``).

Choose engines with ``--engine NAME`` (repeatable; a name or a URL such as
``docker+unix:///var/run/docker.sock``) or ``ENGINEKIT_TEST_ENGINES=a,b``.
Tests using the ``engine`` fixture run once per chosen engine; an engine that
is chosen and cannot be reached makes those tests error (never skip).

With no engine chosen, tests that need one are deselected (the terminal
summary says how many), so that a project's other tests still run; if only
such tests were selected, the run stops with a usage error instead.

``@pytest.mark.requires(Capability.X, ...)`` skips a test on an engine whose
``capabilities`` lacks one of them, with the reason
``engine NAME declares no x``. Nothing else in the suite skips.

Every container and image a test makes carries ``labels`` (the run label);
each test's leftover containers are removed after it, and at the end of the
session every labelled container and image is removed from every engine; if
anything labelled is left, the session errors. SIGTERM ends the run as
Ctrl-C does, through that cleanup.

``--enginekit-timeout SECONDS`` (default 300, 0 disables) fails a test whose
setup or call takes longer (SIGALRM interrupts a blocked engine call), so a
hang costs one test, not the run.

Loading: installed, the entry point registers this module as ``enginekit``;
``-p enginekit.testing`` and ``-p enginekit.testing.plugin`` work too, and
never register it twice.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import pytest

from .fixtures import (
    base_image,
    base_images,
    build_context,
    busybox_path,
    create_container,
    engine,
    engine_name,
    enginekit_run,
    engines,
    labels,
    make_name,
    mount_source,
    run_container,
    run_id,
)
from .registry import registry
from .session import RUN_LABEL, EngineNotReachable, SuiteRun, parse_engine_choice

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

__all__ = [
    "ENTRY_POINT_NAME",
    "RUN_KEY",
    "base_image",
    "base_images",
    "build_context",
    "busybox_path",
    "create_container",
    "engine",
    "engine_name",
    "enginekit_run",
    "engines",
    "labels",
    "make_name",
    "mount_source",
    "registry",
    "run_container",
    "run_id",
]

#: The name the ``pytest11`` entry point registers this plugin under.
ENTRY_POINT_NAME = "enginekit"
RUN_KEY = pytest.StashKey[SuiteRun]()
_DESELECTED_KEY = pytest.StashKey[int]()
_NO_FAULTS_KEY = pytest.StashKey[int]()
_ENGINE_FIXTURES = ("engine", "engines")
#: Seconds a test's setup or call may take before it fails (``--enginekit-timeout``).
DEFAULT_TIMEOUT = 300.0

pytest.register_assert_rewrite("enginekit.testing.suite")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # Registered under another name (``-p enginekit.testing.plugin``): keep the
    # installed entry point from registering this same module a second time.
    if pluginmanager.get_plugin(ENTRY_POINT_NAME) is None:
        pluginmanager.set_blocked(ENTRY_POINT_NAME)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("enginekit", "enginekit contract suite")
    group.addoption(
        "--engine",
        action="append",
        dest="enginekit_engines",
        default=[],
        metavar="NAME",
        help=(
            "run the enginekit contract suite on this engine (adapter name or URL); "
            "repeatable; default: $ENGINEKIT_TEST_ENGINES (comma-separated)"
        ),
    )
    _add_timeout_option(group)
    group.addoption(
        "--enginekit-faults",
        dest="enginekit_faults",
        default=None,
        metavar="COMMAND",
        help=(
            "a program that kills and restarts the chosen engines' daemons "
            "(`COMMAND kill|start ENGINE ADDRESS`); the fault scenarios (marker "
            "`faults`) run only with it; default: $ENGINEKIT_TEST_FAULTS"
        ),
    )


def faults_command(config: pytest.Config) -> str | None:
    """The fault injector given with ``--enginekit-faults`` or ``$ENGINEKIT_TEST_FAULTS``."""
    return (
        config.getoption("enginekit_faults", default=None)
        or os.environ.get("ENGINEKIT_TEST_FAULTS")
        or None
    )


def _add_timeout_option(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--enginekit-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        dest="enginekit_timeout",
        metavar="SECONDS",
        help=(
            "fail a test using an engine whose setup or call runs longer than this "
            f"(default {DEFAULT_TIMEOUT:g}; 0 disables)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): enginekit Capability members the test needs; the test "
        "is skipped on an engine that declares it lacks one of them",
    )
    config.addinivalue_line(
        "markers",
        "faults: the test kills and restarts the engine's daemon through the program "
        "given with --enginekit-faults; deselected (and said so) without one",
    )
    names = parse_engine_choice(config.getoption("enginekit_engines", default=[]))
    config.stash[RUN_KEY] = SuiteRun(names)
    if names:
        _interrupt_on_sigterm(config)


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """Turn SIGTERM (a cancelled CI job) into KeyboardInterrupt, so that the
    session still ends through its cleanup; the previous handler comes back
    at the end of the run."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, interrupt)
    config.add_cleanup(restore)


def pytest_report_header(config: pytest.Config) -> str | None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return None
    chosen = ", ".join(run.engine_names) or "none (use --engine NAME)"
    return f"enginekit: engines: {chosen}; run label {RUN_LABEL}={run.run_id}"


def _uses_engine(names: Any) -> bool:
    return any(f in names for f in _ENGINE_FIXTURES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN_KEY]
    if run.engine_names:
        metafunc.parametrize(
            "engine", run.engine_names, indirect=True, ids=run.engine_names, scope="session"
        )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    from enginekit.capabilities import Capability

    for item in items:
        for mark in item.iter_markers("requires"):
            bad = [a for a in mark.args if not isinstance(a, Capability)]
            if bad or mark.kwargs:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.requires takes Capability members only, "
                    f"got {bad or mark.kwargs!r}"
                )
    if faults_command(config) is None:
        faulty = [i for i in items if i.get_closest_marker("faults") is not None]
        if faulty:
            config.hook.pytest_deselected(items=faulty)
            items[:] = [i for i in items if i.get_closest_marker("faults") is None]
            config.stash[_NO_FAULTS_KEY] = len(faulty)
    run = config.stash[RUN_KEY]
    if run.engine_names:
        return
    needing = [i for i in items if _uses_engine(getattr(i, "fixturenames", ()))]
    if not needing:
        return
    if len(needing) == len(items):
        raise pytest.UsageError(
            "the enginekit contract suite needs an engine: pass --engine NAME (repeatable) "
            "or set ENGINEKIT_TEST_ENGINES=name[,name...]"
        )
    keep = [i for i in items if not _uses_engine(getattr(i, "fixturenames", ()))]
    config.hook.pytest_deselected(items=needing)
    items[:] = keep
    config.stash[_DESELECTED_KEY] = len(needing)


def _engines_of(item: pytest.Item, run: SuiteRun) -> list[str]:
    names = getattr(item, "fixturenames", ())
    callspec = getattr(item, "callspec", None)
    if "engine" in names and callspec is not None and "engine" in callspec.params:
        return [str(callspec.params["engine"])]
    if "engines" in names:
        return list(run.engine_names)
    return []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _check_requirements(item)  # before any fixture is set up
    with _deadline(item, "setup"):
        return (yield)


def _check_requirements(item: pytest.Item) -> None:
    wanted = [cap for mark in item.iter_markers("requires") for cap in mark.args]
    if not wanted:
        return
    run = item.config.stash[RUN_KEY]
    for name in _engines_of(item, run):
        try:
            declared = run.engine(name).capabilities
        except EngineNotReachable as exc:
            message = str(exc)
        else:
            missing = sorted({c.value for c in wanted if c not in declared})
            if missing:
                pytest.skip(f"engine {name} declares no {', '.join(missing)}")
            continue
        pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _deadline(item, "call"):
        return (yield)


@contextlib.contextmanager
def _deadline(node: pytest.Item | pytest.Collector | Any, what: str) -> Iterator[None]:
    """Fail the current test (never hang the run) if ``what`` outlives
    ``--enginekit-timeout``: SIGALRM interrupts even a blocked engine call, in
    the main thread, and the test's teardown and the run's cleanup still run."""
    import signal
    import threading

    seconds = float(node.config.getoption("enginekit_timeout", default=0) or 0)
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
        or not _uses_engine(getattr(node, "fixturenames", ()))
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0  # an outer deadline is running
    ):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        import faulthandler
        import sys

        with contextlib.suppress(Exception):  # stderr may be captured without a file
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        pytest.fail(f"{what} took longer than --enginekit-timeout={seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _enginekit_remove_test_containers(request: pytest.FixtureRequest) -> Generator[None]:
    """Remove the labelled containers a test made and left (those made by
    fixtures of a wider scope, existing before the test, stay)."""
    if not _uses_engine(request.fixturenames):
        yield
        return
    run = request.config.stash[RUN_KEY]
    before: dict[str, set[str]] = {}
    for name, eng in run.connected.items():
        try:
            before[name] = {c.id for c in eng.containers.list(all=True, labels=run.labels)}
        except Exception:
            before[name] = set()
    yield
    for name, eng in run.connected.items():
        run.purge_containers(eng, keep=before.get(name, ()))


@pytest.fixture(scope="session", autouse=True)
def _enginekit_session_cleanup(request: pytest.FixtureRequest) -> Generator[None]:
    """At the end of the session remove everything labelled with the run id;
    anything left makes the session error."""
    yield
    report = request.config.stash[RUN_KEY].purge()
    if report:
        raise AssertionError(_format_report(report))


def _format_report(report: dict[str, list[str]]) -> str:
    lines = ["enginekit: cleanup of the run's containers and images failed:"]
    for name, problems in report.items():
        lines += [f"  {name}: {p}" for p in problems]
    return "\n".join(lines)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A backstop for runs interrupted before the session fixture's teardown.
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    report = run.purge()
    if report:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(_format_report(report), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    faulty = config.stash.get(_NO_FAULTS_KEY, 0)
    if faulty:
        terminalreporter.write_line(
            f"enginekit: {faulty} fault-scenario tests deselected: no fault injector "
            "(pass --enginekit-faults COMMAND or set ENGINEKIT_TEST_FAULTS; "
            "scripts/test.sh uses scripts/faults.sh)",
            yellow=True,
        )
    n = config.stash.get(_DESELECTED_KEY, 0)
    if n:
        terminalreporter.write_line(
            f"enginekit: {n} contract-suite tests deselected: no engine chosen "
            "(pass --engine NAME or set ENGINEKIT_TEST_ENGINES)",
            yellow=True,
        )
