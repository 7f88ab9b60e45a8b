"""An OpenSSH server of a test's own on 127.0.0.1, to reach this machine's engines over ssh.

:class:`LoopbackSshd` starts ``sshd`` (as root, in the foreground) with a
host key, a client key, ``authorized_keys`` and a config all in one private
directory, listening on free ports of 127.0.0.1 only; nothing under
``/etc/ssh`` is read or changed, no service manager is involved (only
``/run/sshd``, sshd's privilege separation directory, is made when missing).
It writes an ssh client config (:attr:`LoopbackSshd.client_config`) that
names the key and a ``known_hosts`` holding the server's key: give it to
enginekit as ``ENGINEKIT_SSH_CONFIG`` (ssh reads ``~/.ssh`` of the passwd
entry, not of ``$HOME``, so a test cannot point ssh elsewhere by ``HOME``).

Its second port (:attr:`LoopbackSshd.bare_port`) serves sessions whose
``PATH`` holds no program (``SetEnv PATH=/nonexistent``): a host without the
docker or podman CLI.

Run a command with one up (the contract suite over ssh, say)::

    python -m enginekit.testing.sshd --engines docker,podman,lxc -- \\
        python -m pytest tests/test_contract.py -k info

sets ``ENGINEKIT_SSH_CONFIG`` and ``ENGINEKIT_TEST_ENGINES``
(``docker+ssh://root@127.0.0.1:PORT``, ``podman+ssh://root@127.0.0.1:PORT``,
``lxc+ssh://root@127.0.0.1:PORT``: this machine's LXC through the agent the
adapter brings, see :mod:`enginekit_lxc.remote`) for the command, and stops
the server after it. An engine other than these is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["ENGINES", "SSHD", "LoopbackSshd", "loopback_sshd", "main"]

SSHD = "/usr/sbin/sshd"
#: The engines reached over ssh (``ENGINE+ssh://``).
ENGINES = ("docker", "podman", "lxc")
_START_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "enginekit-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


class LoopbackSshd:
    """``sshd`` on 127.0.0.1 for ``root``, with keys made per instance (see the module)."""

    def __init__(self, folder: str | os.PathLike[str], *, sshd: str = SSHD) -> None:
        self.folder = Path(folder)
        self.sshd = sshd
        self.port = 0
        self.bare_port = 0
        self.user = "root"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def client_config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def client_key(self) -> Path:
        return self.folder / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @property
    def log(self) -> Path:
        return self.folder / "sshd.log"

    def url(self, engine: str, *, port: int | None = None, path: str = "") -> str:
        return f"{engine}+ssh://{self.user}@127.0.0.1:{port or self.port}{path}"

    def start(self) -> None:
        if shutil.which(self.sshd) is None:
            raise RuntimeError(f"{self.sshd} is not installed (apt-get install openssh-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        for name in ("host_key", "client_key"):
            if not (self.folder / name).exists():
                _keygen(self.folder / name)
        (self.folder / "authorized_keys").write_text((self.folder / "client_key.pub").read_text())
        with contextlib.suppress(FileExistsError):
            os.mkdir("/run/sshd", 0o755)  # sshd's privilege separation directory
        for _ in range(5):
            self.port, self.bare_port = _free_port(), _free_port()
            if self.port != self.bare_port and self._launch():
                return
        raise RuntimeError(f"sshd did not start on 127.0.0.1: {self._log_tail()}")

    def _launch(self) -> bool:
        folder = self.folder
        (folder / "sshd_config").write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"Port {self.bare_port}",
                    f"HostKey {folder / 'host_key'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "AllowStreamLocalForwarding yes",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "MaxStartups 100",
                    f"Match LocalPort {self.bare_port}",
                    "    SetEnv PATH=/nonexistent",
                    "",
                ]
            )
        )
        host_key = (folder / "host_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(
            "".join(f"[127.0.0.1]:{p} {' '.join(host_key)}\n" for p in (self.port, self.bare_port))
        )
        self.client_config.write_text(
            "\n".join(
                [
                    "Host 127.0.0.1",
                    f"    IdentityFile {self.client_key}",
                    "    IdentitiesOnly yes",
                    f"    UserKnownHostsFile {self.known_hosts}",
                    "    StrictHostKeyChecking yes",
                    "",
                ]
            )
        )
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.sshd, "-D", "-e", "-f", str(folder / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if all(self._answers(p) for p in (self.port, self.bare_port)):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                return sock.recv(8).startswith(b"SSH-")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def environment(self) -> dict[str, str]:
        """The variables that make enginekit's ssh use this server's keys."""
        return {"ENGINEKIT_SSH_CONFIG": str(self.client_config)}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def loopback_sshd(folder: str | os.PathLike[str] | None = None) -> Iterator[LoopbackSshd]:
    """A started :class:`LoopbackSshd` (in a new temporary directory unless
    ``folder`` is given), stopped and its directory removed afterwards."""
    made = folder is None
    where = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="ek-sshd-"))
    server = LoopbackSshd(where)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if made:
            shutil.rmtree(where, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enginekit.testing.sshd",
        description="Run a command with an sshd of its own on 127.0.0.1 (see the module doc).",
    )
    parser.add_argument(
        "--engines",
        default="docker,podman",
        help="engines to name in ENGINEKIT_TEST_ENGINES as ENGINE+ssh:// URLs "
        f"(comma-separated: {', '.join(ENGINES)})",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        parser.error("give a command after --")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        parser.error(f"--engines takes {', '.join(ENGINES)} (not {', '.join(unknown) or 'none'})")
    with loopback_sshd() as server:
        env = dict(os.environ, **server.environment())
        env["ENGINEKIT_TEST_ENGINES"] = ",".join(server.url(e) for e in engines)
        print(f"[sshd] 127.0.0.1:{server.port}: {env['ENGINEKIT_TEST_ENGINES']}", file=sys.stderr)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
