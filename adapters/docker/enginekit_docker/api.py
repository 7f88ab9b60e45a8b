"""What every part of the Docker driver shares: the HTTP driver base
(:class:`enginekit.toolkit.http.HttpDriver`) under Docker's API version, and
what Docker's answers mean.

Every path is sent as ``/v<version><path>`` (:meth:`Api.url`), the version
negotiated once per driver (see :mod:`.versions`): lazily on the first
request (or :meth:`ping`), under a lock, from ``GET /_ping``'s
``Api-Version`` header. Nothing is sent in the constructor.
"""

from __future__ import annotations

import re
from email.message import Message

from enginekit.toolkit.driver import LabelFilter, label_filters
from enginekit.toolkit.errors import EngineError, EngineUnavailable, NotFound
from enginekit.toolkit.http import HttpDriver, Row

from . import convert, names, versions
from .errors import error_for
from .instance import Instance, describe

__all__ = ["HINT", "Api", "label_filters"]

HINT = "start it with `dockerd` (or `bash scripts/setup-engines.sh`)"


class Api(HttpDriver[str]):
    """The HTTP calls on dockerd's socket, answers checked (no per-call state)."""

    name = convert.ENGINE
    hint = HINT

    # -- the API version ------------------------------------------------------
    @property
    def api_version(self) -> str:
        """The Engine API version spoken on this connection (negotiated on first use)."""
        return self._api()

    def url(self, path: str) -> str:
        """``path`` under the negotiated version (``/info`` -> ``/v1.51/info``)."""
        return f"/v{self._api()}{path}"

    _path = url

    def _negotiate(self, ping: Message) -> str:
        """The version to speak, from ``/_ping``'s ``Api-Version`` (the engine's
        maximum), else from the unversioned ``GET /version``."""
        stated = ping.get("Api-Version")
        engine_max = versions.parse(stated)
        if engine_max is None:
            resp = self.transport.request("GET", "/version", timeout=self.ping_timeout)
            if not resp.ok:
                resp.close()
                raise EngineUnavailable(
                    f"docker says no API version (/version: HTTP {resp.status})",
                    address=self.address,
                    hint=HINT,
                )
            with self._map_errors("version"):
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
            self._forget("api")
        return refused

    def _error(
        self, status: int, message: str, *, operation: str, missing: type[NotFound]
    ) -> EngineError:
        """A version refusal (:meth:`_refusal`), else as :func:`.errors.error_for` says."""
        return self._refusal(status, message) or error_for(
            status, message, operation=operation, missing=missing
        )

    # -- what is read once --------------------------------------------------------
    def _instance(self) -> Instance:
        """What this daemon can do and how it keeps images, from one ``GET /info``
        (on first use, then kept: see :mod:`.instance`)."""

        def ask() -> Instance:
            info = self._json("GET", "/info", operation="info")
            with self._map_errors("info"):
                return describe(info)

        return self._once("instance", ask)

    def _root_dir(self) -> str:
        return str(self._json("GET", "/info", operation="info").get("DockerRootDir") or "")

    def _list_rows(self, *, all: bool, labels: LabelFilter, name: str | None) -> list[Row]:
        """One ``GET /containers/json`` with the filters: its entries, as Docker sends them."""
        filters: dict[str, list[str]] = {}
        if labels:
            filters["label"] = label_filters(labels)
        if name:
            filters["name"] = ["^/" + re.escape(names.engine_name(name)) + "$"]
        entries = self._json(
            "GET",
            "/containers/json",
            operation="list",
            params={"all": all, "filters": filters or None},
        )
        with self._map_errors("list"):
            if not isinstance(entries, list):
                raise ValueError("the container list is not a list")
            return entries
