"""Plumbing shared by the driver's parts: the HTTP driver base
(:class:`enginekit.toolkit.http.HttpDriver`) under the libpod API agreed for
the connection, what libpod's answers mean, lookups."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping
from email.message import Message
from typing import Any

from enginekit.toolkit.driver import LabelFilter, label_filters
from enginekit.toolkit.errors import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    NotFound,
)
from enginekit.toolkit.http import Dialer, HttpDriver, Row, quote
from enginekit.toolkit.time import unix_nanos

from . import convert
from .errors import error_for, process_vanished
from .host import Host, host_from_info
from .versions import Negotiated, negotiate

__all__ = ["DEFAULT_ADDRESS", "HINT", "Base", "quote"]

DEFAULT_ADDRESS = "unix:///run/podman/podman.sock"
HINT = (
    "start it with `podman system service --time=0 unix:///run/podman/podman.sock` "
    "(or `bash scripts/setup-engines.sh`)"
)

_q = quote


class Base(HttpDriver[Negotiated]):
    """The connection and the calls every part of the driver makes."""

    name = "podman"
    hint = HINT
    ping_timeout = 10.0

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        pool_size: int = 8,
        dialer: Dialer | None = None,
    ) -> None:
        super().__init__(address, pool_size=pool_size, dialer=dialer)
        self._lock = threading.Lock()
        self._oom_cache: dict[tuple[str, dt.datetime | None], bool] = {}
        # When this driver last sent a container a stop or a signal (libpod
        # does not always record a `stop` event).
        self._signalled: dict[str, dt.datetime] = {}
        # (image id, working directory) -> (existing part, resolved; missing parts)
        self._workdirs: dict[tuple[str, str], tuple[str, list[str]]] = {}

    # -- version and host, once per connection -------------------------------
    def _negotiate(self, ping: Message) -> Negotiated:
        return negotiate(ping, address=self.address, hint=HINT)

    def _path(self, path: str) -> str:
        return self._api().prefix + path

    def _error(
        self, status: int, message: str, *, operation: str, missing: type[NotFound]
    ) -> EngineError:
        return error_for(status, message or "no message", missing=missing)

    def _host_info(self) -> Host:
        """The engine's host (cgroups, rootless, memory), read once from ``/info``."""

        def ask() -> Host:
            data = self._json("GET", "/info", operation="info")
            with self._map_errors("info"):
                return self._make_host(data)

        return self._once("host", ask)

    def _make_host(self, data: Mapping[str, Any]) -> Host:
        """The host an ``/info`` answer describes (a remote driver adds what its host says)."""
        return host_from_info(data, address=self.address)

    def _remember_host(self, data: Mapping[str, Any]) -> Host:
        """The host as an ``/info`` answer describes it (kept if none was yet)."""
        host = self._make_host(data)
        self._once("host", lambda: host)
        return host

    # -- lists and lookups ---------------------------------------------------------
    def _list(self, path: str, params: Mapping[str, Any], operation: str) -> Any:
        """A list endpoint, read again when it fails because an object went
        away while it was being listed (another client at work)."""
        for attempt in range(5):
            try:
                return self._json("GET", path, params=params, operation=operation)
            except (EngineUnavailable, EngineTimeout):
                raise
            except EngineError:
                # "image not known", "layer not known": an object went away
                # while the list was being read. Reading is safe to repeat.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return []  # pragma: no cover

    def _list_rows(self, *, all: bool, labels: LabelFilter, name: str | None) -> list[Row]:
        """One ``GET /containers/json``: its rows as libpod sends them, oldest
        first; an exact name picked here."""
        filters: dict[str, list[str]] = {}
        if labels:
            filters["label"] = label_filters(labels)
        if not all:
            # libpod's list without `all` leaves paused containers out.
            filters["status"] = ["running", "paused"]
        params: dict[str, Any] = {"all": True}
        if filters:
            params["filters"] = filters
        rows = self._list("/containers/json", params, "container list")
        with self._map_errors("container list"):
            rows = [
                r
                for r in rows or ()
                if name is None or name in [str(n).lstrip("/") for n in r.get("Names") or ()]
            ]
            rows.sort(key=lambda r: (_created(r.get("Created")), str(r["Id"])))
            return rows

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
                data = self._json(
                    "GET",
                    f"/images/{_q(cand)}/json",
                    operation="image inspect",
                    missing=ImageNotFound,
                )
            except NotFound as exc:
                last = exc
                continue
            if not isinstance(data, dict):
                raise EngineError("podman: unexpected answer to image inspect")
            return data, cand
        raise ImageNotFound(f"no image {ref!r}") from last

    def _inspect_raw(self, ref: str) -> dict[str, Any]:
        for attempt in range(5):
            try:
                return super()._inspect_raw(ref)
            except EngineError as exc:
                if attempt == 4 or not process_vanished(exc):
                    raise
                time.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover


def _created(value: object) -> int:
    """A list entry's ``Created`` (RFC 3339 text, or epoch seconds) in nanoseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 10**9)
    return unix_nanos(value) or 0 if isinstance(value, str) else 0
