"""The contract suite's pytest plugin: engine choice, loading, the ``requires`` marker.

Each case runs pytest in a subprocess on a small test directory. The marker
test needs an engine with declared capabilities: a stand-in adapter (an
installed entry point in a temporary ``site`` directory) declares only
``Capability.EXEC``; it is a fixture of these plugin tests, never of the
contract suite itself.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from enginekit.testing.session import SuiteRun, parse_engine_choice

USES_ENGINE = """
def test_with_engine(engine):
    pass
"""
PLAIN = """
def test_plain():
    pass
"""

FAKE_ADAPTER = """
from enginekit.capabilities import Capability
from enginekit.models import EngineInfo


class Driver:
    name = "ektfake"
    capabilities = frozenset({Capability.EXEC})
    address = "nowhere"

    def ping(self):
        pass

    def info(self):
        return EngineInfo(name="ektfake", version="0")

    def close(self):
        pass

    def container_list(self, **kwargs):
        return []

    def image_list(self, **kwargs):
        return []


def connect(address=None, **options):
    return Driver()


class StuckDriver(Driver):
    # Lists one labelled container that can never be removed.

    name = "ektstuck"

    def _stuck(self, labels):
        from enginekit.models import Container, ContainerState

        return Container(
            id="ab" * 32, name="ekt-stuck", image="x:y", state=ContainerState.EXITED,
            labels={k: v or "" for k, v in (labels or {}).items()}, engine="ektstuck",
        )

    def container_list(self, *, all=False, labels=None, name=None):
        return [self._stuck(labels)]

    def container_inspect(self, ref):
        return self._stuck({})

    def container_remove(self, id, *, force=False):
        from enginekit.errors import Conflict

        raise Conflict("this container cannot be removed")


def connect_stuck(address=None, **options):
    return StuckDriver()
"""


# Plugins these runs do not need (hypothesis alone costs a second a run).
_QUIET = ("-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


def _pytest(
    tmp: pathlib.Path,
    files: dict[str, str],
    *args: str,
    env: dict[str, str] | None = None,
    site: pathlib.Path | None = None,
) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp / name).write_text(textwrap.dedent(text))
    environ = {k: v for k, v in os.environ.items() if k != "ENGINEKIT_TEST_ENGINES"}
    environ.update(env or {})
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(site), *filter(None, [environ.get("PYTHONPATH")])]
        )
    return subprocess.run(
        [sys.executable, "-m", "pytest", *_QUIET, *args],
        cwd=tmp,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fake_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    site = tmp_path_factory.mktemp("site")
    (site / "ektfake_adapter.py").write_text(FAKE_ADAPTER)
    info = site / "ektfake_adapter-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ektfake-adapter\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[enginekit.adapters]\nektfake = ektfake_adapter:connect\n"
        "ektstuck = ektfake_adapter:connect_stuck\n"
    )
    return site


def test_parse_engine_choice() -> None:
    env = {"ENGINEKIT_TEST_ENGINES": " docker, podman ,,docker"}
    assert parse_engine_choice([], env) == ["docker", "podman"]
    assert parse_engine_choice(["lxc", "lxc", "docker+unix:///x"], env) == [
        "lxc",
        "docker+unix:///x",
    ]
    assert parse_engine_choice(None, {}) == []


def test_run_ids_and_names() -> None:
    run = SuiteRun(["docker"])
    assert len(run.run_id) == 12
    assert int(run.run_id, 16) >= 0
    assert run.labels == {"enginekit.test.run": run.run_id}
    assert run.labels is not run.labels
    names = {run.make_name() for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith(f"ekt-{run.run_id}-") for n in names)
    assert run.make_name("x").endswith("-x")
    assert SuiteRun([]).run_id != run.run_id


def test_no_engine_and_only_suite_tests_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    proc = _pytest(tmp_path, {"test_a.py": USES_ENGINE})
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "--engine NAME" in proc.stderr


def test_no_engine_deselects_suite_tests(tmp_path: pathlib.Path) -> None:
    proc = _pytest(tmp_path, {"test_a.py": USES_ENGINE, "test_b.py": PLAIN})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 deselected" in proc.stdout
    assert "1 contract-suite tests deselected: no engine chosen" in proc.stdout


def test_unreachable_engine_fails_not_skips(tmp_path: pathlib.Path) -> None:
    proc = _pytest(tmp_path, {"test_a.py": USES_ENGINE}, "--engine", "ekt-not-installed")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    assert "1 error" in proc.stdout
    assert "skipped" not in proc.stdout
    assert "engine 'ekt-not-installed' was chosen for the contract suite" in proc.stdout


@pytest.mark.parametrize(
    "load",
    [[], ["-p", "enginekit.testing"], ["-p", "enginekit.testing.plugin"], ["-p", "enginekit"]],
)
def test_loading_ways_register_once(tmp_path: pathlib.Path, load: list[str]) -> None:
    proc = _pytest(
        tmp_path,
        {"test_a.py": USES_ENGINE},
        *load,
        "--collect-only",
        env={"ENGINEKIT_TEST_ENGINES": "one,two"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_with_engine[one]" in proc.stdout
    assert "test_with_engine[two]" in proc.stdout


def test_engine_option_wins_over_environment(tmp_path: pathlib.Path) -> None:
    proc = _pytest(
        tmp_path,
        {"test_a.py": USES_ENGINE},
        "--collect-only",
        "--engine",
        "three",
        env={"ENGINEKIT_TEST_ENGINES": "one"},
    )
    assert "test_with_engine[three]" in proc.stdout
    assert "[one]" not in proc.stdout


def test_requires_takes_capabilities_only(tmp_path: pathlib.Path) -> None:
    test = """
    import pytest

    @pytest.mark.requires("exec")
    def test_a(engine):
        pass
    """
    proc = _pytest(tmp_path, {"test_a.py": test}, "--engine", "x")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "Capability members only" in proc.stderr


def test_requires_skips_only_what_is_declared_missing(
    tmp_path: pathlib.Path, fake_site: pathlib.Path
) -> None:
    test = """
    import pytest
    from enginekit import Capability

    @pytest.mark.requires(Capability.EXEC)
    def test_declared(engine):
        assert engine.name == "ektfake"

    @pytest.mark.requires(Capability.EXEC, Capability.PAUSE, Capability.PORTS)
    def test_missing(engine):
        raise AssertionError("must not run")

    @pytest.mark.requires(Capability.PAUSE)
    class TestMarkedClass:
        def test_in_class(self, engine):
            raise AssertionError("must not run")

    @pytest.mark.requires(Capability.PAUSE)
    def test_marked_without_engine():
        pass
    """
    proc = _pytest(tmp_path, {"test_a.py": test}, "--engine", "ektfake", "-rs", site=fake_site)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "2 passed, 2 skipped" in out
    assert "engine ektfake declares no pause, ports" in out
    assert "engine ektfake declares no pause" in out


def test_engines_fixture_and_engine_name(tmp_path: pathlib.Path, fake_site: pathlib.Path) -> None:
    test = """
    def test_all(engines):
        assert list(engines) == ["ektfake"]

    def test_name(engine, engine_name, labels, make_name, run_id):
        assert engine_name == "ektfake"
        assert labels == {"enginekit.test.run": run_id}
        assert make_name().startswith("ekt-" + run_id + "-")
    """
    proc = _pytest(tmp_path, {"test_a.py": test}, "--engine", "ektfake", site=fake_site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_timeout_fails_the_test_not_the_run(
    tmp_path: pathlib.Path, fake_site: pathlib.Path
) -> None:
    test = """
    import time

    def test_hangs(engine):
        time.sleep(60)

    def test_next(engine):
        pass
    """
    proc = _pytest(
        tmp_path,
        {"test_a.py": test},
        "--engine",
        "ektfake",
        "--enginekit-timeout",
        "1",
        site=fake_site,
    )
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in proc.stdout
    assert "call took longer than --enginekit-timeout=1s" in proc.stdout


def test_leftovers_make_the_session_error(tmp_path: pathlib.Path, fake_site: pathlib.Path) -> None:
    test = """
    def test_uses_engine(engine):
        pass
    """
    proc = _pytest(tmp_path, {"test_a.py": test}, "--engine", "ektstuck", site=fake_site)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    assert "1 passed, 1 error" in proc.stdout
    assert "cleanup of the run's containers and images failed" in proc.stdout
    assert "left behind: container ekt-stuck" in proc.stdout
