"""``exec``: a command run in a running container with ``lxc-attach``.

lxc-attach's own failures (it could not reach the container's init, enter
its namespaces, clone the process: the container is going away) go to a
log of its own, apart from the command's stderr: :attr:`Attached.errors`
holds them, empty when the command ran.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

import attrs

from enginekit.toolkit.errors import EngineError, EngineUnavailable

from .errors import HINT, tool_path
from .helper import ENV_HELPER
from .users import ExecUser

__all__ = ["Attached", "attach"]

# Names that must not reach the host-side lxc-attach through its environment.
_HOST_SENSITIVE_PREFIXES = ("LD_", "LXC_", "GCONV_", "MALLOC_", "GLIBC_", "PYTHON")


@attrs.frozen
class Attached:
    """What an exec gave: its exit status and output, and lxc-attach's errors."""

    returncode: int
    stdout: bytes
    stderr: bytes
    #: lxc-attach's own ERROR lines ("" when it attached and ran the command).
    errors: str = ""


def _errors(log: str) -> str:
    try:
        with open(log, "rb") as fh:
            data = fh.read(65536)
    except OSError:
        return ""
    lines = [
        ln.split(b" - ", 2)[-1].decode("utf-8", "replace").strip()
        for ln in data.splitlines()
        if b" ERROR " in ln
    ]
    return "; ".join(lines[-3:])


def attach(
    lxcpath: str,
    lxc_name: str,
    who: ExecUser,
    env: Mapping[str, str],
    cwd: str,
    argv: Sequence[str],
) -> Attached:
    """Run ``argv`` (``argv[0]`` a path inside the container) as ``who`` in
    ``cwd`` with exactly ``env``; its exit status and output."""
    fd, log = tempfile.mkstemp(prefix="enginekit-lxc-attach-", suffix=".log")
    os.close(fd)
    try:
        proc = _run(lxcpath, lxc_name, who, env, cwd, argv, log)
        errors = _errors(log) if proc.returncode != 0 else ""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log)
    return Attached(proc.returncode, proc.stdout, proc.stderr, errors)


def _run(
    lxcpath: str,
    lxc_name: str,
    who: ExecUser,
    env: Mapping[str, str],
    cwd: str,
    argv: Sequence[str],
    log: str,
) -> subprocess.CompletedProcess[bytes]:
    cmd = [
        tool_path("lxc-attach"),
        "-n",
        lxc_name,
        "-P",
        lxcpath,
        "-o",
        log,
        "-l",
        "ERROR",
        "--clear-env",
        "-q",
        "-u",
        str(who.uid),
        "-g",
        str(who.gid),
    ]
    child_env: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith(_HOST_SENSITIVE_PREFIXES) or not value:
            # Empty values do not survive --keep-var; nor may these names
            # reach the host-side lxc-attach: set inside instead.
            cmd += ["-v", f"{key}={value}"]
        else:
            cmd += ["--keep-var", key]
            child_env[key] = value
    # lxc-attach has no --cwd: busybox's nsenter (entering no namespace)
    # changes directory; lxc-attach sets HOME itself, so it is set again.
    cmd += [
        "--",
        ENV_HELPER,
        "nsenter",
        "-F",
        f"-w{cwd}",
        ENV_HELPER,
        "env",
        "-u",
        "container",
        f"HOME={env['HOME']}",
        *argv,
    ]
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, env=child_env, check=False
        )
    except FileNotFoundError as exc:
        # The tool found on PATH is gone: LXC is not (or no longer) installed.
        raise EngineUnavailable(f"{cmd[0]} not found", hint=HINT) from exc
    except OSError as exc:
        # lxc-attach is there but the kernel would not start it: E2BIG (the
        # command and its environment exceed what one exec may carry),
        # ENOMEM, EAGAIN... An engine error of this exec, not a missing LXC.
        raise EngineError(_not_started(exc, cmd, child_env)) from exc


def _not_started(exc: OSError, cmd: Sequence[str], env: Mapping[str, str]) -> str:
    """What to say of an lxc-attach the kernel would not start (no value of
    the environment, only its size)."""
    message = f"lxc-attach could not be started for the exec: {exc.strerror or exc}"
    if exc.errno == errno.E2BIG:
        size = sum(len(os.fsencode(a)) + 1 for a in cmd)
        size += sum(len(os.fsencode(k)) + len(os.fsencode(v)) + 2 for k, v in env.items())
        message += f" (the command and its environment take {size} bytes)"
    return message
