"""The agent of ``lxc+ssh://`` brought to the remote host and started there.

Nothing of enginekit is installed on the remote host by hand: as Ansible
does, the adapter brings what it runs.

- :func:`bundle` builds a zip application in memory from the installed
  source of ``enginekit``, ``enginekit_lxc`` and ``attrs`` (pure Python; the
  same bytes for the same source: fixed times, sorted names), once per
  process, named by the sha256 of its bytes.
- :func:`start_agent` runs, as one ssh session over the engine's tunnel, a
  short bootstrap (``python3 -c ...``) that refuses a Python older than 3.11
  with a clear message, keeps the bundle in ``~/.cache/enginekit/`` (mode
  0700; written to a temporary name, checked against its sha256, then
  renamed; not sent again when it is there), then runs ``python3
  agent-SHA.pyz`` in its place (:mod:`enginekit_lxc.agent`) with the session's
  stdin and stdout. The agent serves the driver on a unix socket in a private
  directory and says where; it ends, removing the directory, when the session
  closes (stdin at end of file).
- :class:`AgentDialer` is the :class:`~enginekit.transport.Dialer` of the
  proxy driver's transport: each HTTP connection is a forwarded channel to
  that socket over the tunnel's master (no handshake, no Python start-up per
  call); an agent found dead is started again on the next connection.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import io
import json
import os
import select
import socket
import threading
import time
import zipfile
from collections.abc import Mapping
from typing import Any

from enginekit.toolkit.errors import EngineError, EngineUnavailable
from enginekit.toolkit.ssh import SshTunnel

__all__ = ["PACKAGES", "AgentDialer", "AgentProcess", "bundle", "start_agent"]

#: The packages the bundle holds (``attr`` is the implementation of ``attrs``).
PACKAGES = ("enginekit", "enginekit_lxc", "attr", "attrs")
#: Sub-packages the agent never imports.
_LEFT_OUT = {("enginekit", "testing"), ("enginekit", "cli")}
_EPOCH = (1980, 1, 1, 0, 0, 0)
HINT = (
    "the remote host needs python3 (3.11 or newer), LXC, umoci and skopeo, "
    "and ssh to it must log in without a prompt"
)

_MAIN = b"""import sys
if sys.version_info < (3, 11):
    sys.stdout.write('{"error": "the LXC agent needs Python 3.11 or newer"}\\n')
    sys.exit(3)
from enginekit_lxc.agent import main
sys.exit(main(sys.argv[1:]))
"""

# Run by the remote python3 whatever its version: no syntax newer than 3.5.
_BOOTSTRAP = r"""
import hashlib, json, os, sys
def say(obj):
    os.write(1, (json.dumps(obj) + "\n").encode())
sha = sys.argv[1]
if sys.version_info < (3, 11):
    say({"error": "python3 there is %d.%d.%d; the LXC agent needs Python 3.11 or newer"
         % tuple(sys.version_info[:3])})
    sys.exit(3)
base = os.path.join(os.path.expanduser("~"), ".cache", "enginekit")
os.makedirs(base, mode=0o700, exist_ok=True)
os.chmod(base, 0o700)
path = os.path.join(base, "agent-" + sha + ".pyz")
need = not os.path.isfile(path)
say({"need": need})
if need:
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            sys.exit(4)
        line += byte
    left = int(line)
    digest = hashlib.sha256()
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while left:
                data = os.read(0, min(left, 1 << 20))
                if not data:
                    sys.exit(4)
                out.write(data)
                digest.update(data)
                left -= len(data)
        if digest.hexdigest() != sha:
            say({"error": "the agent bundle arrived damaged"})
            sys.exit(5)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
os.execv(sys.executable, [sys.executable, path, "serve"])
"""

_lock = threading.Lock()
_bundle: tuple[bytes, str] | None = None


def _package_files(name: str) -> list[tuple[str, str]]:
    """``(name in the zip, file)`` for every ``.py`` file of the installed package."""
    module = importlib.import_module(name)
    root = os.path.dirname(os.path.abspath(module.__file__ or ""))
    out = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        parts = () if rel == "." else tuple(rel.split(os.sep))
        dirs[:] = sorted(
            d for d in dirs if d != "__pycache__" and (name, *parts, d)[:2] not in _LEFT_OUT
        )
        for file in sorted(files):
            if file.endswith(".py"):
                out.append(("/".join((name, *parts, file)), os.path.join(folder, file)))
    return out


def bundle() -> tuple[bytes, str]:
    """The agent's zip application and the sha256 (hex) of its bytes; built once per process."""
    global _bundle
    with _lock:
        if _bundle is None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                entries = [("__main__.py", _MAIN)]
                for package in PACKAGES:
                    for arcname, path in _package_files(package):
                        with open(path, "rb") as fh:
                            entries.append((arcname, fh.read()))
                for arcname, data in sorted(entries):
                    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data)
            data = buf.getvalue()
            _bundle = (data, hashlib.sha256(data).hexdigest())
        return _bundle


def bootstrap_command(sha: str) -> list[str]:
    """The remote command (words the remote shell reads) that starts the agent."""
    code = base64.b64encode(_BOOTSTRAP.encode()).decode("ascii")
    return ["python3", "-c", f"'import base64;exec(base64.b64decode(\"{code}\").decode())'", sha]


class AgentProcess:
    """A running agent: its ssh session (a socket: its stdin and stdout) and its socket path."""

    def __init__(self, session: socket.socket, path: str) -> None:
        self.session = session
        self.path = path

    def alive(self) -> bool:
        """Whether the agent still runs (it writes nothing more: readable means ended)."""
        try:
            ready, _, _ = select.select([self.session], [], [], 0)
            if not ready:
                return True
            return bool(self.session.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.session.close()


class _Lines:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def line(self) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            data = self._sock.recv(4096)
            if not data:
                return None
            self._buf += data
            if len(self._buf) > 65536:
                raise EngineError("lxc agent: an unreadable start-up answer")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            raise EngineError("lxc agent: an unreadable start-up answer") from None
        if not isinstance(obj, dict):
            raise EngineError("lxc agent: an unreadable start-up answer")
        return obj


def _said(tunnel: SshTunnel) -> str:
    """ssh's (or the remote shell's) words about a session that ended, given a moment."""
    deadline = time.monotonic() + 2.0
    while True:
        text = tunnel.last_error()
        if text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def start_agent(
    tunnel: SshTunnel, settings: Mapping[str, Any], *, address: str, timeout: float
) -> AgentProcess:
    """Start the agent on the tunnel's host (see the module); ``EngineUnavailable``
    naming ``address`` when it cannot be."""
    data, sha = bundle()
    host = tunnel.address.host

    def unavailable(why: str) -> EngineUnavailable:
        return EngineUnavailable(
            f"cannot start the LXC agent on {host}: {why}", address=address, hint=HINT
        )

    sock = tunnel.open_stream(bootstrap_command(sha))
    try:
        sock.settimeout(timeout)
        lines = _Lines(sock)
        try:
            first = lines.line()
            if first is not None and "error" not in first:
                if first.get("need"):
                    sock.sendall(b"%d\n" % len(data))
                    sock.sendall(data)
                sock.sendall(json.dumps(dict(settings)).encode() + b"\n")
                ready = lines.line()
            else:
                ready = first
        except TimeoutError:
            raise unavailable(f"it did not answer within {timeout:g}s") from None
        except OSError as exc:
            said = _said(tunnel)
            raise unavailable(said or f"the session broke off ({exc})") from None
        if ready is None:
            said = _said(tunnel)
            raise unavailable(said or "the session ended without a word")
        if "error" in ready:
            raise unavailable(str(ready["error"])[:500])
        path = ready.get("socket")
        if not isinstance(path, str) or not path.startswith("/"):
            raise unavailable("it named no socket")
        sock.settimeout(None)
        return AgentProcess(sock, path)
    except BaseException:
        sock.close()
        raise


class AgentDialer:
    """Connections to the agent's socket through the tunnel (a transport's Dialer).

    The agent is started on the first connection (and again after it died);
    closing the dialer ends its session, so the agent, and closes the tunnel.
    """

    def __init__(
        self,
        tunnel: SshTunnel,
        settings: Mapping[str, Any],
        *,
        address: str,
        start_timeout: float,
    ) -> None:
        self.tunnel = tunnel
        self._settings = dict(settings)
        self._address = address
        self._start_timeout = start_timeout
        self._agent: AgentProcess | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.starts = 0  #: agents started so far

    def agent(self) -> AgentProcess:
        """The running agent (started now when there is none)."""
        with self._lock:
            if self._closed:
                raise EngineError(f"lxc: the connection to {self._address} is closed")
            agent = self._agent
            if agent is None or not agent.alive():
                if agent is not None:
                    agent.close()
                    self._agent = None
                agent = start_agent(
                    self.tunnel,
                    self._settings,
                    address=self._address,
                    timeout=self._start_timeout,
                )
                self._agent = agent
                self.starts += 1
            return agent

    def dial(self, timeout: float | None) -> socket.socket:
        return self.tunnel.connect_forward(self.agent().path, timeout)

    def reachable(self) -> bool:
        agent = self._agent
        return agent is not None and agent.alive() and self.tunnel.alive()

    def trouble(self) -> str:
        return self.tunnel.last_error()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            agent, self._agent = self._agent, None
        if agent is not None:
            agent.close()
        self.tunnel.close()
