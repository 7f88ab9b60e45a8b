"""Image names in archives: qualified and familiar forms, Podman's ``localhost/``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidSpec
from .media import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME

# Docker's reference grammar (distribution/reference), enough to tell the
# registry part from the path and the tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")


def _split_name(name: str) -> tuple[str, str, str]:
    """``(domain, path, tag)`` of a tagged image name; InvalidSpec if it is not one."""
    if "@" in name:
        raise InvalidSpec(f"not a name:tag image reference: {name!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, remainder = first, rest
    else:
        domain, remainder = "docker.io", name
    repo, colon, tag = remainder.rpartition(":")
    if not colon or "/" in tag:
        repo, tag = remainder, "latest"
    if domain == "docker.io" and "/" not in repo:
        repo = "library/" + repo
    if not (
        _DOMAIN_RE.fullmatch(domain)
        and _PATH_RE.fullmatch(repo)
        and _TAG_RE.fullmatch(tag)
        and len(domain) + len(repo) < 256
    ):
        raise InvalidSpec(f"not a valid image name: {name!r}")
    return domain, repo, tag


def qualified_name(name: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest`` (InvalidSpec if not a name)."""
    domain, repo, tag = _split_name(name)
    return f"{domain}/{repo}:{tag}"


def familiar_name(name: str) -> str:
    """``docker.io/library/busybox:1`` -> ``busybox:1``, as Docker shows names."""
    domain, repo, tag = _split_name(name)
    if domain == "docker.io":
        return f"{repo.removeprefix('library/')}:{tag}"
    return f"{domain}/{repo}:{tag}"


def add_localhost(name: str) -> str:
    """``app:v1`` -> ``localhost/app:v1``: a name without registry, as Podman names local images.

    Use as ``rename=`` before ``podman load`` so that a loaded image gets the
    name Podman gives images it built (and not ``docker.io/...``).
    """
    domain, repo, tag = _split_name(name)
    first = name.partition("/")[0]
    if domain == "docker.io" and first not in ("docker.io", "index.docker.io"):
        return f"localhost/{repo.removeprefix('library/')}:{tag}"
    return familiar_name(name)


def strip_localhost(name: str) -> str:
    """``localhost/app:v1`` -> ``app:v1``: Podman's local name as the contract shows it."""
    domain, repo, tag = _split_name(name)
    if domain == "localhost":
        return f"{repo}:{tag}"
    return familiar_name(name)


def _tag_of(name: str) -> str:
    return _split_name(name)[2]


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
