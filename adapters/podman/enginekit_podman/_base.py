"""Plumbing shared by the driver's parts: the transport, JSON calls, lookups."""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from enginekit.errors import (
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    NotFound,
)
from enginekit.transport import Dialer, Response, Transport

from . import convert
from .errors import (
    check,
    map_errors,
    message_of,
    process_vanished,
)
from .host import Host, host_from_info
from .versions import Negotiated, negotiate

__all__ = ["DEFAULT_ADDRESS", "HINT", "Base", "labels_match", "quote"]

DEFAULT_ADDRESS = "unix:///run/podman/podman.sock"
HINT = (
    "start it with `podman system service --time=0 unix:///run/podman/podman.sock` "
    "(or `bash scripts/setup-engines.sh`)"
)
_LIST_WORKERS = 8


def quote(value: str) -> str:
    """``value`` as one URL path segment."""
    return urllib.parse.quote(value, safe="")


_q = quote


class Base:
    """The connection and the calls every part of the driver makes."""

    name = "podman"

    def __init__(
        self, address: str = DEFAULT_ADDRESS, *, pool_size: int = 8, dialer: Dialer | None = None
    ) -> None:
        self.address = address
        self._transport = Transport(address, hint=HINT, pool_size=pool_size, dialer=dialer)
        self._lock = threading.Lock()
        # Asked once, on first need (never in the constructor): the libpod
        # API spoken on this connection and the engine's host.
        self._version_lock = threading.Lock()
        self._host_lock = threading.Lock()
        self._negotiated: Negotiated | None = None
        self._host: Host | None = None
        self._oom_cache: dict[tuple[str, dt.datetime | None], bool] = {}
        # When this driver last sent a container a stop or a signal (libpod
        # does not always record a `stop` event).
        self._signalled: dict[str, dt.datetime] = {}
        # (image id, working directory) -> (existing part, resolved; missing parts)
        self._workdirs: dict[tuple[str, str], tuple[str, list[str]]] = {}

    @property
    def transport(self) -> Transport:
        """The HTTP transport (engine-specific extra, not part of the portable API)."""
        return self._transport

    # -- version and host, once per connection -------------------------------
    def _ping_response(self) -> Response:
        """``GET /_ping`` (never versioned); EngineUnavailable unless it answers 200."""
        try:
            resp = self._transport.request("GET", "/_ping", timeout=10)
            body = resp.read()
        except EngineUnavailable:
            raise
        except EngineError as exc:
            raise EngineUnavailable(
                f"podman did not answer ({exc})", address=self.address, hint=HINT
            ) from exc
        if resp.status != 200:
            raise EngineUnavailable(
                f"podman answered /_ping with HTTP {resp.status} ({message_of(body)})",
                address=self.address,
                hint=HINT,
            )
        return resp

    def _adopt(self, resp: Response) -> Negotiated:
        """The version agreed from a ``/_ping`` answer (the first one wins)."""
        agreed = negotiate(resp.headers, address=self.address, hint=HINT)
        with self._version_lock:
            if self._negotiated is None:
                self._negotiated = agreed
            return self._negotiated

    def _api(self) -> Negotiated:
        """The libpod API of this connection, agreed on the first request (one
        ``/_ping``, however many threads ask at once)."""
        agreed = self._negotiated
        if agreed is not None:
            return agreed
        with self._version_lock:
            if self._negotiated is None:
                resp = self._ping_response()
                self._negotiated = negotiate(resp.headers, address=self.address, hint=HINT)
            return self._negotiated

    def _host_info(self) -> Host:
        """The engine's host (cgroups, rootless, memory), read once from ``/info``."""
        host = self._host
        if host is not None:
            return host
        with self._host_lock:
            if self._host is None:
                data = self._json("GET", "/info", what="info")
                with map_errors("info"):
                    self._host = self._make_host(data)
            return self._host

    def _make_host(self, data: Mapping[str, Any]) -> Host:
        """The host an ``/info`` answer describes (a remote driver adds what its host says)."""
        return host_from_info(data, address=self.address)

    def _remember_host(self, data: Mapping[str, Any]) -> Host:
        """The host as an ``/info`` answer describes it (kept if none was yet)."""
        host = self._make_host(data)
        with self._host_lock:
            if self._host is None:
                self._host = host
        return host

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self._transport.request(method, self._api().prefix + path, **kwargs)

    def _json(
        self,
        method: str,
        path: str,
        *,
        missing: type[NotFound] = ContainerNotFound,
        what: str = "",
        **kwargs: Any,
    ) -> Any:
        with map_errors(what or f"{method} {path}"):
            resp = self._request(method, path, **kwargs)
            check(resp, missing=missing)
            return resp.json()

    def _call(
        self, method: str, path: str, *, missing: type[NotFound] = ContainerNotFound, **kw: Any
    ) -> int:
        """A request whose body does not matter; returns the status (2xx or 304)."""
        with map_errors(f"{method} {path}"):
            resp = self._request(method, path, **kw)
            check(resp, missing=missing)
            resp.read()
            return resp.status

    def _list(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        """A list endpoint, read again when it fails because an object went
        away while it was being listed (another client at work)."""
        for attempt in range(5):
            try:
                return self._json("GET", path, params=params, what=what)
            except (EngineUnavailable, EngineTimeout):
                raise
            except EngineError:
                # "image not known", "layer not known": an object went away
                # while the list was being read. Reading is safe to repeat.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return []  # pragma: no cover

    def _map_parallel(self, keys: list[str], fn: Callable[[str], Any]) -> list[Any]:
        if len(keys) <= 2:
            return [fn(k) for k in keys]
        with ThreadPoolExecutor(max_workers=min(_LIST_WORKERS, len(keys))) as pool:
            return list(pool.map(fn, keys))

    def _image_raw(self, ref: str) -> dict[str, Any]:
        return self._image_lookup(ref)[0]

    def _image_lookup(self, ref: str) -> tuple[dict[str, Any], str]:
        """``GET /images/{ref}/json``, trying Podman's ``localhost/`` name first
        (see :func:`~enginekit_podman.convert.engine_image_candidates`).

        Returns the image data and the name that found it.
        """
        last: NotFound | None = None
        for cand in convert.engine_image_candidates(ref):
            try:
                data = self._json("GET", f"/images/{_q(cand)}/json", missing=ImageNotFound)
            except NotFound as exc:
                last = exc
                continue
            if not isinstance(data, dict):
                raise EngineError("podman: unexpected answer to image inspect")
            return data, cand
        raise ImageNotFound(f"no image {ref!r}") from last

    def _container_raw(self, ref: str) -> dict[str, Any]:
        for attempt in range(5):
            try:
                data = self._json("GET", f"/containers/{_q(ref)}/json", what="container inspect")
                break
            except EngineError as exc:
                if attempt == 4 or not process_vanished(exc):
                    raise
                time.sleep(0.02 * (attempt + 1))
        if not isinstance(data, dict):
            raise EngineError("podman: unexpected answer to container inspect")
        return data


def labels_match(have: Mapping[str, str], wanted: Mapping[str, str | None]) -> bool:
    for key, value in wanted.items():
        if key not in have:
            return False
        if value is not None and have[key] != value:
            return False
    return True
