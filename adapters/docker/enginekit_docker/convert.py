"""Docker Engine API JSON -> enginekit models (and ContainerSpec -> create body).

No Docker spelling leaves this module: the driver hands raw JSON in and gets
core models back.

Docker's container states map onto :class:`~enginekit.models.ContainerState`:

============== ===========================================================
Docker          enginekit
============== ===========================================================
``created``     ``CREATED`` (``exit_code`` None, even after a failed start)
``running``     ``RUNNING``
``restarting``  ``RUNNING``
``paused``      ``PAUSED``
``exited``      ``EXITED`` (``exit_code`` = ``State.ExitCode``)
``dead``        ``EXITED``
``removing``    ``EXITED``
============== ===========================================================

``exit_code`` and ``finished_at`` are set only for ``EXITED``; ``pid`` only
for ``RUNNING``/``PAUSED``. Docker's zero time ``0001-01-01T00:00:00Z`` is
None. Docker merges the image's ``Env`` and ``Labels`` into the container's:
``Container.env``/``labels`` report that merged view, as the process sees it.
Labels a builder puts on every image it makes (``io.buildah.version``, on an
image built by Podman and loaded here) are not shown, as the Podman adapter
does not show them.

A one-character name is stored under another Docker name (see :mod:`.names`):
:func:`container_from_inspect` reports the name as given.

Engine API versions: the driver speaks 1.41 to 1.52 (see :mod:`.versions`).
What changed between them in the answers read here, and how each change is
met, is said in each function's docstring; in short, every field that newer
versions dropped is one this module does not read (or reads as optional),
and the fields it reads mean the same in every version. Docker's containerd
image store changes what an image id is (the manifest's digest, not the
config's): see :func:`image_from_inspect`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from enginekit.toolkit.models import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineInfo,
    Image,
    ImageConfig,
    Mount,
    PathStat,
    PortBinding,
    Resources,
    Stats,
)
from enginekit.toolkit.time import parse_rfc3339

from . import instance, names

__all__ = [
    "BUILDER_LABELS",
    "ENGINE",
    "container_from_inspect",
    "container_state",
    "create_body",
    "engine_info",
    "image_from_inspect",
    "memory_in_use",
    "path_stat",
    "stats",
    "summary_from_list",
]

ENGINE = "docker"

_STATES: dict[str, ContainerState] = {
    "created": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "restarting": ContainerState.RUNNING,
    "paused": ContainerState.PAUSED,
    "exited": ContainerState.EXITED,
    "dead": ContainerState.EXITED,
    "removing": ContainerState.EXITED,
}

#: Labels a builder adds on its own to every image it makes.
BUILDER_LABELS = frozenset({"io.buildah.version"})
_DIR_BIT = 1 << 31
_SYMLINK_BIT = 1 << 27


def container_state(status: str | None) -> ContainerState:
    """Docker's ``State.Status`` -> ContainerState (see the table above)."""
    return _STATES.get(status or "", ContainerState.EXITED)


def _env(items: Iterable[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or ():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _labels(raw: Mapping[str, str] | None) -> Mapping[str, str]:
    if not raw:
        return {}
    if BUILDER_LABELS.isdisjoint(raw):
        return raw
    return {k: v for k, v in raw.items() if k not in BUILDER_LABELS}


def _none_if_empty(value: str | None) -> str | None:
    return value or None


def _network(mode: str | None) -> str:
    return "bridge" if mode in (None, "", "default") else str(mode)


def _resources(host: Mapping[str, Any]) -> Resources:
    nano = host.get("NanoCpus") or 0
    pids = host.get("PidsLimit") or 0
    return Resources(
        memory=host.get("Memory") or None,
        cpus=nano / 1e9 if nano > 0 else None,
        pids_limit=pids if pids > 0 else None,
    )


def _ports_from_map(ports: Mapping[str, Any] | None) -> list[PortBinding]:
    """``{"80/tcp": [{"HostIp": .., "HostPort": ..}]}`` (runtime or configured)."""
    out: list[PortBinding] = []
    for key, bindings in (ports or {}).items():
        port, _, proto = key.partition("/")
        for b in bindings or ():
            host_port = b.get("HostPort") or ""
            out.append(
                PortBinding(
                    container_port=int(port),
                    protocol=proto or "tcp",
                    host_ip=b.get("HostIp") or "0.0.0.0",  # Docker's meaning of ""
                    host_port=int(host_port) if host_port not in ("", "0") else None,
                )
            )
    return sorted(out, key=_port_key)


def _port_key(p: PortBinding) -> tuple[int, str, str, int]:
    return (p.container_port, p.protocol, p.host_ip, p.host_port or 0)


def _bind_mounts(mounts: Iterable[Mapping[str, Any]] | None) -> list[Mount]:
    """Runtime ``Mounts`` entries (inspect and list both carry them), binds only."""
    return sorted(
        (
            Mount(source=m["Source"], target=m["Destination"], read_only=not m.get("RW", True))
            for m in mounts or ()
            if m.get("Type") == "bind"
        ),
        key=lambda m: m.target,
    )


def container_from_inspect(data: Mapping[str, Any]) -> Container:
    """``GET /containers/{id}/json`` -> Container (every field).

    Fields read, the same from API 1.41 to 1.52: ``Id``, ``Name``, ``Created``,
    ``Image`` (the image id: on the containerd image store the manifest's
    digest, as :func:`image_from_inspect` reports it; 1.48 adds
    ``ImageManifestDescriptor`` there, not read), ``State`` (``OOMKilled`` is
    set the same way on cgroup v1 and v2: containerd reports the OOM kill,
    from ``memory.oom_control`` on v1 and ``memory.events`` on v2),
    ``Config`` (``Hostname``, ``Cmd``, ``Env``, ...; container configs lose no
    field up to 1.52), ``HostConfig`` (``Memory``, ``NanoCpus``,
    ``PidsLimit``, ``PortBindings``, ``NetworkMode``; ``KernelMemory`` and
    ``KernelMemoryTCP``, left out from 1.42 and 1.52, are not read),
    ``Mounts`` and ``NetworkSettings.Ports`` (1.52 drops the top-level
    ``NetworkSettings.IPAddress``, ``Gateway``, ``Bridge``...: not read).
    """
    state_data = data.get("State") or {}
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    state = container_state(state_data.get("Status", ""))
    live = state in (ContainerState.RUNNING, ContainerState.PAUSED)
    exited = state is ContainerState.EXITED
    if live:
        ports = _ports_from_map((data.get("NetworkSettings") or {}).get("Ports"))
    else:
        ports = _ports_from_map(host.get("PortBindings"))
    name, labels = names.user_view(data.get("Name", "").lstrip("/"), _labels(config.get("Labels")))
    return Container(
        id=data["Id"],
        name=name,
        image=config.get("Image", ""),
        image_id=data.get("Image", ""),
        state=state,
        exit_code=state_data.get("ExitCode") if exited else None,
        oom_killed=bool(state_data.get("OOMKilled")),
        created_at=parse_rfc3339(data.get("Created")),
        started_at=parse_rfc3339(state_data.get("StartedAt")),
        finished_at=parse_rfc3339(state_data.get("FinishedAt")) if exited else None,
        pid=(state_data.get("Pid") or None) if live else None,
        labels=labels,
        command=config.get("Cmd") or (),
        entrypoint=config.get("Entrypoint") or (),
        env=_env(config.get("Env")),
        workdir=_none_if_empty(config.get("WorkingDir")),
        user=_none_if_empty(config.get("User")),
        hostname=_none_if_empty(config.get("Hostname")),
        ports=ports,
        mounts=_bind_mounts(data.get("Mounts")),
        resources=_resources(host),
        network=_network(host.get("NetworkMode")),
        stop_signal=_none_if_empty(config.get("StopSignal")),
        engine=ENGINE,
        raw=data,
    )


#: ``Status`` of an exited container in ``GET /containers/json``: ``Exited (137) 5 seconds ago``.
_EXITED_STATUS = re.compile(r"Exited \((\d{1,3})\) ")


def summary_from_list(entry: Mapping[str, Any]) -> ContainerSummary | None:
    """One entry of ``GET /containers/json`` -> ContainerSummary; None when the
    entry does not say the image as asked (inspect that container instead).

    Fields read, the same from API 1.41 to 1.52: ``Id``, ``Names`` (``/name``;
    a legacy link's ``/other/alias`` is not the name), ``Image`` (the image as
    asked, ``Config.Image``; Docker shows ``ImageID`` there instead once that
    name has moved to another image: then None), ``ImageID``, ``Created``
    (Unix seconds: ``created_at`` is to the second), ``State``, ``Status``,
    ``Labels`` and ``Ports``.

    - ``exit_code``: read from ``Status`` for the state ``exited`` only
      (``Exited (137) 5 seconds ago``, written from the same snapshot as
      ``State``); ``dead`` and ``removing`` say none: None.
    - ``ports``: the list shows the ports bound while a container runs (its
      ``NetworkSettings.Ports``), so a running or paused container's are
      those of :func:`container_from_inspect`; a created or exited one's
      configured bindings are not in the list: None. An exposed port that is
      not published (no ``PublicPort``) is not a binding.
    """
    image = str(entry.get("Image") or "")
    image_id = str(entry.get("ImageID") or "")
    if not image or image == image_id:
        return None
    state = container_state(entry.get("State"))
    docker_name = next(
        (n[1:] for n in entry.get("Names") or () if n.startswith("/") and "/" not in n[1:]), ""
    )
    name, labels = names.user_view(docker_name, _labels(entry.get("Labels")))
    exit_code = None
    if entry.get("State") == "exited":
        said = _EXITED_STATUS.match(str(entry.get("Status") or ""))
        exit_code = int(said.group(1)) if said else None
    ports: list[PortBinding] | None = None
    if state in (ContainerState.RUNNING, ContainerState.PAUSED):
        ports = sorted(
            (
                PortBinding(
                    container_port=int(p["PrivatePort"]),
                    protocol=p.get("Type") or "tcp",
                    host_ip=p.get("IP") or "0.0.0.0",
                    host_port=int(p["PublicPort"]),
                )
                for p in entry.get("Ports") or ()
                if p.get("PublicPort")
            ),
            key=_port_key,
        )
    created = entry.get("Created")
    return ContainerSummary(
        id=entry["Id"],
        name=name,
        image=image,
        image_id=image_id,
        state=state,
        exit_code=exit_code,
        created_at=dt.datetime.fromtimestamp(created, dt.UTC) if created else None,
        labels=labels,
        ports=ports,
        engine=ENGINE,
        raw=entry,
    )


def image_from_inspect(data: Mapping[str, Any]) -> Image:
    """``GET /images/{ref}/json`` -> Image.

    ``id`` is Docker's ``Id``, which is not the same digest on both image stores:

    - classic store (``overlay2``...): the digest of the image's config;
    - containerd store: the digest of the image's manifest, or of its index
      for a multi-platform image (``Descriptor.digest``, API 1.48 and up,
      says the same). Docker accepts only this digest as an id there; the
      config's digest is not in any answer.

    What changed between API 1.41 and 1.52 in this answer, and how it is met:

    - ``VirtualSize`` gone in 1.44: ``size`` is ``Size`` (the same figure) in
      every version;
    - ``Container`` and ``ContainerConfig`` gone in 1.45: only ``Config`` is read;
    - ``Config.Hostname``, ``Domainname``, ``Image``, ``Attach*``, ``Tty``,
      ``OpenStdin``, ``StdinOnce`` gone in 1.50 (always empty before): not read;
    - ``Config.Cmd``, ``Entrypoint``, ``Env``, ``Labels``, ``User``,
      ``WorkingDir`` left out when unset from 1.52 (null or empty before):
      read as optional, an absent one is unset;
    - ``Created`` left out when the config has none from 1.44
      (``0001-01-01T00:00:00Z`` before): ``created`` is None either way;
    - ``Parent``, ``DockerVersion``, ``Comment``, ``Author`` deprecated in
      1.51, left out when empty from 1.52: not read;
    - ``Descriptor`` (1.48, containerd store) and ``Manifests`` (1.48, only
      when asked): not needed, ``Id`` says it.

    ``RepoTags`` never holds ``<none>:<none>`` here; ``GET /images/json``
    lists it for an untagged image before 1.43 (an empty list from 1.43):
    left out either way.
    """
    config = data.get("Config") or {}
    labels = _labels(config.get("Labels"))
    return Image(
        id=data["Id"],
        tags=[t for t in data.get("RepoTags") or () if t != "<none>:<none>"],
        created=parse_rfc3339(data.get("Created")),
        size=int(data.get("Size") or 0),
        labels=labels,
        architecture=data.get("Architecture", ""),
        os=data.get("Os", ""),
        config=ImageConfig(
            entrypoint=config.get("Entrypoint"),
            cmd=config.get("Cmd"),
            env=_env(config.get("Env")),
            workdir=_none_if_empty(config.get("WorkingDir")),
            user=_none_if_empty(config.get("User")),
            exposed_ports=sorted(config.get("ExposedPorts") or {}),
            labels=labels,
            stop_signal=_none_if_empty(config.get("StopSignal")),
        ),
        engine=ENGINE,
        raw=data,
    )


def create_body(spec: ContainerSpec) -> dict[str, Any]:
    """ContainerSpec -> the JSON body of ``POST /containers/create``.

    Every container gets ``Init`` (docker-init as PID 1) and the ``local``
    log driver (see :func:`.streams.log_lines`). ``MemorySwap`` equals
    ``Memory`` so that going over the limit is an OOM kill, not swapping.
    """
    host: dict[str, Any] = {
        "Init": True,
        "NetworkMode": spec.network,
        # ``local`` keeps the bytes written; ``json-file`` mangles invalid UTF-8.
        "LogConfig": {"Type": "local", "Config": {}},
    }
    body: dict[str, Any] = {
        "Image": spec.image,
        "Labels": dict(spec.labels),
        "Env": [f"{k}={v}" for k, v in spec.env.items()],
        "Tty": False,
        "OpenStdin": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": host,
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.entrypoint is not None:
        body["Entrypoint"] = list(spec.entrypoint)
    if spec.workdir is not None:
        body["WorkingDir"] = spec.workdir
    if spec.user is not None:
        body["User"] = spec.user
    if spec.hostname is not None:
        body["Hostname"] = spec.hostname
    if spec.stop_signal is not None:
        body["StopSignal"] = spec.stop_signal
    if spec.ports:
        exposed: dict[str, dict[str, Any]] = {}
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in spec.ports:
            key = f"{p.container_port}/{p.protocol}"
            exposed[key] = {}
            bindings.setdefault(key, []).append(
                {"HostIp": p.host_ip, "HostPort": str(p.host_port) if p.host_port else ""}
            )
        body["ExposedPorts"] = exposed
        host["PortBindings"] = bindings
    if spec.mounts:
        host["Mounts"] = [
            {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            for m in spec.mounts
        ]
    if spec.memory is not None:
        host["Memory"] = spec.memory
        host["MemorySwap"] = spec.memory
    if spec.cpus is not None:
        host["NanoCpus"] = round(spec.cpus * 1e9)
    if spec.pids_limit is not None:
        host["PidsLimit"] = spec.pids_limit
    return body


def path_stat(header: str) -> PathStat:
    """The base64 JSON of ``X-Docker-Container-Path-Stat`` -> PathStat."""
    data = json.loads(base64.b64decode(header))
    mode = int(data.get("mode") or 0)
    return PathStat(
        name=data.get("name", ""),
        size=int(data.get("size") or 0),
        is_dir=bool(mode & _DIR_BIT),
        is_symlink=bool(mode & _SYMLINK_BIT),
        link_target=data.get("linkTarget") or "",
    )


def memory_in_use(memory: Mapping[str, Any]) -> int:
    """Bytes of memory the container uses, as ``docker stats`` counts them: the
    cgroup's usage less its inactive file cache (page cache the kernel takes
    back first).

    The cache's name differs by cgroup layout: cgroup v1's ``memory.stat`` has
    ``total_inactive_file`` (the container's cgroup and those below it), v2's
    has ``inactive_file`` (already hierarchical); ``usage`` is
    ``memory.usage_in_bytes`` on v1 and ``memory.current`` on v2. Same in
    every API version since 1.41.
    """
    usage = int(memory.get("usage") or 0)
    numbers = memory.get("stats") or {}
    if "total_inactive_file" in numbers:  # cgroup v1
        inactive = int(numbers["total_inactive_file"] or 0)
    else:  # cgroup v2 (no "total_" keys), or a stopped container's empty stats
        inactive = int(numbers.get("inactive_file") or 0)
    return usage - inactive if inactive < usage else usage


def stats(data: Mapping[str, Any], *, limited: bool) -> Stats:
    """``GET /containers/{id}/stats?stream=false&one-shot=true`` -> Stats.

    - ``cpu_seconds``: ``cpu_stats.cpu_usage.total_usage`` (nanoseconds; v2:
      ``cpu.stat`` ``usage_usec`` times 1000).
    - ``memory_bytes``: :func:`memory_in_use` (v1 and v2 differ).
    - ``memory_limit``: ``memory_stats.limit`` when the container has a limit
      (``limited``), else None: without one Docker reports the machine's
      memory on v1 and v2 (v2's ``memory.max`` says ``max``), no limit of the
      container's.
    - ``pids``: ``pids_stats.current`` (absent when the pids controller is
      not there: None).

    The fields read here are the same from API 1.41 to 1.52 (1.52 adds
    ``os_type``; ``id``/``name`` are left out of one-shot stats on Docker 28).
    A container that is not running has empty sections: zeros and None.
    """
    cpu = (data.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = data.get("memory_stats") or {}
    pids = (data.get("pids_stats") or {}).get("current")
    return Stats(
        cpu_seconds=int(cpu.get("total_usage") or 0) / 1e9,
        memory_bytes=memory_in_use(memory),
        memory_limit=int(memory["limit"]) if limited and memory.get("limit") else None,
        pids=int(pids) if pids is not None else None,
    )


def engine_info(
    version: Mapping[str, Any], info: Mapping[str, Any], *, api_version: str = ""
) -> EngineInfo:
    """``GET /version`` and ``GET /info`` -> EngineInfo.

    ``api_version`` is the version spoken on this connection (negotiated);
    ``min_api_version``/``max_api_version`` are ``/version``'s
    ``MinAPIVersion``/``ApiVersion`` (every version since 1.41 has both);
    ``cgroup_version`` is ``/info``'s ``CgroupVersion`` (since 1.41);
    ``rootless`` whether ``SecurityOptions`` has ``name=rootless``;
    ``image_store`` ``"containerd"`` when ``DriverStatus`` names the containerd
    snapshotter (``driver-type io.containerd.snapshotter.v1``), else ``Driver``
    (``"overlay2"``).
    """
    described = instance.describe(info)
    return EngineInfo(
        name=ENGINE,
        version=version.get("Version", ""),
        api_version=api_version or version.get("ApiVersion", ""),
        os=version.get("Os", "") or info.get("OSType", ""),
        arch=version.get("Arch", "") or info.get("Architecture", ""),
        storage_root=info.get("DockerRootDir", ""),
        min_api_version=str(version.get("MinAPIVersion") or ""),
        max_api_version=str(version.get("ApiVersion") or ""),
        cgroup_version=described.cgroup_version,
        rootless=described.rootless,
        image_store=described.image_store,
    )
