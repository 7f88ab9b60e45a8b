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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import ipaddress
import json
import os
import platform
import secrets
import shutil
import signal as _signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

from enginekit.capabilities import Capability
from enginekit.driver import ProgressCallback
from enginekit.errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    InvalidSpec,
    NotFound,
    Unsupported,
)
from enginekit.models import (
    BuildRequest,
    Container,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecResult,
    FrozenDict,
    Image,
    LogLine,
    Mount,
    PathStat,
    PortBinding,
    Resources,
    Stats,
)

from . import copyops, logread
from .attach import attach
from .cgroups import Limits
from .errors import HINT, tool_path
from .fsroot import Root
from .helper import helper_argv, not_found_argv
from .imagefit import check_workdir, port_refused, workdir_error
from .launcher import MonitorLauncher, await_lxc_gone
from .lxcconf import LxcSettings, container_env, find_helper, render
from .lxchost import LxcHost
from .lxchost import detect as detect_host
from .monitor import _now, _proc_starttime, mount_overlay, unmount
from .netalloc import allocate, release
from .store import ContainerStore, remove_tree
from .users import resolve_user

__all__ = ["DEFAULT_STORAGE_ROOT", "LxcDriver"]

DEFAULT_STORAGE_ROOT = "/var/lib/enginekit/lxc"
ENGINE = "lxc"

_STATES = {"created": ContainerState.CREATED, "exited": ContainerState.EXITED}
_POLL = 0.01
_START_TIMEOUT = 60.0


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _dead(pid: object) -> bool:
    """Whether ``pid`` ended (a zombie not yet reaped counts as ended)."""
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X", b"x")
    except (OSError, IndexError):
        return True


def _hwaddr(ip: str | None) -> str | None:
    """A MAC derived from the address, as Docker does (02:42 + the IPv4 octets).

    Leases hand an address to the next container soon after the last one let
    it go; with the same MAC the host's neighbour entry for that address stays
    right, where a random MAC left connections to published ports stalled
    until the stale entry expired.
    """
    if ip is None:
        return None
    octets = ipaddress.IPv4Interface(ip).ip.packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)


def _read_first(path: str) -> str | None:
    """A small file's text, stripped (None if unreadable); cheap: inspect uses it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def _signal_number(name: str) -> int:
    try:
        return int(_signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError as exc:
        raise InvalidSpec(f"{name!r} is not a signal") from exc


class LxcDriver:
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
        self._address = address or os.environ.get("LXC_PATH") or None
        self.storage_root = storage_root or DEFAULT_STORAGE_ROOT
        self.bridge = bridge
        self.store = ContainerStore(os.path.join(self.storage_root, "containers"))
        self._lock = threading.Lock()
        self._lxcpath: str | None = self._address
        self._images: Any = None
        self._meta_cache: dict[str, dict[str, Any]] = {}
        self._static_cache: dict[str, dict[str, Any]] = {}
        self._host: LxcHost | None = None
        self._launcher = MonitorLauncher()

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
        self._check_lxcpath()
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

    def _check_lxcpath(self) -> None:
        # LXC has no daemon to refuse a wrong address: a missing LXC path is
        # this engine's "not reachable", on every call that would use it.
        if not os.path.isdir(self.lxcpath):
            raise EngineUnavailable(
                f"the LXC path {self.lxcpath} does not exist", address=self.lxcpath, hint=HINT
            )

    def info(self) -> EngineInfo:
        self._check_lxcpath()
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
        self._launcher.close()
        self._meta_cache.clear()
        self._static_cache.clear()

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
        self.images.remove(ref, force=force, in_use=self._image_in_use)

    def image_save(self, ref: str, path: str) -> None:
        self.images.save(ref, path)

    def image_load(self, path: str) -> list[Image]:
        return self.images.load(path)  # type: ignore[no-any-return]

    def image_pull(self, ref: str) -> Image:
        image: Image = self.images.pull(ref)
        return image

    def image_push(self, ref: str) -> None:
        self.images.push(ref)

    def _image_in_use(self, image_id: str) -> bool:
        for cid in self.store.ids():
            with contextlib.suppress(OSError, ValueError):
                if self._meta(cid).get("image_id") == image_id:
                    return True
        return False

    # -- container records ---------------------------------------------------
    def _meta(self, id: str) -> dict[str, Any]:
        meta = self._meta_cache.get(id)
        if meta is None:
            try:
                meta = self.store.read_meta(id)
            except FileNotFoundError as exc:
                raise ContainerNotFound(f"no such container: {id}") from exc
            except (OSError, ValueError) as exc:
                raise EngineError(f"cannot read container {id[:12]}: {exc}") from exc
            self._meta_cache[id] = meta
        return meta

    def _resolve(self, ref: str) -> str:
        if len(ref) == 64 and (ref in self._meta_cache or self.store.exists(ref)):
            return ref  # a removed container then fails on its status
        owner = self.store.name_owner(ref) if "/" not in ref and ref not in (".", "..") else None
        if owner and self.store.exists(owner):
            return owner
        if len(ref) >= 12 and all(c in "0123456789abcdef" for c in ref):
            found = [i for i in self.store.ids() if i.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise Conflict(f"container id prefix {ref} is ambiguous")
        raise ContainerNotFound(f"no such container: {ref}")

    def _status(self, id: str) -> dict[str, Any]:
        try:
            return self.store.read_status(id)
        except FileNotFoundError as exc:
            self._meta_cache.pop(id, None)
            self._static_cache.pop(id, None)
            raise ContainerNotFound(f"no such container: {id}") from exc
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read the state of container {id[:12]}: {exc}") from exc

    def _live_state(self, id: str, status: dict[str, Any]) -> tuple[ContainerState, dict[str, Any]]:
        """The state of a container whose status says running (recovering a dead monitor)."""
        if self.store.monitor_alive(id) or self._init_alive(status):
            if self.host.cgroups.frozen(status.get("cgroups") or {}):
                return ContainerState.PAUSED, status
            return ContainerState.RUNNING, status
        status = self._recover(id)
        return _STATES.get(status.get("state", ""), ContainerState.EXITED), status

    @staticmethod
    def _init_alive(status: Mapping[str, Any]) -> bool:
        pid = status.get("pid")
        return isinstance(pid, int) and _proc_starttime(pid) == status.get("pid_start")

    def _recover(self, id: str) -> dict[str, Any]:
        """Write down the exit of a container whose monitor died."""
        with self.store.container_lock(id):
            status = self._status(id)
            if status.get("state") != "running":
                return status
            if self.store.monitor_alive(id) or self._init_alive(status):
                return status
            sent = _read_first(self.store.path(id, "signal"))
            code = 128 + int(sent) if sent and sent.isdigit() else 255
            status.update(
                state="exited",
                exit_code=code,
                finished_at=_now(),
                monitor_pid=None,
                recovered=True,
            )
            with contextlib.suppress(OSError):
                unmount(self.store.path(id, "rootfs"))
            release(status.get("lease"), self.store.dir(id))
            self.store.write_status(id, status)
            return status

    def _state(self, id: str) -> tuple[ContainerState, dict[str, Any]]:
        status = self._status(id)
        if status.get("state") == "running":
            return self._live_state(id, status)
        return _STATES.get(status.get("state", ""), ContainerState.EXITED), status

    def _static(self, id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The parts of a snapshot that never change, built once per container."""
        fixed = self._static_cache.get(id)
        if fixed is None:
            fixed = {
                "id": id,
                "name": meta["name"],
                "image": meta["image"],
                "image_id": meta["image_id"],
                "created_at": _parse_time(meta["created_at"]),
                "labels": FrozenDict(meta["labels"]),
                "command": tuple(meta["command"] or ()),
                "entrypoint": tuple(meta["entrypoint"] or ()),
                "env": FrozenDict(meta["env"]),
                "workdir": meta["workdir"],
                "user": meta["user"] or None,
                "hostname": meta["hostname"],
                "mounts": tuple(Mount(**m) for m in meta["mounts"]),
                "resources": Resources(**meta["resources"]),
                "network": meta["network"],
                "stop_signal": meta["stop_signal"],
                "engine": ENGINE,
            }
            self._static_cache[id] = fixed
        return fixed

    def _container(
        self, id: str, meta: dict[str, Any], state: ContainerState, status: dict[str, Any]
    ) -> Container:
        live = state in (ContainerState.RUNNING, ContainerState.PAUSED)
        exited = state is ContainerState.EXITED
        ports_src = status.get("ports") if live else meta["ports"]
        return Container(
            **self._static(id, meta),
            state=state,
            exit_code=status.get("exit_code") if exited else None,
            oom_killed=bool(status.get("oom_killed")),
            started_at=_parse_time(status.get("started_at")),
            finished_at=_parse_time(status.get("finished_at")) if exited else None,
            pid=status.get("pid") if live else None,
            ports=tuple(
                PortBinding(
                    container_port=p["container_port"],
                    protocol=p["protocol"],
                    host_ip=p["host_ip"],
                    host_port=p["host_port"] or None,
                )
                for p in ports_src or ()
            ),
            raw={"meta": meta, "status": status},
        )

    # -- create --------------------------------------------------------------
    def container_create(self, spec: ContainerSpec) -> str:
        self._check_lxcpath()
        self.host.check()
        image_id = self.images.resolve(spec.image)
        config = self.images.config(image_id)
        if spec.entrypoint is not None:
            entrypoint = tuple(spec.entrypoint)
            command = tuple(spec.command) if spec.command is not None else ()
        else:
            entrypoint = tuple(config.entrypoint or ())
            command = tuple(spec.command if spec.command is not None else (config.cmd or ()))
        if not entrypoint and not command:
            raise InvalidSpec("no command specified (the image has no CMD or ENTRYPOINT)")
        for p in spec.ports:
            if p.protocol != "tcp":
                raise Unsupported(ENGINE, f"publishing {p.protocol} ports", "only tcp is relayed")
        for m in spec.mounts:
            if not os.path.exists(m.source):
                raise InvalidSpec(f"bind mount source path does not exist: {m.source}")
        if spec.workdir:
            check_workdir(self.images.rootfs(image_id), spec.workdir)
        env: dict[str, str] = dict(config.env)
        env.update(spec.env)
        id = secrets.token_hex(32)
        name = spec.name or f"lxc_{id[:12]}"
        ports = (
            []
            if spec.network == "host"
            else [
                {
                    "container_port": p.container_port,
                    "protocol": p.protocol,
                    "host_ip": p.host_ip,
                    "host_port": p.host_port or 0,
                }
                for p in spec.ports
            ]
        )
        meta: dict[str, Any] = {
            "id": id,
            "name": name,
            "lxc_name": f"ek-{id[:16]}",
            "image": spec.image,
            "image_id": image_id,
            "created_at": _now(),
            "entrypoint": list(entrypoint),
            "command": list(command),
            "env": env,
            # None when neither the spec nor the image sets one (as Docker shows it).
            "workdir": spec.workdir or config.workdir or None,
            "user": spec.user if spec.user is not None else (config.user or ""),
            # As Docker: the image's labels, with the spec's on top.
            "labels": {**config.labels, **spec.labels},
            # As Docker: the host's name on the host's network, else the short id.
            "hostname": spec.hostname
            or (socket.gethostname() if spec.network == "host" else id[:12]),
            "ports": ports,
            "mounts": [
                {"source": m.source, "target": m.target, "read_only": m.read_only}
                for m in spec.mounts
            ],
            "resources": {"memory": spec.memory, "cpus": spec.cpus, "pids_limit": spec.pids_limit},
            "network": spec.network,
            "stop_signal": spec.stop_signal or config.stop_signal or None,
        }
        cdir = self.store.dir(id)
        try:
            with self.store.lock():
                if not self.store.claim_name(name, id):
                    raise Conflict(f"the container name {name!r} is already in use")
                try:
                    os.makedirs(cdir, mode=0o700)
                    for sub in ("upper", "work", "rootfs"):
                        os.mkdir(os.path.join(cdir, sub), 0o755)
                    self.store.write_status(id, {"state": "created"})
                    self.store.write_meta(id, meta)
                except BaseException:
                    self.store.release_name(name, id)
                    self.store.delete(id)
                    raise
        except OSError as exc:
            raise EngineError(f"cannot create the container: {exc.strerror}") from exc
        return id

    # -- start ---------------------------------------------------------------
    def container_start(self, id: str) -> None:
        meta = self._meta(id)
        with self.store.container_lock(id):
            state, status = self._state(id)
            if state in (ContainerState.RUNNING, ContainerState.PAUSED):
                return
            if not await_lxc_gone(self.lxcpath, meta["lxc_name"]):
                # Still there: LXC tears the old instance down.
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        [tool_path("lxc-stop"), "-k", "-n", meta["lxc_name"], "-P", self.lxcpath],
                        capture_output=True,
                        timeout=30,
                        check=False,
                    )
                await_lxc_gone(self.lxcpath, meta["lxc_name"])
            self._start_locked(id, meta, status)

    def _start_locked(self, id: str, meta: dict[str, Any], status: dict[str, Any]) -> None:
        cdir = self.store.dir(id)
        lower = self.images.rootfs(meta["image_id"])
        rootfs = os.path.join(cdir, "rootfs")
        lxc_name = meta["lxc_name"]
        lxc_dir = os.path.join(self.lxcpath, lxc_name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.path(id, "signal"))
        try:
            if not os.path.ismount(rootfs):
                mount_overlay(
                    lower, os.path.join(cdir, "upper"), os.path.join(cdir, "work"), rootfs
                )
        except OSError as exc:
            raise EngineError(f"cannot mount the container's rootfs: {exc.strerror}") from exc
        handed_over = False
        lease: str | None = None
        try:
            command = meta["entrypoint"] + meta["command"]
            with Root(rootfs) as root:
                user = resolve_user(root, meta["user"])
                try:
                    root.makedirs(meta["workdir"] or "/")
                except OSError as exc:
                    raise workdir_error(meta["workdir"], exc) or InvalidSpec(
                        f"cannot create the working directory {meta['workdir']}: {exc.strerror}"
                    ) from exc
                runtime_env = container_env(
                    image_env=meta["env"], env={}, hostname=meta["hostname"], home=user.home
                )
                program = root.which(command[0], runtime_env["PATH"], meta["workdir"] or "/")
                linked = set()
                for name in ("hostname", "hosts", "resolv.conf"):
                    with contextlib.suppress(OSError):
                        if stat.S_ISLNK(root.lstat(f"/etc/{name}").st_mode):
                            linked.add(name)
            inner = (
                helper_argv([program, *command[1:]])
                if program is not None
                else not_found_argv(command[0])
            )
            ip = gateway = None
            if meta["network"] == "bridge":
                ip, gateway, lease = allocate(cdir, self.bridge)
            res = meta["resources"]
            etc_mounts = self._etc_files(cdir, meta, ip, skip=linked)
            settings = LxcSettings(
                rootfs=rootfs,
                hostname=meta["hostname"],
                env=runtime_env,
                workdir=meta["workdir"] or "/",
                user=user,
                network=meta["network"],
                bridge=self.bridge,
                ipv4=ip,
                gateway=gateway,
                hwaddr=_hwaddr(ip),
                mounts=etc_mounts + tuple(Mount(**m) for m in meta["mounts"]),
                cgroup=self.host.cgroup_config(
                    Limits(memory=res["memory"], cpus=res["cpus"], pids=res["pids_limit"]), lxc_name
                ),
            )
            text, inherit = render(settings)
            os.makedirs(lxc_dir, mode=0o700, exist_ok=True)
            cfg = os.path.join(lxc_dir, "config")
            fd = os.open(cfg + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(cfg + ".tmp", cfg)
            argv = [
                tool_path("lxc-execute"), "-n", lxc_name, "-P", self.lxcpath, "-f", cfg,
                "-o", os.path.join(cdir, "lxc.log"), "-l", "INFO", "-q",
                "--",
            ]  # fmt: skip
            plan = {
                "lxc_name": lxc_name,
                "argv": argv,
                "inner": inner,
                "inherit": inherit,
                "lower": lower,
                "upper": os.path.join(cdir, "upper"),
                "work": os.path.join(cdir, "work"),
                "rootfs": rootfs,
                "ports": meta["ports"],
                "ip": ip.split("/")[0] if ip else None,
                "lease": lease,
                "memory_limited": res["memory"] is not None,
                "cgroup": {"version": self.host.cgroup_version, "root": self.host.cgroups.root},
            }
            fd = os.open(
                os.path.join(cdir, "run.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
            )
            with os.fdopen(fd, "w") as fh:
                json.dump(plan, fh)
            handed_over = True
            message = self._launcher.launch(cdir, timeout=_START_TIMEOUT)
        except OSError as exc:
            raise EngineError(f"cannot start the container: {exc.strerror or exc}") from exc
        finally:
            if not handed_over:
                with contextlib.suppress(OSError):
                    unmount(rootfs)
                release(lease, cdir)
        if "error" in message:
            raise (
                port_refused(message)
                or self.host.refused(message["error"])
                or EngineError(f"cannot start container {id[:12]}: {message['error']}")
            )

    @staticmethod
    def _etc_files(
        cdir: str, meta: Mapping[str, Any], ip: str | None, *, skip: set[str]
    ) -> tuple[Mount, ...]:
        """``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` bind-mounted
        from the container's directory, as Docker provides them (not over a
        symlink of the image's: LXC mounts over no symlink)."""
        hostname = meta["hostname"]
        if meta["network"] == "host":
            hosts = _read_first("/etc/hosts") or "127.0.0.1\tlocalhost"
        else:
            hosts = (
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
                "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters"
            )
            if ip:
                hosts += f"\n{ip.split('/')[0]}\t{hostname}"
        resolv = _read_first("/etc/resolv.conf") or ""
        files = {"hostname": hostname, "hosts": hosts, "resolv.conf": resolv}
        mounts = []
        for name, text in files.items():
            if name in skip:
                continue
            path = os.path.join(cdir, name)
            with open(path, "w") as fh:
                fh.write(text + "\n" if text else "")
            mounts.append(Mount(source=path, target=f"/etc/{name}"))
        return tuple(mounts)

    # -- inspect / list ------------------------------------------------------
    def container_inspect(self, ref: str) -> Container:
        id = self._resolve(ref)
        try:
            meta = self._meta(id)
        except FileNotFoundError as exc:
            raise ContainerNotFound(f"no such container: {ref}") from exc
        state, status = self._state(id)
        return self._container(id, meta, state, status)

    def container_list(
        self,
        *,
        all: bool = False,
        labels: Mapping[str, str | None] | None = None,
        name: str | None = None,
    ) -> list[Container]:
        self._check_lxcpath()
        out: list[Container] = []
        ids = self.store.ids()
        if name is not None:
            owner = self.store.name_owner(name)
            ids = [owner] if owner in ids else []
        for cid in ids:
            try:
                meta = self._meta(cid)
                if labels:
                    have = meta["labels"]
                    if any(
                        k not in have or (v is not None and have[k] != v) for k, v in labels.items()
                    ):
                        continue
                state, status = self._state(cid)
            except (NotFound, OSError, ValueError):
                continue  # removed meanwhile
            if not all and state not in (ContainerState.RUNNING, ContainerState.PAUSED):
                continue
            out.append(self._container(cid, meta, state, status))
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
        live = state in (ContainerState.RUNNING, ContainerState.PAUSED)

        def running() -> bool:
            try:
                return self._state(id)[0] in (ContainerState.RUNNING, ContainerState.PAUSED)
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
        meta = self._meta(id)
        state, status = self._state(id)
        if state is not ContainerState.RUNNING:
            raise Conflict(f"container {id[:12]} is not running ({state.value})")
        pid = status.get("pid")
        cwd = workdir or meta["workdir"] or "/"
        try:
            with Root(f"/proc/{pid}/root") as root:
                who = resolve_user(root, user if user is not None else meta["user"])
                try:
                    cwd_ok = stat.S_ISDIR(root.stat(cwd).st_mode)
                except OSError:
                    cwd_ok = False
                full = container_env(
                    image_env=meta["env"], env=env or {}, hostname=meta["hostname"], home=who.home
                )
                program = root.which(command[0], full.get("PATH", ""), cwd) if command else None
        except FileNotFoundError as exc:
            raise Conflict(f"container {id[:12]} is not running") from exc
        if not cwd_ok:
            # What Docker answers for an exec whose working directory is missing.
            return ExecResult(
                exit_code=126,
                stderr=f"chdir to cwd ({cwd!r}) failed: no such file or directory\n".encode(),
            )
        if program is None:
            name = command[0] if command else ""
            return ExecResult(
                exit_code=127,
                stderr=f'exec: "{name}": executable file not found in $PATH\n'.encode(),
            )
        proc = attach(self.lxcpath, meta["lxc_name"], who, full, cwd, [program, *command[1:]])
        code = proc.returncode
        if code < 0:
            code = 128 - code
        if code != 0 and proc.errors:
            self._attach_failed(id, proc.errors)
        if code != 0 and self._stopping(id):
            raise Conflict(f"container {id[:12]} stopped during exec")
        return ExecResult(exit_code=code, stdout=proc.stdout, stderr=proc.stderr)

    def _attach_failed(self, id: str, errors: str) -> None:
        """lxc-attach could not run the command: the container is going away
        (``Conflict``, ``ContainerNotFound`` once gone), which its state may
        show only a moment later; else an ``EngineError`` with LXC's words."""
        for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
            time.sleep(delay)
            if self._stopping(id):
                raise Conflict(f"container {id[:12]} stopped as the exec started")
        raise EngineError(f"lxc-attach could not run the command: {errors}")

    def _stopping(self, id: str) -> bool:
        """Whether the container stopped or is stopping (its init or its
        command gone): an exec that failed then met the stop (lxc-attach
        exits 1 when there is nothing left to attach to)."""
        state, status = self._state(id)
        return state is not ContainerState.RUNNING or self._ending(status)

    def _ending(self, status: Mapping[str, Any]) -> bool:
        """Whether the container's init or command is gone (or a zombie)."""
        if not self._init_alive(status) or _dead(status.get("pid")):
            return True
        if status.get("main_pid") is None:
            return False
        main = self._main_pid(status)
        return main is None or _dead(main)

    # -- pause ---------------------------------------------------------------
    def _set_frozen(self, status: Mapping[str, Any], frozen: bool) -> None:
        """Freeze or thaw the container's cgroup and wait until it is."""
        try:
            self.host.cgroups.freeze(status.get("cgroups") or {}, frozen)
        except LookupError as exc:
            raise Unsupported(ENGINE, "pause", str(exc)) from exc
        except FileNotFoundError as exc:
            raise Conflict("the container is not running") from exc
        except TimeoutError as exc:
            raise EngineTimeout(
                f"the container did not become {'' if frozen else 'un'}frozen"
            ) from exc
        except OSError as exc:
            raise EngineError(f"cannot change the freezer state: {exc.strerror}") from exc

    def _pause(self, id: str, want: ContainerState, frozen: bool) -> None:
        state, status = self._state(id)
        if state is not want:
            raise Conflict(f"container {id[:12]} is {state.value}, not {want.value}")
        try:
            self._set_frozen(status, frozen)
        except EngineTimeout as exc:
            # A freezer does not settle while the container's processes die:
            # a stop or kill came meanwhile.
            after, now = self._state(id)
            if after is ContainerState.EXITED or self._ending(now):
                raise Conflict(f"container {id[:12]} stopped while being paused") from exc
            raise

    def container_pause(self, id: str) -> None:
        self._pause(id, ContainerState.RUNNING, True)

    def container_unpause(self, id: str) -> None:
        self._pause(id, ContainerState.PAUSED, False)

    # -- stop / kill ---------------------------------------------------------
    def _main_pid(self, status: Mapping[str, Any]) -> int | None:
        """The container's command (LXC's init's child), if still the same process."""
        pid = status.get("main_pid")
        if isinstance(pid, int) and _proc_starttime(pid) == status.get("main_start"):
            return pid
        return None

    def _signal(self, id: str, status: Mapping[str, Any], signum: int) -> None:
        with contextlib.suppress(OSError), open(self.store.path(id, "signal"), "w") as fh:
            fh.write(str(signum))
        target = self._main_pid(status)
        if target is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signum)

    def _thaw(self, status: Mapping[str, Any]) -> None:
        with contextlib.suppress(EngineError):
            self._set_frozen(status, False)

    def _await_exit(self, id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._state(id)[0] in (ContainerState.EXITED, ContainerState.CREATED):
                return True
            time.sleep(_POLL)
        return False

    def container_stop(self, id: str, *, timeout: float) -> None:
        meta = self._meta(id)
        state, status = self._state(id)
        if state not in (ContainerState.RUNNING, ContainerState.PAUSED):
            raise Conflict(f"container {id[:12]} is not running")
        signum = _signal_number(meta["stop_signal"] or "SIGTERM")
        self._signal(id, status, signum)
        if state is ContainerState.PAUSED:
            self._thaw(status)
        if self._await_exit(id, timeout):
            return
        self._kill_hard(id)

    def _kill_all(self, id: str, status: Mapping[str, Any]) -> None:
        """SIGKILL the command, then every other process of the container but
        LXC's init (which then exits with the command's 137), as the kernel
        does to a pid namespace whose PID 1 dies on Docker and Podman."""
        self._signal(id, status, _signal.SIGKILL)
        init = status.get("pid")
        for pid in self.host.cgroups.procs(status.get("cgroups") or {}):
            if pid != init:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, _signal.SIGKILL)

    def _kill_hard(self, id: str) -> None:
        state, status = self._state(id)
        if state in (ContainerState.EXITED, ContainerState.CREATED):
            return
        self._kill_all(id, status)
        if state is ContainerState.PAUSED:
            self._thaw(status)
        if self._await_exit(id, 10):
            return
        # The command is gone but the container lingers: LXC tears it down.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [tool_path("lxc-stop"), "-k", "-n", self._meta(id)["lxc_name"], "-P", self.lxcpath],
                capture_output=True,
                timeout=30,
                check=False,
            )
        if not self._await_exit(id, 30):
            raise EngineTimeout(f"container {id[:12]} did not exit after SIGKILL")

    def container_kill(self, id: str, *, signal: str) -> None:
        state, status = self._state(id)
        if state not in (ContainerState.RUNNING, ContainerState.PAUSED):
            raise Conflict(f"container {id[:12]} is not running")
        signum = _signal_number(signal)
        if signum == _signal.SIGKILL:
            self._kill_all(id, status)
            if state is ContainerState.PAUSED:
                self._thaw(status)
        else:
            self._signal(id, status, signum)

    def container_restart(self, id: str, *, timeout: float) -> None:
        with contextlib.suppress(Conflict):
            self.container_stop(id, timeout=timeout)
        self._await_monitor_gone(id)
        self.container_start(id)

    def _await_monitor_gone(self, id: str) -> None:
        deadline = time.monotonic() + 10
        while self.store.monitor_alive(id) and time.monotonic() < deadline:
            time.sleep(0.002)

    # -- remove --------------------------------------------------------------
    def container_remove(self, id: str, *, force: bool = False) -> None:
        meta = self._meta(id)
        state, _ = self._state(id)
        if state in (ContainerState.RUNNING, ContainerState.PAUSED):
            if not force:
                raise Conflict(f"container {id[:12]} is {state.value}: stop it or use force")
            self._kill_hard(id)
        self._await_monitor_gone(id)
        with self.store.container_lock(id):
            rootfs = self.store.path(id, "rootfs")
            try:
                unmount(rootfs)
            except OSError as exc:
                raise EngineError(f"cannot unmount {rootfs}: {exc.strerror}") from exc
            remove_tree(os.path.join(self.lxcpath, meta["lxc_name"]))
            with self.store.lock():
                self.store.release_name(meta["name"], id)
                # Unlink the meta first: the container vanishes from lists at once.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.store.path(id, "meta.json"))
            # Still under the container's lock: a racing exec or inspect that
            # recovers the state (``_recover``) takes the lock next and finds
            # no directory, instead of re-creating ``.lock`` or a status in it.
            self.store.delete(id)
        self._meta_cache.pop(id, None)
        self._static_cache.pop(id, None)

    # -- copy ----------------------------------------------------------------
    @contextlib.contextmanager
    def _root(self, id: str) -> Iterator[Root]:
        """The container's root: its live root while running, else its overlay
        mounted for the time of the operation."""
        meta = self._meta(id)
        state, status = self._state(id)
        if state in (ContainerState.RUNNING, ContainerState.PAUSED):
            try:
                root = Root(f"/proc/{status['pid']}/root")
            except FileNotFoundError:
                pass
            else:
                with root:
                    yield root
                return
        with self.store.container_lock(id):
            cdir = self.store.dir(id)
            rootfs = os.path.join(cdir, "rootfs")
            mounted_here = False
            if not os.path.ismount(rootfs):
                try:
                    mount_overlay(
                        self.images.rootfs(meta["image_id"]),
                        os.path.join(cdir, "upper"),
                        os.path.join(cdir, "work"),
                        rootfs,
                    )
                except OSError as exc:
                    raise EngineError(
                        f"cannot mount the container's rootfs: {exc.strerror}"
                    ) from exc
                mounted_here = True
            try:
                with Root(rootfs) as root:
                    yield root
            finally:
                if mounted_here:
                    with contextlib.suppress(OSError):
                        unmount(rootfs)

    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        with self._root(id) as root:
            try:
                return copyops.stat_path(root, path)
            except OSError as exc:
                raise _os_error(exc, path) from exc

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        with self._root(id) as root:
            try:
                copyops.put_archive(root, path, data)
            except OSError as exc:
                raise _os_error(exc, path) from exc

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        with self._root(id) as root:
            try:
                return copyops.get_archive(root, path)
            except OSError as exc:
                raise _os_error(exc, path) from exc

    # -- stats ---------------------------------------------------------------
    def container_stats(self, id: str) -> Stats:
        meta = self._meta(id)
        state, status = self._state(id)
        if state not in (ContainerState.RUNNING, ContainerState.PAUSED):
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


def _os_error(exc: OSError, path: str) -> EngineError:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound(f"no such file or directory in the container: {path}")
    if exc.errno == errno.ELOOP:
        return InvalidSpec(f"too many levels of symbolic links: {path}")
    return EngineError(f"{path}: {exc.strerror}")
