"""Where ``enginekit.connect("docker")`` finds dockerd: ``DOCKER_HOST``, then Docker contexts.

With no address given, the Docker CLI's own order:

1. ``DOCKER_HOST`` (set and not empty): the ``default`` context, at that
   address (``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` go with it). It beats
   every context, as it does for the docker CLI;
2. ``DOCKER_CONTEXT``: the context of that name;
3. ``currentContext`` of ``config.json`` in Docker's config directory
   (``DOCKER_CONFIG``, else ``~/.docker``), which ``docker context use`` writes;
4. the ``default`` context: ``unix:///var/run/docker.sock``.

The ``context=`` option of :func:`enginekit_docker.connect` names a context
outright (as ``docker --context`` does) and beats all four. The name
``default`` always means step 1 or 4 (it is reserved: no stored context has it).

Contexts live in ``<config dir>/contexts``: ``meta/<id>/meta.json`` holds a
context's name and endpoints, ``<id>`` being the SHA-256 (hex) of the name::

    {"Name": "build1",
     "Metadata": {"Description": "the build host"},
     "Endpoints": {"docker": {"Host": "ssh://ci@build1", "SkipTLSVerify": false}}}

and ``tls/<id>/docker/{ca,cert,key}.pem`` its TLS material, when it has any.
JSON keys are matched without regard to case, as Docker reads them. A
context whose docker endpoint has no ``Host`` talks to the default socket.

A context that does not exist, or has no docker endpoint, is
``EngineUnavailable`` naming it, what chose it and where it was looked for;
a ``meta.json`` or ``config.json`` that is not JSON is ``InvalidSpec``
naming the file. No message shows an environment value other than an
address and a context's name: paths read ``~/.docker/...`` or
``$DOCKER_CONFIG/...``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from enginekit.toolkit.endpoints import Endpoint, redact
from enginekit.toolkit.errors import EngineUnavailable, InvalidSpec

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_HOST",
    "Context",
    "TLSFiles",
    "Target",
    "chosen",
    "config_dir",
    "context_id",
    "endpoints",
    "list_contexts",
    "load",
    "resolve",
]

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT = "default"
_HINT = "see `docker context ls` or `enginekit engines`"
_OPTION = "the context option"


@attrs.frozen
class TLSFiles:
    """A context's TLS material: paths of the files it has (None for one it lacks)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def __bool__(self) -> bool:
        return bool(self.ca or self.cert or self.key)


@attrs.frozen
class Context:
    """One Docker context: its docker endpoint and where it is stored."""

    name: str
    host: str
    skip_tls_verify: bool = False
    tls: TLSFiles = attrs.field(factory=TLSFiles)
    description: str = ""
    #: Its ``meta.json`` as messages show it (``~/.docker/...`` or
    #: ``$DOCKER_CONFIG/...``); None for the ``default`` context.
    path: str | None = None

    @property
    def address(self) -> str:
        return self.host or DEFAULT_HOST


@attrs.frozen
class Target:
    """What ``connect("docker")`` talks to, and why."""

    address: str
    context: str
    #: What chose it: ``"DOCKER_HOST"``, ``"DOCKER_CONTEXT"``, ``"currentContext in PATH"``,
    #: ``"the context option"``, or ``"the default socket"``.
    chosen_by: str
    tls: TLSFiles = attrs.field(factory=TLSFiles)
    skip_tls_verify: bool = False

    @property
    def from_environment(self) -> bool:
        """Whether ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` apply (the default context)."""
        return self.context == DEFAULT_CONTEXT

    def describe(self) -> str:
        what = (
            "the default docker context"
            if self.context == DEFAULT_CONTEXT
            else f"docker context {self.context!r}"
        )
        return what if self.chosen_by == _OPTION else f"{what} (chosen by {self.chosen_by})"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Docker's config directory: ``DOCKER_CONFIG``, else ``~/.docker``."""
    return _config_dir(_env(env))[0]


def _config_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    """The config directory, and how messages show it (``$DOCKER_CONFIG`` or
    ``~/.docker``: never the value of a variable)."""
    chosen = env.get("DOCKER_CONFIG")
    if chosen:
        return Path(chosen), "$DOCKER_CONFIG"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker", "~/.docker"


def context_id(name: str) -> str:
    """The directory a context is stored in: the SHA-256 of its name, in hex."""
    import hashlib  # only for a named context: not on every start-up

    return hashlib.sha256(name.encode()).hexdigest()


def _key(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]`` matched without regard to case (as Go's JSON decoder does)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _read_json(path: Path, shown: str, what: str) -> Any:
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InvalidSpec(f"{what}: cannot read {shown}: {detail}") from exc


def _current_context(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``currentContext`` of ``config.json`` and where it was read, if set."""
    folder, shown_folder = _config_dir(env)
    path, shown = folder / "config.json", f"{shown_folder}/config.json"
    try:
        data = _read_json(path, shown, "docker config")
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise InvalidSpec(f"docker config: {shown} is not a JSON object")
    name = _key(data, "currentContext")
    if not name:
        return None
    if not isinstance(name, str):
        raise InvalidSpec(f"docker config: currentContext in {shown} is not a string")
    return name, f"currentContext in {shown}"


def chosen(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The context ``connect("docker")`` uses, and what chose it (Docker's order)."""
    e = _env(env)
    if e.get("DOCKER_HOST"):
        return DEFAULT_CONTEXT, "DOCKER_HOST"
    named = e.get("DOCKER_CONTEXT")
    if named:
        return named, "DOCKER_CONTEXT"
    current = _current_context(e)
    if current is not None:
        return current
    return DEFAULT_CONTEXT, "the default socket"


def _default(env: Mapping[str, str]) -> Context:
    return Context(DEFAULT_CONTEXT, env.get("DOCKER_HOST") or DEFAULT_HOST)


def _tls_files(store: Path, cid: str) -> TLSFiles:
    folder = store / "tls" / cid / "docker"
    found = {
        name: str(folder / f"{name}.pem")
        for name in ("ca", "cert", "key")
        if (folder / f"{name}.pem").is_file()
    }
    return TLSFiles(**found)


def _parse(name: str, shown: str, data: Any, store: Path, cid: str) -> Context:
    what = f"docker context {name!r}"
    if not isinstance(data, dict):
        raise InvalidSpec(f"{what}: {shown} is not a JSON object")
    endpoints = _key(data, "Endpoints") or {}
    docker = _key(endpoints, "docker") if isinstance(endpoints, dict) else None
    if not isinstance(docker, dict):
        raise EngineUnavailable(f"{what} has no docker endpoint ({shown})", hint=_HINT)
    host = _key(docker, "Host") or ""
    if not isinstance(host, str):
        raise InvalidSpec(f"{what}: the docker endpoint's Host in {shown} is not a string")
    metadata = _key(data, "Metadata")
    description = _key(metadata, "Description") if isinstance(metadata, dict) else None
    return Context(
        name=name,
        host=host,
        skip_tls_verify=bool(_key(docker, "SkipTLSVerify")),
        tls=_tls_files(store, cid),
        description=description if isinstance(description, str) else "",
        path=shown,
    )


def load(name: str, env: Mapping[str, str] | None = None, *, chosen_by: str = "") -> Context:
    """The context called ``name`` (``"default"``: ``DOCKER_HOST`` or the default socket)."""
    e = _env(env)
    if name == DEFAULT_CONTEXT:
        return _default(e)
    folder, shown_folder = _config_dir(e)
    store = folder / "contexts"
    cid = context_id(name)
    path = store / "meta" / cid / "meta.json"
    shown = f"{shown_folder}/contexts/meta/{cid}/meta.json"
    try:
        data = _read_json(path, shown, f"docker context {name!r}")
    except FileNotFoundError:
        by = f"chosen by {chosen_by}; " if chosen_by else ""
        raise EngineUnavailable(
            f"docker context {name!r} does not exist ({by}no {shown})", hint=_HINT
        ) from None
    return _parse(name, shown, data, store, cid)


def list_contexts(env: Mapping[str, str] | None = None) -> list[Context]:
    """Every context: ``default`` first, then the stored ones by name.

    One that cannot be read is left out (``load`` of its name says why)."""
    e = _env(env)
    folder, shown_folder = _config_dir(e)
    store = folder / "contexts"
    found: dict[str, Context] = {}
    try:
        paths = sorted((store / "meta").glob("*/meta.json"))
    except OSError:
        paths = []
    for path in paths:
        cid = path.parent.name
        shown = f"{shown_folder}/contexts/meta/{cid}/meta.json"
        try:
            data = _read_json(path, shown, "docker context")
        except (FileNotFoundError, InvalidSpec):
            continue
        name = _key(data, "Name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name or name == DEFAULT_CONTEXT:
            continue
        try:
            found[name] = _parse(name, shown, data, store, cid)
        except (EngineUnavailable, InvalidSpec):
            continue
    return [_default(e), *(found[n] for n in sorted(found))]


def resolve(context: str | None = None, env: Mapping[str, str] | None = None) -> Target:
    """Where ``connect("docker")`` goes: ``context`` if given, else Docker's order (module doc)."""
    e = _env(env)
    if context is not None:
        if not isinstance(context, str) or not context:
            raise InvalidSpec("docker: context must be a context's name")
        name, by = context, _OPTION
    else:
        name, by = chosen(e)
    ctx = load(name, e, chosen_by=by)
    return Target(
        address=ctx.address,
        context=ctx.name,
        chosen_by=by,
        tls=ctx.tls,
        skip_tls_verify=ctx.skip_tls_verify,
    )


def endpoints(env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """Every context as an :class:`~enginekit.endpoints.Endpoint`; ``current`` is the one
    ``connect("docker")`` picks (none when the chosen context does not exist)."""
    e = _env(env)
    try:
        current, _ = chosen(e)
    except InvalidSpec:
        current = ""
    out = []
    for ctx in list_contexts(e):
        source = ctx.path or ("DOCKER_HOST" if e.get("DOCKER_HOST") else "the default socket")
        out.append(
            Endpoint(
                engine="docker",
                name=ctx.name,
                url=redact(ctx.address),
                current=ctx.name == current,
                source=source,
                options={"context": ctx.name},
            )
        )
    return out
