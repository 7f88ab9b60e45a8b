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

Standard library only: the monitor imports it, and on LXC 7 with cgroup v1
(where LXC sets no cgroup v1 limit) LXC runs it as its ``start-host`` hook,
``python -I -S cgroups.py apply 1 ROOT FILE=VALUE... --``, which writes the
files into the cgroups of ``$LXC_PID`` before the container's init runs.
"""

from __future__ import annotations

import os
import select
import sys
import time

TYPE_CHECKING = False  # importing typing would cost the hook 25 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

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

CPU_PERIOD = 100_000
#: Docker's device allow-list (after denying all), in the syntax of both
#: cgroup v1's ``devices.allow`` and LXC's cgroup v2 (BPF) device rules.
DEVICE_RULES = (
    "c 1:3 rwm",  # null
    "c 1:5 rwm",  # zero
    "c 1:7 rwm",  # full
    "c 1:8 rwm",  # random
    "c 1:9 rwm",  # urandom
    "c 5:0 rwm",  # tty
    "c 5:1 rwm",  # console
    "c 5:2 rwm",  # ptmx
    "c 136:* rwm",  # pts
    "c *:* m",
    "b *:* m",
)
_FREEZE_TIMEOUT = 10.0
_UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded LONG_MAX


class _Value:
    """A small immutable record (compared and shown by its fields)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Limits(_Value):
    """A container's resource limits (None: none; ``pids`` 0 or less: no limit)."""

    __slots__ = ("cpus", "memory", "pids")
    memory: int | None
    cpus: float | None
    pids: int | None

    def __init__(
        self, memory: int | None = None, cpus: float | None = None, pids: int | None = None
    ) -> None:
        super().__init__(memory=memory, cpus=cpus, pids=pids)


class Usage(_Value):
    """What a container uses now (``memory_limit`` None: no limit)."""

    __slots__ = ("cpu_seconds", "memory_bytes", "memory_limit", "pids")
    cpu_seconds: float
    memory_bytes: int
    memory_limit: int | None
    pids: int | None

    def __init__(
        self, *, cpu_seconds: float, memory_bytes: int, memory_limit: int | None, pids: int | None
    ) -> None:
        super().__init__(
            cpu_seconds=cpu_seconds, memory_bytes=memory_bytes, memory_limit=memory_limit, pids=pids
        )


class Support(_Value):
    """What the host's cgroups can do for a container.

    ``missing`` maps each of ``memory``, ``cpu``, ``pids``, ``freeze``,
    ``stats`` that cannot work to the reason; ``swap`` says whether swap can
    be limited (the memory+swap files exist), ``devices`` whether the device
    allow-list can be set.
    """

    __slots__ = ("devices", "missing", "swap", "version")
    version: int
    missing: Mapping[str, str]
    swap: bool
    devices: bool

    def __init__(self, *, version: int, missing: Mapping[str, str], swap: bool, devices: bool):
        super().__init__(version=version, missing=dict(missing), swap=swap, devices=devices)


class OomWatch:
    """Tells the monitor of an OOM kill in a container's cgroup."""

    def fileno(self) -> int:
        raise NotImplementedError

    def check(self) -> bool | None:
        """After ``fileno()`` became readable: True for an OOM kill, False for
        none, None when the watch is over (the cgroup went away)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _quiet(fn: Callable[..., object], *args: object) -> None:
    """``fn(*args)``, an ``OSError`` ignored (contextlib costs the hook 2 ms)."""
    try:  # noqa: SIM105
        fn(*args)
    except OSError:
        pass


def _int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _keyed(text: str | None) -> dict[str, int]:
    """A flat keyed file (``cpu.stat``, ``memory.events``): key -> value."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _proc_lines(proc: str, pid: int | str) -> list[tuple[str, str, str]]:
    """``/proc/PID/cgroup`` as (hierarchy id, controllers, path) triples."""
    text = _read(os.path.join(proc, str(pid), "cgroup")) or ""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2].removesuffix(" (deleted)")))
    return out


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.strip("/") if path.strip("/") else base


def _cpu_quota(cpus: float) -> int:
    return max(1000, round(cpus * CPU_PERIOD))


def _mount_fstype(proc: str, mountpoint: str) -> str | None:
    """The file system type mounted (last) at ``mountpoint``, from mountinfo."""
    text = _read(os.path.join(proc, "self", "mountinfo"))
    if text is None:
        return None
    found = None
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        if point.rstrip("/") == mountpoint.rstrip("/"):
            found = tail.split()[0]
    return found


class _Layout:
    version: int

    def __init__(self, root: str = "/sys/fs/cgroup", proc: str = "/proc") -> None:
        self.root = root.rstrip("/") or "/"
        self.proc = proc
        self._support: Support | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root!r})"

    def support(self) -> Support:
        """What the host can do, read once (the files it reads do not change)."""
        if self._support is None:
            self._support = self._detect_support()
        return self._support

    def _detect_support(self) -> Support:
        raise NotImplementedError

    def apply(self, dirs: Mapping[str, str], files: Sequence[tuple[str, str]]) -> None:
        """Write ``files`` (name, value) into the cgroups ``dirs``, in order."""
        for name, value in files:
            base = self._dir_for(dirs, name)
            if base is None:
                raise FileNotFoundError(f"no cgroup of the container has {name}")
            _write(os.path.join(base, name), value)

    def _dir_for(self, dirs: Mapping[str, str], name: str) -> str | None:
        raise NotImplementedError


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
        return self.parse(_read(os.path.join(self.proc, str(pid), "cgroup")) or "")

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
        text = _read(os.path.join(self.proc, "self", "mountinfo")) or ""
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
        state = _read(os.path.join(freezer, "freezer.state")) if freezer else None
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
        _await(lambda: (_read(path) or "").strip() == value, path, timeout)

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
        for ctrl in ("pids", "freezer", "memory"):
            base = dirs.get(ctrl)
            text = _read(os.path.join(base, "cgroup.procs")) if base else None
            if text is not None:
                return [int(p) for p in text.split()]
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
        return self.parse(_read(os.path.join(self.proc, str(pid), "cgroup")) or "")

    def base(self) -> str:
        """Where LXC makes containers' cgroups: init's cgroup, without ``init.scope``."""
        path = self.parse(_read(os.path.join(self.proc, "1", "cgroup")) or "").get("unified")
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
        controllers = set((_read(os.path.join(base, "cgroup.controllers")) or "").split())
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
        return bool(base) and (_read(f"{base}/cgroup.freeze") or "").strip() == "1"

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
            text = _read(events)
            if text is None:
                raise FileNotFoundError(events)
            return _keyed(text).get("frozen") == want

        _await(done, events, timeout)

    def usage(self, dirs: Mapping[str, str]) -> Usage:
        base = dirs.get("unified")
        if not base:
            return Usage(cpu_seconds=0.0, memory_bytes=0, memory_limit=None, pids=None)
        usec = _keyed(_read(os.path.join(base, "cpu.stat"))).get("usage_usec", 0)
        return Usage(
            cpu_seconds=usec / 1e6,
            memory_bytes=_int(os.path.join(base, "memory.current")) or 0,
            memory_limit=_int(os.path.join(base, "memory.max")),  # "max": None
            pids=_int(os.path.join(base, "pids.current")),
        )

    def procs(self, dirs: Mapping[str, str]) -> list[int]:
        base = dirs.get("unified")
        text = _read(os.path.join(base, "cgroup.procs")) if base else None
        return [int(p) for p in text.split()] if text else []

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


def _await(done: Callable[[], bool], path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.0005
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not change within {timeout:g}s")
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _kernel() -> tuple[int, int]:
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


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
