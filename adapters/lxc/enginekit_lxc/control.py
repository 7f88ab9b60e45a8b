"""A running container's control: pause, stop, kill, restart and remove.

Signals go to the container's command (LXC's init's child), and the number
sent is written down first (the ``signal`` file): if the monitor dies, the
exit is inferred from it (``128 + n``). A SIGKILL takes every process of the
container, as the kernel does to a pid namespace whose PID 1 dies.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from enginekit.toolkit.errors import Conflict, EngineError, EngineTimeout, Unsupported
from enginekit.toolkit.models import ContainerState
from enginekit.toolkit.signals import signal_number

from .errors import ENGINE
from .monitor import unmount
from .records import LIVE, ending, main_pid
from .start import lxc_stop
from .store import remove_tree

if TYPE_CHECKING:
    from .driver import LxcDriver

__all__ = ["kill", "pause", "remove", "restart", "stop"]

_POLL = 0.01
_ENDED = (ContainerState.EXITED, ContainerState.CREATED)


# -- pause -------------------------------------------------------------------
def _set_frozen(driver: LxcDriver, status: Mapping[str, Any], frozen: bool) -> None:
    """Freeze or thaw the container's cgroup and wait until it is."""
    try:
        driver.host.cgroups.freeze(status.get("cgroups") or {}, frozen)
    except LookupError as exc:
        raise Unsupported(ENGINE, "pause", str(exc)) from exc
    except FileNotFoundError as exc:
        raise Conflict("the container is not running") from exc
    except TimeoutError as exc:
        raise EngineTimeout(f"the container did not become {'' if frozen else 'un'}frozen") from exc
    except OSError as exc:
        raise EngineError(f"cannot change the freezer state: {exc.strerror}") from exc


def pause(driver: LxcDriver, id: str, *, frozen: bool) -> None:
    """Pause (``frozen``) a running container, or unpause a paused one."""
    want = ContainerState.RUNNING if frozen else ContainerState.PAUSED
    state, status = driver.records.state(id)
    if state is not want:
        raise Conflict(f"container {id[:12]} is {state.value}, not {want.value}")
    try:
        _set_frozen(driver, status, frozen)
    except EngineTimeout as exc:
        # A freezer does not settle while the container's processes die:
        # a stop or kill came meanwhile.
        after, now = driver.records.state(id)
        if after is ContainerState.EXITED or ending(now):
            raise Conflict(f"container {id[:12]} stopped while being paused") from exc
        raise


def _thaw(driver: LxcDriver, status: Mapping[str, Any]) -> None:
    with contextlib.suppress(EngineError):
        _set_frozen(driver, status, False)


# -- stop / kill -------------------------------------------------------------
def _send(driver: LxcDriver, id: str, status: Mapping[str, Any], signum: int) -> None:
    with contextlib.suppress(OSError), open(driver.store.path(id, "signal"), "w") as fh:
        fh.write(str(signum))
    target = main_pid(status)
    if target is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(target, signum)


def _await_exit(driver: LxcDriver, id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.records.state(id)[0] in _ENDED:
            return True
        time.sleep(_POLL)
    return False


def stop(driver: LxcDriver, id: str, *, timeout: float) -> None:
    """The stop signal, then SIGKILL after ``timeout`` seconds."""
    meta = driver.records.meta(id)
    state, status = driver.records.state(id)
    if state not in LIVE:
        raise Conflict(f"container {id[:12]} is not running")
    signum = signal_number(meta["stop_signal"] or "SIGTERM")
    _send(driver, id, status, signum)
    if state is ContainerState.PAUSED:
        _thaw(driver, status)
    if _await_exit(driver, id, timeout):
        return
    _kill_hard(driver, id)


def _kill_all(driver: LxcDriver, id: str, status: Mapping[str, Any]) -> None:
    """SIGKILL the command, then every other process of the container but
    LXC's init (which then exits with the command's 137), as the kernel
    does to a pid namespace whose PID 1 dies on Docker and Podman."""
    _send(driver, id, status, _signal.SIGKILL)
    init = status.get("pid")
    for pid in driver.host.cgroups.procs(status.get("cgroups") or {}):
        if pid != init:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, _signal.SIGKILL)


def _kill_hard(driver: LxcDriver, id: str) -> None:
    state, status = driver.records.state(id)
    if state in _ENDED:
        return
    _kill_all(driver, id, status)
    if state is ContainerState.PAUSED:
        _thaw(driver, status)
    if _await_exit(driver, id, 10):
        return
    # The command is gone but the container lingers: LXC tears it down.
    lxc_stop(driver, driver.records.meta(id)["lxc_name"])
    if not _await_exit(driver, id, 30):
        raise EngineTimeout(f"container {id[:12]} did not exit after SIGKILL")


def kill(driver: LxcDriver, id: str, *, signal: str) -> None:
    """Send ``signal`` to a running container's command (SIGKILL: to all of it)."""
    state, status = driver.records.state(id)
    if state not in LIVE:
        raise Conflict(f"container {id[:12]} is not running")
    signum = signal_number(signal)
    if signum == _signal.SIGKILL:
        _kill_all(driver, id, status)
        if state is ContainerState.PAUSED:
            _thaw(driver, status)
    else:
        _send(driver, id, status, signum)


def _await_monitor_gone(driver: LxcDriver, id: str) -> None:
    deadline = time.monotonic() + 10
    while driver.store.monitor_alive(id) and time.monotonic() < deadline:
        time.sleep(0.002)


def restart(driver: LxcDriver, id: str, *, timeout: float) -> None:
    with contextlib.suppress(Conflict):
        stop(driver, id, timeout=timeout)
    _await_monitor_gone(driver, id)
    driver.container_start(id)


# -- remove ------------------------------------------------------------------
def remove(driver: LxcDriver, id: str, *, force: bool) -> None:
    """Remove the container (``force``: killing it first if it runs)."""
    meta = driver.records.meta(id)
    state, _ = driver.records.state(id)
    if state in LIVE:
        if not force:
            raise Conflict(f"container {id[:12]} is {state.value}: stop it or use force")
        _kill_hard(driver, id)
    _await_monitor_gone(driver, id)
    store = driver.store
    with store.container_lock(id):
        rootfs = store.path(id, "rootfs")
        try:
            unmount(rootfs)
        except OSError as exc:
            raise EngineError(f"cannot unmount {rootfs}: {exc.strerror}") from exc
        remove_tree(os.path.join(driver.lxcpath, meta["lxc_name"]))
        with store.lock():
            store.release_name(meta["name"], id)
            # Unlink the meta first: the container vanishes from lists at once.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(store.path(id, "meta.json"))
        # Still under the container's lock: a racing exec or inspect that
        # recovers the state (``records``) takes the lock next and finds
        # no directory, instead of re-creating ``.lock`` or a status in it.
        store.delete(id)
    driver.records.forget(id)
