"""Which engine ``enginekit.connect()`` talks to.

In order: the ``engine`` argument (an adapter name or a URL whose scheme names
it); ``ENGINEKIT_ENGINE`` (and ``ENGINEKIT_URL``); the nearest
``enginekit.toml`` or ``[tool.enginekit]`` table of a ``pyproject.toml``,
searched from the current directory upwards; then the first reachable
installed engine (Docker, Podman, LXC, then others by name).

An engine named without an address is found by its adapter, the way that
engine's own tools find it: Docker's ``DOCKER_HOST``, ``DOCKER_CONTEXT`` and
current context; Podman's ``CONTAINER_CONNECTION``, ``CONTAINER_HOST``,
default connection and socket; ``LXC_PATH``. :func:`endpoints` lists the
engines those configurations name (Docker contexts, Podman connections).

Config file keys: ``engine`` (name or URL), ``url`` (address), and a table
``options`` passed to the adapter::

    # enginekit.toml
    engine = "podman"
    url = "podman+unix:///run/podman/podman.sock"
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import registry
from .endpoints import Endpoint
from .engine import Engine
from .errors import EngineError, EngineUnavailable, InvalidSpec
from .models import EngineStatus

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Choice",
    "choose",
    "connect",
    "endpoint_statuses",
    "endpoints",
    "engines",
    "parse_url",
]

#: How long ``endpoint_statuses`` waits for the engines named by configuration, at most.
PROBE_TIMEOUT = 3.0


@attrs.frozen
class Choice:
    """An engine picked by :func:`choose`: adapter ``name``, its ``address``, and where from."""

    name: str | None
    address: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    source: str = "argument"


def parse_url(url: str) -> tuple[str, str | None]:
    """``docker+unix:///var/run/docker.sock`` -> ``("docker", "unix:///var/run/docker.sock")``;
    ``lxc:///var/lib/lxc`` -> ``("lxc", "/var/lib/lxc")``; ``podman`` -> ``("podman", None)``.

    A URL holding a password (``tcp://user:secret@host``) is refused, without
    quoting it: enginekit sends no password to an engine, and an address is shown
    in reprs and messages.
    """
    if "://" not in url:
        return url, None
    import urllib.parse  # only for a URL: not on a named engine's way (start-up)

    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    name, plus, transport = scheme.partition("+")
    if not name:
        raise InvalidSpec("engine URL needs a scheme naming the engine, e.g. docker+unix://")
    if parts.password is not None:
        raise InvalidSpec(
            "engine URL must not hold a password (user:password@): enginekit sends none to "
            "an engine; use SSH keys or TLS certificates"
        )
    rest = url.split("://", 1)[1]
    if plus:
        return name, f"{transport}://{rest}"
    address = rest if rest.startswith("/") else (parts.netloc + parts.path) or None
    return name, address or None


#: Schemes of a bare address (``ssh://ci@build1``), as against a URL naming an engine.
_TRANSPORTS = frozenset({"unix", "tcp", "http", "ssh"})


def _url_or_address(url: str) -> tuple[str | None, str]:
    """``ENGINEKIT_URL``/``url``: a URL naming its engine (``docker+ssh://h`` ->
    ``("docker", "ssh://h")``) or a bare address (``ssh://h``, ``/run/x.sock`` ->
    ``(None, the address)``) for the engine named elsewhere."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme or scheme in _TRANSPORTS:
        parse_url(url)  # a password is refused here too
        return None, url
    name, address = parse_url(url)
    return name, address or url


def _find_config(start: Path) -> tuple[dict[str, Any], str] | None:
    for folder in (start, *start.parents):
        toml_file = folder / "enginekit.toml"
        if toml_file.is_file():
            return _read_toml(toml_file), str(toml_file)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            table = _read_toml(pyproject).get("tool", {}).get("enginekit")
            if isinstance(table, dict):
                return table, str(pyproject)
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file is found

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidSpec(f"cannot read {path}: {exc}") from exc


def choose(engine: str | None = None, *, cwd: str | None = None) -> Choice:
    """Decide which adapter and address to use, without connecting."""
    name: str | None
    address: str | None
    if engine is not None:
        if not isinstance(engine, str) or not engine:
            raise InvalidSpec("engine must be an adapter name or a URL")
        name, address = parse_url(engine)
        return Choice(name, address, {}, "argument")
    env_engine = os.environ.get("ENGINEKIT_ENGINE")
    env_url = os.environ.get("ENGINEKIT_URL")
    if env_engine or env_url:
        name = address = None
        if env_engine:
            name, address = parse_url(env_engine)
        if env_url:
            url_name, url_address = _url_or_address(env_url)
            if name is None:
                name = url_name
            if url_name in (None, name):
                address = url_address
        if name is None:
            raise InvalidSpec(
                "ENGINEKIT_URL is an address without an engine: set ENGINEKIT_ENGINE too, "
                "or give a URL naming it (docker+ssh://..., podman+unix://...)"
            )
        return Choice(name, address, {}, "environment")
    from pathlib import Path  # not when the engine is named (start-up)

    found = _find_config(Path(cwd or os.getcwd()).resolve())
    if found is not None:
        table, path = found
        name = address = None
        raw_engine = table.get("engine")
        if raw_engine is not None:
            if not isinstance(raw_engine, str):
                raise InvalidSpec(f"{path}: engine must be a string")
            name, address = parse_url(raw_engine)
        raw_url = table.get("url")
        if raw_url is not None:
            if not isinstance(raw_url, str):
                raise InvalidSpec(f"{path}: url must be a string")
            url_name, url_address = _url_or_address(raw_url)
            name = name or url_name
            address = url_address
        options = table.get("options", {})
        if not isinstance(options, dict):
            raise InvalidSpec(f"{path}: options must be a table")
        if name is not None:
            return Choice(name, address, dict(options), path)
    return Choice(None, None, {}, "first reachable")


def connect(engine: str | None = None, **options: Any) -> Engine:
    """Connect to an engine (see the module docstring for how it is chosen).

    ``engine`` is ``"docker"``, ``"podman"``, ``"lxc"`` (or another installed
    adapter's name) or a URL such as ``podman+unix:///run/podman/podman.sock``.
    ``options`` go to the adapter. Connecting does no I/O when the engine is
    named; with none named, the first installed engine that answers is used.
    """
    choice = choose(engine)
    if choice.name is not None:
        merged = {**choice.options, **options}
        driver = registry.load_adapter(choice.name)(choice.address, **merged)
        return Engine(driver)
    reasons = []
    for name in registry.adapter_names():
        try:
            driver = registry.load_adapter(name)(None, **options)
        except EngineError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        try:
            driver.ping()
        except EngineError as exc:
            reasons.append(f"{name}: {exc}")
            driver.close()
            continue
        return Engine(driver)
    detail = (
        "; ".join(reasons) if reasons else "no adapter is installed (pip install enginekit-docker)"
    )
    raise EngineUnavailable(f"no engine is reachable ({detail})")


def engines(*which: str) -> list[EngineStatus]:
    """Every installed adapter (or each engine named in ``which``: adapter names
    or URLs), whether its engine answers and why not; for one that answers, its
    :class:`EngineInfo`, the capabilities of that instance and why it lacks the rest."""
    out = []
    targets: list[tuple[str, str | None]] = []
    for engine in which:
        if not isinstance(engine, str) or not engine:
            raise InvalidSpec("engine must be an adapter name or a URL")
        targets.append(parse_url(engine))
    if not which:
        targets = [(name, None) for name in registry.adapter_names()]
    for name, address in targets:
        out.append(_status(name, address))
    return out


def _status(name: str, address: str | None) -> EngineStatus:
    dist = registry.distribution_of(name)
    try:
        driver = registry.load_adapter(name)(address)
    except Exception as exc:  # an adapter that cannot even load is reported, not raised
        reason = str(exc) if isinstance(exc, EngineError) else f"cannot load: {type(exc).__name__}"
        return EngineStatus(name=name, reachable=False, reason=reason, distribution=dist)
    engine = Engine(driver)  # its capabilities and reasons, as a caller's Engine sees them
    try:
        engine.ping()
        info = engine.info()
        return EngineStatus(
            name=name,
            reachable=True,
            address=driver.address,
            version=info.version,
            distribution=dist,
            info=info,
            capabilities=engine.capabilities,
            unsupported=engine.unsupported,
        )
    except EngineError as exc:
        return EngineStatus(
            name=name,
            reachable=False,
            address=driver.address,
            reason=str(exc),
            distribution=dist,
        )
    finally:
        driver.close()


def endpoints(*which: str) -> list[Endpoint]:
    """The engines each installed adapter's own configuration names (or those of the
    adapters named in ``which``): Docker contexts, Podman connections, and each one's
    default, with the one ``connect(NAME)`` picks marked ``current``.

    Reads configuration files only; :func:`endpoint_statuses` says which answer. An
    adapter that defines no ``endpoints()`` adds nothing (see :mod:`enginekit.endpoints`).
    """
    out: list[Endpoint] = []
    for name in which or registry.adapter_names():
        if not isinstance(name, str) or not name or "://" in name:
            raise InvalidSpec("endpoints: give adapter names (e.g. 'docker')")
        try:
            out.extend(_adapter_endpoints(name))
        except EngineError:
            if which:
                raise
    return out


def _adapter_endpoints(name: str) -> list[Endpoint]:
    adapter = registry.load_adapter(name)
    module = sys.modules.get(getattr(adapter, "__module__", None) or "")
    listing = getattr(module, "endpoints", None)
    if not callable(listing):
        return []
    return [e for e in listing() if isinstance(e, Endpoint)]


def endpoint_statuses(
    found: Sequence[Endpoint], *, timeout: float = PROBE_TIMEOUT
) -> list[EngineStatus]:
    """Whether each engine in ``found`` answers, all asked at once and none waited for
    longer than ``timeout`` seconds. One that has not answered its ping by then is
    reported as not reachable (and left to finish on its own); one that answered it
    but not yet ``info()`` is reachable, without a version."""
    results: list[EngineStatus | None] = [None] * len(found)

    def probe(i: int, endpoint: Endpoint) -> None:
        def report(status: EngineStatus) -> None:
            results[i] = status

        _probe(endpoint, report)

    threads = [
        threading.Thread(target=probe, args=(i, e), name=f"enginekit-probe-{i}", daemon=True)
        for i, e in enumerate(found)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    out = []
    for endpoint, status in zip(found, list(results), strict=True):
        if status is None:
            status = EngineStatus(
                name=endpoint.engine,
                reachable=False,
                address=endpoint.url,
                reason=f"no answer within {timeout:g}s",
            )
        out.append(status)
    return out


def _probe(endpoint: Endpoint, report: Callable[[EngineStatus], None]) -> None:
    """Connect to ``endpoint``, ping it, then read its version; ``report`` each finding."""

    def failed(reason: str, *, reachable: bool = False) -> None:
        report(
            EngineStatus(
                name=endpoint.engine, reachable=reachable, address=endpoint.url, reason=reason
            )
        )

    options = dict(endpoint.options)
    address = options.pop("address", None)
    try:
        driver = registry.load_adapter(endpoint.engine)(address, **options)
    except EngineError as exc:
        return failed(str(exc))
    except Exception as exc:  # an adapter that fails oddly is reported, not raised
        return failed(f"cannot connect: {type(exc).__name__}")
    try:
        try:
            driver.ping()
        except EngineError as exc:
            return failed(str(exc))
        except Exception as exc:
            return failed(f"cannot reach it: {type(exc).__name__}")
        report(EngineStatus(name=endpoint.engine, reachable=True, address=endpoint.url))
        try:
            info = driver.info()
        except EngineError as exc:
            return failed(str(exc), reachable=True)
        except Exception as exc:
            return failed(f"answers, but info() failed: {type(exc).__name__}", reachable=True)
        report(
            EngineStatus(
                name=endpoint.engine,
                reachable=True,
                address=endpoint.url,
                version=info.version,
                info=info,
            )
        )
        return None
    finally:
        driver.close()
