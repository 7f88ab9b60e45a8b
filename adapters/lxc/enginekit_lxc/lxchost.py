"""This host's LXC and cgroups, found once per driver, and what follows from them.

:func:`detect` reads LXC's version (``lxc-start --version``) and the cgroup
layout (:func:`enginekit_lxc.cgroups.detect`). :class:`LxcHost` then says
which capabilities the engine instance has (and why it lacks the others) and
how a container's cgroup settings are written into its LXC config:

============  ===========  ====================================================
LXC           cgroups      limits and device allow-list
============  ===========  ====================================================
5.x, 6.x      v1, hybrid   ``lxc.cgroup.FILE`` keys; ``cgroup:mixed`` mounted
5.x to 7.x    v2           ``lxc.cgroup2.FILE`` keys; ``cgroup:mixed`` (cgroup2)
7.x           v1, hybrid   LXC 7 refuses ``lxc.cgroup.*`` (``Unsupported config
                           key``), ignores ``lxc.cgroup2.*`` there, cannot
                           freeze or mount cgroup v1: an ``lxc.hook.start-host``
                           writes the v1 files before the container's init
                           runs, each v1 hierarchy is mounted read-only in the
                           container by ``lxc.mount.entry``, and the driver
                           freezes through ``freezer.state`` itself
============  ===========  ====================================================

LXC before 5.0 is refused (``EngineUnavailable`` naming both versions); a
newer major than 7 is used as 7 is.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys

import attrs

from enginekit.toolkit.driver import ALL_CAPABILITIES, Capability
from enginekit.toolkit.errors import EngineUnavailable

from . import cgroups
from .cgroups import Layout, Limits
from .errors import HINT, tool_path

__all__ = ["MIN_VERSION", "NEWEST_KNOWN", "CgroupConfig", "LxcHost", "detect", "parse_version"]

MIN_VERSION = (5, 0, 0)
NEWEST_KNOWN = (7, 0, 0)
_CGROUP_CAPS = {
    "memory": Capability.MEMORY_LIMIT,
    "cpu": Capability.CPU_LIMIT,
    "pids": Capability.PIDS_LIMIT,
    "freeze": Capability.PAUSE,
    "stats": Capability.STATS,
}
# The start-host hook: this Python, isolated (-I: no environment, -S: no
# site), imports enginekit_lxc.cgroups from where this package lives (after
# the standard library) and runs its main(); about 20 ms.
_HOOK_CODE = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from enginekit_lxc.cgroups import main; sys.exit(main(sys.argv[2:]))"
)
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_version(text: str) -> tuple[int, int, int]:
    """``"5.0.2"``, ``"6.0.0~git2024"``, ``"7.0.0-1"`` -> (major, minor, patch)."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        raise EngineUnavailable(f"cannot read LXC's version from {text.strip()[:40]!r}", hint=HINT)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def _dotted(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


@attrs.frozen
class CgroupConfig:
    """A container config's cgroup part: its lines, and whether LXC mounts
    the container's cgroups (``cgroup:mixed`` in ``lxc.mount.auto``)."""

    lines: tuple[str, ...]
    mount_auto: bool


@attrs.define(eq=False)
class LxcHost:
    version: tuple[int, int, int]
    version_text: str
    cgroups: Layout
    rootless: bool = attrs.field(factory=lambda: os.geteuid() != 0)
    _caps: tuple[frozenset[Capability], dict[Capability, str]] | None = attrs.field(
        default=None, init=False
    )

    @property
    def cgroup_version(self) -> int:
        return self.cgroups.version

    @property
    def writes_v1_itself(self) -> bool:
        """LXC 7 or newer on a cgroup v1 host: LXC sets no v1 limit or device rule."""
        return self.cgroups.version == 1 and self.version >= (7, 0, 0)

    def check(self) -> None:
        """``EngineUnavailable`` for an LXC this adapter cannot drive."""
        if self.version < MIN_VERSION:
            raise EngineUnavailable(
                f"LXC {self.version_text} is too old: enginekit needs LXC {_dotted(MIN_VERSION)} "
                f"or newer (it knows {_dotted(MIN_VERSION[:1])} to {_dotted(NEWEST_KNOWN[:1])}.x)",
                address="lxc-start",
                hint="install LXC 5.0 or newer (Debian 12 has 5.0, Debian 13 6.0)",
            )

    def refused(self, errors: str) -> EngineUnavailable | None:
        """The error for LXC refusing a config key enginekit wrote (an LXC
        newer than the adapter knows), from the errors LXC logged; else None."""
        if "Unsupported config key" not in errors:
            return None
        return EngineUnavailable(
            f"LXC {self.version_text} refused enginekit's container config ({errors}); "
            f"enginekit knows LXC {_dotted(MIN_VERSION[:2])} to {_dotted(NEWEST_KNOWN[:1])}.x",
            address="lxc-execute",
            hint="use an enginekit release that supports this LXC, or LXC 5.0 to 7.x",
        )

    def _computed(self) -> tuple[frozenset[Capability], dict[Capability, str]]:
        if self._caps is None:
            missing: dict[Capability, str] = {}
            for what, reason in self.cgroups.support().missing.items():
                cap = _CGROUP_CAPS.get(what)
                if cap is not None:
                    missing[cap] = reason
            self._caps = (ALL_CAPABILITIES - missing.keys(), missing)
        return self._caps

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._computed()[0]

    @property
    def unsupported(self) -> dict[Capability, str]:
        return dict(self._computed()[1])

    def cgroup_config(self, limits: Limits, name: str) -> CgroupConfig:
        """The config lines that set ``limits`` and the device allow-list of
        the LXC container ``name``."""
        files = self.cgroups.limit_files(limits)
        if self.cgroups.version == 2:
            return CgroupConfig(tuple(f"lxc.cgroup2.{k} = {v}" for k, v in files), True)
        if not self.writes_v1_itself:
            return CgroupConfig(tuple(f"lxc.cgroup.{k} = {v}" for k, v in files), True)
        hook = [sys.executable, "-I", "-S", "-c", _HOOK_CODE, _PACKAGE_PARENT]
        hook += ["apply", "1", self.cgroups.root]
        hook += [f"{k}={v}" for k, v in files] + ["--"]
        lines = [f"lxc.hook.start-host = {' '.join(shlex.quote(a) for a in hook)}"]
        assert isinstance(self.cgroups, cgroups.CgroupV1)
        # LXC 7 mounts no cgroup v1 file system (and drops a bare option like
        # "memory" from a cgroup mount entry): the container's own cgroups
        # are bound read-only from the host, where LXC has just made them.
        mounts = self.cgroups.payload_dirs(name)
        if mounts:
            lines.append(
                "lxc.mount.entry = tmpfs sys/fs/cgroup tmpfs "
                "rw,nosuid,nodev,noexec,mode=755,size=64k 0 0"
            )
            lines += [
                f"lxc.mount.entry = {src} sys/fs/cgroup/{m} none "
                "bind,ro,nosuid,nodev,noexec,optional,create=dir 0 0"
                for m, src in mounts.items()
            ]
        return CgroupConfig(tuple(lines), False)


def lxc_version() -> tuple[tuple[int, int, int], str]:
    """LXC's version, from ``lxc-start --version`` (the tools' liblxc)."""
    try:
        proc = subprocess.run(
            [tool_path("lxc-start"), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineUnavailable("lxc-start --version did not answer", hint=HINT) from exc
    text = proc.stdout.decode("utf-8", "replace").strip()
    return parse_version(text), text


def detect(root: str = "/sys/fs/cgroup", proc: str = "/proc") -> LxcHost:
    """This host's LXC and cgroup layout (runs ``lxc-start --version`` once)."""
    version, text = lxc_version()
    return LxcHost(version=version, version_text=text, cgroups=cgroups.detect(root, proc))


@functools.cache
def process_host() -> LxcHost:
    """One :class:`LxcHost` for callers without a driver (``execute`` on its own)."""
    host = detect()
    host.check()
    return host
