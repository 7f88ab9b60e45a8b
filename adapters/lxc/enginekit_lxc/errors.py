"""Failures of the lxc-* tools and of the host, translated to enginekit errors."""

from __future__ import annotations

import contextlib
import errno
import functools
import shutil
from collections.abc import Iterator

from enginekit.toolkit.errors import Conflict, EngineError, EngineUnavailable, NotFound

__all__ = ["ENGINE", "HINT", "LxcToolError", "map_os_errors", "tool_error", "tool_path"]

#: The engine's name, as models and errors carry it.
ENGINE = "lxc"
HINT = "install LXC 5.0 or newer (`apt-get install lxc`) and make sure the lxc-* tools are on PATH"


class LxcToolError(EngineError):
    """An lxc-* tool exited non-zero; ``tool`` and ``exit_code`` say which and how
    (``status`` is that exit code too, as for every error of a failed tool)."""

    def __init__(self, message: str, *, tool: str, exit_code: int | None) -> None:
        super().__init__(message, status=exit_code)
        self.tool = tool
        self.exit_code = exit_code


def tool_error(tool: str, exit_code: int | None, stderr: bytes | str) -> EngineError:
    """The enginekit error for an lxc-* tool that failed with ``stderr``."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    tail = "; ".join(lines[-3:]) if lines else "no output"
    message = f"{tool} failed (exit {exit_code}): {tail}"
    low = text.lower()
    if "is not running" in low or "not running" in low:
        return Conflict(message, status=exit_code)
    return LxcToolError(message, tool=tool, exit_code=exit_code)


@contextlib.contextmanager
def map_os_errors(what: str) -> Iterator[None]:
    """Turn ``OSError`` raised on the host side of ``what`` into enginekit errors."""
    try:
        yield
    except FileNotFoundError as exc:
        if exc.filename and str(exc.filename).startswith("lxc-"):
            raise EngineUnavailable(f"{exc.filename} not found", hint=HINT) from exc
        raise NotFound(f"{what}: {exc.strerror}") from exc
    except OSError as exc:
        if exc.errno in (errno.EBUSY,):
            raise Conflict(f"{what}: {exc.strerror}") from exc
        raise EngineError(f"{what}: {exc.strerror or exc}") from exc


@functools.cache
def _which(name: str) -> str | None:
    return shutil.which(name)


def tool_path(name: str) -> str:
    """The absolute path of the lxc-* tool ``name`` (found once, on the host's PATH).

    Tools run with a container's environment must not be looked up in it.
    """
    path = _which(name)
    if path is None:
        _which.cache_clear()
        raise EngineUnavailable(f"{name} not found on PATH", hint=HINT)
    return path
