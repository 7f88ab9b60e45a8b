"""Image names in archives: qualified and familiar forms (see :mod:`enginekit.reference`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidSpec
from ..reference import Reference
from .media import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME


def _reference(name: str) -> Reference:
    """A tagged image name (no digest) read by :meth:`Reference.parse`."""
    ref = Reference.parse(name, field="image name")
    if ref.digest is not None:
        raise InvalidSpec(f"not a name:tag image reference: {name!r}")
    return ref


def qualified_name(name: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest`` (InvalidSpec if not a name)."""
    return str(_reference(name))


def familiar_name(name: str) -> str:
    """``docker.io/library/busybox:1`` -> ``busybox:1``, as Docker shows names."""
    return _reference(name).familiar


def _tag_of(name: str) -> str:
    return _reference(name).tag or "latest"


def _name_from_annotations(annotations: Mapping[str, Any]) -> str | None:
    """The familiar name an OCI index entry carries, if it carries a whole one."""
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        value = annotations.get(key)
        # A bare ref name ("v1", as `skopeo copy ... oci:DIR:v1` writes) names
        # no repository: it is not a tag an engine could show.
        if isinstance(value, str) and ("/" in value or ":" in value):
            try:
                return familiar_name(value)
            except InvalidSpec:
                continue
    return None
