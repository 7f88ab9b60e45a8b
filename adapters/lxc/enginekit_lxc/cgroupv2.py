"""cgroup v2: the unified layout (the root itself is cgroup2)."""

from __future__ import annotations

import os
import select

from .cgroupfs import (
    _FREEZE_TIMEOUT,
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
    _kernel,
    _keyed,
    _Layout,
    _procs_below,
    _quiet,
    _write,
    read_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CgroupV2"]


class CgroupV2(_Layout):
    """cgroup v2, the unified hierarchy mounted at the root."""

    version = 2

    def parse(self, text: str) -> dict[str, str]:
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and parts[0] == "0" and not parts[1]:
                return {"unified": _join(self.root, parts[2].removesuffix(" (deleted)"))}
        return {}

    def dirs(self, pid: int) -> dict[str, str]:
        return self.parse(read_file(os.path.join(self.proc, str(pid), "cgroup")) or "")

    def base(self) -> str:
        """Where LXC makes containers' cgroups: init's cgroup, without ``init.scope``."""
        path = self.parse(read_file(os.path.join(self.proc, "1", "cgroup")) or "").get("unified")
        if not path:
            return self.root
        return path.removesuffix("/init.scope") if path != self.root + "/init.scope" else self.root

    def _children(self, base: str) -> list[str]:
        try:
            return [e.path for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    def _has_file(self, base: str, name: str) -> bool:
        """Whether a cgroup below the root has ``name`` (the root lacks most files)."""
        places = ([base] if base != self.root else []) + self._children(base)
        return any(os.path.exists(os.path.join(p, name)) for p in places)

    def _detect_support(self) -> Support:
        base = self.base()
        controllers = set((read_file(os.path.join(base, "cgroup.controllers")) or "").split())
        writable = os.access(os.path.join(base, "cgroup.subtree_control"), os.W_OK)
        missing: dict[str, str] = {}
        for what in ("memory", "cpu", "pids"):
            if not writable:
                missing[what] = f"cgroup v2 {base} is not writable (no delegation)"
            elif what not in controllers:
                missing[what] = (
                    f"cgroup v2 without the {what} controller ({base}/cgroup.controllers)"
                )
        if not writable:
            missing["freeze"] = f"cgroup v2 {base} is not writable (no delegation)"
        elif not self._has_file(base, "cgroup.freeze") and _kernel() < (5, 2):
            missing["freeze"] = "the kernel has no cgroup v2 freezer (cgroup.freeze, Linux 5.2)"
        if "memory" in missing:
            missing["stats"] = missing["memory"]
        swap = "memory" not in missing and self._has_file(base, "memory.swap.max")
        return Support(version=2, missing=missing, swap=swap, devices=True)

    def limit_files(self, limits: Limits) -> list[tuple[str, str]]:
        sup = self.support()
        files = [("devices.deny", "a"), *(("devices.allow", rule) for rule in DEVICE_RULES)]
        if limits.memory is not None:
            files.append(("memory.max", str(limits.memory)))
            if sup.swap:
                files.append(("memory.swap.max", "0"))
        if limits.cpus is not None:
            files.append(("cpu.max", f"{_cpu_quota(limits.cpus)} {CPU_PERIOD}"))
        if limits.pids is not None:
            files.append(("pids.max", str(limits.pids) if limits.pids > 0 else "max"))
        return files

    def _dir_for(self, dirs: Mapping[str, str], name: str) -> str | None:
        return dirs.get("unified")

    def frozen(self, dirs: Mapping[str, str]) -> bool:
        base = dirs.get("unified")
        return bool(base) and (read_file(f"{base}/cgroup.freeze") or "").strip() == "1"

    def freeze(
        self, dirs: Mapping[str, str], frozen: bool, timeout: float = _FREEZE_TIMEOUT
    ) -> None:
        """Write ``cgroup.freeze``, then wait for ``cgroup.events`` to say so."""
        base = dirs.get("unified")
        if not base:
            raise LookupError("no cgroup v2 directory for the container")
        _write(os.path.join(base, "cgroup.freeze"), "1" if frozen else "0")
        events = os.path.join(base, "cgroup.events")
        want = 1 if frozen else 0

        def done() -> bool:
            text = read_file(events)
            if text is None:
                raise FileNotFoundError(events)
            return _keyed(text).get("frozen") == want

        _await(done, events, timeout)

    def usage(self, dirs: Mapping[str, str]) -> Usage:
        base = dirs.get("unified")
        if not base:
            return Usage(cpu_seconds=0.0, memory_bytes=0, memory_limit=None, pids=None)
        usec = _keyed(read_file(os.path.join(base, "cpu.stat"))).get("usage_usec", 0)
        return Usage(
            cpu_seconds=usec / 1e6,
            memory_bytes=_int(os.path.join(base, "memory.current")) or 0,
            memory_limit=_int(os.path.join(base, "memory.max")),  # "max": None
            pids=_int(os.path.join(base, "pids.current")),
        )

    def procs(self, dirs: Mapping[str, str]) -> list[int]:
        """Every process in the container's cgroup and below it (``lxc-attach``
        puts an exec'd process in a ``.lxc`` leaf on cgroup v2)."""
        base = dirs.get("unified")
        return _procs_below(base) if base else []

    def oom_watch(self, dirs: Mapping[str, str]) -> OomWatch | None:
        base = dirs.get("unified")
        if not base:
            return None
        try:
            return _KeyedWatch(os.path.join(base, "memory.events"))
        except OSError:
            return None


class _KeyedWatch(OomWatch):
    """cgroup v2: a keyed file (``memory.events``) polled for the kernel's
    change notification (``EPOLLPRI``, re-armed by reading the file); it fires
    when ``key`` (an OOM kill raises ``oom_kill``) rises above its first value."""

    def __init__(self, path: str, key: str = "oom_kill") -> None:
        self.key = key
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._ep = select.epoll()
            try:
                self._ep.register(self._fd, select.EPOLLPRI | select.EPOLLERR)
            except OSError:
                self._ep.close()
                raise
        except OSError:
            os.close(self._fd)
            raise
        self._seen = self.value() or 0

    def value(self) -> int | None:
        try:
            text = os.pread(self._fd, 4096, 0).decode()
        except OSError:
            return None  # the cgroup is gone (ENODEV)
        return _keyed(text).get(self.key, 0)

    def fileno(self) -> int:
        return self._ep.fileno()

    def check(self) -> bool | None:
        value = self.value()  # reading re-arms the notification
        if value is None:
            return None
        return value > self._seen

    def close(self) -> None:
        self._ep.close()
        _quiet(os.close, self._fd)
