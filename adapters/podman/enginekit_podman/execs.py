"""``exec`` on Podman (the libpod exec sessions), as Docker does it.

An exec is a session: ``POST /containers/{id}/exec`` (create),
``POST /exec/{id}/start`` (attached: the output until the process ends) and
``GET /exec/{id}/json`` (the exit code). What differs from Docker is made up
for here: the exec sees the container's ``HOSTNAME``; a process runc could
not start is exit code 126 with the reason on stderr (Podman: 127 or 126
with its own wording); a user or group the image lacks (Podman: an HTTP 500)
is ``InvalidSpec``, as on every engine.

A container that is paused, stopped or removed as the exec starts is
``Conflict`` (``ContainerNotFound`` once it is gone), whichever step met it:
the create (HTTP 500 "container state improper"), the start (HTTP 409, or 500
"container state improper" when the container changed between the two) or
the start's answer.

Podman keeps each session's ``conmon`` (a pair of processes) for its
``exit_command_delay`` after the process ended (``containers.conf``, 300 s
by default; then it runs ``podman container cleanup --exec``), also when
the container was removed meanwhile: that is the engine's design, for every
client of the API, and those processes end by themselves. No endpoint ends
them earlier (``POST /exec/{id}/remove``, Podman 4.8 and later, only forgets
the session).
"""

from __future__ import annotations

from typing import Any

from enginekit.toolkit import refusals
from enginekit.toolkit.errors import Conflict, ContainerNotFound, NotFound
from enginekit.toolkit.http import exec_output
from enginekit.toolkit.models import ExecResult

from . import convert
from ._base import Base
from ._base import quote as _q
from .errors import error_for, exec_start_failure, map_errors, message_of

__all__ = ["ExecMixin"]

# libpod's words for "the container is not in a state to exec in".
_STATE_TEXTS = ("container state improper", "not running", "is paused", "is stopping")


def _state_refusal(message: str) -> bool:
    low = message.lower()
    return any(t in low for t in _STATE_TEXTS)


class ExecMixin(Base):
    """``container_exec``, its engine part (see the module)."""

    def _exec(self, id: str, body: dict[str, Any]) -> ExecResult:
        data = self._inspect_raw(id)
        with map_errors("exec"):
            state = data.get("State") or {}
            if state.get("Status") != "running":
                raise Conflict(f"container {id[:12]} is {state.get('Status')}, not running")
            container = convert.container_from_inspect(data, engine="podman")
            hostname = container.env.get("HOSTNAME", container.hostname)
        given = body.get("Env") or []
        if hostname and not any(item.startswith("HOSTNAME=") for item in given):
            # Docker's exec sees the container's HOSTNAME; Podman's does not.
            body["Env"] = [f"HOSTNAME={hostname}", *given]
        resp = self._request("POST", f"/containers/{_q(id)}/exec", json=body)
        if resp.status == 500:
            message = message_of(resp.read())
            err = error_for(500, message)
            # "can only create exec sessions on running containers"
            raise err if isinstance(err, NotFound) else Conflict(message, status=500)
        exec_id = str(self._check(resp, operation="exec").json()["Id"])
        start = self._request(
            "POST",
            f"/exec/{_q(exec_id)}/start",
            json={"Detach": False, "Tty": False},
            timeout=None,
        )
        if not start.ok:
            return self._start_refused(id, start.status, message_of(start.read()))
        out, stderr = exec_output(start)
        try:
            info = self._json("GET", f"/exec/{_q(exec_id)}/json", operation="exec inspect")
        except NotFound as exc:
            # The session went with its container (removed meanwhile).
            raise ContainerNotFound(f"no such container: {id}") from exc
        code = info.get("ExitCode")
        exit_code = int(code) if code is not None else -1
        if exit_code in (125, 126, 127) and not out:
            # The session's own refusal of a user or group the image lacks.
            account = refusals.account_refusal(stderr.decode("utf-8", "replace"))
            if account is not None:
                raise account
        failed = exec_start_failure(exit_code, stderr)
        if failed is not None:
            exit_code, stderr = failed
        return ExecResult(exit_code=exit_code, stdout=out, stderr=stderr)

    def _start_refused(self, id: str, status: int, message: str) -> ExecResult:
        """A start Podman refused: the container's state (Conflict), the
        container or session gone (ContainerNotFound), or a process that could
        not start (exit code 126, as Docker reports it)."""
        if status == 404:
            raise ContainerNotFound(f"no such container: {id}", status=status)
        if status == 409 or _state_refusal(message):
            raise Conflict(message, status=status)
        try:
            state = self._inspect_raw(id).get("State") or {}
        except NotFound as exc:
            raise ContainerNotFound(f"no such container: {id}") from exc
        if state.get("Status") != "running":
            raise Conflict(message, status=status)
        account = refusals.account_refusal(message)
        if account is not None:
            # A user or group the image lacks: InvalidSpec on every engine.
            raise account
        # The process could not be started: Docker reports that as exit code
        # 126 with the reason.
        return ExecResult(exit_code=126, stdout=b"", stderr=message.encode() + b"\n")
