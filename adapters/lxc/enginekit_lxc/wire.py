"""What travels between the ``lxc+ssh://`` proxy driver and its agent: values as JSON.

Both sides run this module (the agent from the bundle it was uploaded in).
Nothing here ever unpickles or evaluates: a value is rebuilt only from a
short list of known shapes, so an agent (the remote host) cannot make this
side run code.

Values (:func:`encode`/:func:`decode`): ``None``, bools, ints, floats and
strings as themselves; lists as JSON arrays; everything else as a one-key
object naming its kind:

``{"$b": base64}``
    bytes
``{"$t": [...]}`` / ``{"$fs": [...]}``
    a tuple / a frozenset
``{"$m": [[key, value], ...]}`` / ``{"$fd": [[key, value], ...]}``
    a dict / a :class:`~enginekit.models.FrozenDict` (keys of any kind above)
``{"$dt": "2026-01-01T00:00:00+00:00"}``
    an aware datetime (a naive one is refused)
``{"$e": "ContainerState", "v": "running"}``
    a member of one of :data:`ENUMS`
``{"$o": "Container", "f": {field: value, ...}}``
    an instance of one of the attrs classes of :mod:`enginekit.models`,
    rebuilt by calling the class with the named fields (its converters run)

Errors (:func:`encode_error`/:func:`decode_error`): an exception of
:mod:`enginekit.errors` travels as its class name, its message arguments and
its fields (plain values only); it is raised again here as the same class.
Any other class name, or an exception that is not an ``EngineError``, is an
:class:`~enginekit.errors.EngineError` with its message.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any

import attrs

from enginekit.toolkit import errors, models
from enginekit.toolkit.driver import Capability
from enginekit.toolkit.errors import EngineError
from enginekit.toolkit.time import parse_rfc3339

__all__ = [
    "ENUMS",
    "MODELS",
    "WireError",
    "decode",
    "decode_error",
    "dumps",
    "encode",
    "encode_error",
    "loads",
]

#: The model classes a value may be rebuilt as (by name).
MODELS: dict[str, type[Any]] = {
    name: getattr(models, name)
    for name in models.__all__
    if isinstance(getattr(models, name), type) and attrs.has(getattr(models, name))
}
#: The enums a value may be a member of (by name).
ENUMS: dict[str, type[enum.Enum]] = {
    "ContainerState": models.ContainerState,
    "Stream": models.Stream,
    "Capability": Capability,
}
#: The error classes raised again as themselves (by name).
ERRORS: dict[str, type[EngineError]] = {
    name: getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), EngineError)
}
#: The attributes of an error that travel with it (besides its message).
ERROR_FIELDS = (
    *errors.FIELDS,
    "hint",
    "step",
    "exit_code",
    "output",
    "reason",
    "capability",
)
#: Nesting deeper than this is refused (a hostile answer cannot exhaust the stack).
_MAX_DEPTH = 64


class WireError(EngineError):
    """A message that is not one this module writes."""


def encode(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain JSON data (see the module). ``TypeError`` for anything else."""
    if _depth > _MAX_DEPTH:
        raise TypeError("value nested too deeply")
    d = _depth + 1
    if value is None or (
        isinstance(value, bool | int | float) and not isinstance(value, enum.Enum)
    ):
        return value
    if isinstance(value, enum.Enum):
        kind = type(value).__name__
        if ENUMS.get(kind) is not type(value):
            raise TypeError(f"cannot send a {kind}")
        return {"$e": kind, "v": value.value}
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TypeError("cannot send a naive datetime")
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple):
        return {"$t": [encode(v, d) for v in value]}
    if isinstance(value, list):
        return [encode(v, d) for v in value]
    if isinstance(value, frozenset | set):
        return {"$fs": [encode(v, d) for v in value]}
    if isinstance(value, models.FrozenDict):
        return {"$fd": [[encode(k, d), encode(v, d)] for k, v in value.items()]}
    if isinstance(value, Mapping):
        return {"$m": [[encode(k, d), encode(v, d)] for k, v in value.items()]}
    kind = type(value).__name__
    if MODELS.get(kind) is type(value):
        return {
            "$o": kind,
            "f": {f.name: encode(getattr(value, f.name), d) for f in attrs.fields(type(value))},
        }
    raise TypeError(f"cannot send a {kind}")


def decode(data: Any, _depth: int = 0) -> Any:
    """The value :func:`encode` made ``data`` from; :class:`WireError` for anything else."""
    if _depth > _MAX_DEPTH:
        raise WireError("lxc agent: a value nested too deeply")
    d = _depth + 1
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v, d) for v in data]
    if not isinstance(data, dict):
        raise WireError(f"lxc agent: unreadable value of type {type(data).__name__}")
    try:
        return _decode_tagged(data, d)
    except WireError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise WireError(f"lxc agent: unreadable value ({exc})") from None


def _pairs(data: Any, depth: int) -> list[tuple[Any, Any]]:
    if not isinstance(data, list) or not all(isinstance(p, list) and len(p) == 2 for p in data):
        raise WireError("lxc agent: a mapping that is not a list of pairs")
    return [(decode(k, depth), decode(v, depth)) for k, v in data]


def _decode_tagged(data: dict[str, Any], d: int) -> Any:
    if "$b" in data and len(data) == 1:
        return base64.b64decode(data["$b"], validate=True)
    if "$t" in data and len(data) == 1 and isinstance(data["$t"], list):
        return tuple(decode(v, d) for v in data["$t"])
    if "$fs" in data and len(data) == 1 and isinstance(data["$fs"], list):
        return frozenset(decode(v, d) for v in data["$fs"])
    if "$m" in data and len(data) == 1:
        return dict(_pairs(data["$m"], d))
    if "$fd" in data and len(data) == 1:
        return models.FrozenDict(_pairs(data["$fd"], d))
    if "$dt" in data and len(data) == 1 and isinstance(data["$dt"], str):
        try:
            return parse_rfc3339(data["$dt"], zone_required=True)
        except ValueError:
            raise WireError("lxc agent: a datetime that is not RFC 3339 with a zone") from None
    if "$e" in data and set(data) == {"$e", "v"}:
        cls = ENUMS.get(data["$e"]) if isinstance(data["$e"], str) else None
        if cls is None:
            raise WireError(f"lxc agent: unknown kind of value {data['$e']!r}")
        return cls(data["v"])
    if "$o" in data and set(data) == {"$o", "f"} and isinstance(data["f"], dict):
        cls = MODELS.get(data["$o"]) if isinstance(data["$o"], str) else None
        if cls is None:
            raise WireError(f"lxc agent: unknown kind of value {data['$o']!r}")
        names = {f.name for f in attrs.fields(cls)}
        unknown = set(data["f"]) - names
        if unknown:
            raise WireError(f"lxc agent: {data['$o']} has no field {sorted(unknown)[0]!r}")
        return cls(**{k: decode(v, d) for k, v in data["f"].items()})
    raise WireError("lxc agent: unreadable value")


def dumps(value: Any) -> bytes:
    """``value`` encoded, as compact JSON bytes."""
    return json.dumps(encode(value), separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """The value :func:`dumps` wrote."""
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise WireError(f"lxc agent: an answer that is not JSON ({exc})") from None
    return decode(parsed)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def encode_error(exc: BaseException) -> dict[str, Any]:
    """``exc`` as JSON data: its class (an ``enginekit.errors`` one, else
    ``EngineError`` with the class named in the message), message and fields."""
    if isinstance(exc, EngineError) and ERRORS.get(type(exc).__name__) is type(exc):
        args = [a if _plain(a) else str(a) for a in exc.args]
        fields = {k: getattr(exc, k, None) for k in ERROR_FIELDS if k in exc.__dict__}
        fields = {k: v if _plain(v) else str(v) for k, v in fields.items()}
        return {"class": type(exc).__name__, "args": args, "fields": fields}
    if isinstance(exc, EngineError):
        # An adapter's own subclass: its base of enginekit.errors, nearest first.
        for cls in type(exc).__mro__:
            if ERRORS.get(cls.__name__) is cls:
                fields = {
                    k: v if _plain(v) else str(v)
                    for k, v in ((k, getattr(exc, k, None)) for k in errors.FIELDS)
                }
                return {"class": cls.__name__, "args": [str(exc)], "fields": fields}
    return {
        "class": "EngineError",
        "args": [f"lxc agent: {type(exc).__name__}: {exc}"],
        "fields": {},
    }


def decode_error(data: Any) -> EngineError:
    """The exception :func:`encode_error` described, of the same class (see the module)."""
    if not isinstance(data, dict):
        return WireError("lxc agent: an unreadable error")
    name = data.get("class")
    raw_args = data.get("args")
    args = tuple(a for a in raw_args if _plain(a)) if isinstance(raw_args, list) else ()
    cls = ERRORS.get(name) if isinstance(name, str) else None
    if cls is None:
        return EngineError(*(args or ("lxc agent: an error of an unknown kind",)))
    # Without __init__ (signatures differ from class to class), as unpickling does.
    error = cls.__new__(cls, *args)
    error.args = args
    raw_fields = data.get("fields")
    if isinstance(raw_fields, dict):
        for key in ERROR_FIELDS:
            if key in raw_fields and _plain(raw_fields[key]):
                setattr(error, key, raw_fields[key])
    return error
