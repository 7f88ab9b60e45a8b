"""``exec``, ``pause`` and ``unpause`` on Docker, and how they meet.

An exec is three calls: ``POST /containers/{id}/exec`` (create),
``POST /exec/{id}/start`` (the output, multiplexed, until the process
ends) and ``GET /exec/{id}/json`` (the exit code, which lands a moment after
the stream ends).

A pause can meet an exec at every step, and Docker answers each differently:

- before the create or the start: HTTP 409 ("is paused"), a ``Conflict``;
- after the start's answer began (the daemon sends its headers before it
  looks at the container again): the refusal comes as text in the stream and
  the exec never gets an exit code (nor a pid);
- while runc starts the process: runc refuses ("cannot exec in a paused
  container"), which Docker reports as exit code 126 (Docker 20.10 to 24) or
  128 (Docker 25 on: "unknown" start errors), pid 0.

A stop or a removal meets an exec the same ways, with more words from the
runtime as the container's init goes away: "cannot exec in a stopped
container", "init process is not running: failed precondition", "procReady
not received", "error executing setns process", "error writing config to
pipe: ... broken pipe", "namespace path: ... no such file".

Those are all the same thing, the container was paused, and come out as
``Conflict``. A 126 or 128 the command itself caused (a file that is not
executable, a working directory that does not exist, ``sh -c 'exit 128'``)
stays an :class:`ExecResult`: it is a ``Conflict`` only when the process never
started (pid 0: what the stream holds is the runtime's, not the command's)
*and* the runtime said "paused" or "stopped", or the container is now paused,
stopped or gone (the last as ``ContainerNotFound``).

Worse, a freeze that lands while runc's helper (``runc init``) is joining the
container's cgroup freezes that helper half way: the exec never starts, and
the daemon holds the container (``inspect``, ``unpause``, ``kill``, ``rm -f``
all hang) until the freezer is thawed by hand (Docker 20.10, runc 1.1, cgroup
v1). So this driver never lets a pause of its own overlap an exec start of its
own on the same container (:class:`StartGate`, shared by every driver of the
process for the same daemon): a pause waits until the execs starting in that
container have started (a pid or an exit code) or ended, and an exec waits for
a pause in flight to be answered (it then meets the paused container: 409).
Pauses sent by other processes are not seen; against those, only the answers
above apply.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from enginekit.toolkit import refusals
from enginekit.toolkit.errors import Conflict, ContainerNotFound, EngineError, NotFound
from enginekit.toolkit.http import exec_output
from enginekit.toolkit.models import ExecResult

from .api import Api

__all__ = ["ExecOps", "StartGate"]

# runc's refusal of an exec into a paused container, as Docker relays it
# ("cannot exec in a paused container", "... in a paused state").
_PAUSED_TEXT = re.compile(r"\bpaused\b", re.IGNORECASE)
# ... and into one that is stopping ("cannot exec in a stopped container",
# "... in a stopped state"), before Docker's own state says so.
_STOPPED_TEXT = re.compile(r"\bstopped (container|state)\b|\bnot running\b", re.IGNORECASE)
# The exit code lands a moment after the stream ends: how long to look for it.
_EXIT_CODE_DELAYS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
# Exit codes Docker gives an exec whose process the runtime could not start:
# 126 (Docker 20.10 to 24, and "permission denied" on every version) and 128
# (Docker 25 on, every start error it does not recognise).
_NOT_STARTED_CODES = frozenset({126, 128})
# runc's words for a command that cannot be started ('exec: "x": permission
# denied', 'exec: "x": executable file not found', "chdir to cwd").
_COMMAND_TEXT = re.compile(r'exec: "|chdir to cwd', re.IGNORECASE)
# runc refusing a pause or unpause for the state it found.
_STATE_TEXT = re.compile(r"\bpaused\b|running process|not running|\bstopped\b", re.IGNORECASE)
# When to ask a container's state again after an exec the runtime could not start.
_STATE_SETTLE_DELAYS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# How long a pause waits for exec starts in flight, and an exec start for a
# pause in flight, before going ahead anyway.
_GATE_WAIT = 30.0


@attrs.define(eq=False)
class _Start:
    """One exec start in flight: its exec id once created."""

    exec_id: str | None = None


class StartGate:
    """Keeps pauses and exec starts of one process apart, per container.

    Keys are ``(daemon address, container id)``. :meth:`starting` is held by
    an exec from before its create until its stream ended;
    :meth:`pausing` by a pause around its call, after waiting until every
    start in flight ``started`` (or ended). Every wait is bounded.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._starts: dict[tuple[str, str], set[_Start]] = {}
        self._pauses: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def starting(self, key: tuple[str, str]) -> Iterator[_Start]:
        start = _Start()
        with self._cond:
            self._cond.wait_for(lambda: not self._pauses.get(key), timeout=_GATE_WAIT)
            self._starts.setdefault(key, set()).add(start)
        try:
            yield start
        finally:
            with self._cond:
                starts = self._starts.get(key)
                if starts is not None:
                    starts.discard(start)
                    if not starts:
                        del self._starts[key]
                self._cond.notify_all()

    @contextlib.contextmanager
    def pausing(self, key: tuple[str, str], started: Callable[[str], bool]) -> Iterator[None]:
        """Hold off new exec starts on ``key``, wait until those in flight
        ``started(exec_id)`` or ended, then let the pause run."""
        with self._cond:
            self._pauses[key] = self._pauses.get(key, 0) + 1
        try:
            self._settle(key, started)
            yield
        finally:
            with self._cond:
                left = self._pauses.get(key, 1) - 1
                if left:
                    self._pauses[key] = left
                else:
                    self._pauses.pop(key, None)
                self._cond.notify_all()

    def _settle(self, key: tuple[str, str], started: Callable[[str], bool]) -> None:
        deadline = time.monotonic() + _GATE_WAIT
        done: set[_Start] = set()
        delay = 0.002
        while time.monotonic() < deadline:
            with self._cond:
                pending = [s for s in self._starts.get(key, ()) if s not in done]
            if not pending:
                return
            for start in pending:
                if start.exec_id is not None and started(start.exec_id):
                    done.add(start)
            if all(s in done for s in pending):
                return
            with self._cond:  # woken early when a start ends
                self._cond.wait(timeout=delay)
            delay = min(delay * 2, 0.05)


#: One gate for every Docker driver of this process.
GATE = StartGate()


def _account_refused(said: bytes) -> None:
    """Raise ``InvalidSpec`` if Docker refused the exec for a user or group
    the image lacks (its words in the stream, exit code 126, no process), as
    every engine does (:mod:`enginekit.toolkit.refusals`)."""
    refused = refusals.account_refusal(said.decode("utf-8", "replace"))
    if refused is not None:
        raise refused


class ExecOps(Api):
    """``container_exec`` (its engine part), ``container_pause``, ``container_unpause``
    (see the module)."""

    def _exec(self, id: str, body: dict[str, Any]) -> ExecResult:
        with GATE.starting((self.address, id)) as start:
            try:
                exec_id = str(
                    self._json("POST", f"/containers/{id}/exec", operation="exec", json=body)["Id"]
                )
            except EngineError as exc:
                _account_refused(str(exc).encode())
                raise
            start.exec_id = exec_id
            try:
                resp = self._call(
                    "POST",
                    f"/exec/{exec_id}/start",
                    operation="exec",
                    json={"Detach": False, "Tty": False},
                    timeout=None,
                )
            except NotFound as exc:
                raise self._exec_gone(id) from exc
            except EngineError as exc:
                # Docker 25 on refuses a user or group the image lacks here
                # (an HTTP error), not as exit code 126 with its words.
                _account_refused(str(exc).encode())
                raise
            out, err = exec_output(resp)
        return self._outcome(id, exec_id, out, err)

    def _outcome(self, id: str, exec_id: str, out: bytes, err: bytes) -> ExecResult:
        """The exit code once the stream ended; the refusals of the module's
        list as ``Conflict``."""
        for delay in _EXIT_CODE_DELAYS:
            time.sleep(delay)
            try:
                state = self._json("GET", f"/exec/{exec_id}/json", operation="exec")
            except NotFound as exc:
                raise self._exec_gone(id) from exc
            if state.get("Running"):
                continue
            code = state.get("ExitCode")
            never_ran = "Pid" in state and not state.get("Pid")
            if code is not None:
                if int(code) in _NOT_STARTED_CODES and never_ran:
                    _account_refused(out + err)
                    self._refused(id, out + err)
                return ExecResult(exit_code=int(code), stdout=out, stderr=err)
            if never_ran:
                # Refused after the answer began: Docker's reason is the stream.
                _account_refused(out + err)
                self._refused(id, out + err)
                reason = (out + err).decode("utf-8", "replace").strip()
                raise EngineError(f"docker exec: the process did not start: {reason}")
        raise EngineError("docker exec: the daemon reported no exit code")

    def _exec_gone(self, id: str) -> EngineError:
        """The error for an exec the daemon no longer knows: Docker forgets a
        container's execs when it stops (``Conflict``) or goes
        (``ContainerNotFound``)."""
        try:
            state = self._inspect_raw(id).get("State") or {}
        except ContainerNotFound:
            return ContainerNotFound(f"docker exec: no such container: {id}")
        if state.get("Running") and not state.get("Paused"):
            return EngineError(f"docker exec: the daemon lost the exec in container {id[:12]}")
        status = state.get("Status") or "not running"
        return Conflict(f"docker exec: container {id[:12]} is {status}, not running")

    def _refused(self, id: str, said: bytes) -> None:
        """Raise ``Conflict`` (or ``ContainerNotFound``) if the container was
        paused, stopped or removed as the exec started; else return.

        runc fails in many words when the container's init is going away
        ("namespace path: ... no such file", "error executing setns
        process", "procReady not received", "write init-p: broken pipe"),
        and Docker reports the container running until it has taken in the
        exit: its state is asked again for a moment.
        """
        text = said.decode("utf-8", "replace")
        if _PAUSED_TEXT.search(text):
            raise Conflict(f"docker exec: container {id[:12]} is paused, not running")
        if _STOPPED_TEXT.search(text):
            raise Conflict(f"docker exec: container {id[:12]} is stopping, not running")
        # runc naming the command's own failure (not found, not executable,
        # no such working directory) needs one look at the state only.
        delays = _STATE_SETTLE_DELAYS[:1] if _COMMAND_TEXT.search(text) else _STATE_SETTLE_DELAYS
        for delay in delays:
            time.sleep(delay)
            try:
                state = self._inspect_raw(id).get("State") or {}
            except ContainerNotFound as exc:
                raise ContainerNotFound(f"docker exec: no such container: {id}") from exc
            if state.get("Paused"):
                raise Conflict(f"docker exec: container {id[:12]} is paused, not running")
            if not state.get("Running"):
                status = state.get("Status") or "not running"
                raise Conflict(f"docker exec: container {id[:12]} is {status}, not running")

    def _exec_started(self, exec_id: str) -> bool:
        """Whether an exec's process started (a pid) or settled (an exit code)."""
        try:
            state = self._json("GET", f"/exec/{exec_id}/json", operation="exec")
        except EngineError:
            return True  # gone, or the daemon cannot say: nothing to wait for
        return bool(state.get("Pid")) or state.get("ExitCode") is not None

    def container_pause(self, id: str) -> None:
        with GATE.pausing((self.address, id), self._exec_started):
            self._paused_call("pause", id)

    def container_unpause(self, id: str) -> None:
        self._paused_call("unpause", id)

    def _paused_call(self, operation: str, id: str) -> None:
        try:
            self._empty("POST", f"/containers/{id}/{operation}", operation=operation)
        except Conflict:
            raise
        except EngineError as exc:
            # runc's "cannot pause a paused container", "container not
            # paused", "cannot resume a running process", "container not
            # running" (HTTP 500) when Docker's view of the state lagged
            # behind a pause, unpause or stop of another thread.
            if exc.status == 500 and _STATE_TEXT.search(str(exc)):
                raise Conflict(str(exc), status=exc.status) from exc
            raise
