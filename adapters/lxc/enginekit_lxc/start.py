"""Starting a container: its rootfs mounted, LXC's config written, its monitor launched.

The monitor (:mod:`enginekit_lxc.monitor`) runs ``lxc-execute`` with the plan
written here (``run.json``) and answers once the container runs or could not
start; from then on the monitor owns the mount and the address lease.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import stat
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from enginekit.toolkit.errors import EngineError, InvalidSpec
from enginekit.toolkit.models import Mount

from .cgroupfs import read_stripped
from .cgroups import Limits
from .errors import tool_path
from .fsroot import Root
from .helper import helper_argv, not_found_argv
from .imagefit import port_refused, workdir_error
from .launcher import await_lxc_gone
from .lxcconf import LxcSettings, container_env, render
from .monitor import mount_overlay, unmount
from .netalloc import allocate, release
from .records import LIVE
from .users import resolve_user

if TYPE_CHECKING:
    from .driver import LxcDriver

__all__ = ["start"]

_START_TIMEOUT = 60.0


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


def lxc_stop(driver: LxcDriver, lxc_name: str) -> None:
    """``lxc-stop -k``: LXC tears down an instance of ``lxc_name`` that lingers."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [tool_path("lxc-stop"), "-k", "-n", lxc_name, "-P", driver.lxcpath],
            capture_output=True,
            timeout=30,
            check=False,
        )


def start(driver: LxcDriver, id: str) -> None:
    """Start container ``id`` (nothing if it runs or is paused)."""
    meta = driver.records.meta(id)
    with driver.store.container_lock(id):
        if driver.records.state(id)[0] in LIVE:
            return
        if not await_lxc_gone(driver.lxcpath, meta["lxc_name"]):
            # Still there: LXC tears the old instance down.
            lxc_stop(driver, meta["lxc_name"])
            await_lxc_gone(driver.lxcpath, meta["lxc_name"])
        _start_locked(driver, id, meta)


def _start_locked(driver: LxcDriver, id: str, meta: dict[str, Any]) -> None:
    cdir = driver.store.dir(id)
    lower = driver.images.rootfs(meta["image_id"])
    rootfs = os.path.join(cdir, "rootfs")
    lxc_name = meta["lxc_name"]
    lxc_dir = os.path.join(driver.lxcpath, lxc_name)
    host = driver.host
    with contextlib.suppress(FileNotFoundError):
        os.unlink(driver.store.path(id, "signal"))
    try:
        if not os.path.ismount(rootfs):
            mount_overlay(lower, os.path.join(cdir, "upper"), os.path.join(cdir, "work"), rootfs)
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
        if program is not None:
            inner = helper_argv([program, *command[1:]])
        else:
            inner = not_found_argv(command[0])
        ip = gateway = None
        if meta["network"] == "bridge":
            ip, gateway, lease = allocate(cdir, driver.bridge)
        res = meta["resources"]
        etc_mounts = _etc_files(cdir, meta, ip, skip=linked)
        settings = LxcSettings(
            rootfs=rootfs,
            hostname=meta["hostname"],
            env=runtime_env,
            workdir=meta["workdir"] or "/",
            user=user,
            network=meta["network"],
            bridge=driver.bridge,
            ipv4=ip,
            gateway=gateway,
            hwaddr=_hwaddr(ip),
            mounts=etc_mounts + tuple(Mount(**m) for m in meta["mounts"]),
            cgroup=host.cgroup_config(
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
            tool_path("lxc-execute"), "-n", lxc_name, "-P", driver.lxcpath, "-f", cfg,
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
            "cgroup": {"version": host.cgroup_version, "root": host.cgroups.root},
        }
        fd = os.open(os.path.join(cdir, "run.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(plan, fh)
        handed_over = True
        message = driver.launcher.launch(cdir, timeout=_START_TIMEOUT)
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
            or host.refused(message["error"])
            or EngineError(f"cannot start container {id[:12]}: {message['error']}")
        )


def _etc_files(
    cdir: str, meta: Mapping[str, Any], ip: str | None, *, skip: set[str]
) -> tuple[Mount, ...]:
    """``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` bind-mounted
    from the container's directory, as Docker provides them (not over a
    symlink of the image's: LXC mounts over no symlink)."""
    hostname = meta["hostname"]
    if meta["network"] == "host":
        hosts = read_stripped("/etc/hosts") or "127.0.0.1\tlocalhost"
    else:
        hosts = (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
            "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters"
        )
        if ip:
            hosts += f"\n{ip.split('/')[0]}\t{hostname}"
    resolv = read_stripped("/etc/resolv.conf") or ""
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
