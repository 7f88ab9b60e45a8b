"""Where ``enginekit.connect("podman")`` finds the Podman service: Podman's own order.

With no address given, as ``podman --remote`` chooses:

1. ``CONTAINER_CONNECTION``: the system connection of that name (one that
   does not exist is an error, as for Podman);
2. ``CONTAINER_HOST``: that address (``CONTAINER_SSHKEY`` is then the ssh
   identity);
3. the default connection: ``Connection.Default`` of
   ``podman-connections.json``, else ``[engine] active_service`` of
   ``containers.conf`` (a default that names no connection is passed over,
   as Podman does);
4. the service's own socket: ``unix:///run/podman/podman.sock`` for root,
   else ``unix://$XDG_RUNTIME_DIR/podman/podman.sock`` (``XDG_RUNTIME_DIR``
   defaults to ``/run/user/<uid>``): a user's rootless service.

The ``connection=`` option of :func:`enginekit_podman.connect` names a
connection outright (as ``podman --connection`` does) and beats all four.

Connections are kept in two places; one of the same name in the first wins:

- ``podman-connections.json`` (Podman 5, ``podman system connection add``):
  ``PODMAN_CONNECTIONS_CONF``, else
  ``$XDG_CONFIG_HOME/containers/podman-connections.json`` (``XDG_CONFIG_HOME``
  defaults to ``~/.config``), for root as for any user::

      {"Connection": {"Default": "build1",
                      "Connections": {"build1": {"URI": "ssh://ci@build1/run/podman/podman.sock",
                                                 "Identity": "/home/me/.ssh/id_ed25519"}}}}

- ``containers.conf`` (Podman 4), ``[engine] active_service`` and
  ``[engine.service_destinations.NAME]`` tables with ``uri`` and
  ``identity``. The files are read in Podman's order, a later one overriding
  an earlier one key by key: ``CONTAINERS_CONF`` alone if it is set; else
  ``/usr/share/containers/containers.conf`` and its ``.d`` directory,
  ``/etc/containers/containers.conf`` and its ``.d`` directory, for a user
  other than root ``/etc/containers/containers.rootless.conf`` and its ``.d``
  directory (and ``.d/<uid>``), then ``$XDG_CONFIG_HOME/containers/containers.conf``
  and its ``.d`` directory; ``CONTAINERS_CONF_OVERRIDE`` last.

A connection that does not exist is ``EngineUnavailable`` naming it, what
chose it and where it was looked for; a file that cannot be parsed is
``InvalidSpec`` naming it. No message shows an environment value other than
an address and a connection's name: paths read ``~/.config/...``,
``$XDG_CONFIG_HOME/...``, ``$PODMAN_CONNECTIONS_CONF``, ``$CONTAINERS_CONF``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from enginekit.toolkit.endpoints import Endpoint, redact
from enginekit.toolkit.errors import EngineUnavailable, InvalidSpec

__all__ = [
    "ROOTFUL_ADDRESS",
    "Connection",
    "Target",
    "connections",
    "containers_conf_files",
    "default_address",
    "endpoints",
    "resolve",
]

ROOTFUL_ADDRESS = "unix:///run/podman/podman.sock"
_HINT = "see `podman system connection list` or `enginekit engines`"
_OPTION = "the connection option"
_SHARE = Path("/usr/share/containers")
_ETC = Path("/etc/containers")


@attrs.frozen
class Connection:
    """One Podman system connection."""

    name: str
    uri: str
    #: The ssh key to use (a path); never shown in a message.
    identity: str | None = attrs.field(default=None, repr=False)
    is_machine: bool = False
    #: Where it is defined, as messages show it.
    source: str = ""
    default: bool = False


@attrs.frozen
class Target:
    """What ``connect("podman")`` talks to, and why."""

    address: str
    #: The connection's name; None for ``CONTAINER_HOST`` or the service's socket.
    connection: str | None
    #: What chose it: ``"CONTAINER_CONNECTION"``, ``"CONTAINER_HOST"``, ``"the default
    #: connection"``, ``"the connection option"``, ``"the rootful socket"``, ``"the rootless
    #: socket"``.
    chosen_by: str
    identity: str | None = attrs.field(default=None, repr=False)

    def describe(self) -> str:
        if self.connection is None:
            return f"the podman address chosen by {self.chosen_by}"
        what = f"podman connection {self.connection!r}"
        return what if self.chosen_by == _OPTION else f"{what} (chosen by {self.chosen_by})"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _uid(uid: int | None) -> int:
    return os.geteuid() if uid is None else uid


def _config_home(env: Mapping[str, str]) -> tuple[Path, str]:
    """``$XDG_CONFIG_HOME``, else ``~/.config``; and how messages show it."""
    chosen = env.get("XDG_CONFIG_HOME")
    if chosen:
        return Path(chosen), "$XDG_CONFIG_HOME"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".config", "~/.config"


def default_address(env: Mapping[str, str] | None = None, uid: int | None = None) -> str:
    """The service's own socket: rootful for root, else the user's rootless one."""
    e = _env(env)
    user = _uid(uid)
    if user == 0:
        return ROOTFUL_ADDRESS
    runtime = e.get("XDG_RUNTIME_DIR") or f"/run/user/{user}"
    return f"unix://{runtime}/podman/podman.sock"


def _conf_d(folder: Path, shown: str) -> list[tuple[Path, str]]:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".conf"))
    except OSError:
        return []
    return [(folder / n, f"{shown}/{n}") for n in names if not (folder / n).is_dir()]


def containers_conf_files(
    env: Mapping[str, str] | None = None, uid: int | None = None
) -> list[tuple[Path, str]]:
    """``containers.conf`` files in the order Podman reads them (later ones win), each
    with how messages show it; files that do not exist are listed too."""
    e = _env(env)
    user = _uid(uid)
    files: list[tuple[Path, str]] = []
    if e.get("CONTAINERS_CONF"):
        files.append((Path(e["CONTAINERS_CONF"]), "$CONTAINERS_CONF"))
    else:
        for base in (_SHARE, _ETC):
            conf = base / "containers.conf"
            files.append((conf, str(conf)))
            files += _conf_d(base / "containers.conf.d", f"{conf}.d")
            if user > 0:
                if base == _ETC:
                    rootless = base / "containers.rootless.conf"
                    files.append((rootless, str(rootless)))
                for folder in (base / "containers.rootless.conf.d",):
                    files += _conf_d(folder, str(folder))
                    files += _conf_d(folder / str(user), f"{folder}/{user}")
            else:
                folder = base / "containers.rootful.conf.d"
                files += _conf_d(folder, str(folder))
        home, shown = _config_home(e)
        files.append(
            (home / "containers" / "containers.conf", f"{shown}/containers/containers.conf")
        )
        files += _conf_d(
            home / "containers" / "containers.conf.d", f"{shown}/containers/containers.conf.d"
        )
    if e.get("CONTAINERS_CONF_OVERRIDE"):
        files.append((Path(e["CONTAINERS_CONF_OVERRIDE"]), "$CONTAINERS_CONF_OVERRIDE"))
    return files


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _engine_table(path: Path, shown: str, *, must_exist: bool) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        if must_exist:
            raise InvalidSpec(f"podman: {shown} does not exist") from None
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InvalidSpec(f"podman: cannot read {shown}: {detail}") from exc
    engine = data.get("engine")
    return engine if isinstance(engine, dict) else {}


def _from_containers_conf(
    env: Mapping[str, str], uid: int | None
) -> tuple[str | None, dict[str, Connection]]:
    """``active_service`` and the service destinations, merged over every file."""
    active: str | None = None
    found: dict[str, Connection] = {}
    for path, shown in containers_conf_files(env, uid):
        must = shown in ("$CONTAINERS_CONF", "$CONTAINERS_CONF_OVERRIDE")
        engine = _engine_table(path, shown, must_exist=must)
        if engine is None:
            continue
        if "active_service" in engine:
            active = _text(engine.get("active_service"))
        destinations = engine.get("service_destinations")
        if not isinstance(destinations, dict):
            continue
        for name, entry in destinations.items():
            if not isinstance(entry, dict):
                continue
            uri = _text(entry.get("uri"))
            if uri is None:
                continue
            found[name] = Connection(
                name=name,
                uri=uri,
                identity=_text(entry.get("identity")),
                is_machine=bool(entry.get("is_machine")),
                source=shown,
            )
    return active, found


def _connections_file(env: Mapping[str, str]) -> tuple[Path, str]:
    chosen = env.get("PODMAN_CONNECTIONS_CONF")
    if chosen:
        return Path(chosen), "$PODMAN_CONNECTIONS_CONF"
    home, shown = _config_home(env)
    return (
        home / "containers" / "podman-connections.json",
        f"{shown}/containers/podman-connections.json",
    )


def _key(mapping: Any, key: str) -> Any:
    """``mapping[key]`` matched without regard to case (as Go's JSON decoder does)."""
    if not isinstance(mapping, dict):
        return None
    if key in mapping:
        return mapping[key]
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == key.lower():
            return v
    return None


def _from_connections_file(env: Mapping[str, str]) -> tuple[str | None, dict[str, Connection]]:
    path, shown = _connections_file(env)
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InvalidSpec(f"podman: cannot read {shown}: {detail}") from exc
    section = _key(data, "Connection")
    found: dict[str, Connection] = {}
    entries = _key(section, "Connections")
    if isinstance(entries, dict):
        for name, entry in entries.items():
            uri = _text(_key(entry, "URI"))
            if uri is None:
                continue
            found[name] = Connection(
                name=name,
                uri=uri,
                identity=_text(_key(entry, "Identity")),
                is_machine=bool(_key(entry, "IsMachine")),
                source=shown,
            )
    return _text(_key(section, "Default")), found


def connections(
    env: Mapping[str, str] | None = None, uid: int | None = None
) -> tuple[list[Connection], str]:
    """Every connection by name (``default`` set on the default one), and where they
    were looked for (for messages)."""
    e = _env(env)
    default, from_json = _from_connections_file(e)
    active, from_conf = _from_containers_conf(e, uid)
    if default is None:
        default = active
    merged = {**from_conf, **from_json}
    out = [attrs.evolve(merged[n], default=n == default) for n in sorted(merged)]
    where = f"{_connections_file(e)[1]} and containers.conf"
    return out, where


def resolve(
    connection: str | None = None,
    env: Mapping[str, str] | None = None,
    uid: int | None = None,
) -> Target:
    """Where ``connect("podman")`` goes: ``connection`` if given, else Podman's order."""
    e = _env(env)
    if connection is not None:
        if not isinstance(connection, str) or not connection:
            raise InvalidSpec("podman: connection must be a connection's name")
        return _named(connection, _OPTION, e, uid)
    if e.get("CONTAINER_CONNECTION"):
        return _named(e["CONTAINER_CONNECTION"], "CONTAINER_CONNECTION", e, uid)
    if e.get("CONTAINER_HOST"):
        return Target(
            address=e["CONTAINER_HOST"],
            connection=None,
            chosen_by="CONTAINER_HOST",
            identity=e.get("CONTAINER_SSHKEY") or None,
        )
    found, _ = connections(e, uid)
    for conn in found:
        if conn.default:
            return Target(conn.uri, conn.name, "the default connection", conn.identity)
    user = _uid(uid)
    return Target(
        address=default_address(e, user),
        connection=None,
        chosen_by="the rootful socket" if user == 0 else "the rootless socket",
    )


def _named(name: str, chosen_by: str, env: Mapping[str, str], uid: int | None) -> Target:
    found, where = connections(env, uid)
    for conn in found:
        if conn.name == name:
            return Target(conn.uri, conn.name, chosen_by, conn.identity)
    raise EngineUnavailable(
        f"podman connection {name!r} does not exist (chosen by {chosen_by}; looked in {where})",
        hint=_HINT,
    )


def endpoints(env: Mapping[str, str] | None = None, uid: int | None = None) -> list[Endpoint]:
    """Every connection as an :class:`~enginekit.endpoints.Endpoint`, then the address
    ``connect("podman")`` falls back to (``CONTAINER_HOST`` or the service's socket,
    named None); ``current`` is the one it picks now."""
    e = _env(env)
    try:
        target: Target | None = resolve(None, e, uid)
    except (EngineUnavailable, InvalidSpec):
        target = None
    try:
        found, _ = connections(e, uid)
    except InvalidSpec:
        found = []
    out = [
        Endpoint(
            engine="podman",
            name=c.name,
            url=redact(c.uri),
            current=target is not None and target.connection == c.name,
            source=c.source + (" (default)" if c.default else ""),
            options={"connection": c.name},
        )
        for c in found
    ]
    if e.get("CONTAINER_HOST"):
        fallback, source = e["CONTAINER_HOST"], "CONTAINER_HOST"
    else:
        user = _uid(uid)
        fallback = default_address(e, user)
        source = "the rootful socket" if user == 0 else "the rootless socket"
    out.append(
        Endpoint(
            engine="podman",
            name=None,
            url=redact(fallback),
            current=target is not None and target.connection is None,
            source=source,
            options={"address": fallback},
        )
    )
    return out
