"""The LXC driver: application containers on LXC 5 to 7 with the lxc-* tools.

LXC runs a container and nothing more; this driver adds what an application
engine keeps: ids and names, a per-container overlay rootfs on the image's
unpacked rootfs, and a monitor process per run (:mod:`enginekit_lxc.monitor`)
that holds the foreground ``lxc-execute``, keeps the output and writes down
the exit. State lives in files (:mod:`enginekit_lxc.store`), so every process
and every new driver sees the same containers.

States: CREATED (never started), RUNNING (the monitor holds a running LXC
container), PAUSED (its cgroup is frozen), EXITED (stopped after a
start, exit code known). LXC's STOPPED maps to CREATED or EXITED, FROZEN to
PAUSED; a monitor that died is noticed and its container's state recovered.

LXC's version and the host's cgroup layout are read once per driver
(:mod:`enginekit_lxc.lxchost`, :mod:`enginekit_lxc.cgroups`): they choose the
config keys, the capabilities, and how pause, stats and OOM kills work.

Known differences from Docker (kept small on purpose, each one deliberate):

* an ``exec``'d process has no supplementary groups (``lxc-attach`` sets
  none); the main process has Docker's (the primary gid and the groups that
  list the user);
* ``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` are bind-mounted
  while the container runs, as on Docker, but a copy from a stopped container
  sees the empty files under them;
* if a monitor is killed, the container runs on, but what it writes then has
  no reader (as with a dead conmon) and its exit code is inferred:
  ``128 + n`` for the last signal sent through the driver, else 255;
* environment values with a newline or trailing blanks are carried through
  ``lxc-execute``'s environment, which a few names (``LD_*``, ``LXC_*``, ...)
  must never enter: such a value under such a name is refused (``InvalidSpec``);
* only tcp ports are published (a relay in the monitor), udp is ``Unsupported``.

The driver is the entry point; the work is done in the modules it calls:
:mod:`~enginekit_lxc.records` (meta, state, snapshots), :mod:`~enginekit_lxc.create`,
:mod:`~enginekit_lxc.start`, :mod:`~enginekit_lxc.control` (pause, stop, kill,
remove), :mod:`~enginekit_lxc.containerexec` and :mod:`~enginekit_lxc.containerfs`
(copies).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

from enginekit.toolkit.driver import BaseDriver, Capability, ProgressCallback, labels_match
from enginekit.toolkit.errors import EngineTimeout, EngineUnavailable, InvalidSpec, NotFound
from enginekit.toolkit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecResult,
    Image,
    LogLine,
    PathStat,
    Stats,
)

from . import containerfs, control, logread
from .containerexec import exec_in
from .create import create
from .errors import ENGINE, HINT
from .launcher import MonitorLauncher
from .lxcconf import find_helper
from .lxchost import LxcHost
from .lxchost import detect as detect_host
from .records import LIVE, ContainerRecords
from .start import start
from .store import ContainerStore

__all__ = ["DEFAULT_STORAGE_ROOT", "LxcDriver"]

DEFAULT_STORAGE_ROOT = "/var/lib/enginekit/lxc"

_POLL = 0.01


class LxcDriver(BaseDriver):
    """The Driver for LXC (see the module)."""

    name = ENGINE

    def __init__(
        self,
        address: str | None = None,
        *,
        storage_root: str | None = None,
        bridge: str = "lxcbr0",
        **options: Any,
    ) -> None:
        if options:
            raise InvalidSpec(f"unknown LXC option(s): {', '.join(sorted(options))}")
        super().__init__()
        self._address = address or os.environ.get("LXC_PATH") or None
        self.storage_root = storage_root or DEFAULT_STORAGE_ROOT
        self.bridge = bridge
        self.store = ContainerStore(os.path.join(self.storage_root, "containers"))
        self._lock = threading.Lock()
        self._lxcpath: str | None = self._address
        self._images: Any = None
        self._host: LxcHost | None = None
        #: The containers' meta, state and snapshots.
        self.records = ContainerRecords(self.store, lambda: self.host)
        #: Starts a container's monitor (:mod:`enginekit_lxc.launcher`).
        self.launcher = MonitorLauncher()

    # -- engine --------------------------------------------------------------
    @property
    def address(self) -> str:
        return self._address or "/var/lib/lxc"

    @property
    def lxcpath(self) -> str:
        if self._lxcpath is None:
            try:
                out = subprocess.run(
                    ["lxc-config", "lxc.lxcpath"], capture_output=True, check=True, timeout=10
                ).stdout
                self._lxcpath = out.decode().strip() or "/var/lib/lxc"
            except (OSError, subprocess.SubprocessError) as exc:
                raise EngineUnavailable(
                    "lxc-config did not answer", address="lxc-config", hint=HINT
                ) from exc
        return self._lxcpath

    @property
    def host(self) -> LxcHost:
        """LXC's version and the cgroup layout, read once (on first use)."""
        if self._host is None:
            with self._lock:
                if self._host is None:
                    self._host = detect_host()
        return self._host

    @property
    def capabilities(self) -> frozenset[Capability]:
        """From LXC's version and what the host's cgroups allow (read once)."""
        return self.host.capabilities

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        return self.host.unsupported

    @property
    def images(self) -> Any:
        """The image store (``enginekit_lxc.images.ImageStore``)."""
        if self._images is None:
            with self._lock:
                if self._images is None:
                    from .images import ImageStore

                    self._images = ImageStore(self.storage_root)
        return self._images

    def ping(self) -> None:
        for tool in ("lxc-execute", "lxc-attach", "lxc-stop"):
            if shutil.which(tool) is None:
                raise EngineUnavailable(
                    f"{tool} not found on PATH", address=self.address, hint=HINT
                )
        self.check_lxcpath()
        self.host.check()
        find_helper()
        try:
            self.store.ensure()
        except OSError as exc:
            raise EngineUnavailable(
                f"cannot use the storage root {self.storage_root}: {exc.strerror}",
                address=self.storage_root,
                hint="run as root, or pass storage_root= a writable directory",
            ) from exc

    def check_lxcpath(self) -> None:
        """``EngineUnavailable`` if the LXC path is missing."""
        # LXC has no daemon to refuse a wrong address: a missing LXC path is
        # this engine's "not reachable", on every call that would use it.
        if not os.path.isdir(self.lxcpath):
            raise EngineUnavailable(
                f"the LXC path {self.lxcpath} does not exist", address=self.lxcpath, hint=HINT
            )

    def info(self) -> EngineInfo:
        self.check_lxcpath()
        host = self.host
        return EngineInfo(
            name=ENGINE,
            version=host.version_text,
            api_version="",
            os="linux",
            arch={"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()
            ),
            storage_root=self.storage_root,
            cgroup_version=host.cgroup_version,
            rootless=host.rootless,
            image_store="oci-dir",
        )

    def close(self) -> None:
        self.launcher.close()
        self.records.clear()

    # -- images (the image store does the work) -------------------------------
    def image_build(
        self, request: BuildRequest, *, progress: ProgressCallback | None = None
    ) -> Image:
        import functools

        from .build import build_image
        from .execute import execute

        run = functools.partial(execute, lxc_host=self.host)
        image: Image = build_image(self.images, request, progress=progress, execute=run)
        return image

    def image_inspect(self, ref: str) -> Image:
        return self.images.inspect(ref)  # type: ignore[no-any-return]

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        return self.images.list(name=name, labels=labels)  # type: ignore[no-any-return]

    def image_tag(self, ref: str, new_ref: str) -> None:
        self.images.tag(ref, new_ref)

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        self.images.remove(ref, force=force, in_use=self.records.image_in_use)

    def image_save(self, ref: str, path: str) -> None:
        self.images.save(ref, path)

    def image_load(self, path: str) -> list[Image]:
        return self.images.load(path)  # type: ignore[no-any-return]

    def image_pull(self, ref: str) -> Image:
        image: Image = self.images.pull(ref)
        return image

    def image_push(self, ref: str) -> None:
        self.images.push(ref)

    # -- container records (enginekit_lxc.records) ----------------------------
    def _meta(self, id: str) -> dict[str, Any]:
        return self.records.meta(id)

    def _state(self, id: str) -> tuple[ContainerState, dict[str, Any]]:
        return self.records.state(id)

    # -- create / start ------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        return create(self, spec)

    def container_start(self, id: str) -> None:
        start(self, id)

    # -- inspect / list ------------------------------------------------------
    def container_inspect(self, ref: str) -> Container:
        id = self.records.resolve(ref)
        meta = self._meta(id)
        state, status = self._state(id)
        return self.records.snapshot(id, meta, state, status)

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        self.check_lxcpath()
        out: list[Container] = []
        ids = self.store.ids()
        if name is not None:
            owner = self.store.name_owner(name)
            ids = [owner] if owner in ids else []
        for cid in ids:
            try:
                meta = self._meta(cid)
                if not labels_match(meta["labels"], labels):
                    continue
                state, status = self._state(cid)
            except (NotFound, OSError, ValueError):
                continue  # removed meanwhile
            if not all and state not in LIVE:
                continue
            out.append(self.records.snapshot(cid, meta, state, status))
        out.sort(key=lambda c: c.created_at or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
        return out

    # -- wait / logs ---------------------------------------------------------
    def container_wait(self, id: str, *, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        while True:
            state, status = self._state(id)
            if state is ContainerState.EXITED:
                code = status.get("exit_code")
                return int(code) if code is not None else 255
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise EngineTimeout(f"container {id[:12]} did not exit within {timeout}s")
            if deadline is None and self.store.monitor_alive(id):
                # The monitor writes the exit, then lets go of its lock.
                self.store.await_monitor(id)
                continue
            left = _POLL if deadline is None else deadline - now
            time.sleep(max(0.0, min(pause, left)))
            pause = min(pause * 1.5, 0.02)

    def container_logs(
        self,
        id: str,
        *,
        stdout: bool = True,
        stderr: bool = True,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
    ) -> Iterator[LogLine]:
        self._meta(id)
        state, _ = self._state(id)
        live = state in LIVE

        def running() -> bool:
            try:
                return self._state(id)[0] in LIVE
            except NotFound:
                return False

        return logread.container_lines(
            self.store.path(id, "log"),
            stdout=stdout,
            stderr=stderr,
            follow=follow,
            since=since,
            tail=tail,
            live=live,
            running=running,
        )

    # -- exec ----------------------------------------------------------------
    def container_exec(
        self,
        id: str,
        command: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        return exec_in(self, id, command, env=env, workdir=workdir, user=user)

    # -- pause / stop / kill / remove ----------------------------------------
    def container_pause(self, id: str) -> None:
        control.pause(self, id, frozen=True)

    def container_unpause(self, id: str) -> None:
        control.pause(self, id, frozen=False)

    def container_stop(self, id: str, *, timeout: float) -> None:
        control.stop(self, id, timeout=timeout)

    def container_kill(self, id: str, *, signal: str) -> None:
        control.kill(self, id, signal=signal)

    def container_restart(self, id: str, *, timeout: float) -> None:
        control.restart(self, id, timeout=timeout)

    def container_remove(self, id: str, *, force: bool = False) -> None:
        control.remove(self, id, force=force)

    # -- copy ----------------------------------------------------------------
    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        return containerfs.stat_path(self, id, path)

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        containerfs.put_archive(self, id, path, data)

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        return containerfs.get_archive(self, id, path)

    # -- stats ---------------------------------------------------------------
    def container_stats(self, id: str) -> Stats:
        meta = self._meta(id)
        state, status = self._state(id)
        if state not in LIVE:
            return Stats(
                cpu_seconds=0.0, memory_bytes=0, memory_limit=meta["resources"]["memory"], pids=0
            )
        use = self.host.cgroups.usage(status.get("cgroups") or {})
        limit = use.memory_limit if meta["resources"]["memory"] is not None else None
        return Stats(
            cpu_seconds=use.cpu_seconds,
            memory_bytes=use.memory_bytes,
            memory_limit=limit,
            pids=use.pids,
        )
