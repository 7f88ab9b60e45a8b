"""Running a command in a running container with ``lxc-attach``.

The user, working directory and program are resolved in the container's live
root first, so a missing directory or program answers as Docker does (126 and
127 with Docker's words) instead of as ``lxc-attach`` would.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from enginekit.toolkit.errors import Conflict, EngineError
from enginekit.toolkit.models import ContainerState, ExecResult

from .attach import attach
from .fsroot import Root
from .lxcconf import container_env
from .users import resolve_user

if TYPE_CHECKING:
    from .driver import LxcDriver

__all__ = ["exec_in"]


def exec_in(
    driver: LxcDriver,
    id: str,
    command: tuple[str, ...],
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
) -> ExecResult:
    """Run ``command`` in container ``id`` and collect its output and exit code."""
    meta = driver.records.meta(id)
    state, status = driver.records.state(id)
    if state is not ContainerState.RUNNING:
        raise Conflict(f"container {id[:12]} is not running ({state.value})")
    pid = status.get("pid")
    cwd = workdir or meta["workdir"] or "/"
    try:
        with Root(f"/proc/{pid}/root") as root:
            who = resolve_user(root, user if user is not None else meta["user"])
            try:
                cwd_ok = stat.S_ISDIR(root.stat(cwd).st_mode)
            except OSError:
                cwd_ok = False
            full = container_env(
                image_env=meta["env"], env=env or {}, hostname=meta["hostname"], home=who.home
            )
            program = root.which(command[0], full.get("PATH", ""), cwd) if command else None
    except FileNotFoundError as exc:
        raise Conflict(f"container {id[:12]} is not running") from exc
    if not cwd_ok:
        # What Docker answers for an exec whose working directory is missing.
        return ExecResult(
            exit_code=126,
            stderr=f"chdir to cwd ({cwd!r}) failed: no such file or directory\n".encode(),
        )
    if program is None:
        name = command[0] if command else ""
        return ExecResult(
            exit_code=127,
            stderr=f'exec: "{name}": executable file not found in $PATH\n'.encode(),
        )
    proc = attach(driver.lxcpath, meta["lxc_name"], who, full, cwd, [program, *command[1:]])
    code = proc.returncode
    if code < 0:
        code = 128 - code
    if code != 0 and proc.errors:
        _attach_failed(driver, id, proc.errors)
    if code != 0 and driver.records.stopping(id):
        raise Conflict(f"container {id[:12]} stopped during exec")
    return ExecResult(exit_code=code, stdout=proc.stdout, stderr=proc.stderr)


def _attach_failed(driver: LxcDriver, id: str, errors: str) -> None:
    """lxc-attach could not run the command: the container is going away
    (``Conflict``, ``ContainerNotFound`` once gone), which its state may
    show only a moment later; else an ``EngineError`` with LXC's words."""
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        time.sleep(delay)
        if driver.records.stopping(id):
            raise Conflict(f"container {id[:12]} stopped as the exec started")
    raise EngineError(f"lxc-attach could not run the command: {errors}")
