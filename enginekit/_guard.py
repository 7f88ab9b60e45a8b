"""The error contract's last line, applied to every public method of the facade.

:func:`_guard` wraps a public method of ``Engine``, ``engine.images`` or
``engine.containers`` (and ``__next__`` of the iterator ``stream_logs``
returns). It

- refuses a call that does not fit the method's signature with Python's own
  ``TypeError`` before anything runs (a missing argument, an unknown keyword);
- lets an exception raised by the caller's own callback (``progress=``) leave
  unchanged: the very object, whatever the adapter did around it (the callback
  is wrapped so that the exception crosses the adapter as a ``BaseException``
  that no ``map_errors`` translates; the adapter's cleanup still runs);
- fills the fields of every ``EngineError`` that leaves (``engine``,
  ``operation``, ``address``, ``ref``) and words a missing container or image
  the same on every engine;
- turns anything else (an engine answer the adapter could not read, a bug)
  into an ``EngineError`` naming the operation, the original as ``__cause__``.

Only the outermost guarded call of a thread translates: a guarded method
called by another (``_require`` inside ``build``) lets its errors through to
the caller's own method, which knows what the caller asked for. A callback of
the caller starts afresh.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import attrs

from .errors import ContainerNotFound, EngineError, ImageNotFound

__all__ = ["_guard"]

P = ParamSpec("P")
R = TypeVar("R")

# The prefix of an operation's name, by the class whose method it is.
_SERVICES = {"Engine": "", "ImageService": "images.", "ContainerService": "containers."}
# The log stream ``stream_logs`` returns (its class, or the function its
# ``__next__`` guards): the operation its errors belong to.
_ITERATORS = {
    "LogStream": "containers.stream_logs",
    "_GuardedIterator": "containers.stream_logs",
    "_next_of": "containers.stream_logs",
}
# Set while a guarded call runs in this thread (or task).
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("enginekit_guard", default=False)
_SHORT_HEX = re.compile(r"[0-9a-f]{1,11}")
# What an iterator returned by a guarded method is told of the call (its __next__ reads it).
_CONTEXT_ATTR = "_enginekit_error_context"


@attrs.frozen
class _Context:
    """What an error leaving a guarded call is told about it."""

    operation: str
    engine: str | None = None
    address: str | None = None
    ref: str | None = None
    #: What ``ref`` names: "container", "image" or None.
    kind: str | None = None


class _CallerRaised(BaseException):
    """Carries an exception of the caller's callback through the adapter.

    A ``BaseException``: the adapters' ``map_errors`` translate ``Exception``
    subclasses only, while their cleanup (``except BaseException``, ``finally``,
    context managers) runs as it would for ``KeyboardInterrupt``.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


def _shield(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback``, its exceptions carried out as :class:`_CallerRaised`."""

    @functools.wraps(callback)
    def call(*args: Any, **kwargs: Any) -> Any:
        token = _ACTIVE.set(False)  # the caller's code may call the facade: afresh
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            raise _CallerRaised(exc) from None
        finally:
            _ACTIVE.reset(token)

    return call


def _operation_of(method: Callable[..., Any]) -> str:
    owner, _, name = method.__qualname__.rpartition(".")
    if owner in _ITERATORS or name in _ITERATORS:
        return _ITERATORS.get(owner) or _ITERATORS[name]
    if owner in _SERVICES:
        return _SERVICES[owner] + name.lstrip("_")
    return method.__qualname__


def safe_address(address: object) -> str | None:
    """An engine's address for an error: a URL without any password."""
    if not isinstance(address, str) or not address:
        return None
    try:
        parts = urllib.parse.urlsplit(address)
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            user = parts.username or ""
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}"))
    except ValueError:
        return None
    return address


def _engine_of(owner: object) -> tuple[str | None, str | None]:
    """The adapter's name and address of the Engine ``owner`` is (or belongs to)."""
    engine = _attr(owner, "_engine") or owner
    driver = _attr(engine, "_driver")
    name, address = _attr(driver, "name"), _attr(driver, "address")
    return (name if isinstance(name, str) else None), safe_address(address)


def _attr(obj: object, name: str) -> Any:
    """``obj.name`` or None; the caller's objects may raise anything."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _ref_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    ident = _attr(value, "id")  # a Container
    return ident if isinstance(ident, str) else None


def _context(method: Callable[..., Any], operation: str, arguments: dict[str, Any]) -> _Context:
    owner = arguments.get("self", getattr(method, "__self__", None))
    for carrier in (owner, *arguments.values()):
        known = _attr(carrier, _CONTEXT_ATTR)
        if isinstance(known, _Context):
            return known
    engine, address = _engine_of(owner)
    ref, kind = None, None
    if "ref" in arguments:
        ref = _ref_of(arguments["ref"])
        kind = "image" if operation.startswith("images.") else "container"
    elif "image" in arguments:
        ref, kind = _ref_of(arguments["image"]), "image"
    elif "tag" in arguments:
        # What a build makes: named in ``ref``, never the image found missing.
        ref = _ref_of(arguments["tag"])
    return _Context(operation, engine, address, ref, kind)


def _complete(error: EngineError, ctx: _Context) -> EngineError:
    """``error`` with its fields filled; for a missing container or image that
    the call named, a new error worded the same on every engine.

    An error raised with ``ref`` already set keeps its words (the core's own).
    """
    own_ref = error.ref is not None
    if error.engine is None:
        error.engine = ctx.engine
    if error.operation is None:
        error.operation = ctx.operation
    if error.address is None:
        error.address = ctx.address
    if error.ref is None:
        error.ref = ctx.ref
    kinds: dict[type[EngineError], str] = {ContainerNotFound: "container", ImageNotFound: "image"}
    kind = kinds.get(type(error))
    if own_ref or kind is None or kind != ctx.kind:
        return error
    message = f"{ctx.operation}: no such {kind}"
    if ctx.ref is not None:
        message += f": {ctx.ref}"
        if kind == "container" and _SHORT_HEX.fullmatch(ctx.ref):
            message += " (id prefixes need 12+ characters)"
    again = type(error)(
        message,
        engine=error.engine,
        operation=error.operation,
        address=error.address,
        ref=error.ref,
        status=error.status,
    )
    return again


def _guard(method: Callable[P, R]) -> Callable[P, R]:
    """The error contract's last line: only ``EngineError`` leaves the facade,
    the caller's own exceptions and ``TypeError`` of a wrong call excepted (see
    the module)."""
    signature = inspect.signature(method)
    operation = _operation_of(method)
    has_progress = "progress" in signature.parameters

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _ACTIVE.get():  # called by another guarded method: that one translates
            return method(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            # Not a call the method takes: Python's TypeError, before anything runs.
            raise TypeError(f"{method.__qualname__}() {exc}") from None
        call_args: tuple[Any, ...] = args
        call_kwargs: dict[str, Any] = kwargs
        progress = bound.arguments.get("progress") if has_progress else None
        if progress is not None and callable(progress):
            bound.arguments["progress"] = _shield(progress)
            call_args, call_kwargs = bound.args, bound.kwargs
        token = _ACTIVE.set(True)
        try:
            result = method(*call_args, **call_kwargs)
        except _CallerRaised as carried:
            raised = carried.error
        except (StopIteration, GeneratorExit):
            raise
        except EngineError as exc:
            complete = _complete(exc, _context(method, operation, bound.arguments))
            if complete is exc:
                raise
            raise complete from exc
        except Exception as exc:
            ctx = _context(method, operation, bound.arguments)
            error = EngineError(f"unexpected {type(exc).__name__} in {operation}")
            raise _complete(error, ctx) from exc
        else:
            _remember(result, method, operation, bound.arguments)
            return result
        finally:
            _ACTIVE.reset(token)
        # Outside the except clause: the caller's exception leaves as it was
        # raised, with no context added.
        raise raised

    return wrapper


def _remember(
    result: object, method: Callable[..., Any], operation: str, arguments: dict[str, Any]
) -> None:
    """Tell an iterator the call returned (``stream_logs``) what the call was,
    so that errors of its ``__next__`` carry the same fields."""
    if type(result).__name__ not in _ITERATORS:
        return
    # The stream and the driver iterator it reads (whose ``next`` is what its
    # ``__next__`` guards) are told; one with slots or a generator cannot be:
    # its errors then name the operation only.
    ctx = _context(method, operation, arguments)
    for carrier in (result, getattr(result, "_inner", None)):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(carrier, _CONTEXT_ATTR, ctx)
