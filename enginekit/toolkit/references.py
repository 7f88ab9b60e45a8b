"""Image references (``enginekit.reference``), parsed and normalised as Docker
does: :meth:`Reference.parse` (``busybox`` is ``docker.io/library/busybox:latest``),
:func:`named_registry` (the registry a reference names as written, or None)."""

from __future__ import annotations

from enginekit.reference import DEFAULT_REGISTRY, Reference, named_registry

__all__ = ["DEFAULT_REGISTRY", "Reference", "named_registry"]
