"""The exceptions enginekit raises, and only these.

::

    EngineError
    ├── EngineUnavailable        the engine cannot be reached (says where, and how to start it)
    ├── NotFound
    │   ├── ImageNotFound
    │   └── ContainerNotFound
    ├── Conflict                 the object's state forbids the operation
    ├── InvalidSpec (ValueError) bad input, refused before anything is created
    ├── BuildFailed              a build step failed (step, exit code, tail of output)
    ├── Unsupported              the engine cannot do this (names engine and operation)
    └── EngineTimeout (TimeoutError) an operation's deadline passed

Adapters translate every exception of their engine's library at their boundary
(``raise ... from exc``): the original stays reachable as ``__cause__``. No
message carries an environment value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BuildFailed",
    "Conflict",
    "ContainerNotFound",
    "EngineError",
    "EngineTimeout",
    "EngineUnavailable",
    "ImageNotFound",
    "InvalidSpec",
    "NotFound",
    "Unsupported",
]


class EngineError(Exception):
    """Root of every error enginekit raises."""


class EngineUnavailable(EngineError):
    """The engine could not be reached.

    ``address`` is what was tried; ``hint`` says how to start that engine.
    """

    def __init__(self, message: str, *, address: str | None = None, hint: str | None = None):
        parts = [message]
        if address:
            parts.append(f"(tried {address})")
        if hint:
            parts.append(f"- {hint}")
        super().__init__(" ".join(parts))
        self.address = address
        self.hint = hint


class NotFound(EngineError):
    """A container or image does not exist."""


class ImageNotFound(NotFound):
    """No image matches the reference."""


class ContainerNotFound(NotFound):
    """No container matches the reference."""


class Conflict(EngineError):
    """The operation conflicts with the current state (e.g. removing a running container)."""


class InvalidSpec(EngineError, ValueError):
    """Input that no supported engine can carry; refused before anything is created."""


class BuildFailed(EngineError):
    """A build step failed.

    ``step`` is the failing instruction as written (e.g. ``"RUN exit 3"``),
    ``exit_code`` its exit code (None when the step is not a command), and
    ``output`` the tail of its output.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        exit_code: int | None = None,
        output: str = "",
    ):
        detail = message
        if step:
            detail += f"\n  step: {step}"
        if exit_code is not None:
            detail += f"\n  exit code: {exit_code}"
        if output:
            detail += "\n  output (tail):\n    " + "\n    ".join(output.splitlines()[-20:])
        super().__init__(detail)
        self.step = step
        self.exit_code = exit_code
        self.output = output


class Unsupported(EngineError):
    """The engine (adapter) cannot perform this operation."""

    def __init__(
        self,
        engine: str,
        operation: str,
        reason: str | None = None,
        *,
        capability: str | None = None,
    ):
        msg = f"{engine} does not support {operation}"
        if reason:
            msg += f": {reason}"
        super().__init__(msg)
        self.engine = engine
        self.operation = operation
        self.reason = reason
        #: The capability the engine instance lacks (a ``Capability`` value), if one.
        self.capability = capability

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_unsupported,
            (self.engine, self.operation, self.reason, self.capability),
            self.__dict__,
        )


def _rebuild_unsupported(
    engine: str, operation: str, reason: str | None, capability: str | None
) -> Unsupported:
    return Unsupported(engine, operation, reason, capability=capability)


class EngineTimeout(EngineError, TimeoutError):
    """An operation's deadline (``timeout=``) passed; the object is left untouched."""
