"""Input checks shared by every engine: done once, in the core, before any engine call.

A value that any supported engine cannot carry is refused here for all of them
with :class:`~enginekit.errors.InvalidSpec`, so a program that works on one
engine works on every engine. Messages name the field and the rule, never an
environment value.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from . import hostfacts, signals
from .errors import InvalidSpec, UnknownOption
from .models import ContainerSpec, ContainerState, FrozenDict, Mount, PortBinding
from .reference import Reference, named_registry

__all__ = [
    "NAME_RE",
    "container_ref",
    "container_spec",
    "host_path",
    "image_ref",
    "labels",
    "memory",
    "registry_of",
    "signal_name",
    "timeout",
]

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
USER_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"
USER_RE = re.compile(rf"{USER_PART}(?::{USER_PART})?")
HOSTNAME_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
HEX_RE = re.compile(r"[0-9a-f]+")

MIN_MEMORY = 6 * 1024 * 1024  # the smallest limit Docker and Podman accept
#: The longest argument or ``NAME=value`` environment string a process can be given
#: (Linux's MAX_ARG_STRLEN, 32 pages of 4 KiB with the final NUL): a longer one makes
#: the container's first exec fail, and each engine reports that its own way.
MAX_ARG_BYTES = 32 * 4096 - 1
#: The longest path component Linux takes (NAME_MAX), and the longest path inside a
#: container every engine can carry: Linux's PATH_MAX (4096 with the NUL) less 256
#: bytes for the engine's storage root on its host (``/var/lib/docker/overlay2/<id>/
#: merged`` and the like come before the path in the engine's own system calls).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096 - 1 - 256
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
NETWORKS = ("bridge", "none", "host")
SPEC_KEYS = frozenset(
    {
        "name",
        "entrypoint",
        "env",
        "workdir",
        "user",
        "labels",
        "hostname",
        "ports",
        "mounts",
        "memory",
        "cpus",
        "pids_limit",
        "network",
        "stop_signal",
    }
)


def _fail(message: str) -> InvalidSpec:
    return InvalidSpec(message)


def _text(
    field: str,
    value: Any,
    *,
    allow_empty: bool = True,
    newline: bool = True,
    utf8: bool = True,
) -> str:
    if not isinstance(value, str):
        raise _fail(f"{field} must be a str, not {type(value).__name__}")
    if not allow_empty and not value:
        raise _fail(f"{field} must not be empty")
    if "\0" in value:
        raise _fail(f"{field} must not contain a NUL character")
    if not newline and ("\n" in value or "\r" in value):
        raise _fail(f"{field} must not contain a line break")
    if utf8:
        _utf8_size(field, value)
    return value


def _utf8_size(field: str, value: str) -> int:
    """The size of ``value`` in UTF-8. A lone surrogate (``"\\udcff"``, what
    ``os.fsdecode`` makes of a byte that is not UTF-8) has none: engines carry it
    differently (a replacement character, the raw byte, or an error), so it is
    refused. The message never quotes the value."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _fail(
            f"{field} must be UTF-8 text (it holds a lone surrogate, such as '\\udcff')"
        ) from None


def name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise _fail(f"{field} must match [a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}")
    return value


def labels(value: Any, field: str = "labels") -> FrozenDict[str, str]:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise _fail(f"{field} must be a mapping of str to str")
    out: dict[str, str] = {}
    for key, val in value.items():
        _text(f"{field} key", key, allow_empty=False, newline=False)
        if "=" in key:
            raise _fail(f"{field} key {key!r} must not contain '='")
        if key != key.strip():
            raise _fail(f"{field} key {key!r} must not start or end with white space")
        _text(f"{field}[{key!r}]", val)
        out[key] = val
    return FrozenDict(out)


def label_filter(value: Any) -> FrozenDict[str, str | None] | None:
    """``{"key": "value"}`` or ``{"key": None}`` (key present), or a list of keys."""
    if value is None:
        return None
    if isinstance(value, str):
        raise _fail("labels filter must be a mapping (or a list of keys), not a str")
    if not isinstance(value, Mapping):
        if isinstance(value, Iterable):
            value = {k: None for k in value}
        else:
            raise _fail("labels filter must be a mapping")
    out: dict[str, str | None] = {}
    for key, val in value.items():
        _text("label filter key", key, allow_empty=False, newline=False)
        if val is not None:
            _text(f"label filter [{key!r}]", val)
        out[key] = val
    return FrozenDict(out)


def env(value: Any, field: str = "env") -> FrozenDict[str, str]:
    """Env names are portable shell names; values any text without NUL or line break.

    (LXC carries env in its config file, one ``KEY=VALUE`` line each: a value
    with a line break cannot be carried there, so no engine takes one.)
    """
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise _fail(f"{field} must be a mapping of str to str")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_NAME_RE.fullmatch(key):
            raise _fail(f"{field} names must match [A-Za-z_][A-Za-z0-9_.-]*")
        if not isinstance(val, str):
            raise _fail(f"{field} value of {key} must be a str, not {type(val).__name__}")
        if "\0" in val or "\n" in val or "\r" in val:
            raise _fail(f"{field} value of {key} must not contain NUL or a line break")
        if len(key) + 1 + _utf8_size(f"{field} value of {key}", val) > MAX_ARG_BYTES:
            raise _fail(
                f"{field} {key}=value is longer than {MAX_ARG_BYTES} bytes "
                "(the longest environment string a process can be given)"
            )
        out[key] = val
    return FrozenDict(out)


def argv(value: Any, field: str = "command", *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise _fail(
            f"{field} must be a list of arguments, not a string "
            f"(no shell sees it: pass ['sh', '-c', ...] to use one)"
        )
    if not isinstance(value, list | tuple):
        raise _fail(f"{field} must be a list of str")
    if not value and not allow_empty:
        raise _fail(f"{field} must not be empty")
    for item in value:
        _text(f"{field} argument", item)
        if _utf8_size(f"{field} argument", item) > MAX_ARG_BYTES:
            raise _fail(
                f"{field} argument is longer than {MAX_ARG_BYTES} bytes "
                "(the longest argument a process can be given)"
            )
    return tuple(value)


def host_path(value: Any, field: str) -> str:
    """A path on the host (``str`` or ``os.PathLike[str]``), as ``str``: not empty and
    without a NUL character (no system call can carry one), checked before any engine
    call so that every engine refuses it alike."""
    try:
        path = os.fspath(value)
    except TypeError:
        raise _fail(
            f"{field} must be a path (str or os.PathLike), not {type(value).__name__}"
        ) from None
    if not isinstance(path, str):
        raise _fail(f"{field} must be a str path, not {type(path).__name__}")
    # A lone surrogate is how Python spells a file name that is not UTF-8: allowed here.
    return _text(field, path, allow_empty=False, utf8=False)


def abs_path(value: Any, field: str) -> str:
    """An absolute path inside a container (or a mount source): one Linux can take,
    whichever engine gets it (a longer one fails in each engine its own way)."""
    _text(field, value, allow_empty=False, newline=False)
    if not value.startswith("/"):
        raise _fail(f"{field} must be an absolute path")
    if _utf8_size(field, value) > MAX_PATH_BYTES:
        raise _fail(f"{field} is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in value.split("/")):
        raise _fail(f"{field} has a component longer than {MAX_NAME_BYTES} bytes")
    return str(value)


def user(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _fail("user must be a name, uid or uid:gid")
        return str(value)
    if not isinstance(value, str) or not USER_RE.fullmatch(value):
        raise _fail("user must be a name, uid or uid:gid (name[:group])")
    return value


def hostname(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 63 or not HOSTNAME_RE.fullmatch(value):
        raise _fail("hostname must be an RFC 1123 host name of at most 63 characters")
    return value


def memory(value: Any) -> int:
    """Bytes from an int or a string with a unit: ``"64m"``, ``"1g"``, ``"512k"``, ``"64MiB"``."""
    if isinstance(value, bool):
        raise _fail("memory must be a number of bytes or a size such as '64m'")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", value.lower())
        if not m:
            raise _fail(f"memory {value!r} is not a size (use bytes or e.g. '64m', '1g')")
        result = int(float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise _fail("memory must be a number of bytes or a size such as '64m'")
    if result < MIN_MEMORY:
        raise _fail("memory must be at least 6 MiB (6291456 bytes)")
    return result


def cpus(value: Any, available: int | None = None) -> float:
    """CPUs as a number from 0.01 up to ``available``, the CPUs of the engine's host
    (None: no upper bound checked here; :func:`container_spec` checks it against
    the engine's host once everything else has passed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("cpus must be a number")
    result = float(value)
    if not math.isfinite(result) or result < 0.01:
        raise _fail(_cpus_range(available))
    if available is not None and result > available:
        raise _fail(_cpus_range(available))
    return round(result, 2)


def _cpus_range(available: int | None) -> str:
    if available is None:
        return "cpus must be at least 0.01 (and at most the CPUs of the engine's host)"
    return f"cpus must be between 0.01 and {available} (the CPUs of the engine's host)"


def positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(f"{field} must be a positive int")
    return value


def timeout(value: Any, field: str = "timeout") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{field} must be a number of seconds or None")
    if not math.isfinite(value) or value < 0:
        raise _fail(f"{field} must be >= 0")
    return float(value)


def signal_name(value: Any, field: str = "signal") -> str:
    """``"SIGTERM"``, ``"TERM"``, ``"sigterm"`` or ``15`` -> ``"SIGTERM"``.

    The signals with a name of their own (:data:`enginekit.signals.SIGNALS`,
    aliases too); not the real-time ones between ``SIGRTMIN`` and ``SIGRTMAX``.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(f"{field} must be a signal name or number")
    try:
        name = signals.signal_name(value)
    except InvalidSpec:
        name = ""
    if name not in signals.SIGNALS:
        raise _fail(f"{field} {value!r} is not a signal")
    if name in ("SIGSTOP", "SIGCONT") and field == "stop_signal":
        raise _fail(f"{field} cannot be {name}")
    return name


def network(value: Any) -> str:
    if value not in NETWORKS:
        raise _fail(f"network must be one of {', '.join(NETWORKS)}")
    return str(value)


def _port_number(value: Any, field: str, *, allow_zero: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{field} must be an int port number")
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise _fail(f"{field} must be between {low} and 65535")
    return value


def _host_ip(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("host ip must be an IP address string")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise _fail(f"host ip {value!r} is not an IP address") from exc


def ports(value: Any, default_ip: str = hostfacts.LOCAL_ADDRESS) -> tuple[PortBinding, ...]:
    """``{8080: None, "53/udp": 5353, 80: ("127.0.0.1", 8000)}`` -> bindings.

    The host side defaults to ``default_ip`` (the address a client reaches the
    engine's published ports at: 127.0.0.1 for an engine on this machine), also
    for a host ip of None (``(None, 8000)``), and, with port None or 0, any free port.
    """
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _fail("ports must be a mapping of container port to host port")
    out: list[PortBinding] = []
    for key, host in value.items():
        protocol = "tcp"
        if isinstance(key, str):
            number, _, proto = key.partition("/")
            protocol = proto.lower() or "tcp"
            if protocol not in ("tcp", "udp") or not number.isdigit():
                raise _fail(f"container port {key!r} must be like 80, '80/tcp' or '53/udp'")
            key = int(number)
        cport = _port_number(key, "container port", allow_zero=False)
        host_ip = default_ip
        host_port: int | None
        if host is None:
            host_port = None
        elif isinstance(host, PortBinding):
            host_ip, host_port = _host_ip(host.host_ip), host.host_port
        elif isinstance(host, tuple | list):
            if len(host) != 2:
                raise _fail("a host binding must be a port or (host_ip, host_port)")
            host_ip = default_ip if host[0] is None else _host_ip(host[0])
            host_port = (
                None if host[1] is None else _port_number(host[1], "host port", allow_zero=True)
            )
        else:
            host_port = _port_number(host, "host port", allow_zero=True)
        out.append(
            PortBinding(
                container_port=cport,
                protocol=protocol,
                host_ip=host_ip,
                host_port=host_port or None,
            )
        )
    seen = set()
    for b in out:
        key2 = (b.container_port, b.protocol)
        if key2 in seen:
            raise _fail(f"container port {b.container_port}/{b.protocol} is given twice")
        seen.add(key2)
    return tuple(sorted(out, key=lambda b: (b.container_port, b.protocol)))


_BAD_MOUNT_CHARS = re.compile(r"[\s:,\0]")


def _mount_path(value: Any, field: str) -> str:
    path = abs_path(value, field)
    if _BAD_MOUNT_CHARS.search(path):
        raise _fail(f"{field} must not contain white space, ':' or ','")
    return os.path.normpath(path)


def mounts(value: Any, exists: Callable[[str], bool] | None = os.path.exists) -> tuple[Mount, ...]:
    """Bind mounts: a list of ``Mount`` or ``"SRC:DST[:ro|rw]"``, or ``{SRC: DST}``
    / ``{SRC: {"bind": DST, "mode": "ro"}}`` as docker-py takes them.

    ``exists`` says whether a source exists on the engine's host (None: not looked
    for here; :func:`container_spec` asks the engine's host last)."""
    if value is None:
        return ()
    items: list[Mount] = []
    if isinstance(value, Mapping):
        for src, dst in value.items():
            if isinstance(dst, Mapping):
                mode = dst.get("mode", "rw")
                if mode not in ("ro", "rw"):
                    raise _fail("mount mode must be 'ro' or 'rw'")
                items.append(Mount(source=src, target=dst.get("bind", ""), read_only=mode == "ro"))
            else:
                items.append(Mount(source=src, target=dst))
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mount):
                items.append(item)
            elif isinstance(item, str):
                parts = item.split(":")
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                    raise _fail("a mount string must be 'SRC:DST' or 'SRC:DST:ro'")
                items.append(Mount(source=parts[0], target=parts[1], read_only=parts[2:] == ["ro"]))
            else:
                raise _fail("mounts must be Mount objects or 'SRC:DST[:ro]' strings")
    else:
        raise _fail("mounts must be a list or a mapping")
    out = []
    targets = set()
    for m in items:
        src = _mount_path(m.source, "mount source")
        dst = _mount_path(m.target, "mount target")
        if dst == "/":
            raise _fail("mount target must not be /")
        if dst in targets:
            raise _fail("two mounts share a target")
        targets.add(dst)
        out.append(Mount(source=src, target=dst, read_only=bool(m.read_only)))
    if exists is not None:
        _sources_exist(out, exists)
    return tuple(out)


def _sources_exist(items: Iterable[Mount], exists: Callable[[str], bool]) -> None:
    for m in items:
        if not exists(m.source):
            raise _fail("mount source does not exist on the engine's host")


def image_ref(value: Any, field: str = "image") -> str:
    """Check an image reference and return it as Docker shows it
    (:attr:`~enginekit.reference.Reference.familiar`: ``busybox`` and
    ``docker.io/library/busybox`` -> ``busybox:latest``, ``library/app:1`` ->
    ``app:1``), so that every engine gets the same name for the same reference.

    Ids (``sha256:<hex>``) and id prefixes of 12+ hex characters pass unchanged.
    """
    if not isinstance(value, str) or not value:
        raise _fail(f"{field} must be a non-empty str")
    if value.startswith("sha256:"):
        digest = value[len("sha256:") :]
        if not HEX_RE.fullmatch(digest) or not 12 <= len(digest) <= 64:
            raise _fail(f"{field} {value!r} is not a valid image id")
        return value
    if 12 <= len(value) <= 64 and HEX_RE.fullmatch(value):
        return value
    ref = Reference.parse(value, field=field)
    if ref.digest is not None:
        raise _fail(f"{field}: digest references are not supported")
    return ref.familiar


def registry_of(ref: str) -> str | None:
    """The registry host a reference names itself (``127.0.0.1:5000/app:1`` ->
    ``127.0.0.1:5000``), or None for an id and for a name without one (``app:1``:
    a local name here, which enginekit never sends to a public registry).
    See :func:`enginekit.reference.named_registry`."""
    return named_registry(ref)


def container_ref(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail("a container ref must be a Container, an id, an id prefix or a name")
    _text("container ref", value, newline=False)
    return value


def container_state(value: Any) -> ContainerState | None:
    if value is None or isinstance(value, ContainerState):
        return value
    try:
        return ContainerState(str(value).lower())
    except ValueError as exc:
        raise _fail(f"state must be a ContainerState, not {value!r}") from exc


#: A port binding whose host ip was not given, until the engine's published address is known.
_UNSET_IP = ""


def container_spec(
    image: Any, command: Any, spec: Mapping[str, Any], *, host: object | None = None
) -> ContainerSpec:
    """Check and normalise everything ``create``/``run`` take.

    ``host`` is the driver of the engine that will get the spec: what depends on
    where the engine runs (the CPUs of its host, whether a mount source exists
    there, the address a port is published on by default: see
    :mod:`enginekit.hostfacts`) is asked of it, after every check of the spec's
    form has passed and before anything is created. None: an engine on this machine.
    """
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        # A keyword the method does not take: a TypeError, as Python's, and an InvalidSpec.
        raise UnknownOption(
            f"unknown container spec key(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(SPEC_KEYS))})"
        )
    if not isinstance(image, str) or not image:
        raise _fail("image must be a non-empty str")
    image_ref(image)  # checked; passed on as the caller wrote it
    get = spec.get
    checked = ContainerSpec(
        image=image,
        command=None if command is None else argv(command, "command"),
        entrypoint=None
        if get("entrypoint") is None
        else argv(get("entrypoint"), "entrypoint", allow_empty=True),
        name=None if get("name") is None else name(get("name")),
        env=env(get("env")),
        workdir=None if get("workdir") is None else abs_path(get("workdir"), "workdir"),
        user=None if get("user") is None else user(get("user")),
        labels=labels(get("labels")),
        hostname=None if get("hostname") is None else hostname(get("hostname")),
        ports=ports(get("ports"), default_ip=_UNSET_IP),
        mounts=mounts(get("mounts"), exists=None),
        memory=None if get("memory") is None else memory(get("memory")),
        cpus=None if get("cpus") is None else cpus(get("cpus")),
        pids_limit=None
        if get("pids_limit") is None
        else positive_int(get("pids_limit"), "pids_limit"),
        network="bridge" if get("network") is None else network(get("network")),
        stop_signal=None
        if get("stop_signal") is None
        else signal_name(get("stop_signal"), "stop_signal"),
    )
    return on_engine_host(checked, host)


def on_engine_host(spec: ContainerSpec, host: object | None) -> ContainerSpec:
    """``spec`` checked against the engine's host (``host``: its driver, None for
    this machine): ``cpus`` at most its CPUs, every mount source existing there,
    and a port binding without a host ip published on its published address."""
    if spec.cpus is not None:
        cpus(spec.cpus, hostfacts.host_cpus(host))
    if spec.mounts:
        _sources_exist(spec.mounts, lambda path: hostfacts.host_path_exists(host, path))
    if any(b.host_ip == _UNSET_IP for b in spec.ports):
        address = hostfacts.published_address(host)
        bindings = tuple(
            attrs.evolve(b, host_ip=address) if b.host_ip == _UNSET_IP else b for b in spec.ports
        )
        spec = attrs.evolve(spec, ports=bindings)
    return spec


def build_args(value: Any) -> FrozenDict[str, str]:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise _fail("build_args must be a mapping of str to str")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_NAME_RE.fullmatch(key):
            raise _fail("build_args names must match [A-Za-z_][A-Za-z0-9_.-]*")
        _text(f"build_args value of {key}", val, newline=False)
        out[key] = val
    return FrozenDict(out)
