"""Containers: exec.

CONTRACT.md, "Containers" (``exec(ref, command, *, env, workdir, user) ->
ExecResult``, stdout and stderr apart) and "Semantics" (exec of a container
that is not running is a ``Conflict``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from enginekit import Capability, ContainerState, ExecResult
from enginekit.errors import Conflict, InvalidSpec
from enginekit.testing.helpers import parse_env

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import ContainerFactory

SLEEP = ["sleep", "100"]


@pytest.mark.requires(Capability.EXEC)
class TestContainerExec:
    def test_exit_code_and_streams(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        result = engine.containers.exec(c, ["sh", "-c", "echo out; echo err >&2; exit 5"])
        assert isinstance(result, ExecResult)
        assert result == ExecResult(exit_code=5, stdout=b"out\n", stderr=b"err\n")

    def test_success_and_binary_output(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        result = engine.containers.exec(c, ["printf", "\\377\\000a\\r\\nb"])
        assert result.exit_code == 0
        assert result.stdout == b"\xff\x00a\r\nb"
        assert result.stderr == b""

    def test_large_output(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        result = engine.containers.exec(
            c, ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; head -c 50000 /dev/zero >&2"]
        )
        assert result.stdout == b"x" * 100000
        assert result.stderr == b"\0" * 50000

    def test_env(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP, env={"EKT_FROM_SPEC": "spec"})
        result = engine.containers.exec(c, ["env"], env={"EKT_X": "a b=c", "EKT_EMPTY": ""})
        seen = parse_env(result.stdout)
        assert seen["EKT_X"] == "a b=c"
        assert seen["EKT_EMPTY"] == ""
        assert seen["EKT_FROM_SPEC"] == "spec"

    def test_workdir(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        assert engine.containers.exec(c, ["pwd"], workdir="/tmp").stdout == b"/tmp\n"
        assert engine.containers.exec(c, ["pwd"]).stdout == b"/\n"

    def test_workdir_of_spec_is_default(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP, workdir="/home/app")
        assert engine.containers.exec(c, ["pwd"]).stdout == b"/home/app\n"

    @pytest.mark.parametrize(
        ("user", "expected"),
        [("1000", b"1000\n"), ("app", b"1000\n"), ("nobody", b"65534\n"), ("0", b"0\n")],
    )
    def test_user(
        self, engine: Engine, run_container: ContainerFactory, user: str, expected: bytes
    ) -> None:
        c = run_container(SLEEP)
        assert engine.containers.exec(c, ["id", "-u"], user=user).stdout == expected

    def test_user_of_spec_is_default(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP, user="1000")
        assert engine.containers.exec(c, ["id", "-u"]).stdout == b"1000\n"
        assert engine.containers.exec(c, ["id", "-u"], user="0").stdout == b"0\n"

    def test_missing_command_fails_without_error(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        result = engine.containers.exec(c, ["sh", "-c", "exit 127"])
        assert result.exit_code == 127

    def test_command_must_be_a_list(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(SLEEP)
        with pytest.raises(InvalidSpec):
            engine.containers.exec(c, "echo hi")  # type: ignore[arg-type]
        with pytest.raises(InvalidSpec):
            engine.containers.exec(c, [])

    def test_exec_changes_are_visible(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        assert engine.containers.exec(c, ["sh", "-c", "echo hi > /tmp/f"]).exit_code == 0
        assert engine.containers.exec(c, ["cat", "/tmp/f"]).stdout == b"hi\n"

    @pytest.mark.requires(Capability.PAUSE)
    def test_exec_in_paused_is_conflict(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        engine.containers.pause(c)
        with pytest.raises(Conflict):
            engine.containers.exec(c, ["true"])
        assert engine.containers.get(c).state is ContainerState.PAUSED
