"""An exec's own exit codes that engines also use for an exec that never ran.

Docker reports a process its runtime could not start as exit code 126 (up to
Docker 24) or 128 (Docker 25 on), and enginekit reads those, when the container
stopped or went as the exec started, as ``Conflict``/``ContainerNotFound``.
A command that exits with those codes itself must stay an ``ExecResult``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from enginekit.capabilities import Capability
from enginekit.models import ContainerState

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import ContainerFactory


@pytest.mark.requires(Capability.EXEC)
class TestReliabilityExecOwnExitCodes:
    """``sh -c 'exit N'`` for the codes a runtime's refusal also gives."""

    @pytest.mark.parametrize("code", [126, 127, 128, 255])
    def test_own_exit_code_is_a_result(
        self, engine: Engine, run_container: ContainerFactory, code: int
    ) -> None:
        c = run_container(["sleep", "600"])
        try:
            result = engine.containers.exec(c, ["sh", "-c", f"echo out; exit {code}"])
            assert result.exit_code == code, result
            assert result.stdout == b"out\n", result
            assert engine.containers.get(c).state is ContainerState.RUNNING
        finally:
            engine.containers.remove(c, force=True)
