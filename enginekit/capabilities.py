"""What an adapter can do, declared as data.

The contract suite reads ``Engine.capabilities``: a test needing a capability
the adapter does not declare is skipped *because it was declared missing*; a
declared capability that does not work is a failure.
"""

from __future__ import annotations

import enum

__all__ = ["ALL_CAPABILITIES", "Capability"]


class Capability(enum.StrEnum):
    BUILD = "build"
    IMAGE_SAVE = "image_save"
    IMAGE_LOAD = "image_load"
    PULL = "pull"
    PUSH = "push"
    PAUSE = "pause"
    EXEC = "exec"
    PORTS = "ports"
    BIND_MOUNTS = "bind_mounts"
    MEMORY_LIMIT = "memory_limit"
    CPU_LIMIT = "cpu_limit"
    PIDS_LIMIT = "pids_limit"
    NETWORK_NONE = "network_none"
    NETWORK_BRIDGE = "network_bridge"
    NETWORK_HOST = "network_host"
    STATS = "stats"
    COPY = "copy"

    def __repr__(self) -> str:
        return f"Capability.{self.name}"


ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability)
