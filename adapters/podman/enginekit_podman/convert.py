"""Podman's JSON turned into enginekit models, and names between the two spellings.

States (``State.Status`` of ``GET /libpod/containers/{id}/json``):

==============  ===========  ==============================================
libpod          enginekit    why
==============  ===========  ==============================================
``configured``  CREATED      exists in the database, never started
``created``     CREATED      created (also after a start that failed)
``initialized`` CREATED      the runtime has it, the process has not started
``running``     RUNNING
``stopping``    RUNNING      the process is still alive until the signal lands
``paused``      PAUSED
``stopped``     EXITED       the process has exited; cleanup still pending
``exited``      EXITED       exited and cleaned up
``removing``    EXITED       on its way out (Docker's ``removing`` too)
``unknown``     EXITED       nothing runs that we know of
==============  ===========  ==============================================

``exit_code`` is reported only in EXITED, ``pid`` only in RUNNING/PAUSED.

What Podman adds and the contract does not show (so that a container looks
the same as on Docker):

- ``localhost/`` on local image names (``localhost/app:1`` is ``app:1``) and
  ``docker.io/library/`` (``busybox:1``, as Docker writes it);
- the ``io.buildah.version`` label the builder puts on images built
  elsewhere with Podman (builds through this adapter have none);
- env keys the adapter records in the ``io.enginekit.hide-env`` annotation
  (``HOSTNAME`` and ``HOME``, which Podman writes into the container's env
  where Docker only sets them in the process);
- the working directory ``/`` and stop signal ``SIGTERM`` Podman fills in,
  and the user ``0`` the adapter sets (so that root's groups match
  Docker's), when neither the caller nor the image chose one (Docker
  reports them unset: None), recorded in ``io.enginekit.unset``;
- the host port Podman picked at create time for a port published on "any
  port", while the container is not running (Docker picks it at start and
  reports None outside a run), recorded in ``io.enginekit.random-ports``;
- a pids limit nobody asked for is created as unlimited (Docker's default)
  and any limit <= 0 is reported as None;
- the init (``/run/podman-init --``) in front of the command: ``entrypoint``
  is what comes between it and ``Config.Cmd``.

And what Podman 4.x leaves out: ``oom_killed`` (see :func:`oom_killed_from_events`;
5.x records it).

Podman 4.x and 5.x differ in ``Config`` when the path asks for 5.0 or later
(the adapter speaks the engine's version): ``Entrypoint`` is a list (4.x: one
space-joined string) and ``StopSignal`` a name (4.x: a number). Both are read.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from enginekit.toolkit import models
from enginekit.toolkit.errors import InvalidSpec
from enginekit.toolkit.models import (
    Container,
    ContainerState,
    ContainerSummary,
    Image,
    ImageConfig,
    Mount,
    PathStat,
    PortBinding,
)
from enginekit.toolkit.references import DEFAULT_REGISTRY, Reference
from enginekit.toolkit.signals import signal_name
from enginekit.toolkit.time import parse_rfc3339

__all__ = [
    "ANNOTATION_HIDE_ENV",
    "ANNOTATION_IMAGE",
    "ANNOTATION_RANDOM_PORTS",
    "ANNOTATION_UNSET",
    "ANNOTATION_WORKDIR",
    "ENGINE_LABELS",
    "container_from_inspect",
    "container_state",
    "engine_image_candidates",
    "engine_image_ref",
    "image_from_inspect",
    "oom_killed_from_events",
    "path_mtime",
    "path_stat",
    "stats_from_libpod",
    "stop_signal_name",
    "summary_from_list",
    "user_image_name",
]

#: The image reference exactly as the caller gave it (``Container.image``).
ANNOTATION_IMAGE = "io.enginekit.image"
#: Env keys the adapter caused and the contract does not show (comma-separated).
ANNOTATION_HIDE_ENV = "io.enginekit.hide-env"
#: Fields left to the engine's default that Docker reports as unset
#: (``workdir``, ``stop_signal``), comma-separated.
ANNOTATION_UNSET = "io.enginekit.unset"
#: The working directory as asked (Podman is given it with links resolved).
ANNOTATION_WORKDIR = "io.enginekit.workdir"
#: Published ports (``80/tcp``) whose host port the engine picked.
ANNOTATION_RANDOM_PORTS = "io.enginekit.random-ports"
#: Labels the engine adds on its own to every image it builds.
ENGINE_LABELS = frozenset({"io.buildah.version"})

_STATES: Mapping[str, ContainerState] = {
    "configured": ContainerState.CREATED,
    "created": ContainerState.CREATED,
    "initialized": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "stopping": ContainerState.RUNNING,
    "paused": ContainerState.PAUSED,
    "stopped": ContainerState.EXITED,
    "exited": ContainerState.EXITED,
    "removing": ContainerState.EXITED,
    "unknown": ContainerState.EXITED,
}

_HEX_RE = re.compile(r"[0-9a-f]{12,64}")
_INIT_PATHS = ("/run/podman-init", "/dev/init")
_SYMLINK_BIT = 1 << 27  # Go's fs.ModeSymlink
_DIR_BIT = 1 << 31  # Go's fs.ModeDir


# --------------------------------------------------------------------------- names


def engine_image_ref(ref: str) -> str:
    """The name Podman knows a local image by: ``app:1`` -> ``localhost/app:1``.

    Podman names an image it built or loaded ``localhost/NAME``; a reference
    on Docker Hub (``app:1``, ``team/app:1``: where Docker looks for it) is
    given that name here, so that ``docker.io/library/app:1``,
    ``library/app:1`` and ``app:1`` are one image, as on Docker. Names on
    another registry stay as they are, ids too (a short one without
    ``sha256:``, as Podman takes it). ``ref`` has been checked by the core.
    """
    return engine_image_candidates(ref)[0]


def engine_image_candidates(ref: str) -> list[str]:
    """The names to look ``ref`` up by, in order: :func:`engine_image_ref`, then
    for a Docker Hub reference the qualified name an image pulled from there
    has (``docker.io/library/busybox:1``: never a short-name search), for a
    short id with ``sha256:`` the id as given."""
    if ref.startswith("sha256:"):
        # Podman takes a full id with the prefix, a short one only without.
        return [ref] if len(ref) == 71 else [ref.removeprefix("sha256:"), ref]
    if _HEX_RE.fullmatch(ref):
        return [ref]
    parsed = Reference.parse(ref)
    if parsed.registry == DEFAULT_REGISTRY:
        return ["localhost/" + parsed.familiar, str(parsed)]
    return [parsed.familiar]


def user_image_name(name: str) -> str:
    """The name as the contract shows it: ``localhost/app:1`` -> ``app:1``,
    ``docker.io/library/busybox:1`` -> ``busybox:1``."""
    try:
        parsed = Reference.parse(name)
    except InvalidSpec:
        return name.removeprefix("localhost/")
    if parsed.registry == "localhost":
        return parsed.familiar.removeprefix("localhost/")
    return parsed.familiar


def _tags(names: Sequence[str] | None) -> list[str]:
    return sorted({user_image_name(n) for n in names or () if n and not n.startswith("<none>")})


# --------------------------------------------------------------------------- basics


def container_state(status: str) -> ContainerState:
    """Map a libpod state name onto the four contract states (table above)."""
    return _STATES.get(status.lower(), ContainerState.EXITED)


def stop_signal_name(value: Any) -> str | None:
    """libpod's ``StopSignal`` (a number on 4.x, a name on 5.x) as its name;
    None for 0 or none."""
    if value in (None, "", 0, "0"):
        return None
    try:
        return signal_name(value)
    except InvalidSpec:
        return str(value)


def _csv(value: str | None) -> set[str]:
    return {item for item in (value or "").split(",") if item}


def _env_map(items: Sequence[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or ():
        key, _, val = item.partition("=")
        if key:
            env[key] = val
    return env


def _labels(raw: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (raw or {}).items() if k not in ENGINE_LABELS}


def _opt_list(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(value.split()) if value else None
    return tuple(str(v) for v in value)


def _image_id(value: str) -> str:
    return value if value.startswith("sha256:") else "sha256:" + value


# --------------------------------------------------------------------------- images


def image_from_inspect(data: Mapping[str, Any], *, engine: str = "podman") -> Image:
    """An :class:`Image` from ``GET /libpod/images/{name}/json``."""
    cfg: Mapping[str, Any] = data.get("Config") or {}
    labels = _labels(cfg.get("Labels") or data.get("Labels"))
    exposed = sorted((cfg.get("ExposedPorts") or {}).keys())
    config = ImageConfig(
        entrypoint=_opt_list(cfg.get("Entrypoint")),
        cmd=_opt_list(cfg.get("Cmd")),
        env=_env_map(cfg.get("Env")),
        workdir=cfg.get("WorkingDir") or None,
        user=cfg.get("User") or None,
        exposed_ports=tuple(exposed),
        labels=labels,
        stop_signal=stop_signal_name(cfg.get("StopSignal")),
    )
    return Image(
        id=_image_id(str(data["Id"])),
        tags=_tags(data.get("RepoTags")),
        created=parse_rfc3339(data.get("Created")),
        size=int(data.get("Size") or 0),
        labels=labels,
        architecture=str(data.get("Architecture") or ""),
        os=str(data.get("Os") or ""),
        config=config,
        engine=engine,
        raw=data,
    )


# --------------------------------------------------------------------------- containers


def _command_parts(data: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(entrypoint, command)`` as run, without the init in front."""
    cfg: Mapping[str, Any] = data.get("Config") or {}
    cmd = tuple(cfg.get("Cmd") or ())
    path = str(data.get("Path") or "")
    args = [str(a) for a in data.get("Args") or ()]
    if path in _INIT_PATHS or posixpath.basename(path) in ("catatonit", "podman-init"):
        argv = args[1:] if args[:1] == ["--"] else args
    else:
        argv = [path, *args] if path else args
    if cmd and tuple(argv[len(argv) - len(cmd) :]) == cmd:
        entry = tuple(argv[: len(argv) - len(cmd)])
    elif cmd:
        entry = _opt_list(cfg.get("Entrypoint")) or ()
    else:
        entry = tuple(argv)
    return entry, cmd


def _ports(data: Mapping[str, Any], *, live: bool, random: set[str]) -> list[PortBinding]:
    net: Mapping[str, Any] = data.get("NetworkSettings") or {}
    host: Mapping[str, Any] = data.get("HostConfig") or {}
    table = (net.get("Ports") if live else None) or host.get("PortBindings") or {}
    out: list[PortBinding] = []
    for key, bindings in table.items():
        port, _, proto = str(key).partition("/")
        for b in bindings or ():
            picked = not live and f"{port}/{proto or 'tcp'}" in random
            hp = "" if picked else str(b.get("HostPort") or "")
            out.append(
                PortBinding(
                    container_port=int(port),
                    protocol=proto or "tcp",
                    host_ip=str(b.get("HostIp") or "0.0.0.0"),
                    host_port=int(hp) if hp.isdigit() and int(hp) > 0 else None,
                )
            )
    return sorted(out, key=_port_key)


def _port_key(p: PortBinding) -> tuple[int, str, str, int]:
    return (p.container_port, p.protocol, p.host_ip, p.host_port or 0)


def _mounts(data: Mapping[str, Any]) -> list[Mount]:
    out = [
        Mount(
            source=str(m.get("Source") or ""),
            target=str(m.get("Destination") or ""),
            read_only=not m.get("RW", True),
        )
        for m in data.get("Mounts") or ()
        if m.get("Type") == "bind"
    ]
    return sorted(out, key=lambda m: m.target)


def _resources(host: Mapping[str, Any]) -> models.Resources:
    memory = int(host.get("Memory") or 0)
    nano = int(host.get("NanoCpus") or 0)
    quota = int(host.get("CpuQuota") or 0)
    period = int(host.get("CpuPeriod") or 0)
    cpus: float | None = None
    if nano > 0:
        cpus = nano / 1e9
    elif quota > 0 and period > 0:
        cpus = quota / period
    pids = int(host.get("PidsLimit") or 0)
    return models.Resources(
        memory=memory if memory > 0 else None,
        cpus=cpus,
        pids_limit=pids if pids > 0 else None,
    )


def _network(host: Mapping[str, Any]) -> str:
    mode = str(host.get("NetworkMode") or "bridge")
    if mode in ("bridge", "none", "host"):
        return mode
    if mode.startswith("container:") or mode in ("private", "slirp4netns", "pasta"):
        return mode
    return "bridge"


def container_from_inspect(data: Mapping[str, Any], *, engine: str = "podman") -> Container:
    """A :class:`Container` from ``GET /libpod/containers/{id}/json``."""
    state: Mapping[str, Any] = data.get("State") or {}
    cfg: Mapping[str, Any] = data.get("Config") or {}
    host: Mapping[str, Any] = data.get("HostConfig") or {}
    annotations: Mapping[str, str] = cfg.get("Annotations") or {}
    status = container_state(str(state.get("Status") or "unknown"))
    if state.get("Paused") and status is ContainerState.RUNNING:
        status = ContainerState.PAUSED

    image = annotations.get(ANNOTATION_IMAGE) or user_image_name(
        str(data.get("ImageName") or cfg.get("Image") or "")
    )
    hidden = _csv(annotations.get(ANNOTATION_HIDE_ENV))
    if ANNOTATION_HIDE_ENV not in annotations:
        hidden = {"HOME", "HOSTNAME"}
    unset = _csv(annotations.get(ANNOTATION_UNSET))
    workdir = annotations.get(ANNOTATION_WORKDIR) or cfg.get("WorkingDir") or None
    if "workdir" in unset and workdir == "/":
        workdir = None
    stop_signal = None if "stop_signal" in unset else stop_signal_name(cfg.get("StopSignal"))
    user = cfg.get("User") or None
    if "user" in unset and user == "0":
        user = None
    live = status in (ContainerState.RUNNING, ContainerState.PAUSED)
    exited = status is ContainerState.EXITED
    env = {k: v for k, v in _env_map(cfg.get("Env")).items() if k not in hidden}
    entrypoint, command = _command_parts(data)
    pid = int(state.get("Pid") or 0)
    exit_code = int(state.get("ExitCode") or 0)

    return Container(
        id=str(data["Id"]),
        name=str(data.get("Name") or "").lstrip("/"),
        image=image,
        image_id=_image_id(str(data.get("Image") or "")) if data.get("Image") else "",
        state=status,
        exit_code=exit_code if exited else None,
        oom_killed=bool(state.get("OOMKilled")),
        created_at=parse_rfc3339(data.get("Created")),
        started_at=parse_rfc3339(state.get("StartedAt")),
        finished_at=parse_rfc3339(state.get("FinishedAt")) if exited else None,
        pid=pid if pid > 0 and live else None,
        labels=_labels(cfg.get("Labels")),
        command=command,
        entrypoint=entrypoint,
        env=env,
        workdir=workdir,
        user=user,
        hostname=cfg.get("Hostname") or None,
        ports=_ports(data, live=live, random=_csv(annotations.get(ANNOTATION_RANDOM_PORTS))),
        mounts=_mounts(data),
        resources=_resources(host),
        network=_network(host),
        stop_signal=stop_signal,
        engine=engine,
        raw=data,
    )


def summary_from_list(row: Mapping[str, Any], *, engine: str = "podman") -> ContainerSummary | None:
    """One row of ``GET /libpod/containers/json`` -> ContainerSummary; None when
    the row does not say the image as asked (inspect that container instead).

    Fields read, the same in Podman 4.3 to 5.x: ``Id``, ``Names``, ``Image``
    (the name the image was found by, shown as :func:`user_image_name` shows
    it; an id there says nothing of the reference asked, which only the
    container's annotation keeps: None), ``ImageID``, ``State`` (the table
    above), ``ExitCode``, ``Created`` (RFC 3339; epoch seconds read too),
    ``Labels`` and ``Ports``.

    - ``exit_code``: ``ExitCode`` in EXITED, except 1: Podman's init exits 1
      when the command cannot be started, where Docker's exits 127 or 126
      (the driver's inspect tells them apart from the container's log): None.
    - ``ports``: a running or paused container's, as bound (``Ports``: a
      ``range`` spread, ``tcp,udp`` split); a created or exited container's
      host port may be one Podman picked for a port published on any port,
      which the contract does not show (the annotation saying so is not in
      the list): None.
    """
    named = str(row.get("Image") or "")
    if not named or named.startswith("sha256:") or _HEX_RE.fullmatch(named):
        return None
    image = user_image_name(named)
    status = container_state(str(row.get("State") or "unknown"))
    exit_code = row.get("ExitCode")
    if status is not ContainerState.EXITED or not isinstance(exit_code, int) or exit_code == 1:
        exit_code = None
    ports: list[PortBinding] | None = None
    if status in (ContainerState.RUNNING, ContainerState.PAUSED):
        ports = []
        for p in row.get("Ports") or ():
            host_port = int(p.get("host_port") or 0)
            for protocol in str(p.get("protocol") or "tcp").split(","):
                for i in range(max(1, int(p.get("range") or 1))):
                    ports.append(
                        PortBinding(
                            container_port=int(p["container_port"]) + i,
                            protocol=protocol or "tcp",
                            host_ip=str(p.get("host_ip") or "0.0.0.0"),
                            host_port=host_port + i if host_port > 0 else None,
                        )
                    )
        ports.sort(key=_port_key)
    names = [str(n).lstrip("/") for n in row.get("Names") or ()]
    created = row.get("Created")
    image_id = str(row.get("ImageID") or "")
    return ContainerSummary(
        id=str(row["Id"]),
        name=names[0] if names else "",
        image=image,
        image_id=_image_id(image_id) if image_id else "",
        state=status,
        exit_code=exit_code,
        created_at=(
            dt.datetime.fromtimestamp(created, dt.UTC)
            if isinstance(created, int) and created > 0
            else parse_rfc3339(created if isinstance(created, str) else None)
        ),
        labels=_labels(row.get("Labels")),
        ports=ports,
        engine=engine,
        raw=row,
    )


# --------------------------------------------------------------------------- OOM


_SIGNALLED = frozenset({"kill", "stop", "restart"})
_STARTED = frozenset({"start", "restart"})


def oom_killed_from_events(events: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """Whether the container's last run ended in an OOM kill, from its libpod events.

    Podman 4.x never sets ``State.OOMKilled``, on cgroup v1 or v2: its conmon
    writes the OOM marker into its working folder, where libpod does not
    look (5.0 passes conmon ``--persist-dir`` and reads the marker there;
    the adapter then trusts ``State.OOMKilled``). A container with a memory
    limit that exited with 137 (SIGKILL) and received no ``kill``, ``stop``
    or ``restart`` through the engine since its last start was killed by
    the kernel's OOM killer. (A SIGKILL sent from inside the container, or
    by hand on the host, would be taken for one too.)

    Returns ``(oom_killed, final)``; ``final`` is True once the ``died``
    event is there (the answer will not change).
    """
    started = False
    signalled = False
    died = False
    for event in events:
        status = str(event.get("status") or event.get("Action") or "")
        if status in _STARTED:
            started, signalled, died = True, status == "restart", False
        elif status in _SIGNALLED:
            signalled = True
        elif status == "died":
            died = True
    return started and not signalled, died


# --------------------------------------------------------------------------- stats, paths


def stats_from_libpod(
    data: Mapping[str, Any], *, host_memory: int | None = None, pids: bool = True
) -> models.Stats:
    """Stats from one entry of ``GET /libpod/containers/stats?stream=false``.

    Libpod reads the container's cgroup itself and sends the same fields on
    cgroup v1 and v2 (and on 4.x and 5.x):

    ==============  =======================================  ==================================
    field           cgroup v1                                cgroup v2
    ==============  =======================================  ==================================
    ``CPUNano``     ``cpuacct.usage``                        ``cpu.stat`` ``usage_usec`` x 1000
    ``MemUsage``    ``memory.usage_in_bytes`` (5.x: less     4.x: ``memory.stat`` ``anon``;
                    ``total_inactive_file``)                 5.x: ``memory.current`` less
                                                             ``inactive_file``
    ``MemLimit``    4.x: the spec's limit; 5.x:              4.x: the spec's limit; 5.x:
                    ``memory.limit_in_bytes``                ``memory.max``
    ``PIDs``        ``pids.current``                         ``pids.current``
    ==============  =======================================  ==================================

    Both clamp ``MemLimit`` to the host's memory, so a limit of 0, or one at
    least the host's memory (what "no limit" comes out as), is None. A
    container that is not running reports 0 processes; ``pids=False`` (the
    pids controller is not there: libpod sends 0) gives None.
    """
    limit = int(data.get("MemLimit") or 0)
    unlimited = limit <= 0 or limit >= 1 << 62 or (host_memory is not None and limit >= host_memory)
    count = data.get("PIDs")
    return models.Stats(
        cpu_seconds=int(data.get("CPUNano") or 0) / 1e9,
        memory_bytes=int(data.get("MemUsage") or 0),
        memory_limit=None if unlimited else limit,
        pids=int(count) if count is not None and pids else None,
    )


def path_mtime(header: str) -> int:
    """Whole seconds of the ``mtime`` in an ``X-Docker-Container-Path-Stat`` header."""
    data = json.loads(base64.b64decode(header))
    stamp = parse_rfc3339(data.get("mtime"))
    return int(stamp.timestamp()) if stamp is not None else 0


def path_stat(header: str, path: str) -> PathStat:
    """A :class:`PathStat` from the base64 ``X-Docker-Container-Path-Stat`` header.

    Podman resolves a symbolic link's name and reports ``linkTarget`` for
    every path; the contract (Docker's view) wants the link's own name and a
    target only for links.
    """
    data = json.loads(base64.b64decode(header))
    mode = int(data.get("mode") or 0)
    is_link = bool(mode & _SYMLINK_BIT)
    name = posixpath.basename(path.rstrip("/")) or str(data.get("name") or "/")
    return PathStat(
        name=name,
        size=int(data.get("size") or 0),
        is_dir=bool(mode & _DIR_BIT) and not is_link,
        is_symlink=is_link,
        link_target=str(data.get("linkTarget") or "") if is_link else "",
    )
