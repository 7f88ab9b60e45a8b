"""The LXC configuration of an application container, written by enginekit.

One function, :func:`render`, turns :class:`LxcSettings` into the text of an
LXC config file plus the environment ``lxc-execute`` must be given for the
variables the file names without a value (LXC's ``lxc.environment = NAME``
inherits ``NAME`` from the tool's environment: the only way to carry values
that a config line cannot hold exactly, such as ones with a newline).

The container is an "application container" as Docker's: an init as PID 1
(LXC's own, from ``lxc-execute``), Docker's default capability set, a device
allow-list, no console, and ``/dev/.enginekit/busybox`` (a static busybox
bind-mounted into the tmpfs ``/dev``, as Docker puts ``docker-init`` at
``/dev/init``) which drops the ``container=lxc`` variable LXC always adds before
executing the command, so ``env`` shows what it shows on Docker.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Literal

import attrs

from enginekit.toolkit.errors import EngineUnavailable, InvalidSpec
from enginekit.toolkit.models import Mount

from .helper import ENV_HELPER, helper_argv
from .lxchost import CgroupConfig
from .users import ExecUser

__all__ = [
    "DEFAULT_PATH",
    "ENV_HELPER",
    "LxcSettings",
    "container_env",
    "find_helper",
    "helper_argv",
    "render",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set.
_CAPS = (
    "chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service "
    "net_raw sys_chroot mknod audit_write setfcap"
)
# Names whose value, inherited by the host-side lxc-execute (and by the hooks
# it runs through /bin/sh), would change how that host process runs: never
# passed through its environment.
_HOST_SENSITIVE_PREFIXES = ("LD_", "LXC_", "GCONV_", "MALLOC_", "GLIBC_", "PYTHON", "BASH_FUNC_")
_HOST_SENSITIVE = frozenset(
    {"LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "TZDIR"}
    | {"ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "CDPATH"}
)

_HELPER_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/lib/initramfs-tools/bin/busybox")


def _is_static_elf(path: str) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        p_type = int.from_bytes(table[i * phentsize : i * phentsize + 4], order)
        if p_type == 3:  # PT_INTERP
            return False
    return True


_helper_cache: str | None = None


def find_helper() -> str:
    """The host path of a static busybox (``ENGINEKIT_LXC_BUSYBOX`` overrides)."""
    global _helper_cache
    if _helper_cache is not None:
        return _helper_cache
    override = os.environ.get("ENGINEKIT_LXC_BUSYBOX")
    for cand in (override,) if override else _HELPER_CANDIDATES:
        if os.path.isfile(cand) and _is_static_elf(cand):
            _helper_cache = os.path.realpath(cand)
            return _helper_cache
    raise EngineUnavailable(
        "no static busybox found on the host (needed inside LXC containers to give "
        "commands the environment Docker gives)",
        address=override or _HELPER_CANDIDATES[0],
        hint="apt-get install busybox-static",
    )


def container_env(
    *,
    image_env: Mapping[str, str],
    env: Mapping[str, str],
    hostname: str,
    home: str,
) -> dict[str, str]:
    """The environment Docker gives a container, in Docker's order: PATH,
    HOSTNAME, the image's variables, the given ones, then HOME if unset."""
    out: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    for key, value in image_env.items():
        out[key] = value
    for key, value in env.items():
        out[key] = value
    out.setdefault("HOME", home)
    return out


@attrs.frozen(kw_only=True)
class LxcSettings:
    rootfs: str
    hostname: str
    env: Mapping[str, str]
    workdir: str = "/"
    user: ExecUser
    network: str = "none"  # "none" | "host" | "bridge"
    bridge: str = "lxcbr0"
    ipv4: str | None = None  # "10.0.3.7/24" on the bridge
    gateway: str | None = None
    hwaddr: str | None = None
    mounts: tuple[Mount, ...] = ()
    #: The cgroup part (limits, device allow-list): see :mod:`enginekit_lxc.lxchost`.
    cgroup: CgroupConfig


def _line_safe(value: str) -> bool:
    return not any(c in value for c in "\n\r\0") and value == value.rstrip(" \t\v\f")


def _fstab_escape(path: str) -> str:
    out = []
    for ch in path:
        if ch in " \t\n\\":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return "".join(out)


def render(s: LxcSettings) -> tuple[str, dict[str, str]]:
    """The config text and the variables ``lxc-execute`` must inherit."""
    lines = [
        f"lxc.uts.name = {s.hostname}",
        f"lxc.rootfs.path = dir:{s.rootfs}",
        "lxc.apparmor.profile = unconfined",
        "lxc.mount.auto = proc:mixed sys:mixed" + (" cgroup:mixed" if s.cgroup.mount_auto else ""),
        "lxc.autodev = 1",
        "lxc.console.path = none",
        "lxc.tty.max = 0",
        # No session keyring per container: the kernel's key quota runs out
        # with many containers, and LXC then complains on the container's stderr.
        "lxc.keyring.session = 0",
        f"lxc.cap.keep = {_CAPS}",
        *s.cgroup.lines,
        f"lxc.mount.entry = {_fstab_escape(find_helper())} {ENV_HELPER.lstrip('/')} none "
        "bind,ro,create=file 0 0",
        f"lxc.init.cwd = {s.workdir}",
        f"lxc.init.uid = {s.user.uid}",
        f"lxc.init.gid = {s.user.gid}",
        f"lxc.init.groups = {','.join(str(g) for g in s.user.groups)}",
    ]
    if not _line_safe(s.workdir) or not _line_safe(s.hostname) or not s.hostname:
        raise InvalidSpec("the workdir and hostname must fit on one config line")
    inherit: dict[str, str] = {}
    for key, value in s.env.items():
        if not key or "=" in key or not _line_safe(key) or key != key.strip():
            raise InvalidSpec(f"environment variable name {key!r} cannot be set in LXC")
        if _line_safe(value):
            lines.append(f"lxc.environment = {key}={value}")
        elif key.startswith(_HOST_SENSITIVE_PREFIXES) or key in _HOST_SENSITIVE or "\0" in value:
            raise InvalidSpec(
                f"the value of environment variable {key} cannot be carried by LXC "
                "(it has a newline or trailing whitespace)"
            )
        else:
            lines.append(f"lxc.environment = {key}")
            inherit[key] = value
    if s.network == "none":
        lines.append("lxc.net.0.type = empty")
    elif s.network == "host":
        lines.append("lxc.net.0.type = none")
    elif s.network == "bridge":
        lines += [
            "lxc.net.0.type = veth",
            f"lxc.net.0.link = {s.bridge}",
            "lxc.net.0.flags = up",
            "lxc.net.0.name = eth0",
        ]
        if s.hwaddr:
            lines.append(f"lxc.net.0.hwaddr = {s.hwaddr}")
        if s.ipv4:
            # With the broadcast address given: LXC would otherwise set 0.0.0.255.
            iface = ipaddress.IPv4Interface(s.ipv4)
            lines.append(f"lxc.net.0.ipv4.address = {s.ipv4} {iface.network.broadcast_address}")
        if s.gateway:
            lines.append(f"lxc.net.0.ipv4.gateway = {s.gateway}")
    else:
        raise InvalidSpec(f"network {s.network!r} is not one LXC containers can use")
    for m in s.mounts:
        kind = "dir" if os.path.isdir(m.source) else "file"
        opts = "bind,ro" if m.read_only else "bind"
        target = m.target.lstrip("/")
        if not target or not _line_safe(m.source) or not _line_safe(target):
            raise InvalidSpec(f"bind mount target {m.target!r} cannot be used")
        lines.append(
            f"lxc.mount.entry = {_fstab_escape(m.source)} {_fstab_escape(target)} none "
            f"{opts},create={kind} 0 0"
        )
    return "\n".join(lines) + "\n", inherit
