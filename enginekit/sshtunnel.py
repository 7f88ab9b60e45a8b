"""Engines on another host, reached through the system's OpenSSH client.

``ssh`` is run as it is installed, with argument lists (never a shell), so
that the user's ``~/.ssh/config``, keys, agent and ``known_hosts`` apply as
they are set up. The only options enginekit passes are those of its own
connection: ``ControlMaster``/``ControlPath``/``ControlPersist`` (one
multiplexed master connection per :class:`SshTunnel`), ``BatchMode=yes``
(never a prompt: a key that needs a passphrase the agent does not hold, or a
host key not yet known, is an error, not a hang) and ``ConnectTimeout``;
``-i`` for an identity the caller names (a Podman connection's ``Identity``);
and ``-F`` for a config file the caller names instead of ``~/.ssh/config``
(the ``ssh_config`` option, or ``ENGINEKIT_SSH_CONFIG``). ssh reads
``~/.ssh`` of the user's passwd entry, not of ``$HOME``.

One :class:`SshTunnel` belongs to one engine connection (one ``Engine``).
Its master ``ssh`` is started on first use, the handshake paid once: every
stream after that is a session or a forwarded channel over it.

- :meth:`SshTunnel.open_stream` runs a command on the remote host with its
  stdin and stdout joined to a local socket (``docker system dial-stdio``
  makes that the Engine API). Each is a session: sshd allows
  ``MaxSessions`` (10 by default) per connection, so past
  :data:`SESSIONS_PER_MASTER` live ones a further master is opened.
- :meth:`SshTunnel.connect_forward` connects to a unix socket on the remote
  host (a Podman service's socket) through a stream-local forward the master
  listens for in the tunnel's private directory (``ssh -O forward -L``).
- :meth:`SshTunnel.run` runs a short command and returns its output.

Closing the tunnel ends its sessions and masters, and removes its directory
(control sockets, forwarded sockets); tunnels still open when the
interpreter exits are closed then. Failures of ``ssh`` itself (the host does
not answer, the key is refused, the host key is unknown) are
:class:`~enginekit.errors.EngineUnavailable` naming the address (never an
identity file) and ssh's own first error line.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import IO

import attrs

from .errors import EngineError, EngineTimeout, EngineUnavailable, InvalidSpec
from .sshaddress import SshAddress

__all__ = [
    "CONFIG_VARIABLE",
    "CONNECT_TIMEOUT",
    "SESSIONS_PER_MASTER",
    "Route",
    "SshAddress",
    "SshDialer",
    "SshTunnel",
    "close_all",
]

#: The environment variable naming an ssh config file used instead of ``~/.ssh/config``
#: (``ssh -F``), as the ``ssh_config`` connect option does.
CONFIG_VARIABLE = "ENGINEKIT_SSH_CONFIG"
#: Seconds ssh may take to reach the host (``ConnectTimeout``) unless told otherwise.
CONNECT_TIMEOUT = 10.0
#: Seconds on top of that for the handshake and authentication of a master.
_LOGIN_MARGIN = 20.0
#: Live sessions one master carries before another is opened (sshd's MaxSessions is 10).
SESSIONS_PER_MASTER = 8
#: How long a session or master is given to end by itself before it is killed.
_END_GRACE = 2.0
_POLL = 0.02


def _first_error(text: str) -> str:
    """ssh's own first error line (its warnings about known_hosts passed over)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if not line.startswith(("Warning: Permanently added", "debug")):
            return line[:300]
    return lines[0][:300] if lines else ""


def _read(fh: IO[bytes]) -> str:
    try:
        fh.seek(0)
        return fh.read(65536).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def _size(fh: IO[bytes]) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _end(proc: subprocess.Popen[bytes], grace: float = _END_GRACE) -> None:
    """Wait for ``proc`` (given ``grace`` seconds), terminate it, then kill it."""
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            with contextlib.suppress(OSError):
                step()
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


class _Master:
    """One ``ssh -M`` process and its control socket."""

    def __init__(self, proc: subprocess.Popen[bytes], control: str, errors: IO[bytes]) -> None:
        self.proc = proc
        self.control = control
        self.errors = errors
        self.sessions: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self.forwards: dict[str, str] = {}
        self.reported = _size(errors)  # stderr bytes already looked at

    def alive(self) -> bool:
        return self.proc.poll() is None and os.path.exists(self.control)

    def reap(self) -> None:
        """Forget the sessions that have ended."""
        live = []
        for proc, err in self.sessions:
            if proc.poll() is None:
                live.append((proc, err))
            else:
                err.close()
        self.sessions = live

    def end_sessions(self) -> None:
        for proc, _ in self.sessions:
            with contextlib.suppress(OSError):
                proc.terminate()
        for proc, err in self.sessions:
            _end(proc, 0.5)
            err.close()
        self.sessions = []


_OPEN: weakref.WeakSet[SshTunnel] = weakref.WeakSet()


class SshTunnel:
    """The multiplexed ssh connection(s) of one engine connection. Thread-safe.

    ``name`` is how messages call the engine (``"docker"``); ``hint`` is
    added to an :class:`EngineUnavailable` for a host that cannot be reached
    (by default: how to check that ``ssh`` reaches it without a prompt);
    ``origin`` says what chose the address (a context, a connection).
    ``config``: an ssh config file for ``-F`` (default
    ``$ENGINEKIT_SSH_CONFIG``, else none: ssh reads ``~/.ssh/config``).
    """

    def __init__(
        self,
        address: SshAddress,
        *,
        name: str = "the engine",
        connect_timeout: float = CONNECT_TIMEOUT,
        ssh: str = "ssh",
        hint: str | None = None,
        config: str | None = None,
        origin: str = "",
    ) -> None:
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int | float):
            raise InvalidSpec("connect_timeout must be a number of seconds")
        if not 0 < connect_timeout <= 3600:
            raise InvalidSpec("connect_timeout must be more than 0 and at most 3600 seconds")
        if config is None and os.environ.get(CONFIG_VARIABLE):
            config, shown = os.environ[CONFIG_VARIABLE], f"${CONFIG_VARIABLE}"
        else:
            shown = "ssh_config"
        if config is not None and (not isinstance(config, str) or not os.path.exists(config)):
            raise InvalidSpec(f"{name}: {shown} names no ssh config file")
        self.address = address
        self.name = name
        self.origin = origin  #: what chose the address, for messages ("docker context 'ci'")
        self.connect_timeout = float(connect_timeout)
        self._config = config
        self._ssh = ssh
        self._hint = hint or (
            f"check that `{address.command()}` logs in without a prompt "
            "(a key or the ssh agent, the host key in known_hosts)"
        )
        self._lock = threading.RLock()
        self._dir: str | None = None
        self._masters: list[_Master] = []
        self._count = 0
        self._closed = False
        self.handshakes = 0  #: masters started so far (each one an ssh handshake)
        self._hostname: str | None = None  # see hostname()
        _OPEN.add(self)

    def __repr__(self) -> str:
        return f"SshTunnel({self.address.url!r})"

    # -- the master connections ---------------------------------------------------
    def _unavailable(self, message: str) -> EngineUnavailable:
        via = f" ({self.origin})" if self.origin else ""
        return EngineUnavailable(
            f"cannot reach {self.name} over ssh{via}: {message}",
            address=self.address.url,
            hint=self._hint,
        )

    def _private_dir(self) -> str:
        if self._dir is None:
            base = tempfile.gettempdir()
            # A control socket's path must fit sun_path (108 bytes) with ssh's
            # temporary suffix: fall back to /tmp under a long TMPDIR.
            if len(base) > 60:
                base = "/tmp"
            self._dir = tempfile.mkdtemp(prefix="ek-ssh-", dir=base)
        return self._dir

    def _base(self, control: str) -> list[str]:
        config = ["-F", self._config] if self._config else []
        return [
            self._ssh,
            *config,
            "-S",
            control,
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            *self.address.options(),
        ]

    def _start_master(self) -> _Master:
        """A new master connection, logged in (or EngineUnavailable with ssh's words)."""
        if self._closed:
            raise EngineError(f"{self.name}: the ssh connection to {self.address.url} is closed")
        folder = self._private_dir()
        self._count += 1
        control = os.path.join(folder, f"m{self._count}")
        errors = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (kept with the master)
        argv = [
            *self._base(control),
            "-M",
            "-o",
            "ControlPersist=no",
            "-N",
            "-T",
            "--",
            self.address.host,
        ]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,  # a Ctrl-C of the program does not cut it
            )
        except OSError as exc:
            errors.close()
            raise self._unavailable(f"cannot run {self._ssh} ({exc.strerror})") from exc
        deadline = time.monotonic() + self.connect_timeout + _LOGIN_MARGIN
        while proc.poll() is None and not os.path.exists(control):
            if self._closed:  # closed from another thread meanwhile (interpreter exit)
                _end(proc, 0.5)
                errors.close()
                raise EngineError(
                    f"{self.name}: the ssh connection to {self.address.url} is closed"
                )
            if time.monotonic() > deadline:
                _end(proc, 0.5)
                text = _first_error(_read(errors))
                errors.close()
                detail = f": {text}" if text else ""
                raise self._unavailable(
                    f"no login within {self.connect_timeout + _LOGIN_MARGIN:g}s{detail}"
                )
            time.sleep(_POLL)
        if proc.poll() is not None:
            proc.wait()
            text = _first_error(_read(errors)) or f"ssh exited with status {proc.returncode}"
            errors.close()
            raise self._unavailable(text)
        self.handshakes += 1
        return _Master(proc, control, errors)

    def _primary(self) -> _Master:
        """The first master, started (again) if it is not running."""
        with self._lock:
            if self._masters and not self._masters[0].alive():
                self._drop(self._masters.pop(0))
            if not self._masters:
                self._masters.append(self._start_master())
            return self._masters[0]

    def _with_room(self) -> _Master:
        """A running master with fewer than SESSIONS_PER_MASTER live sessions."""
        with self._lock:
            self._primary()
            for master in list(self._masters):
                if not master.alive():
                    self._masters.remove(master)
                    self._drop(master)
                    continue
                master.reap()
                if len(master.sessions) < SESSIONS_PER_MASTER:
                    return master
            master = self._start_master()
            self._masters.append(master)
            return master

    def _drop(self, master: _Master) -> None:
        master.end_sessions()
        if master.proc.poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [*self._base(master.control), "-O", "exit", "--", self.address.host],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=_END_GRACE,
                    check=False,
                )
        _end(master.proc)
        master.errors.close()
        for path in (master.control, *master.forwards.values()):
            with contextlib.suppress(OSError):
                os.unlink(path)

    def hostname(self) -> str:
        """The host ssh connects to for this address: the ``HostName`` the user's
        ssh config gives it, as ``ssh -G`` reads it (no connection is made), else
        the address's own host. Asked once, then kept."""
        with self._lock:
            if self._hostname is None:
                config = ["-F", self._config] if self._config else []
                argv = [self._ssh, *config, *self.address.options(), "-G", "--", self.address.host]
                found = ""
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    done = subprocess.run(
                        argv,
                        stdin=subprocess.DEVNULL,
                        capture_output=True,
                        timeout=self.connect_timeout,
                        check=False,
                    )
                    for line in done.stdout.decode("utf-8", "replace").splitlines():
                        key, _, value = line.strip().partition(" ")
                        if done.returncode == 0 and key.lower() == "hostname" and value.strip():
                            found = value.strip()
                            break
                self._hostname = found or self.address.host
            return self._hostname

    def alive(self) -> bool:
        """Whether the master connection runs (no new one is made)."""
        with self._lock:
            return bool(self._masters) and self._masters[0].alive()

    # -- streams --------------------------------------------------------------
    def open_stream(self, command: Sequence[str]) -> socket.socket:
        """``command`` run on the remote host, its stdin and stdout this socket's other end.

        The words of ``command`` are joined by spaces and read by the remote
        user's shell, as ssh does: give only fixed words, never a caller's text.
        """
        with self._lock:
            master = self._with_room()
            ours, theirs = socket.socketpair()
            errors = tempfile.TemporaryFile(dir=self._private_dir())  # noqa: SIM115
            try:
                proc = subprocess.Popen(
                    [
                        *self._base(master.control),
                        "-o",
                        "ControlMaster=no",
                        "-T",
                        "--",
                        self.address.host,
                        *command,
                    ],
                    stdin=theirs.fileno(),
                    stdout=theirs.fileno(),
                    stderr=errors,
                    start_new_session=True,
                )
            except OSError as exc:
                ours.close()
                errors.close()
                raise self._unavailable(f"cannot run {self._ssh} ({exc.strerror})") from exc
            finally:
                theirs.close()
            master.sessions.append((proc, errors))
            return ours

    def last_error(self) -> str:
        """ssh's first error line since the previous call: of a session that failed
        (``docker system dial-stdio`` finding no daemon), else of a master (a
        forwarded channel the remote host refused); ``""`` when there is none."""
        with self._lock:
            for master in self._masters:
                for proc, err in reversed(master.sessions):
                    if proc.poll() not in (None, 0):
                        text = _first_error(_read(err))
                        if text:
                            return text
                size = _size(master.errors)
                if size > master.reported:
                    master.errors.seek(master.reported)
                    new = master.errors.read(size - master.reported)
                    master.reported = size
                    text = _first_error(new.decode("utf-8", "replace"))
                    if text:
                        return text
        return ""

    def forward(self, remote_path: str) -> str:
        """A local socket (in the tunnel's private directory) forwarded to ``remote_path``."""
        if not remote_path.startswith("/") or "\x00" in remote_path:
            raise InvalidSpec(f"{self.name}: a remote socket path must be absolute")
        with self._lock:
            master = self._primary()
            local = master.forwards.get(remote_path)
            if local is not None:
                return local
            self._count += 1
            local = os.path.join(self._private_dir(), f"f{self._count}")
            try:
                done = subprocess.run(
                    [
                        *self._base(master.control),
                        "-O",
                        "forward",
                        "-L",
                        f"{local}:{remote_path}",
                        "--",
                        self.address.host,
                    ],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.connect_timeout + _LOGIN_MARGIN,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise self._unavailable("the forward of the engine's socket hung") from exc
            if done.returncode != 0 or not os.path.exists(local):
                text = _first_error(done.stderr.decode("utf-8", "replace"))
                raise self._unavailable(
                    f"cannot forward {remote_path}: {text or f'status {done.returncode}'}"
                )
            master.forwards[remote_path] = local
            return local

    def connect_forward(self, remote_path: str, timeout: float | None) -> socket.socket:
        """A connection to the unix socket ``remote_path`` on the remote host."""
        for attempt in range(2):
            local = self.forward(remote_path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(local)
                return sock
            except OSError as exc:
                sock.close()
                gone = exc.errno in (errno.ECONNREFUSED, errno.ENOENT)
                if attempt == 0 and gone:
                    with self._lock:  # the master went away: once more on a new one
                        if self._masters and self._masters[0].forwards.get(remote_path) == local:
                            self._drop(self._masters.pop(0))
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self, command: Sequence[str], *, timeout: float = 60.0) -> tuple[int, str, str]:
        """``command`` (fixed words: see :meth:`open_stream`) run on the remote host:
        its exit status, stdout and stderr. Stdin is empty."""
        with self._lock:
            master = self._with_room()
            argv = [
                *self._base(master.control),
                "-o",
                "ControlMaster=no",
                "-T",
                "--",
                self.address.host,
                *command,
            ]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineTimeout(
                f"{self.name}: `{' '.join(command)}` on {self.address.url} "
                f"did not end within {timeout:g}s"
            ) from exc
        except OSError as exc:
            raise self._unavailable(f"cannot run {self._ssh} ({exc.strerror})") from exc
        return (
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    # -- the end --------------------------------------------------------------
    def close(self) -> None:
        """End every session and master, and remove the private directory. Idempotent."""
        self._closed = True  # seen by a master being started: it gives up at once
        with self._lock:
            masters, self._masters = self._masters, []
            folder, self._dir = self._dir, None
        for master in masters:
            self._drop(master)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        _OPEN.discard(self)

    def __enter__(self) -> SshTunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed and (self._masters or self._dir):
                self.close()


@attrs.frozen
class Route:
    """How each connection to the engine is made through the tunnel: a remote
    ``command`` whose stdio is the stream (``docker system dial-stdio``), or a
    remote unix ``socket`` reached through a forward. ``probe``: a command whose
    exit status 0 says the engine is there (for :meth:`SshDialer.reachable`)."""

    command: tuple[str, ...] = ()
    socket: str = ""
    probe: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"`{' '.join(self.command)}`" if self.command else f"the socket {self.socket}"


class SshDialer:
    """The :class:`~enginekit.transport.Dialer` of a transport over ssh.

    ``find_route`` is asked once, on first use, how connections are made (it
    may run commands on the remote host through the tunnel, and raise
    :class:`EngineError` when the engine is not there: it is asked again the
    next time). Thread-safe; closing it closes the tunnel.
    """

    def __init__(self, tunnel: SshTunnel, find_route: Callable[[SshTunnel], Route]) -> None:
        self.tunnel = tunnel
        self._find_route = find_route
        self._route: Route | None = None
        self._lock = threading.Lock()

    @property
    def route(self) -> Route:
        route = self._route
        if route is None:
            with self._lock:
                if self._route is None:
                    self._route = self._find_route(self.tunnel)
                route = self._route
        return route

    def dial(self, timeout: float | None) -> socket.socket:
        route = self.route
        if route.command:
            return self.tunnel.open_stream(route.command)
        return self.tunnel.connect_forward(route.socket, timeout)

    def trouble(self) -> str:
        """ssh's words about the latest failure on the way (``""``: none)."""
        return self.tunnel.last_error()

    def reachable(self) -> bool:
        route = self._route
        if route is None or not self.tunnel.alive():
            return False
        if not route.probe:
            return True
        try:
            status, _, _ = self.tunnel.run(route.probe, timeout=self.tunnel.connect_timeout)
        except EngineError:
            return False
        return status == 0

    def close(self) -> None:
        self.tunnel.close()


def close_all() -> None:
    """Close every tunnel still open (run at interpreter exit)."""
    for tunnel in list(_OPEN):
        with contextlib.suppress(Exception):
            tunnel.close()


atexit.register(close_all)
