"""A container's records and the state they make: read by every driver operation.

Each container has its meta (``meta.json``, written at create and never
changed, so read once per driver) and its status (``status.json``, written by
the container's monitor: the state, the pids, the exit). A status that says
running while neither the monitor nor the container's init is alive is the
trace of a monitor that died: its exit is recovered (written down) here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from enginekit.toolkit.errors import Conflict, ContainerNotFound, EngineError
from enginekit.toolkit.models import (
    Container,
    ContainerState,
    FrozenDict,
    Mount,
    PortBinding,
    Resources,
)
from enginekit.toolkit.time import parse_rfc3339

from .cgroupfs import read_stripped
from .errors import ENGINE
from .lxchost import LxcHost
from .monitor import _now, _proc_starttime, unmount
from .netalloc import release
from .store import ContainerStore

__all__ = ["LIVE", "ContainerRecords", "ending", "init_alive", "main_pid"]

_STATES = {"created": ContainerState.CREATED, "exited": ContainerState.EXITED}
#: The states in which a container has processes.
LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)


def _dead(pid: object) -> bool:
    """Whether ``pid`` ended (a zombie not yet reaped counts as ended)."""
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X", b"x")
    except (OSError, IndexError):
        return True


def init_alive(status: Mapping[str, Any]) -> bool:
    """Whether the container's init (LXC's) is still the process the status names."""
    pid = status.get("pid")
    return isinstance(pid, int) and _proc_starttime(pid) == status.get("pid_start")


def main_pid(status: Mapping[str, Any]) -> int | None:
    """The container's command (LXC's init's child), if still the same process."""
    pid = status.get("main_pid")
    if isinstance(pid, int) and _proc_starttime(pid) == status.get("main_start"):
        return pid
    return None


def ending(status: Mapping[str, Any]) -> bool:
    """Whether the container's init or command is gone (or a zombie)."""
    if not init_alive(status) or _dead(status.get("pid")):
        return True
    if status.get("main_pid") is None:
        return False
    main = main_pid(status)
    return main is None or _dead(main)


class ContainerRecords:
    """The containers of a store as the driver sees them: meta, state, snapshot.

    ``host`` gives the LXC host (read on first use): a running container's
    cgroup tells whether it is paused.
    """

    def __init__(self, store: ContainerStore, host: Callable[[], LxcHost]) -> None:
        self.store = store
        self._host = host
        self._meta_cache: dict[str, dict[str, Any]] = {}
        self._static_cache: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        self._meta_cache.clear()
        self._static_cache.clear()

    def forget(self, id: str) -> None:
        """Drop what is cached of container ``id`` (removed)."""
        self._meta_cache.pop(id, None)
        self._static_cache.pop(id, None)

    def meta(self, id: str) -> dict[str, Any]:
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

    def resolve(self, ref: str) -> str:
        """The id of the container ``ref`` names (id, name or id prefix)."""
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

    def status(self, id: str) -> dict[str, Any]:
        try:
            return self.store.read_status(id)
        except FileNotFoundError as exc:
            self.forget(id)
            raise ContainerNotFound(f"no such container: {id}") from exc
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read the state of container {id[:12]}: {exc}") from exc

    def state(self, id: str) -> tuple[ContainerState, dict[str, Any]]:
        status = self.status(id)
        if status.get("state") == "running":
            return self._live_state(id, status)
        return _STATES.get(status.get("state", ""), ContainerState.EXITED), status

    def _live_state(self, id: str, status: dict[str, Any]) -> tuple[ContainerState, dict[str, Any]]:
        """The state of a container whose status says running (recovering a dead monitor)."""
        if self.store.monitor_alive(id) or init_alive(status):
            if self._host().cgroups.frozen(status.get("cgroups") or {}):
                return ContainerState.PAUSED, status
            return ContainerState.RUNNING, status
        status = self._recover(id)
        return _STATES.get(status.get("state", ""), ContainerState.EXITED), status

    def _recover(self, id: str) -> dict[str, Any]:
        """Write down the exit of a container whose monitor died."""
        with self.store.container_lock(id):
            status = self.status(id)
            if status.get("state") != "running":
                return status
            if self.store.monitor_alive(id) or init_alive(status):
                return status
            sent = read_stripped(self.store.path(id, "signal"))
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

    def stopping(self, id: str) -> bool:
        """Whether the container stopped or is stopping (its init or its
        command gone): an exec that failed then met the stop (lxc-attach
        exits 1 when there is nothing left to attach to)."""
        state, status = self.state(id)
        return state is not ContainerState.RUNNING or ending(status)

    def image_in_use(self, image_id: str) -> bool:
        for cid in self.store.ids():
            with contextlib.suppress(OSError, ValueError):
                if self.meta(cid).get("image_id") == image_id:
                    return True
        return False

    def _static(self, id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The parts of a snapshot that never change, built once per container."""
        fixed = self._static_cache.get(id)
        if fixed is None:
            fixed = {
                "id": id,
                "name": meta["name"],
                "image": meta["image"],
                "image_id": meta["image_id"],
                "created_at": parse_rfc3339(meta["created_at"]),
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

    def snapshot(
        self, id: str, meta: dict[str, Any], state: ContainerState, status: dict[str, Any]
    ) -> Container:
        """The container as the API shows it, from its records."""
        live = state in LIVE
        exited = state is ContainerState.EXITED
        ports_src = status.get("ports") if live else meta["ports"]
        return Container(
            **self._static(id, meta),
            state=state,
            exit_code=status.get("exit_code") if exited else None,
            oom_killed=bool(status.get("oom_killed")),
            started_at=parse_rfc3339(status.get("started_at")),
            finished_at=parse_rfc3339(status.get("finished_at")) if exited else None,
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
