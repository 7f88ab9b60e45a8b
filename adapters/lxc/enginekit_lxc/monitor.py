"""The per-container monitor: what conmon does for Podman, for LXC.

Forked, detached (new session, double fork, no descriptor of its parent's
kept), by the fork server of :mod:`enginekit_lxc.launcher`, or run by hand as
``python -m enginekit_lxc.monitor CONTAINER_DIR READY_FD``, it takes
the container's ``monitor.lock`` for its whole life, mounts the container's
overlay rootfs, opens the published ports on the host, and runs the container
in the foreground with ``lxc-execute`` (LXC's init as PID 1). It then:

* copies stdout and stderr, apart, into the framed log with timestamps;
* finds the container's init (the child of ``lxc-execute`` that is PID 1 of
  a new pid namespace) and the command (the init's child), writes
  ``status.json`` as running and tells the driver on ``READY_FD``;
* relays connections from ``127.0.0.1:host_port`` to the container;
* notices an OOM kill (:meth:`enginekit_lxc.cgroups.CgroupV1.oom_watch`: an
  eventfd on ``memory.oom_control``; on cgroup v2, ``memory.events``);
* on exit writes the exit code (``128 + n`` when the command or the init was
  killed by signal ``n``, from enginekit or from anywhere: LXC's log says
  which signal ended the init), ``oom_killed`` and the finish time
  atomically, unmounts, and ends.

Only the standard library and the adapter's stdlib-only modules are imported
here, to start fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from . import cgroups as _cgroups
from . import logfile
from .cgroupfs import read_stripped
from .helper import NoiseFilter
from .store import MONITOR_LOCK, atomic_write

__all__ = ["main", "mount_overlay", "unmount"]

_libc = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2


def mount_overlay(lower: str, upper: str, work: str, target: str) -> None:
    """Mount ``upper`` over ``lower`` at ``target`` (``OSError`` on failure)."""
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", target.encode(), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def unmount(target: str) -> None:
    while os.path.ismount(target):
        if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (errno.EINVAL, errno.ENOENT):
                return
            raise OSError(err, os.strerror(err), target)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _proc_starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return int(data.rsplit(b")", 1)[1].split()[19])


class _Relay:
    """Port forwarding: 127.0.0.1:host_port -> container_ip:container_port."""

    def __init__(self, listeners: list[tuple[socket.socket, int]], target_ip: str | None) -> None:
        self.listeners = listeners
        self.target_ip = target_ip

    def accept(self, sock: socket.socket, container_port: int) -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=self._serve, args=(conn, container_port), daemon=True).start()

    def _serve(self, conn: socket.socket, port: int) -> None:
        try:
            if not self.target_ip:
                conn.close()
                return
            upstream = socket.create_connection((self.target_ip, port), timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
        t.start()
        pipe(conn, upstream)
        t.join()
        conn.close()
        upstream.close()


def _report(ready_fd: int | None, message: dict[str, Any]) -> None:
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(ready_fd, json.dumps(message).encode() + b"\n")
    with contextlib.suppress(OSError):
        os.close(ready_fd)


def _load(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data: dict[str, Any] = json.loads(fh.read())
    return data


def run(cdir: str, ready_fd: int | None) -> int:
    """The monitor's life for the container in ``cdir`` (already detached)."""
    plan: dict[str, Any] = _load(os.path.join(cdir, "run.json"))
    status_path = os.path.join(cdir, "status.json")
    lock_fd = os.open(os.path.join(cdir, MONITOR_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # A previous monitor is finishing (unmounting): wait for it, briefly.
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    _report(ready_fd, {"error": "another monitor holds this container"})
                    return 1
                time.sleep(0.005)

    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = _load(status_path)

    def fail(message: str, **detail: Any) -> int:
        _release(plan.get("lease"), cdir)
        keep = dict(previous)
        keep["error"] = message
        atomic_write(status_path, json.dumps(keep).encode())
        _report(ready_fd, {"error": message, **detail})
        return 1

    rootfs = plan["rootfs"]
    try:
        if not os.path.ismount(rootfs):
            os.makedirs(rootfs, exist_ok=True)
            mount_overlay(plan["lower"], plan["upper"], plan["work"], rootfs)
    except OSError as exc:
        return fail(f"cannot mount the container's rootfs: {exc.strerror}")

    listeners: list[tuple[socket.socket, int]] = []
    ports_out: list[dict[str, Any]] = []
    publishing: dict[str, Any] = {}
    try:
        for p in plan.get("ports", []):
            publishing = p
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((p["host_ip"], p["host_port"] or 0))
            sock.listen(64)
            sock.setblocking(False)
            listeners.append((sock, int(p["container_port"])))
            ports_out.append({**p, "host_port": sock.getsockname()[1]})
    except OSError as exc:
        for sock, _ in listeners:
            sock.close()
        unmount(rootfs)
        if exc.errno == errno.EADDRINUSE:
            # The driver words it as every engine does: the binding it names.
            return fail(f"cannot publish port: {exc.strerror}", port_in_use=publishing)
        return fail(f"cannot publish port: {exc.strerror}")

    log_fd = logfile.open_for_append(os.path.join(cdir, "log"))
    lxc_log = os.path.join(cdir, "lxc.log")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lxc_log)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    noise = NoiseFilter(plan["lxc_name"])
    argv = plan["argv"] + plan["inner"]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=plan.get("inherit", {}),
            close_fds=True,
        )
    except OSError as exc:
        for fd in (out_r, err_r):
            os.close(fd)
        for sock, _ in listeners:
            sock.close()
        unmount(rootfs)
        return fail(f"cannot run lxc-execute: {exc.strerror}")
    finally:
        os.close(out_w)
        os.close(err_w)
    pidfd = os.pidfd_open(proc.pid)
    os.write(log_fd, logfile.record(logfile.START))

    relay = _Relay(listeners, plan.get("ip"))
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, ("out", logfile.STDOUT))
    sel.register(err_r, selectors.EVENT_READ, ("out", logfile.STDERR))
    sel.register(pidfd, selectors.EVENT_READ, ("exit", None))
    for sock, cport in listeners:
        sel.register(sock, selectors.EVENT_READ, ("accept", cport))

    oom = False
    cg = _cgroups.layout(**plan.get("cgroup", {"version": 1}))
    watch: _cgroups.OomWatch | None = None
    init_pid: int | None = None
    main_pid: int | None = None
    exited = False
    open_pipes = 2
    status: dict[str, Any] = {}
    discover_until = time.monotonic() + 60

    def became_running() -> None:
        nonlocal watch
        # init_pid is None when the command came and went between two looks.
        cgroups = cg.dirs(init_pid) if init_pid is not None else {}
        if plan.get("memory_limited"):
            watch = cg.oom_watch(cgroups)
            if watch is not None:
                sel.register(watch.fileno(), selectors.EVENT_READ, ("oom", None))
        status.update(
            state="running",
            pid=init_pid,
            pid_start=_proc_starttime(init_pid) if init_pid is not None else None,
            main_pid=main_pid,
            main_start=_proc_starttime(main_pid) if main_pid else None,
            monitor_pid=os.getpid(),
            started_at=_now(),
            finished_at=previous.get("finished_at"),
            exit_code=None,
            oom_killed=False,
            ports=ports_out,
            ip=plan.get("ip"),
            lease=plan.get("lease"),
            cgroups=cgroups,
            run=int(previous.get("run", 0)) + 1,
        )
        atomic_write(status_path, json.dumps(status).encode())

    while open_pipes or not exited:
        timeout: float | None = None
        if exited:
            timeout = 2.0
        elif main_pid is None and time.monotonic() < discover_until:
            timeout = 0.0005
        events = sel.select(timeout=timeout)
        if not events and exited:
            break  # exited, yet the pipes stay open (a stray process): stop waiting
        if main_pid is None and not exited:
            if init_pid is None:
                init_pid = _container_init(proc.pid)
            if init_pid is not None:
                main_pid = _first_child(init_pid)
                if main_pid is not None:
                    became_running()
                    _report(ready_fd, {"ok": True, "pid": init_pid})
                    ready_fd = None
        for key, _ in events:
            what, data = key.data
            if what == "out":
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
                else:
                    if data == logfile.STDERR:
                        chunk = noise.feed(chunk)
                    if chunk:
                        os.write(log_fd, logfile.record(data, chunk))
            elif what == "oom" and watch is not None:
                seen = watch.check()
                if seen:
                    oom = True
                if seen is None:  # the cgroup is gone: nothing more to hear
                    sel.unregister(key.fileobj)
            elif what == "accept":
                relay.accept(key.fileobj, data)  # type: ignore[arg-type]
            elif what == "exit":
                exited = True
                sel.unregister(pidfd)
                for sock, _ in listeners:
                    with contextlib.suppress(KeyError, ValueError):
                        sel.unregister(sock)

    rc = proc.wait()
    code = 128 - rc if rc < 0 else rc
    for sock, _ in listeners:
        sock.close()
    for fd in (pidfd, out_r, err_r):
        with contextlib.suppress(OSError):
            os.close(fd)
    if watch is not None:
        watch.close()
    _release(plan.get("lease"), cdir)
    with contextlib.suppress(OSError):
        unmount(rootfs)
    started, errors = _lxc_log(lxc_log)
    if init_pid is None and not started:
        # LXC never started the command: the container keeps its old state.
        os.write(log_fd, logfile.record(logfile.END))
        os.close(log_fd)
        return fail(f"lxc-execute could not start the container (exit {code}): {errors}")
    if not status:
        # The command ran and ended before it was seen: still a run.
        became_running()
        _report(ready_fd, {"ok": True, "pid": init_pid})
    os.write(log_fd, logfile.record(logfile.END))
    os.close(log_fd)
    killed_by = _init_signal(lxc_log, init_pid)
    if killed_by is not None:
        # The init itself was killed by a signal (kill -9 from anywhere, the OOM
        # killer): lxc-execute says 1, LXC's log says which signal.
        code = 128 + killed_by
    elif code == 1 and read_stripped(os.path.join(cdir, "signal")) == "9":
        code = 137  # LXC's init itself was SIGKILLed (lxc-stop -k): lxc-execute says 1
    status.update(
        state="exited",
        exit_code=137 if oom and code in (1, 137) else code,
        oom_killed=oom,
        finished_at=_now(),
        monitor_pid=None,
    )
    atomic_write(status_path, json.dumps(status).encode())
    os.close(lock_fd)
    return 0


def _release(lease: str | None, cdir: str) -> None:
    """Give the bridge address back (see ``enginekit_lxc.netalloc``)."""
    if lease and read_stripped(lease) == cdir:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lease)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return out


def _container_init(lxc_pid: int) -> int | None:
    """The child of ``lxc-execute`` that is PID 1 of a new pid namespace."""
    for child in _children(lxc_pid):
        try:
            with open(f"/proc/{child}/status") as fh:
                for line in fh:
                    if line.startswith("NSpid:"):
                        ids = line.split()[1:]
                        if len(ids) >= 2 and ids[-1] == "1":
                            return child
                        break
        except OSError:
            continue
    return None


def _first_child(pid: int) -> int | None:
    kids = _children(pid)
    return kids[0] if kids else None


def _lxc_log(path: str) -> tuple[bool, str]:
    """Whether LXC's log shows the command started, and its last errors."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False, ""
    errs = [
        ln.split(b" - ", 2)[-1].decode("utf-8", "replace")
        for ln in data.splitlines()
        if b" ERROR " in ln
    ]
    return b" started with pid " in data, "; ".join(errs[-3:])


_INIT_SIGNAL = re.compile(rb"Child <(\d+)> ended on signal [A-Za-z0-9+-]*\((\d+)\)")


def _init_signal(path: str, init_pid: int | None) -> int | None:
    """The signal that ended the container's init, from LXC's log, or None.

    ``lxc-execute`` exits 1 when its init is killed by a signal (it cannot die
    of the same signal as the init, as it tries to), but at log level INFO
    LXC writes ``Child <PID> ended on signal SIGKILL(9)`` for the init (LXC 5.0
    to 7.0). With ``init_pid`` known, only that pid's line counts.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    found: int | None = None
    for m in _INIT_SIGNAL.finditer(data):
        if init_pid is None or int(m.group(1)) == init_pid:
            found = int(m.group(2))
    return found if found else None


def _detached_run(cdir: str, ready_fd: int) -> None:
    """In a fresh child: new session, fork again, run the monitor; never returns."""
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    # Hold no descriptor of the process that forked us (its sockets, pipes).
    os.closerange(3, ready_fd)
    os.closerange(ready_fd + 1, 65536)
    code = 1
    try:
        code = run(cdir, ready_fd)
    except BaseException as exc:  # report, never leave the driver waiting
        _report(ready_fd, {"error": f"monitor failed: {exc!r}"})
    finally:
        os._exit(code)


def serve(sock_fd: int) -> int:
    """A fork server for monitors (started once per driver, single-threaded).

    Each request on the unix socket ``sock_fd`` is a container directory with
    the write end of the driver's ready pipe (``SCM_RIGHTS``); the server forks
    a detached monitor for it. The server ends when the driver closes the
    socket; the monitors it forked live on.
    """
    sock = socket.socket(fileno=sock_fd)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 1)
        except InterruptedError:
            continue
        if not msg:
            return 0
        if not fds:
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _detached_run(msg.decode(), fds[0])
        os.close(fds[0])
        os.waitpid(pid, 0)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serve":
        return serve(int(argv[1]))
    cdir = argv[0]
    ready_fd = int(argv[1]) if len(argv) > 1 and argv[1] != "-" else None
    if os.fork() != 0:
        os._exit(0)  # the driver reaps this one; the monitor is init's child
    if ready_fd is not None:
        os.set_inheritable(ready_fd, False)
    try:
        return run(cdir, ready_fd)
    except BaseException as exc:  # report, never leave the driver waiting
        _report(ready_fd, {"error": f"monitor failed: {exc!r}"})
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
