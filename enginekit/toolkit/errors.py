"""The errors a driver raises: only these leave an adapter (``enginekit.errors``).

A missing object is ``ContainerNotFound``/``ImageNotFound`` (a missing path
``NotFound``), a state that forbids the operation ``Conflict``, bad input the
engine refused ``InvalidSpec``, an engine that does not answer
``EngineUnavailable``, one that answers too late ``EngineTimeout``, an
operation the engine instance cannot do ``Unsupported``. ``FIELDS`` names
what an error carries besides its message.
"""

from __future__ import annotations

from enginekit.errors import *  # noqa: F403
from enginekit.errors import FIELDS
from enginekit.errors import __all__ as _names

__all__ = [*_names, "FIELDS"]
