"""Podman's answers turned into :mod:`enginekit.errors`; the only place that reads error texts.

The libpod API reports most state problems as HTTP 500 with a ``cause`` such
as ``container state improper``; what was asked for decides which
``NotFound`` a 404 is. :func:`error_for` is the error of a failed answer
(the driver's ``_check`` raises it), :func:`map_errors` wraps anything else
(a malformed body, a file that cannot be written) so that only
``EngineError`` leaves the adapter.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from enginekit.toolkit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidSpec,
)
from enginekit.toolkit.http import error_message
from enginekit.toolkit.http import map_errors as _map_errors

if TYPE_CHECKING:
    from enginekit.toolkit.errors import NotFound

__all__ = [
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
    """The ``message`` (or ``cause``) of a libpod error body, or the body text itself."""
    return error_message(body) or "no message"


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


def map_errors(operation: str) -> contextlib.AbstractContextManager[None]:
    """Turn what an answer or a local file operation caused into an ``EngineError``
    naming ``operation`` (:func:`enginekit.toolkit.http.map_errors`)."""
    return _map_errors("podman", operation)
