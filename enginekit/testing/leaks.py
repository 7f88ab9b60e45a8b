"""What a removed container may leave on the machine its engine runs on.

An engine runs helpers beside each container: Docker a ``containerd-shim``,
Podman a ``conmon`` per container and per exec session, LXC its monitor
(``[lxc monitor]``, ``lxc-start``/``lxc-execute``, the adapter's own monitor
process) and ``lxc-attach`` per exec. It mounts the container's file system
and keeps directories for it. Once the container is removed, none of that
may stay. :func:`leftovers` looks, for containers given by id:

- processes whose command line names the container (its id, or its first 16
  characters, which LXC's container names carry) or that hold a file of it
  open (the LXC adapter's monitor), this process and the engine's daemon
  (the holder of its listening socket) excepted;
- mounts (``/proc/self/mountinfo``) naming the container;
- directories named after the container in an LXC adapter's ``lxcpath`` and
  its storage root's ``containers``.

Only where the engine runs on this machine: its address is a local unix
socket whose listening process is visible here (``/proc/net/unix`` and
``/proc/*/fd``), or a local directory (a daemonless engine such as LXC). For
any other engine (a TCP or SSH address, a socket forwarded from elsewhere)
nothing is checked rather than guessed: :func:`is_local` says which.

One helper is allowed to outlive its container for a while, because the
engine is built so: Podman keeps each exec session's ``conmon`` (a pair of
processes: the monitor and its forked exit command) for the session's
``--exit-delay`` (``exit_command_delay`` in ``containers.conf``, 300 s by
default) after the exec's process ended, whatever the client and even once
the container is gone; then it runs ``podman container cleanup --exec`` and
ends. Such a pair is a leftover only once that delay (plus
:data:`GRACE` seconds) is over; until then it is reported apart, as
:attr:`Leftover.ends_at`.

:func:`track` records the id of every container created through an
:class:`~enginekit.Engine` (the suite's engines are tracked from their
connection on), so that containers a test made and removed are checked too.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from enginekit import Engine

__all__ = [
    "GRACE",
    "Leftover",
    "describe",
    "is_local",
    "leftovers",
    "problems",
    "scan",
    "track",
]

#: Seconds past a documented delay before a helper still there is a leftover.
GRACE = 30.0
#: How long :func:`problems` waits for helpers that are ending (a shim exiting).
SETTLE = 15.0
_PREFIX = 16  # characters of an id that name a container (LXC's container names)
_EXIT_DELAY = re.compile(r"--exit-delay(?:=|\x00)(\d+)")
_PROC = "/proc"


@attrs.frozen
class Leftover:
    """One thing a removed container left: a process, a mount or a directory."""

    kind: str  # "process", "mount", "directory"
    container: str  # the container's id
    detail: str
    #: For a helper the engine keeps for a documented delay: when that delay is
    #: over (``time.time()`` seconds); None for everything else.
    ends_at: float | None = None

    def overdue(self, now: float | None = None) -> bool:
        """A leftover now: anything but a helper still within its delay (and :data:`GRACE`)."""
        if self.ends_at is None:
            return True
        return (time.time() if now is None else now) > self.ends_at + GRACE


def describe(item: Leftover) -> str:
    what = f"{item.kind} of removed container {item.container[:12]}: {item.detail}"
    if item.ends_at is not None:
        left = item.ends_at - time.time()
        what += f" (the engine keeps it {left:.0f} s more)" if left > 0 else " (past its delay)"
    return what


# -- where the engine runs ----------------------------------------------------------
def _local_path(address: str) -> str | None:
    if address.startswith("unix://"):
        return address[len("unix://") :] or None
    if address.startswith("/"):
        return address
    return None


def _listening_inodes(path: str) -> set[str]:
    """Inodes of the listening unix sockets bound at ``path`` (this net namespace)."""
    want = os.path.realpath(path)
    found: set[str] = set()
    try:
        with open(f"{_PROC}/net/unix", encoding="utf-8", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                # Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 = listening
                if len(parts) < 8 or not int(parts[3], 16) & 0x10000:
                    continue
                bound = parts[7]
                if bound == path or os.path.realpath(bound) == want:
                    found.add(parts[6])
    except (OSError, ValueError):
        return set()
    return found


def _pids() -> list[int]:
    try:
        return [int(p) for p in os.listdir(_PROC) if p.isdigit()]
    except OSError:
        return []


def _fd_targets(pid: int) -> list[str]:
    base = f"{_PROC}/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    out = []
    for name in names:
        try:
            out.append(os.readlink(f"{base}/{name}"))
        except OSError:
            continue
    return out


_LOCAL: set[str] = set()  # addresses found local once


def is_local(engine: Engine) -> bool:
    """Whether ``engine`` runs on this machine with its processes visible here."""
    address = str(engine.address)
    if address in _LOCAL:
        return True
    if _is_local(address):
        _LOCAL.add(address)
        return True
    return False


def _is_local(address: str) -> bool:
    path = _local_path(address)
    if path is None:
        return False
    if os.path.isdir(path):
        return True  # a daemonless engine's local directory (LXC)
    inodes = _listening_inodes(path)
    if not inodes:
        return False
    wanted = {f"socket:[{i}]" for i in inodes}
    return any(wanted.intersection(_fd_targets(pid)) for pid in _pids())


# -- tracking ---------------------------------------------------------------------
def track(engine: Engine) -> set[str]:
    """Record the id of every container created through ``engine`` from now on.

    Returns the set the ids are added to (read it with ``set(...)``: other
    threads may add to it). The engine's driver is wrapped in place.
    """
    driver: Any = engine.driver
    existing = getattr(driver, "_enginekit_created", None)
    if isinstance(existing, set):
        return existing
    ids: set[str] = set()
    lock = threading.Lock()
    original: Callable[..., str] | None = getattr(driver, "container_create", None)
    if original is None:
        return ids  # a driver that cannot create containers leaves none

    def container_create(*args: Any, **kwargs: Any) -> str:
        cid = original(*args, **kwargs)
        with lock:
            ids.add(str(cid))
        return cid

    try:
        setattr(driver, "container_create", container_create)  # noqa: B010 (an instance attribute)
        setattr(driver, "_enginekit_created", ids)  # noqa: B010
    except (AttributeError, TypeError):
        pass  # a driver that takes no attributes: its containers go untracked
    return ids


# -- looking ----------------------------------------------------------------------
def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _boot_time() -> float:
    for line in _read(f"{_PROC}/stat").splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    return 0.0


def _stat(pid: int) -> tuple[int, float] | None:
    """``(parent pid, start time in seconds since boot)``."""
    raw = _read(f"{_PROC}/{pid}/stat")
    end = raw.rfind(b")")
    if end < 0:
        return None
    fields = raw[end + 2 :].split()
    try:
        return int(fields[1]), int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, OSError):
        return None


def _match(text: str, keys: dict[str, str]) -> str | None:
    for key, cid in keys.items():
        if key in text:
            return cid
    return None


def _processes(keys: dict[str, str], daemon: set[str]) -> list[Leftover]:
    """``daemon``: the engine's listening sockets (``socket:[inode]``); the
    process holding one is the engine itself, whose open files are its own
    business (a daemon keeping a deleted file open is not a helper left)."""
    me = os.getpid()
    cmdlines: dict[int, bytes] = {}
    hits: dict[int, tuple[str, str]] = {}
    for pid in _pids():
        if pid == me:
            continue
        raw = _read(f"{_PROC}/{pid}/cmdline")
        cmdlines[pid] = raw
        text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        cid = _match(text, keys)
        if cid is not None:
            hits[pid] = (cid, text)
            continue
        targets = _fd_targets(pid)
        if daemon.intersection(targets):
            continue
        for target in targets:
            cid = _match(target, keys)
            if cid is not None:
                comm = _read(f"{_PROC}/{pid}/comm").decode("utf-8", "replace").strip()
                hits[pid] = (cid, f"{comm or '?'} holding {target}")
                break
    boot = _boot_time()
    out = []
    for pid, (cid, text) in sorted(hits.items()):
        ends_at = _delay_end(pid, cmdlines, boot)
        short = text if len(text) <= 160 else text[:157] + "..."
        out.append(Leftover("process", cid, f"pid {pid}: {short}", ends_at))
    return out


def _delay_end(pid: int, cmdlines: dict[int, bytes], boot: float) -> float | None:
    """For a Podman exec ``conmon`` in its exit-command delay: when the delay
    ends. That phase is a conmon with a forked copy of itself (same command
    line) as child or parent; the copy was made as the exec ended."""
    raw = cmdlines.get(pid, b"")
    m = _EXIT_DELAY.search(raw.decode("utf-8", "replace"))
    if m is None or b"conmon" not in raw.split(b"\0", 1)[0]:
        return None
    me = _stat(pid)
    if me is None:
        return None
    parent, started = me
    if cmdlines.get(parent) == raw:
        fork_started = started  # this is the forked exit command
    else:
        children = [
            st[1]
            for child, line in cmdlines.items()
            if line == raw and child != pid and (st := _stat(child)) and st[0] == pid
        ]
        if not children:
            return None  # the exec has not ended (or its conmon is stuck)
        fork_started = min(children)
    return boot + fork_started + int(m.group(1))


def _mounts(keys: dict[str, str]) -> list[Leftover]:
    out = []
    for line in _read(f"{_PROC}/self/mountinfo").decode("utf-8", "replace").splitlines():
        cid = _match(line, keys)
        if cid is not None:
            fields = line.split()
            where = fields[4] if len(fields) > 4 else line
            out.append(Leftover("mount", cid, where))
    return out


def _directories(engine: Engine, keys: dict[str, str]) -> list[Leftover]:
    driver: Any = engine.driver
    roots = []
    lxcpath = getattr(driver, "lxcpath", None)
    if isinstance(lxcpath, str):
        roots.append(lxcpath)
    storage = getattr(driver, "storage_root", None)
    if isinstance(storage, str) and lxcpath is not None:
        roots.append(os.path.join(storage, "containers"))
    out = []
    for root in roots:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            cid = _match(name, keys)
            if cid is not None:
                out.append(Leftover("directory", cid, os.path.join(root, name)))
    return out


def scan(engine: Engine, ids: Iterable[str]) -> list[Leftover]:
    """Everything of the containers ``ids`` (removed ones) still on this
    machine, at once; empty when ``engine`` is not local (:func:`is_local`)."""
    keys = {cid[:_PREFIX]: cid for cid in ids if len(cid) >= _PREFIX}
    if not keys or not is_local(engine):
        return []
    path = _local_path(str(engine.address)) or ""
    daemon = {f"socket:[{i}]" for i in _listening_inodes(path)}
    return _processes(keys, daemon) + _mounts(keys) + _directories(engine, keys)


def leftovers(
    engine: Engine, ids: Collection[str], *, settle: float = SETTLE
) -> tuple[list[Leftover], list[Leftover]]:
    """``(overdue, waiting)``: what the removed containers ``ids`` left, after
    up to ``settle`` seconds for helpers that are ending to end; ``waiting``
    are helpers within their engine's documented delay (see the module)."""
    deadline = time.monotonic() + settle
    while True:
        found = scan(engine, ids)
        overdue = [f for f in found if f.overdue()]
        if not overdue or time.monotonic() >= deadline:
            return overdue, [f for f in found if not f.overdue()]
        time.sleep(0.2)


def problems(engine: Engine, ids: Collection[str], *, settle: float = SETTLE) -> list[str]:
    """:func:`leftovers` that are overdue, described; only containers that no
    longer exist are looked at."""
    from enginekit.errors import EngineError

    if not ids or not is_local(engine):
        return []
    try:
        present = {c.id for c in engine.containers.list(all=True)}
    except EngineError as exc:
        return [f"cannot list containers to look for their helpers: {exc}"]
    gone = [cid for cid in ids if cid not in present]
    overdue, _ = leftovers(engine, gone, settle=settle)
    return [f"left behind: {describe(item)}" for item in overdue]
