"""What both cgroup layouts share: records, file access, the layout base class.

Standard library only, and no ``typing`` at run time: the monitor imports
it, and LXC runs :func:`enginekit_lxc.cgroups.main` as a hook, where every
millisecond of start-up delays the container's start.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # importing typing would cost the hook 25 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

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


def read_file(path: str) -> str | None:
    """A small file's text (None if unreadable)."""
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


def read_stripped(path: str) -> str | None:
    """A small file's text, stripped (None if unreadable)."""
    text = read_file(path)
    return None if text is None else text.strip()


def _quiet(fn: Callable[..., object], *args: object) -> None:
    """``fn(*args)``, an ``OSError`` ignored (contextlib costs the hook 2 ms)."""
    try:  # noqa: SIM105
        fn(*args)
    except OSError:
        pass


def _int(path: str) -> int | None:
    text = read_file(path)
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _procs_below(base: str) -> list[int]:
    out: list[int] = []
    for here, _, _ in os.walk(base):
        out += [int(p) for p in (read_file(os.path.join(here, "cgroup.procs")) or "").split()]
    return out


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
    text = read_file(os.path.join(proc, str(pid), "cgroup")) or ""
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
    text = read_file(os.path.join(proc, "self", "mountinfo"))
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
