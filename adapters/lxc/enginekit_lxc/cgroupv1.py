"""cgroup v1: the legacy or hybrid layout (a hierarchy per controller under the root)."""

from __future__ import annotations

import os

from .cgroupfs import (
    _FREEZE_TIMEOUT,
    _UNLIMITED,
    CPU_PERIOD,
    DEVICE_RULES,
    Limits,
    OomWatch,
    Support,
    Usage,
    _await,
    _cpu_quota,
    _int,
    _join,
    _Layout,
    _proc_lines,
    _procs_below,
    _quiet,
    _write,
    read_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CgroupV1"]


class CgroupV1(_Layout):
    """cgroup v1 (legacy, or hybrid with an empty unified hierarchy beside)."""

    version = 1

    def _hierarchy(self, ctrl: str) -> str | None:
        base = os.path.join(self.root, ctrl)
        return base if os.path.isfile(os.path.join(base, "cgroup.procs")) else None

    def parse(self, text: str) -> dict[str, str]:
        """Controller -> cgroup directory, from the text of ``/proc/PID/cgroup``."""
        out: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, controllers, path = parts
            path = path.removesuffix(" (deleted)")
            names = controllers.split(",") if controllers else ["unified"]
            for ctrl in names:
                name = ctrl.removeprefix("name=")
                for mount in (name, controllers):
                    base = os.path.join(self.root, mount)
                    if mount and os.path.isdir(base):
                        out[name] = _join(base, path)
                        break
        return out

    def dirs(self, pid: int) -> dict[str, str]:
        return self.parse(read_file(os.path.join(self.proc, str(pid), "cgroup")) or "")

    def _base(self, ctrl: str) -> str | None:
        """Where LXC makes a container's cgroup of ``ctrl``: below init's."""
        hier = self._hierarchy(ctrl)
        if hier is None:
            return None
        for _, controllers, path in _proc_lines(self.proc, 1):
            if ctrl in controllers.split(","):
                return _join(hier, path)
        return hier

    def _detect_support(self) -> Support:
        missing: dict[str, str] = {}
        need = {"memory": "memory", "cpu": "cpu", "pids": "pids", "freeze": "freezer"}
        for what, ctrl in need.items():
            base = self._base(ctrl)
            if base is None:
                missing[what] = f"cgroup v1 without the {ctrl} controller mounted at {self.root}"
            elif not os.access(base, os.W_OK):
                missing[what] = f"cgroup v1 {ctrl} hierarchy not writable ({base})"
        cpu = self._hierarchy("cpu")
        if "cpu" not in missing and cpu and not os.path.exists(f"{cpu}/cpu.cfs_quota_us"):
            missing["cpu"] = "the kernel has no CFS bandwidth control (cpu.cfs_quota_us)"
        if "memory" in missing or self._hierarchy("cpuacct") is None:
            missing["stats"] = missing.get("memory") or (
                f"cgroup v1 without the cpuacct controller mounted at {self.root}"
            )
        mem = self._hierarchy("memory")
        swap = bool(mem) and os.path.exists(f"{mem}/memory.memsw.limit_in_bytes")
        return Support(
            version=1, missing=missing, swap=swap, devices=self._hierarchy("devices") is not None
        )

    def limit_files(self, limits: Limits) -> list[tuple[str, str]]:
        sup = self.support()
        files: list[tuple[str, str]] = []
        if sup.devices:
            files.append(("devices.deny", "a"))
            files += [("devices.allow", rule) for rule in DEVICE_RULES]
        if limits.memory is not None:
            files.append(("memory.limit_in_bytes", str(limits.memory)))
            if sup.swap:
                files.append(("memory.memsw.limit_in_bytes", str(limits.memory)))
        if limits.cpus is not None:
            files.append(("cpu.cfs_period_us", str(CPU_PERIOD)))
            files.append(("cpu.cfs_quota_us", str(_cpu_quota(limits.cpus))))
        if limits.pids is not None:
            files.append(("pids.max", str(limits.pids) if limits.pids > 0 else "max"))
        return files

    def _dir_for(self, dirs: Mapping[str, str], name: str) -> str | None:
        return dirs.get(name.split(".", 1)[0])

    def payload_dirs(self, name: str) -> dict[str, str]:
        """Each controller hierarchy mounted at the root (its directory name)
        -> where LXC puts the container ``name``'s cgroup in it (``lxc.payload.NAME``
        below init's cgroup, as LXC does for root)."""
        text = read_file(os.path.join(self.proc, "self", "mountinfo")) or ""
        out = {}
        for line in text.splitlines():
            head, sep, tail = line.partition(" - ")
            fields = head.split()
            if not sep or len(fields) < 5 or tail.split()[0] != "cgroup":
                continue
            mount = os.path.basename(fields[4])
            if os.path.dirname(fields[4]) != self.root or mount.startswith(("name=", "systemd")):
                continue
            base = self._base(mount.split(",")[0])
            if base is not None:
                out[mount] = _join(base, f"lxc.payload.{name}")
        return dict(sorted(out.items()))

    def frozen(self, dirs: Mapping[str, str]) -> bool:
        freezer = dirs.get("freezer")
        state = read_file(os.path.join(freezer, "freezer.state")) if freezer else None
        return (state or "").strip() in ("FROZEN", "FREEZING")

    def freeze(
        self, dirs: Mapping[str, str], frozen: bool, timeout: float = _FREEZE_TIMEOUT
    ) -> None:
        """Freeze or thaw, and wait until done (``FileNotFoundError``: the
        cgroup is gone; ``TimeoutError``; ``LookupError``: no freezer)."""
        freezer = dirs.get("freezer")
        if not freezer:
            raise LookupError("no freezer cgroup for the container")
        path = os.path.join(freezer, "freezer.state")
        value = "FROZEN" if frozen else "THAWED"
        _write(path, value)
        _await(lambda: (read_file(path) or "").strip() == value, path, timeout)

    def usage(self, dirs: Mapping[str, str]) -> Usage:
        def num(ctrl: str, name: str) -> int | None:
            base = dirs.get(ctrl)
            return _int(os.path.join(base, name)) if base else None

        limit = num("memory", "memory.limit_in_bytes")
        return Usage(
            cpu_seconds=(num("cpuacct", "cpuacct.usage") or 0) / 1e9,
            memory_bytes=num("memory", "memory.usage_in_bytes") or 0,
            memory_limit=None if limit is None or limit >= _UNLIMITED else limit,
            pids=num("pids", "pids.current"),
        )

    def procs(self, dirs: Mapping[str, str]) -> list[int]:
        """Every process in the container's cgroups (and below)."""
        for ctrl in ("pids", "freezer", "memory"):
            base = dirs.get(ctrl)
            if base and os.path.isdir(base):
                return _procs_below(base)
        return []

    def oom_watch(self, dirs: Mapping[str, str]) -> OomWatch | None:
        memory = dirs.get("memory")
        if not memory:
            return None
        try:
            return _EventfdOomWatch(memory)
        except OSError:
            return None


class _EventfdOomWatch(OomWatch):
    """cgroup v1: an eventfd registered on ``memory.oom_control``."""

    def __init__(self, memdir: str) -> None:
        self.memdir = memdir
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            self._ofd = os.open(os.path.join(memdir, "memory.oom_control"), os.O_RDONLY)
            try:
                _write(os.path.join(memdir, "cgroup.event_control"), f"{self._efd} {self._ofd}")
            except OSError:
                os.close(self._ofd)
                raise
        except OSError:
            os.close(self._efd)
            raise

    def fileno(self) -> int:
        return self._efd

    def check(self) -> bool | None:
        _quiet(os.read, self._efd, 8)
        # The eventfd also fires when the cgroup goes away: only a
        # notification while the cgroup still exists is an OOM.
        if os.path.exists(os.path.join(self.memdir, "memory.oom_control")):
            return True
        return None

    def close(self) -> None:
        for fd in (self._efd, self._ofd):
            _quiet(os.close, fd)
