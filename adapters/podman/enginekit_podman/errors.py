"""Podman's answers turned into :mod:`enginekit.errors`; the only place that reads error texts.

The libpod API reports most state problems as HTTP 500 with a ``cause`` such
as ``container state improper``; what was asked for decides which
``NotFound`` a 404 is. :func:`check` raises for a response that is not a
success, :func:`map_errors` wraps anything else (a malformed body, a file
that cannot be written) so that only ``EngineError`` leaves the adapter.
"""

from __future__ import annotations

import http.client
import json
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidSpec,
    NotFound,
)
from enginekit.transport import Response

__all__ = [
    "check",
    "error_for",
    "exec_start_failure",
    "init_exec_failure",
    "map_errors",
    "message_of",
    "registry_error",
]

# Causes (libpod's error sentinels) and message fragments that mean a state conflict.
_CONFLICT_TEXTS = (
    "container state improper",
    "is running",
    "is paused",
    "is not running",
    "not running",
    "already in use",
    "already exists",
    "image is in use",
    "image used by",
    "in use by",
    "has dependent children",
    "cannot remove container",
    "cannot be forced",
    "is being used",
)
_CONTAINER_MISSING_TEXTS = ("no such container", "no container with name or id")
_IMAGE_MISSING_TEXTS = ("image not known", "no such image", "failed to find image")
_INVALID_TEXTS = ("invalid reference format", "invalid argument", "invalid signal")


# catatonit (Podman's init) exits 1 when it cannot start the command, after
# printing this; Docker's init (tini) exits 127 (not found) or 126 (not executable).
_INIT_EXEC_FAILED = re.compile(rb"^ERROR \(catatonit:\d+\): failed to exec pid1: (.*)$")


def init_exec_failure(line: bytes) -> int | None:
    """The exit code Docker gives when its init cannot start the command, from
    catatonit's last stderr line; None if the line is not that message."""
    m = _INIT_EXEC_FAILED.match(line.rstrip(b"\n"))
    if m is None:
        return None
    return 127 if b"No such file or directory" in m.group(1) else 126


# An exec whose process runc could not start: Podman says so on stderr (exit
# 127 or 126) and adds a line about the attach socket it closed.
_EXEC_FAILED = b"Error: runc: exec failed:"
_ATTACH_NOISE = re.compile(rb"^Error: read unixpacket .*connection reset by peer\n?$", re.M)


def exec_start_failure(code: int, stderr: bytes) -> tuple[int, bytes] | None:
    """``(126, message)`` as Docker reports an exec that could not start, or None.

    Docker answers 126 for every such exec (command not found, not
    executable, no such working directory); Podman 127 for some of them.
    """
    if code not in (126, 127) or not stderr.startswith(_EXEC_FAILED):
        return None
    return 126, _ATTACH_NOISE.sub(b"", stderr)


def process_vanished(exc: EngineError) -> bool:
    """Podman 4.3 answers 500 "read /proc/PID/cgroup: no such process" when it
    inspects a container whose process has just ended: asking again works."""
    return "/cgroup: no such process" in str(exc)


def message_of(body: bytes) -> str:
    """The ``message`` of a libpod error body (or the body text itself)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text or "no message"
    if isinstance(data, dict):
        msg = data.get("message") or data.get("cause")
        if isinstance(msg, str) and msg:
            return msg
    return text or "no message"


def error_for(
    status: int, message: str, *, missing: type[NotFound] = ContainerNotFound
) -> EngineError:
    """The enginekit error for a libpod error ``status`` and ``message``.

    ``missing`` is what a 404 means for this call (the container or the image
    that was asked for).
    """
    low = message.lower()
    image_missing = any(t in low for t in _IMAGE_MISSING_TEXTS)
    container_missing = any(t in low for t in _CONTAINER_MISSING_TEXTS)
    cls: type[EngineError]
    if status == 404:
        if image_missing and missing is not ContainerNotFound:
            cls = ImageNotFound
        elif container_missing:
            cls = ContainerNotFound
        else:
            cls = ImageNotFound if image_missing else missing
    elif status == 409:
        cls = Conflict
    elif status == 400:
        cls = InvalidSpec
    elif container_missing:
        cls = ContainerNotFound
    elif image_missing:
        cls = ImageNotFound
    elif any(t in low for t in _CONFLICT_TEXTS):
        cls = Conflict
    elif any(t in low for t in _INVALID_TEXTS):
        cls = InvalidSpec
    else:
        return EngineError(f"podman: {message} (HTTP {status})", status=status)
    return cls(message, status=status)


# What a registry says of an image it does not have (pull), and what libpod
# says of a local image it does not know (push).
_NOT_IN_REGISTRY = ("manifest unknown", "name unknown", "not found", "repository does not exist")


def registry_error(message: str, *, operation: str) -> EngineError:
    """The enginekit error for a failed ``pull`` or ``push`` (``ImageNotFound``
    when the image is missing, in the registry or locally)."""
    low = message.lower()
    markers = _NOT_IN_REGISTRY if operation == "pull" else _IMAGE_MISSING_TEXTS
    if any(t in low for t in markers):
        return ImageNotFound(f"podman {operation}: {message}")
    if any(t in low for t in _INVALID_TEXTS):
        return InvalidSpec(f"podman {operation}: {message}")
    return EngineError(f"podman {operation}: {message}")


def check(resp: Response, *, missing: type[NotFound] = ContainerNotFound) -> None:
    """Raise the enginekit error for a response that is neither 2xx nor 304.

    The body of a failed response is read (and the connection released).
    """
    if resp.ok or resp.status == 304:
        return
    body = resp.read()
    raise error_for(resp.status, message_of(body), missing=missing)


# What a body that is not what libpod documents raises as it is read (JSON,
# UTF-8, a missing field or item, a tar stream cut short).
_UNREADABLE = (
    ValueError,
    KeyError,
    IndexError,
    EOFError,
    struct.error,
    tarfile.TarError,
    zlib.error,
    http.client.HTTPException,
)


@contextmanager
def map_errors(what: str) -> Iterator[None]:
    """Turn what an answer or a local file operation caused into an ``EngineError``
    naming ``what``.

    Nothing else is translated here: a ``TypeError`` or ``AttributeError`` is a
    bug (the facade reports it as such) and an exception of the caller's own
    callback is the caller's (the facade lets it leave as it is).
    """
    try:
        yield
    except EngineError:
        raise
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EngineError(f"podman: {what} failed ({reason})") from exc
    except _UNREADABLE as exc:
        raise EngineError(f"podman: unexpected answer to {what} ({type(exc).__name__})") from exc
