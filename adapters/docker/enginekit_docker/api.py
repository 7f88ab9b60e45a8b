"""What every part of the Docker driver shares: the transport, the negotiated
API version, and the calls made on them.

Every path is sent as ``/v<version><path>`` (:meth:`Api.url`), the version
negotiated once per driver (see :mod:`.versions`): lazily on the first
request (or :meth:`ping`), under a lock, from ``GET /_ping``'s
``Api-Version`` header. Nothing is sent in the constructor.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from email.message import Message
from typing import Any

from enginekit.errors import (
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    NotFound,
)
from enginekit.transport import Dialer, Response, Transport

from . import convert, versions
from .errors import error_for, map_errors, message_of
from .instance import Instance, describe

__all__ = ["HINT", "Api", "label_filters"]

HINT = "start it with `dockerd` (or `bash scripts/setup-engines.sh`)"
_PING_TIMEOUT = 5.0


def label_filters(labels: Mapping[str, str | None] | None) -> list[str]:
    """``{"k": "v", "k2": None}`` -> Docker's ``label`` filter values."""
    return [k if v is None else f"{k}={v}" for k, v in (labels or {}).items()]


class Api:
    """The HTTP calls on dockerd's socket, answers checked (no per-call state)."""

    name = convert.ENGINE

    def __init__(
        self,
        address: str,
        *,
        pool_size: int = 8,
        tls: ssl.SSLContext | None = None,
        dialer: Dialer | None = None,
    ) -> None:
        self.address = address
        self.transport = Transport(
            address, hint=HINT, pool_size=pool_size, name="docker", tls=tls, dialer=dialer
        )
        self._api: str | None = None
        self._api_lock = threading.Lock()
        self._described: Instance | None = None  # see DockerDriver.capabilities
        self._describe_lock = threading.Lock()

    # -- the API version ------------------------------------------------------
    @property
    def api_version(self) -> str:
        """The Engine API version spoken on this connection (negotiated on first use)."""
        version = self._api
        if version is None:
            with self._api_lock:
                if self._api is None:
                    self._api = self._pick(self._ping())
                version = self._api
        return version

    def url(self, path: str) -> str:
        """``path`` under the negotiated version (``/info`` -> ``/v1.51/info``)."""
        return f"/v{self.api_version}{path}"

    def _ping(self) -> Message:
        """``GET /_ping`` (unversioned): the answer's headers; EngineUnavailable if none."""
        try:
            resp = self.transport.request("GET", "/_ping", timeout=_PING_TIMEOUT)
        except EngineTimeout as exc:
            raise EngineUnavailable(
                "docker did not answer /_ping in time", address=self.address, hint=HINT
            ) from exc
        except EngineUnavailable:
            raise
        except EngineError as exc:  # took the connection, gave no answer
            raise EngineUnavailable(str(exc), address=self.address) from exc
        if not resp.ok:
            message = message_of(resp)
            raise EngineUnavailable(
                f"docker answered /_ping with HTTP {resp.status}: {message}",
                address=self.address,
                hint=HINT,
            )
        resp.read()
        return resp.headers

    def _pick(self, ping_headers: Message) -> str:
        """The version to speak, from ``/_ping``'s ``Api-Version`` (the engine's
        maximum), else from the unversioned ``GET /version``."""
        stated = ping_headers.get("Api-Version")
        engine_max = versions.parse(stated)
        if engine_max is None:
            resp = self.transport.request("GET", "/version", timeout=_PING_TIMEOUT)
            if not resp.ok:
                raise EngineUnavailable(
                    f"docker says no API version (/version: HTTP {resp.status})",
                    address=self.address,
                    hint=HINT,
                )
            with map_errors("version"):
                stated = str(resp.json().get("ApiVersion") or "")
            engine_max = versions.parse(stated)
            if engine_max is None:
                raise EngineUnavailable(
                    f"docker says no API version ({stated!r})", address=self.address, hint=HINT
                )
        if engine_max < versions.OLDEST:
            raise versions.too_old_engine(str(stated), address=self.address)
        return versions.text(versions.choose(engine_max))

    def _refusal(self, status: int, message: str) -> EngineUnavailable | None:
        """Docker's "client version ... is too old/new" as its error (the version
        is negotiated again next time: the engine may have been replaced)."""
        refused = versions.refused_version(status, message, address=self.address)
        if refused is not None:
            self._api = None
        return refused

    # -- calls ----------------------------------------------------------------
    def _check(
        self, resp: Response, *, operation: str, missing: type[NotFound] = ContainerNotFound
    ) -> Response:
        """``resp`` if it is a success (2xx); else read it and raise its error."""
        if resp.ok:
            return resp
        message = message_of(resp)
        raise self._refusal(resp.status, message) or error_for(
            resp.status, message, operation=operation, missing=missing
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self.transport.request(method, self.url(path), **kwargs)

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        missing: type[NotFound] = ContainerNotFound,
        **kwargs: Any,
    ) -> Response:
        """Send a request; a non-2xx answer raises its enginekit error."""
        return self._check(
            self._request(method, path, **kwargs), operation=operation, missing=missing
        )

    def _json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        with map_errors(operation):
            return self._call(method, path, operation=operation, **kwargs).json()

    def _empty(self, method: str, path: str, *, operation: str, **kwargs: Any) -> None:
        """A call whose answer carries nothing we need; 304 (already so) is a success."""
        resp = self._request(method, path, **kwargs)
        if resp.status != 304:
            self._check(resp, operation=operation)
        resp.read()

    def _instance(self) -> Instance:
        """What this daemon can do and how it keeps images, from one ``GET /info``
        (on first use, then kept: see :mod:`.instance`)."""
        found = self._described
        if found is None:
            with self._describe_lock:
                if self._described is None:
                    info = self._json("GET", "/info", operation="info")
                    with map_errors("info"):
                        self._described = describe(info)
                found = self._described
        return found

    def _root_dir(self) -> str:
        return str(self._json("GET", "/info", operation="info").get("DockerRootDir") or "")

    def _inspect_raw(self, ref: str) -> Mapping[str, Any]:
        data: Mapping[str, Any] = self._json("GET", f"/containers/{ref}/json", operation="inspect")
        return data
