"""Creating a container: the spec merged with its image's config into a record.

Nothing runs yet: the container gets an id, its name, a directory with the
overlay's ``upper``/``work``/``rootfs`` and its meta and status files.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING, Any

from enginekit.toolkit.errors import Conflict, EngineError, InvalidSpec, Unsupported
from enginekit.toolkit.models import ContainerSpec

from .errors import ENGINE
from .imagefit import check_workdir
from .monitor import _now

if TYPE_CHECKING:
    from .driver import LxcDriver

__all__ = ["create"]


def create(driver: LxcDriver, spec: ContainerSpec) -> str:
    """Create the container ``spec`` describes; its id."""
    driver.check_lxcpath()
    driver.host.check()
    image_id = driver.images.resolve(spec.image)
    config = driver.images.config(image_id)
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
        check_workdir(driver.images.rootfs(image_id), spec.workdir)
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
        "hostname": spec.hostname or (socket.gethostname() if spec.network == "host" else id[:12]),
        "ports": ports,
        "mounts": [
            {"source": m.source, "target": m.target, "read_only": m.read_only} for m in spec.mounts
        ],
        "resources": {"memory": spec.memory, "cpus": spec.cpus, "pids_limit": spec.pids_limit},
        "network": spec.network,
        "stop_signal": spec.stop_signal or config.stop_signal or None,
    }
    store = driver.store
    cdir = store.dir(id)
    try:
        with store.lock():
            if not store.claim_name(name, id):
                raise Conflict(f"the container name {name!r} is already in use")
            try:
                os.makedirs(cdir, mode=0o700)
                for sub in ("upper", "work", "rootfs"):
                    os.mkdir(os.path.join(cdir, sub), 0o755)
                store.write_status(id, {"state": "created"})
                store.write_meta(id, meta)
            except BaseException:
                store.release_name(name, id)
                store.delete(id)
                raise
    except OSError as exc:
        raise EngineError(f"cannot create the container: {exc.strerror}") from exc
    return id
