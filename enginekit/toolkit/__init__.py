"""The adapter toolkit: everything an adapter takes from the core, and all it may take.

An adapter (a package such as ``enginekit_docker``) imports from
``enginekit.toolkit`` and its modules only; the rest of the core may change
without notice, this package does not. By topic:

=====================  ======================================================
module                 what it holds
=====================  ======================================================
:mod:`.driver`         the Driver contract, :class:`~.driver.BaseDriver`
                       (defaults for what derives from other primitives),
                       capabilities, label filters
:mod:`.http`           the HTTP transport and :class:`~.http.HttpDriver`, the
                       base of an adapter whose engine serves a REST API
:mod:`.logs`           log frames joined into lines, interruptible log iterators
:mod:`.errors`         the errors a driver raises (``enginekit.errors``)
:mod:`.models`         the models a driver returns (``enginekit.models``)
:mod:`.refusals`       how every engine words a refused start, exec or port
:mod:`.references`     image references, normalised as Docker does
:mod:`.archives`       image archives (OCI and docker-archive), tar link
                       handling, ADD's decompression
:mod:`.build`          build contexts (``.dockerignore``, the context tar) and
                       Dockerfile parsing and evaluation
:mod:`.endpoints`      what ``connect()`` is given, checked; the endpoints an
                       adapter lists
:mod:`.tls`            TLS to a ``tcp://`` address
:mod:`.hosts`          the host an engine runs on (a remote engine's facts)
:mod:`.ssh`            engines reached over the system's ssh client
:mod:`.time`           RFC 3339 timestamps as engines write them
:mod:`.signals`        signal names and numbers (Linux's)
=====================  ======================================================

Importing this package imports none of them (a CLI's start-up pays only for
what it uses): ``from enginekit.toolkit import http`` or
``from enginekit.toolkit.http import HttpDriver``. Writing an adapter is
walked through in ``docs/adapters.md``.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "archives",
    "build",
    "driver",
    "endpoints",
    "errors",
    "hosts",
    "http",
    "logs",
    "models",
    "references",
    "refusals",
    "signals",
    "ssh",
    "time",
    "tls",
]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        __import__(f"{__name__}.{name}")
        return sys.modules[f"{__name__}.{name}"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
