"""What every part of the Docker driver shares: the transport and the calls made on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enginekit.errors import ContainerNotFound, NotFound
from enginekit.transport import Response, Transport

from . import convert
from .errors import check, map_errors

__all__ = ["API", "HINT", "Api", "label_filters"]

API = "/v1.41"
HINT = "start it with `dockerd` (or `bash scripts/setup-engines.sh`)"


def label_filters(labels: Mapping[str, str | None] | None) -> list[str]:
    """``{"k": "v", "k2": None}`` -> Docker's ``label`` filter values."""
    return [k if v is None else f"{k}={v}" for k, v in (labels or {}).items()]


class Api:
    """The HTTP calls on dockerd's socket, answers checked (no per-call state)."""

    name = convert.ENGINE

    def __init__(self, address: str, *, pool_size: int = 8) -> None:
        self.address = address
        self.transport = Transport(address, hint=HINT, pool_size=pool_size)

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
        return check(
            self.transport.request(method, API + path, **kwargs),
            operation=operation,
            missing=missing,
        )

    def _json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        with map_errors(operation):
            return self._call(method, path, operation=operation, **kwargs).json()

    def _empty(self, method: str, path: str, *, operation: str, **kwargs: Any) -> None:
        """A call whose answer carries nothing we need; 304 (already so) is a success."""
        resp = self.transport.request(method, API + path, **kwargs)
        if resp.status != 304:
            check(resp, operation=operation)
        resp.read()

    def _root_dir(self) -> str:
        return str(self._json("GET", "/info", operation="info").get("DockerRootDir") or "")

    def _inspect_raw(self, ref: str) -> Mapping[str, Any]:
        data: Mapping[str, Any] = self._json("GET", f"/containers/{ref}/json", operation="inspect")
        return data
