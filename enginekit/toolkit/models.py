"""The models a driver takes and returns (``enginekit.models``): frozen attrs
classes, aware UTC datetimes, frozen mappings (:class:`FrozenDict`)."""

from __future__ import annotations

from enginekit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineInfo,
    EngineStatus,
    ExecResult,
    FrozenDict,
    Image,
    ImageConfig,
    LogLine,
    Mount,
    PathStat,
    PortBinding,
    Resources,
    Stats,
    Stream,
    utc,
)

__all__ = [
    "BuildRequest",
    "Container",
    "ContainerSpec",
    "ContainerState",
    "ContainerSummary",
    "EngineInfo",
    "EngineStatus",
    "ExecResult",
    "FrozenDict",
    "Image",
    "ImageConfig",
    "LogLine",
    "Mount",
    "PathStat",
    "PortBinding",
    "Resources",
    "Stats",
    "Stream",
    "utc",
]
