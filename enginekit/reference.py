"""Image references, parsed and normalised as Docker does.

:meth:`Reference.parse` reads what a user types (``busybox``,
``library/busybox:1``, ``127.0.0.1:5000/team/app:v2``,
``app@sha256:<hex>``) into its parts, with the rules of Docker's reference
grammar:

- The first ``/``-separated component is a **registry host** when it contains
  a ``.`` or a ``:`` or is ``localhost``; otherwise the registry is Docker
  Hub, ``docker.io``. ``index.docker.io`` is ``docker.io``. (Docker 28 also
  takes a first component with an uppercase letter for a host; Podman reads
  it as part of the repository, which must be lowercase: ``Reg/app`` is
  refused, so that every engine reads a reference alike.)
- On Docker Hub a one-component repository is an official image:
  ``busybox`` is ``docker.io/library/busybox``.
- A registry host is DNS-like (letters, digits and ``-`` between dots; an
  uppercase letter is allowed there) with an optional ``:port``. Addresses
  in brackets (IPv6) are refused: not every supported engine reads them.
- The repository path is one or more components of lowercase letters and
  digits, separated inside a component by one ``.``, one or two ``_`` or any
  number of ``-``. The registry and path together are at most 255
  characters.
- A tag is 1 to 128 of ``[A-Za-z0-9_.-]``, not starting with ``.`` or ``-``.
  A reference with neither tag nor digest gets the tag ``latest``.
- A digest is ``sha256:`` + 64, ``sha384:`` + 96 or ``sha512:`` + 128
  lowercase hex digits; a reference may have a tag and a digest.
- 64 hex characters alone are an image id, not a name.

``str()`` of a reference is its normalised form
(``docker.io/library/busybox:latest``), :attr:`Reference.familiar` the short
form Docker shows (``busybox:latest``, ``app:v1``,
``127.0.0.1:5000/team/app:v2``). Text that is not a reference raises
:class:`~enginekit.errors.InvalidSpec` saying which rule it breaks.
"""

from __future__ import annotations

import re

import attrs

from .errors import InvalidSpec

__all__ = ["DEFAULT_REGISTRY", "Reference", "named_registry"]

#: Docker Hub, the registry of a name that names none.
DEFAULT_REGISTRY = "docker.io"
_LEGACY_REGISTRY = "index.docker.io"
_OFFICIAL = "library/"
_DEFAULT_TAG = "latest"
_NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY_RE = re.compile(rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}")
_DIGEST_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128}
_ID_RE = re.compile(r"[a-f0-9]{64}")


def _registry_part(text: str) -> tuple[str | None, str]:
    """``(registry, rest)``: the registry the text names itself (None: none, so
    Docker Hub) and what follows it, by Docker's first-component rule."""
    first, slash, rest = text.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first):
        host, colon, port = first.partition(":")
        if colon and host.lower() == "localhost":
            # ``LOCALHOST:5000`` is ``localhost:5000``: a host name's case means
            # nothing, and Docker's containerd store speaks plain HTTP only to a
            # lowercase localhost (HTTPS to any other spelling).
            first = f"localhost:{port}"
        return first, rest
    return None, text


def named_registry(text: str) -> str | None:
    """The registry host ``text`` names itself (``127.0.0.1:5000/app:1`` ->
    ``127.0.0.1:5000``, ``index.docker.io/x`` -> ``docker.io``), or None when it
    names none (``app:1``, ``team/app``: Docker Hub by default) or is an image id.

    Only the first-component rule is applied: check the text with
    :meth:`Reference.parse`.
    """
    if text.startswith("sha256:") or _ID_RE.fullmatch(text):
        return None
    registry, _ = _registry_part(text)
    return DEFAULT_REGISTRY if registry == _LEGACY_REGISTRY else registry


def _problem(registry: str, repository: str, tag: str | None, digest: str | None) -> str | None:
    """Which rule the parts break (None: none)."""
    if registry.startswith("["):
        return "a registry address in brackets (IPv6) is not supported by every engine"
    if not _REGISTRY_RE.fullmatch(registry):
        return (
            f"the registry host {registry!r} is not a host name or address with an optional :port"
        )
    if not repository:
        return "the repository name is empty"
    if repository.lower() != repository:
        first = repository.partition("/")[0]
        if "/" in repository and first.lower() != first:
            return (
                "the repository name must be lowercase (a registry host has a '.' or a "
                "':port', or is localhost)"
            )
        return "the repository name must be lowercase"
    if not _PATH_RE.fullmatch(repository):
        return (
            "the repository name must be lowercase letters and digits, in components "
            "separated by '/', with '.', '_', '__' or '-' only between letters and digits"
        )
    if len(registry) + 1 + len(repository) > _NAME_MAX:
        return f"the name is longer than {_NAME_MAX} characters with its registry"
    if tag is not None and not _TAG_RE.fullmatch(tag):
        return "the tag must be 1 to 128 of A-Z a-z 0-9 _ . -, not starting with '.' or '-'"
    if digest is not None:
        algorithm, _, hexits = digest.partition(":")
        size = _DIGEST_SIZES.get(algorithm)
        if not _DIGEST_RE.fullmatch(digest) or size is None:
            return "the digest must be sha256:, sha384: or sha512: and lowercase hex digits"
        if len(hexits) != size or hexits.lower() != hexits:
            return f"a {algorithm} digest is {size} lowercase hex digits"
    return None


@attrs.frozen(kw_only=True)
class Reference:
    """An image reference: ``registry/repository[:tag][@digest]``, normalised.

    Built by :meth:`parse` (or directly: the same rules apply, so
    ``Reference(registry="index.docker.io", repository="busybox")`` equals
    ``Reference.parse("busybox")``).
    """

    registry: str = DEFAULT_REGISTRY
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __attrs_post_init__(self) -> None:
        registry, repository = self.registry, self.repository
        if registry == _LEGACY_REGISTRY:
            registry = DEFAULT_REGISTRY
        if registry == DEFAULT_REGISTRY and repository and "/" not in repository:
            repository = _OFFICIAL + repository
        tag = _DEFAULT_TAG if self.tag is None and self.digest is None else self.tag
        problem = _problem(registry, repository, tag, self.digest)
        if problem is not None:
            raise InvalidSpec(f"not a valid image reference: {problem}")
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "repository", repository)
        object.__setattr__(self, "tag", tag)

    @classmethod
    def parse(cls, text: str, *, field: str = "image") -> Reference:
        """``text`` as Docker reads it (``busybox`` ->
        ``docker.io/library/busybox:latest``); InvalidSpec naming ``field`` and
        the rule when it is not a reference."""
        if not isinstance(text, str) or not text:
            raise InvalidSpec(f"{field} must be a non-empty str")

        def fail(problem: str) -> InvalidSpec:
            return InvalidSpec(f"{field} {text!r} is not a valid image reference: {problem}")

        if _ID_RE.fullmatch(text):
            raise fail("64 hex digits are an image id, not a name")
        registry, rest = _registry_part(text)
        rest, at, digest = rest.partition("@")
        repository, colon, tag = rest.partition(":")
        if at and not digest:
            raise fail("'@' must be followed by a digest")
        if colon and not tag:
            raise fail("':' must be followed by a tag")
        try:
            return cls(
                registry=DEFAULT_REGISTRY if registry is None else registry,
                repository=repository,
                tag=tag if colon else None,
                digest=digest if at else None,
            )
        except InvalidSpec as exc:
            raise fail(str(exc).removeprefix("not a valid image reference: ")) from None

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The name as Docker shows it: ``docker.io/`` and an official image's
        ``library/`` left out (``busybox``, ``team/app``, ``127.0.0.1:5000/app``).

        ``docker.io/`` stays where leaving it out would make the first component
        read as a registry host (``docker.io/a.b/app``), so that the short form
        always reads back as the same reference.
        """
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        path = self.repository
        if path.startswith(_OFFICIAL) and "/" not in path[len(_OFFICIAL) :]:
            return path[len(_OFFICIAL) :]
        if _registry_part(path)[0] is not None:
            return self.name
        return path

    @property
    def familiar(self) -> str:
        """The whole reference as Docker shows it: ``busybox:latest``, ``app:v1``."""
        return self.familiar_name + self._suffix()

    @property
    def loopback(self) -> bool:
        """Whether the registry is this machine's (``localhost``, 127.0.0.0/8;
        names are not resolved): spoken to over plain HTTP, as Docker does."""
        from .tls import is_loopback

        host = self.registry.rpartition(":")[0] if ":" in self.registry else self.registry
        return is_loopback(host)

    def _suffix(self) -> str:
        tag = "" if self.tag is None else f":{self.tag}"
        digest = "" if self.digest is None else f"@{self.digest}"
        return tag + digest

    def __str__(self) -> str:
        return self.name + self._suffix()
