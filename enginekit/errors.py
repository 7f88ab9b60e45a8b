"""The exceptions enginekit raises, and only these.

::

    EngineError
    ├── EngineUnavailable        the engine cannot be reached (says where, and how to start it)
    ├── NotFound
    │   ├── ImageNotFound
    │   └── ContainerNotFound
    ├── Conflict                 the object's state forbids the operation
    ├── InvalidSpec (ValueError) bad input, refused before anything is created
    │   └── UnknownOption (TypeError) a keyword ``create``/``run`` do not take
    ├── BuildFailed              a build step failed (step, exit code, tail of output)
    ├── Unsupported              the engine cannot do this (names engine and operation)
    └── EngineTimeout (TimeoutError) an operation's deadline passed

Adapters translate every exception of their engine's library at their
boundary (``raise ... from exc``): the original stays reachable as
``__cause__``. No message carries an environment value.

Only engine-side failures are translated. An exception the caller's own code
raises (a ``progress`` callback of ``images.build``) leaves the call as it is,
the very same object; a call that does not fit a method's signature (a
missing argument, an unknown keyword) is Python's own ``TypeError``, raised
before any engine is called.

Errors are data as well as a message. Every error has these fields (None
when they do not apply); the facade fills ``engine``, ``operation``,
``address`` and ``ref`` for every error that leaves a public method:

``engine``
    The adapter's name (``"docker"``, ``"podman"``, ``"lxc"``).
``operation``
    The public method that failed, as ``"containers.logs"``,
    ``"images.build"`` or ``"info"``. (``Unsupported`` keeps its own: what
    the engine cannot do, e.g. ``"pause"`` or ``"published ports"``.)
``address``
    Where the engine was reached: its URL, socket or LXC path, never with a
    password.
``ref``
    The container or image reference the call named, as the caller wrote it
    (a :class:`~enginekit.models.Container` is named by its id): ``ref`` of
    ``containers.*`` and ``images.*``, ``image`` of ``containers.create``/``run``,
    ``tag`` of ``images.build``.
``status``
    The engine's own status for the failure where there is one: the HTTP
    status of the engine's answer (Docker, Podman) or the exit status of the
    ``lxc-*`` tool that failed (LXC).

The same failure reads the same on every engine: a missing container is
``ContainerNotFound("<operation>: no such container: <ref>")`` and a missing
image ``ImageNotFound("<operation>: no such image: <ref>")``, whatever the
engine said (its own words stay in ``__cause__``).

Every error pickles and unpickles with its fields (multiprocessing, pytest-xdist).
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
    "UnknownOption",
    "Unsupported",
]

#: The fields every error has (see the module).
FIELDS = ("engine", "operation", "address", "ref", "status")


def _rebuild(cls: type[EngineError], args: tuple[Any, ...]) -> EngineError:
    """An error of ``cls`` with ``args``, without calling its ``__init__`` (whose
    signature differs from class to class); its fields come back as state."""
    error = cls.__new__(cls, *args)
    error.args = args  # OSError's __new__ (TimeoutError) keeps no args when __init__ is overridden
    return error


class EngineError(Exception):
    """Root of every error enginekit raises; its fields are described in the module."""

    # Class-level defaults: an error made without EngineError.__init__ (a
    # subclass that skips it) still has every field.
    engine: str | None = None
    operation: str | None = None
    address: str | None = None
    ref: str | None = None
    status: int | None = None

    def __init__(
        self,
        *args: object,
        engine: str | None = None,
        operation: str | None = None,
        address: str | None = None,
        ref: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(*args)
        self.engine = engine
        self.operation = operation
        self.address = address
        self.ref = ref
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # One mechanism for every class (adapters' own included): the args as
        # given to BaseException, every attribute as state.
        return (_rebuild, (type(self), self.args), dict(self.__dict__))

    @property
    def fields(self) -> dict[str, Any]:
        """The fields as a dict (``engine``, ``operation``, ``address``, ``ref``,
        ``status``), plus those of the class (``step``, ``hint``...)."""
        out = {name: getattr(self, name) for name in FIELDS}
        out.update(
            (k, v) for k, v in self.__dict__.items() if not k.startswith("_") and k not in out
        )
        return out


class EngineUnavailable(EngineError):
    """The engine could not be reached.

    ``address`` is what was tried; ``hint`` says how to start that engine.
    """

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        hint: str | None = None,
        engine: str | None = None,
        operation: str | None = None,
        ref: str | None = None,
        status: int | None = None,
    ) -> None:
        parts = [message]
        if address:
            parts.append(f"(tried {address})")
        if hint:
            parts.append(f"- {hint}")
        super().__init__(
            " ".join(parts),
            engine=engine,
            operation=operation,
            address=address,
            ref=ref,
            status=status,
        )
        self.hint = hint


class NotFound(EngineError):
    """A container, an image or a path in a container does not exist."""


class ImageNotFound(NotFound):
    """No image matches the reference (``ref``)."""


class ContainerNotFound(NotFound):
    """No container matches the reference (``ref``)."""


class Conflict(EngineError):
    """The operation conflicts with the current state (e.g. removing a running container)."""


class InvalidSpec(EngineError, ValueError):
    """Input that no supported engine can carry; refused before anything is created."""


class UnknownOption(InvalidSpec, TypeError):
    """A keyword that ``containers.create``/``run`` do not take (``bogus=1``).

    A ``TypeError``, as Python raises for a keyword a function does not take,
    and an ``InvalidSpec``; raised before anything is created.
    """


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
        engine: str | None = None,
        operation: str | None = None,
        address: str | None = None,
        ref: str | None = None,
        status: int | None = None,
    ) -> None:
        detail = message
        if step:
            detail += f"\n  step: {step}"
        if exit_code is not None:
            detail += f"\n  exit code: {exit_code}"
        if output:
            detail += "\n  output (tail):\n    " + "\n    ".join(output.splitlines()[-20:])
        super().__init__(
            detail, engine=engine, operation=operation, address=address, ref=ref, status=status
        )
        self.step = step
        self.exit_code = exit_code
        self.output = output


class Unsupported(EngineError):
    """The engine (adapter) cannot perform this operation.

    ``engine`` and ``operation`` are given when it is raised; ``operation``
    here says what the engine cannot do (``"pause"``, ``"published ports"``),
    ``reason`` why, and ``capability`` the capability the instance lacks.
    """

    def __init__(
        self,
        engine: str,
        operation: str,
        reason: str | None = None,
        *,
        capability: str | None = None,
        address: str | None = None,
        ref: str | None = None,
        status: int | None = None,
    ) -> None:
        msg = f"{engine} does not support {operation}"
        if reason:
            msg += f": {reason}"
        super().__init__(
            msg, engine=engine, operation=operation, address=address, ref=ref, status=status
        )
        self.reason = reason
        #: The capability the engine instance lacks (a ``Capability`` value), if one.
        self.capability = capability


class EngineTimeout(EngineError, TimeoutError):
    """An operation's deadline (``timeout=``) passed; the object is left untouched."""
