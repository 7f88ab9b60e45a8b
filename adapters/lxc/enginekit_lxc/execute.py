"""Run one command to completion in a throwaway LXC container (a build's RUN step).

``execute(rootfs, argv, ...)`` runs ``argv`` with ``lxc-execute`` (LXC's init as
PID 1) in a container whose root is the writable directory ``rootfs``, passes
stdout and stderr apart to ``on_output`` as they come, and returns the exit
code (``128 + n`` when the command was killed by signal ``n``). Nothing stays
behind: no LXC container (it lives in a private temporary LXC path), no
cgroup (``lxc-execute`` removes its own), no temporary directory, and none of
the ``/dev``, ``/proc``, ``/sys`` mount points LXC had to create in ``rootfs``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence

from enginekit.toolkit.errors import EngineError, EngineUnavailable, InvalidSpec
from enginekit.toolkit.models import Stream

from .cgroups import Limits
from .errors import HINT, LxcToolError, tool_path
from .fsroot import Root
from .helper import NoiseFilter, helper_argv
from .lxcconf import LxcSettings, container_env, render
from .lxchost import LxcHost, process_host
from .users import resolve_user

__all__ = ["OutputCallback", "execute", "lxc_started", "run_lxc_tool"]

OutputCallback = Callable[[Stream, bytes], None]

_MOUNTPOINTS = ("dev", "proc", "sys")
_STARTED_MARK = b" started with pid "


def lxc_started(log_path: str) -> tuple[bool, str]:
    """Whether the lxc-execute log at ``log_path`` shows the command started,
    and its ERROR lines (for a message when it did not)."""
    try:
        with open(log_path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False, ""
    errors = [
        ln.split(b" - ", 2)[-1].decode("utf-8", "replace")
        for ln in data.splitlines()
        if b" ERROR " in ln
    ]
    return _STARTED_MARK in data, "; ".join(errors[-3:])


def run_lxc_tool(args: Sequence[str], *, timeout: float | None = 60) -> bytes:
    """Run an lxc-* tool to completion; its stdout, or a typed error."""
    try:
        proc = subprocess.run(
            list(args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise EngineUnavailable(f"{args[0]} not found", hint=HINT) from exc
    except subprocess.TimeoutExpired as exc:
        raise LxcToolError(
            f"{args[0]} did not finish in {timeout}s", tool=args[0], exit_code=None
        ) from exc
    except OSError as exc:
        raise EngineError(f"{args[0]} could not run: {exc.strerror}") from exc
    if proc.returncode != 0:
        from .errors import tool_error

        raise tool_error(args[0], proc.returncode, proc.stderr)
    return proc.stdout


@contextlib.contextmanager
def _restore_mountpoints(rootfs: str) -> Iterator[None]:
    missing = [d for d in _MOUNTPOINTS if not os.path.lexists(os.path.join(rootfs, d))]
    try:
        yield
    finally:
        for d in missing:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(rootfs, d))


def _pump(out_r: int, err_r: int, on_output: OutputCallback | None, noise: NoiseFilter) -> None:
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, Stream.STDOUT)
    sel.register(err_r, selectors.EVENT_READ, Stream.STDERR)
    open_count = 2
    try:
        while open_count:
            for key, _ in sel.select():
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_count -= 1
                    continue
                if key.data is Stream.STDERR:
                    chunk = noise.feed(chunk)
                if on_output is not None and chunk:
                    on_output(key.data, chunk)
    finally:
        sel.close()


def execute(
    rootfs: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    workdir: str,
    user: str | None,
    on_output: OutputCallback | None = None,
    network: str = "none",
    lxc_host: LxcHost | None = None,
) -> int:
    """Run ``argv`` inside ``rootfs`` to completion; return its exit code.

    ``env`` is the command's whole environment; as on Docker, ``PATH`` (the
    default path), ``HOSTNAME`` and ``HOME`` (the user's home) are added when
    missing. ``workdir`` is created (owned by root) if it does not exist.
    ``user`` is resolved in the rootfs's ``/etc/passwd`` and ``/etc/group``.
    ``network`` is ``"none"`` (loopback only) or ``"host"``. ``lxc_host`` is
    the LXC and cgroups of the caller's driver (found here when not given).
    Raises ``InvalidSpec`` for an unknown user or unusable env, and an
    ``EngineError`` when LXC could not start the command at all.
    """
    if not argv:
        raise InvalidSpec("no command to run")
    if network not in ("none", "host"):
        raise InvalidSpec(f"network {network!r}: a throwaway run uses 'none' or 'host'")
    rootfs = os.path.abspath(rootfs)
    if lxc_host is None:
        lxc_host = process_host()
    else:
        lxc_host.check()
    suffix = secrets.token_hex(6)
    name = f"ekrun-{suffix}"
    hostname = suffix
    with _restore_mountpoints(rootfs):
        try:
            with Root(rootfs) as root:
                exec_user = resolve_user(root, user)
                root.makedirs(workdir or "/")
                full_env = container_env(
                    image_env={}, env=env, hostname=hostname, home=exec_user.home
                )
                program = root.which(argv[0], full_env["PATH"], workdir or "/")
        except InvalidSpec:
            raise
        except OSError as exc:
            raise EngineError(f"cannot prepare rootfs {rootfs}: {exc.strerror}") from exc
        if program is None:
            # As Docker: the command is looked up in the container's PATH first.
            if on_output is not None:
                on_output(
                    Stream.STDERR,
                    f'exec: "{argv[0]}": executable file not found in $PATH\n'.encode(),
                )
            return 127
        settings = LxcSettings(
            rootfs=rootfs,
            hostname=hostname,
            env=full_env,
            workdir=workdir or "/",
            user=exec_user,
            network=network,
            cgroup=lxc_host.cgroup_config(Limits(), name),
        )
        text, inherit = render(settings)
        tmp = tempfile.mkdtemp(prefix="enginekit-lxc-run-")
        try:
            cfg = os.path.join(tmp, "config")
            log = os.path.join(tmp, "lxc.log")
            fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            cmd = [
                tool_path("lxc-execute"), "-n", name, "-P", tmp, "-f", cfg,
                "-o", log, "-l", "NOTICE", "-q", "--", *helper_argv([program, *argv[1:]]),
            ]  # fmt: skip
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=inherit,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise EngineUnavailable("lxc-execute not found", hint=HINT) from exc
            except OSError as exc:
                # There, but the kernel would not start it (E2BIG, ENOMEM...).
                raise EngineError(f"lxc-execute could not be started: {exc.strerror}") from exc
            assert proc.stdout is not None and proc.stderr is not None
            try:
                _pump(proc.stdout.fileno(), proc.stderr.fileno(), on_output, NoiseFilter(name))
                rc = proc.wait()
            except BaseException:
                _abort(proc, name, tmp)
                raise
            finally:
                proc.stdout.close()
                proc.stderr.close()
            started, errors = lxc_started(log)
            if not started:
                refused = lxc_host.refused(errors)
                if refused is not None:
                    raise refused
                raise LxcToolError(
                    f"lxc-execute could not start the command (exit {rc}): "
                    f"{errors or 'no error logged'}",
                    tool="lxc-execute",
                    exit_code=rc,
                )
            return 128 - rc if rc < 0 else rc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _abort(proc: subprocess.Popen[bytes], name: str, lxcpath: str) -> None:
    """Kill a run whose caller gave up (an exception, KeyboardInterrupt)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [tool_path("lxc-stop"), "-k", "-n", name, "-P", lxcpath],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(subprocess.SubprocessError):
        proc.wait(timeout=10)
