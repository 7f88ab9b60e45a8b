"""Docker's HTTP answers -> ``enginekit.errors``. The only place that reads engine messages.

The status code decides first (404 missing, 409 conflict, 400 bad input);
Docker answers some state conflicts with 500, recognised by their text here.
"""

from __future__ import annotations

import contextlib

from enginekit.toolkit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidSpec,
    NotFound,
)
from enginekit.toolkit.http import Response, error_message
from enginekit.toolkit.http import map_errors as _map_errors

__all__ = ["build_error", "error_for", "map_errors", "message_of", "registry_error"]

# Docker texts that name the missing thing better than the endpoint does.
_MISSING: tuple[tuple[str, type[NotFound]], ...] = (
    ("no such image", ImageNotFound),
    ("no such container", ContainerNotFound),
    ("could not find the file", NotFound),
)
# State conflicts Docker answers with a 5xx.
_CONFLICT_TEXTS = (
    "is not running",
    "is not paused",
    "is already paused",
    "is paused",
    "is restarting",
    "port is already allocated",
    "address already in use",
    "already in use",
    "removal of container",
    "is already in progress",
)
# A path that runs through a file ("lstat /x/file/y: not a directory") does not
# exist; extracting into a file is another matter.
_PATH_THROUGH_FILE = "not a directory"
_INTO_A_FILE = "extraction point is not a directory"
_INVALID_TEXTS = (_INTO_A_FILE, "invalid mount config", "invalid reference format")


def message_of(resp: Response) -> str:
    """The ``message`` of an error answer (its body read and the response closed)."""
    return error_message(resp.read())


def error_for(
    status: int, message: str, *, operation: str, missing: type[NotFound] = ContainerNotFound
) -> EngineError:
    """The enginekit error for an HTTP ``status`` and Docker ``message``.

    ``missing`` is what a 404 means for this call (the container, the image,
    or a path) unless Docker's message names something else.
    """
    text = message.lower()
    detail = f"docker {operation}: {message}" if message else f"docker {operation}: HTTP {status}"
    cls: type[EngineError] = EngineError
    if status == 404:
        cls = next((found for needle, found in _MISSING if needle in text), missing)
    elif _PATH_THROUGH_FILE in text and _INTO_A_FILE not in text:
        cls = NotFound
    elif status == 409 or any(needle in text for needle in _CONFLICT_TEXTS):
        cls = Conflict
    elif status == 400 or any(needle in text for needle in _INVALID_TEXTS):
        cls = InvalidSpec
    return cls(detail, status=status)


# What a registry (or the daemon about a local image to push) says when the
# image is not there; anything else a pull or push meets is an EngineError.
_NOT_IN_REGISTRY = (
    "manifest unknown",
    "name unknown",
    "not found",
    "repository does not exist",
)
_NOT_LOCAL = ("does not exist locally", "tag does not exist", "no such image")


def registry_error(message: str, *, operation: str) -> EngineError:
    """The enginekit error for a failed ``pull`` or ``push`` (``ImageNotFound``
    when the image is missing, in the registry or locally)."""
    text = message.lower()
    detail = f"docker {operation}: {message}" if message else f"docker {operation} failed"
    markers = _NOT_IN_REGISTRY if operation == "pull" else _NOT_LOCAL
    if any(needle in text for needle in markers):
        return ImageNotFound(detail)
    if "invalid reference format" in text:
        return InvalidSpec(detail)
    return EngineError(detail)


def build_error(status: int, message: str) -> BuildFailed:
    """A build the daemon refused before running a step (bad Dockerfile, target...)."""
    return BuildFailed(
        f"docker build: {message}" if message else f"docker build: HTTP {status}", status=status
    )


def map_errors(operation: str) -> contextlib.AbstractContextManager[None]:
    """Let enginekit errors through; turn what an answer caused into EngineError
    (:func:`enginekit.toolkit.http.map_errors`)."""
    return _map_errors("docker", operation)
