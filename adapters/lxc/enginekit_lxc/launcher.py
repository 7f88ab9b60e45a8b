"""Starting monitors quickly: a fork server per driver.

A monitor must not be the caller's child (it outlives it) and should start
fast. A fresh interpreter costs tens of milliseconds per start, so the driver
starts one small server process once (``python -I -S``, single-threaded, stdio
on /dev/null, in its own session) that imports the monitor and forks a
detached monitor per start (new session, double fork, every inherited
descriptor closed). The server ends when its driver closes or exits; the
monitors it made run on. A server that died is replaced on the next start.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["MonitorLauncher", "await_lxc_gone"]

#: How long a start waits for the previous run's ``lxc-execute`` to let go.
LXC_GONE_WITHIN = 10.0


def _command_socket_bound(lxcpath: str, name: str) -> bool:
    """Whether LXC's command socket of container ``name`` is still bound (an
    abstract unix socket, ``@<lxcpath>/<name>/command``, in this network
    namespace: the previous ``lxc-execute`` has not exited yet)."""
    want = f"@{os.path.join(lxcpath, name)}/command"
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
            return any(line.rstrip("\n").endswith(want) for line in fh)
    except OSError:
        return False


def await_lxc_gone(lxcpath: str, name: str, within: float = LXC_GONE_WITHIN) -> bool:
    """Wait until the previous ``lxc-execute`` of container ``name`` is gone.

    A container whose init has exited is EXITED, but its ``lxc-execute`` can
    still be tearing down for a moment (longer on a busy host, and when its
    monitor was killed and nobody waits for it): started again then, LXC
    fails with "Address already in use - Failed to create command socket".
    True once the socket is free; False if it is still bound after ``within``.
    """
    deadline = time.monotonic() + within
    while _command_socket_bound(lxcpath, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from enginekit_lxc.monitor import main; sys.exit(main(sys.argv[2:]))"
)


class MonitorLauncher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()

    def _server(self) -> socket.socket:
        if self._sock is not None and self._pid == os.getpid():
            assert self._proc is not None
            if self._proc.poll() is None:
                return self._sock
            self._sock.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _BOOT,
                    _PKG_PARENT,
                    "--serve",
                    str(theirs.fileno()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                cwd="/",
                env={"PATH": os.environ.get("PATH", os.defpath)},
            )
        finally:
            theirs.close()
        self._sock = ours
        self._pid = os.getpid()
        return ours

    def launch(self, cdir: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Start the monitor of ``cdir``; its first message (``ok`` or ``error``)."""
        msg, server = self._launch_once(cdir, timeout)
        if msg is None and server is not None and _ended(server):
            # Nobody held the ready pipe and the server that got the request
            # is gone: it died before it forked a monitor (nothing was
            # started). Once more, with a new server.
            msg, _ = self._launch_once(cdir, timeout)
        return msg or {"error": "the monitor ended without a word"}

    def _launch_once(
        self, cdir: str, timeout: float
    ) -> tuple[dict[str, Any] | None, subprocess.Popen[bytes] | None]:
        r, w = os.pipe()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._server(), [cdir.encode()], [w])
                except OSError:
                    self._close_locked()
                    socket.send_fds(self._server(), [cdir.encode()], [w])
                server = self._proc
        finally:
            os.close(w)
        data = b""
        try:
            deadline = time.monotonic() + timeout
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([r], [], [], left)
                if not ready:
                    break
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(r)
        if not data:
            return None, server
        try:
            msg: dict[str, Any] = json.loads(data.splitlines()[0])
        except ValueError:
            return {"error": "the monitor sent no readable answer"}, server
        return msg, server

    def close(self) -> None:
        """End the server (monitors it started run on). Idempotent."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _ended(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc`` has ended or ends very soon (its descriptors close a
    moment before it can be reaped)."""
    try:
        proc.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        return False
    return True
