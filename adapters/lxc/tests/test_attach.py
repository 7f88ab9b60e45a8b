"""lxc-attach that the kernel will not start: an EngineError of the exec, not a missing LXC."""

from __future__ import annotations

import errno
import shutil

import pytest
from enginekit_lxc.attach import attach
from enginekit_lxc.users import ExecUser

from enginekit.errors import EngineError, EngineUnavailable

pytestmark = pytest.mark.skipif(shutil.which("lxc-attach") is None, reason="needs LXC")

ROOT = ExecUser(uid=0, gid=0, groups=(0,), home="/")
# More than one exec may carry (at most 6 MiB of arguments and environment,
# whatever the stack limit), each argument under the 128 KiB one may have.
TOO_BIG = ["x" * 120_000] * 60


def test_too_big_for_one_exec_is_an_engine_error() -> None:
    env = {"HOME": "/", "PATH": "/bin", "SECRET_TOKEN": "s3cr3t-value"}
    with pytest.raises(EngineError) as caught:
        attach("/nonexistent-lxcpath", "ek-none", ROOT, env, "/", ["/bin/true", *TOO_BIG])
    error = caught.value
    assert not isinstance(error, EngineUnavailable), error  # was: "install LXC ..."
    message = str(error)
    assert message.startswith("lxc-attach could not be started for the exec: "), message
    assert "Argument list too long" in message and "bytes" in message, message
    assert "s3cr3t-value" not in message
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.E2BIG
