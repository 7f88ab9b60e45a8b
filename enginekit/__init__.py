"""enginekit: one interface over Docker, Podman and LXC, the same on every engine.

>>> import enginekit
>>> with enginekit.connect("docker") as engine:          # doctest: +SKIP
...     c = engine.containers.run("busybox", ["echo", "hi"])
...     engine.containers.wait(c)
"""

from __future__ import annotations

import sys

# Not ``typing.TYPE_CHECKING``: importing typing is most of ``import enginekit``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .capabilities import Capability
    from .config import connect, engines
    from .engine import ContainerService, Engine, ImageService
    from .errors import (
        BuildFailed,
        Conflict,
        ContainerNotFound,
        EngineError,
        EngineTimeout,
        EngineUnavailable,
        ImageNotFound,
        InvalidSpec,
        NotFound,
        UnknownOption,
        Unsupported,
    )
    from .models import (
        Container,
        ContainerState,
        ContainerSummary,
        EngineInfo,
        EngineStatus,
        ExecResult,
        Image,
        ImageConfig,
        LogLine,
        Mount,
        PortBinding,
        Resources,
        Stats,
        Stream,
    )
    from .reference import Reference

# Public names are loaded on first use (PEP 562) so that ``import enginekit``
# stays cheap for command-line tools; every name below is part of the API.
_WHERE = {
    "Capability": "capabilities",
    "connect": "config",
    "engines": "config",
    **dict.fromkeys(("ContainerService", "Engine", "ImageService"), "engine"),
    **dict.fromkeys(
        (
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
        ),
        "errors",
    ),
    **dict.fromkeys(
        (
            "Container",
            "ContainerState",
            "ContainerSummary",
            "EngineInfo",
            "EngineStatus",
            "ExecResult",
            "Image",
            "ImageConfig",
            "LogLine",
            "Mount",
            "PortBinding",
            "Resources",
            "Stats",
            "Stream",
        ),
        "models",
    ),
    "Reference": "reference",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'enginekit' has no attribute {name!r}")
    qualified = f"{__name__}.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__version__ = "0.1.0"

__all__ = [
    "BuildFailed",
    "Capability",
    "Conflict",
    "Container",
    "ContainerNotFound",
    "ContainerService",
    "ContainerState",
    "ContainerSummary",
    "Engine",
    "EngineError",
    "EngineInfo",
    "EngineStatus",
    "EngineTimeout",
    "EngineUnavailable",
    "ExecResult",
    "Image",
    "ImageConfig",
    "ImageNotFound",
    "ImageService",
    "InvalidSpec",
    "LogLine",
    "Mount",
    "NotFound",
    "PortBinding",
    "Reference",
    "Resources",
    "Stats",
    "Stream",
    "UnknownOption",
    "Unsupported",
    "__version__",
    "connect",
    "engines",
]
