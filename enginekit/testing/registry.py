"""A real OCI registry on 127.0.0.1 for the contract suite's pull and push tests.

The session fixture ``registry`` starts Debian's ``docker-registry``
(distribution 2.8, ``docker-registry serve CONFIG``; installed by
``scripts/setup-engines.sh``) on a free port of 127.0.0.1, with its storage
in a temporary directory, and yields its address ``"127.0.0.1:PORT"``. The
process and its storage are gone when the session ends, whatever failed.
Nothing listens on any other address, and nothing in the suite pulls a
reference that names another registry.

``ENGINEKIT_TEST_REGISTRY=127.0.0.1:PORT`` (or ``localhost:PORT``) uses a
registry already running there instead (it is neither started nor stopped,
and what the tests push stays in it).

:func:`local_registry` is the same thing as a context manager, for tests
outside the suite.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import subprocess

__all__ = ["REGISTRY_ENV", "RegistryError", "local_registry", "registry"]

#: Use this already running loopback registry (``127.0.0.1:PORT``) instead of starting one.
REGISTRY_ENV = "ENGINEKIT_TEST_REGISTRY"

_PROGRAM = "docker-registry"
_READY_SECONDS = 20.0
_STOP_SECONDS = 10.0
_ATTEMPTS = 3  # a free port may be taken between choosing and binding it


class RegistryError(RuntimeError):
    """The local registry could not be started (or is not a loopback one)."""


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(address: str) -> bool:
    """Whether ``GET /v2/`` at ``address`` answers as a registry (no proxy involved)."""
    import http.client

    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=1)
    try:
        conn.request("GET", "/v2/")
        resp = conn.getresponse()
        resp.read()
        return resp.status in (200, 401)
    except OSError:
        return False
    finally:
        conn.close()


def _config(root: pathlib.Path, port: int) -> pathlib.Path:
    path = root / "config.yml"
    path.write_text(
        "version: 0.1\n"
        "log:\n"
        "  level: info\n"
        "  accesslog:\n"
        "    disabled: true\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
    )
    return path


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies without its cleanup
    (SIGKILL), so that no registry outlives the run (Linux only)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes]) -> None:
    import subprocess

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(_STOP_SECONDS)


def _tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _check_loopback(address: str) -> str:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not (host == "localhost" or host.startswith("127.")):
        raise RegistryError(f"{REGISTRY_ENV} must be 127.0.0.1:PORT or localhost:PORT")
    return f"{host}:{port}"


@contextlib.contextmanager
def local_registry(program: str = _PROGRAM) -> Iterator[str]:
    """Run ``docker-registry`` on 127.0.0.1:<free port>; yield ``"127.0.0.1:PORT"``.

    Its storage lives in a temporary directory; the process (its whole
    session) and the directory are removed on exit, also after a failure.
    """
    import subprocess
    import tempfile

    exe = shutil.which(program)
    if exe is None:
        raise RegistryError(
            f"{program} is not installed (Debian package docker-registry; "
            "scripts/setup-engines.sh installs it)"
        )
    root = pathlib.Path(tempfile.mkdtemp(prefix="enginekit-registry-"))
    log_path = root / "registry.log"
    try:
        for attempt in range(_ATTEMPTS):
            port = _free_port()
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [exe, "serve", str(_config(root, port))],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                    # Not the caller's environment: REGISTRY_* variables would
                    # override the configuration (the listen address among it).
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                )
            try:
                address = f"127.0.0.1:{port}"
                deadline = time.monotonic() + _READY_SECONDS
                while proc.poll() is None and not _answers(address):
                    if time.monotonic() > deadline:
                        raise RegistryError(
                            f"{program} did not answer on {address} within "
                            f"{_READY_SECONDS:g} s:\n{_tail(log_path)}"
                        )
                    time.sleep(0.05)
                if proc.poll() is not None:
                    if attempt + 1 < _ATTEMPTS:
                        continue
                    raise RegistryError(
                        f"{program} exited with {proc.returncode}:\n{_tail(log_path)}"
                    )
                yield address
                return
            finally:
                _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """``"127.0.0.1:PORT"`` of an empty OCI registry (plain HTTP) for this session.

    Push to it as ``f"{registry}/ekt/NAME:TAG"``; every engine treats a
    loopback registry as one spoken to without TLS.
    """
    given = os.environ.get(REGISTRY_ENV, "").strip()
    if given:
        try:
            address = _check_loopback(given)
        except RegistryError as exc:
            pytest.fail(str(exc), pytrace=False)
        if not _answers(address):
            pytest.fail(f"{REGISTRY_ENV}: no registry answers at {address}", pytrace=False)
        yield address
        return
    with contextlib.ExitStack() as stack:
        try:
            address = stack.enter_context(local_registry())
        except RegistryError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield address
