"""A container's cgroups, one class per cgroup layout.

:class:`CgroupV1` is the legacy or hybrid layout (one hierarchy per
controller: ``ROOT/memory``, ``ROOT/cpu``, ...); :class:`CgroupV2` is the
unified layout (``ROOT`` itself is cgroup2). :func:`detect` picks one from
what the host has mounted at ``ROOT``; the driver does it once, and every
container of the driver goes through that one object. ``root`` and ``proc``
are parameters, so each layout is testable over a recorded tree.

What a layout gives the driver, the monitor and LXC's hook:

* ``dirs(pid)``: the cgroup directories of a process (``/proc/PID/cgroup``),
  controller -> directory (v2: one entry, ``"unified"``);
* ``support()``: which limits, freezing and statistics the host can give
  (controllers present and writable), with a reason for each missing one;
* ``limit_files(limits)``: the cgroup files and values that set the limits
  and the device allow-list; LXC's config keys are these names
  (``lxc.cgroup.FILE`` on v1, ``lxc.cgroup2.FILE`` on v2);
* ``frozen``/``freeze``, ``usage``, ``procs``, ``oom_watch``.

The layouts live in :mod:`enginekit_lxc.cgroupv1` and
:mod:`enginekit_lxc.cgroupv2`, what they share in :mod:`enginekit_lxc.cgroupfs`.
Standard library only: the monitor imports it, and on LXC 7 with cgroup v1
(where LXC sets no cgroup v1 limit) LXC runs :func:`main` as its
``start-host`` hook (``apply 1 ROOT FILE=VALUE... --``, see
:mod:`enginekit_lxc.lxchost`), which writes the files into the cgroups of
``$LXC_PID`` before the container's init runs.
"""

from __future__ import annotations

import os
import sys

from .cgroupfs import (
    CPU_PERIOD,
    DEVICE_RULES,
    Limits,
    OomWatch,
    Support,
    Usage,
    _mount_fstype,
)
from .cgroupv1 import CgroupV1
from .cgroupv2 import CgroupV2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CPU_PERIOD",
    "DEVICE_RULES",
    "CgroupV1",
    "CgroupV2",
    "Layout",
    "Limits",
    "OomWatch",
    "Support",
    "Usage",
    "detect",
    "layout",
]

Layout = CgroupV1 | CgroupV2


def layout(version: int, root: str = "/sys/fs/cgroup", proc: str = "/proc") -> Layout:
    """The layout object of a known version (the monitor is told which)."""
    return CgroupV2(root, proc) if version == 2 else CgroupV1(root, proc)


def detect(root: str = "/sys/fs/cgroup", proc: str = "/proc") -> Layout:
    """cgroup v2 when ``root`` is a cgroup2 mount (the unified layout), else v1
    (legacy or hybrid)."""
    fstype = _mount_fstype(proc, root)
    if fstype is None:  # no mountinfo: the unified root has cgroup.controllers
        v2 = os.path.isfile(os.path.join(root, "cgroup.controllers"))
    else:
        v2 = fstype == "cgroup2"
    return layout(2 if v2 else 1, root, proc)


def main(argv: Sequence[str]) -> int:
    """``apply VERSION ROOT FILE=VALUE... --``: LXC's start-host hook (LXC
    appends its own arguments after ``--``); writes into ``$LXC_PID``'s cgroups."""
    if len(argv) < 3 or argv[0] != "apply":
        print("usage: cgroups.py apply VERSION ROOT FILE=VALUE... --", file=sys.stderr)
        return 2
    args = list(argv[3:])
    files = [tuple(a.split("=", 1)) for a in args[: args.index("--") if "--" in args else None]]
    pid = os.environ.get("LXC_PID", "")
    if not pid.isdigit():
        print("LXC_PID is not set", file=sys.stderr)
        return 1
    cg = layout(int(argv[1]), argv[2])
    dirs = cg.dirs(int(pid))
    try:
        cg.apply(dirs, [(f[0], f[1]) for f in files if len(f) == 2])
    except OSError as exc:
        print(f"cannot set the container's cgroup limits: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
