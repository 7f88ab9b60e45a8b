"""Image archives that every engine here both writes and reads.

The engines disagree on what an "image archive" is: Docker 20.10 writes and
reads only a *docker-archive* (``manifest.json`` + config + ``layer.tar``
files), Podman writes either that or an *OCI archive* (an OCI image layout in
a tar), and the LXC adapter keeps images in an OCI layout directory. This
module turns any of them into one **combined** archive that is at the same
time both (the form newer Docker versions write)::

    oci-layout                          {"imageLayoutVersion": "1.0.0"}
    blobs/sha256/<hex>                  configs, layers, OCI manifests
    index.json                          one entry per tag, annotated with
                                          io.containerd.image.name = qualified name:tag
                                          org.opencontainers.image.ref.name = tag
    manifest.json                       [{"Config": "blobs/sha256/<config>",
                                          "RepoTags": ["name:tag", ...],
                                          "Layers": ["blobs/sha256/<layer>", ...]}]

Docker loads it through ``manifest.json``; Podman through ``index.json`` when
it has one entry (one image with one tag), else through ``manifest.json``;
skopeo and umoci read it as ``oci-archive:``. The config blob is copied byte
for byte, so its digest (the image id) is the same on every engine. Layers
are copied as they are: a gzip layer stays gzip (``...tar+gzip``), and
Docker 20.10 loads those too.

Entry points:

- :func:`to_combined` / :func:`normalize`: rewrite an archive (docker-archive,
  OCI archive or combined, plain or gzip/bzip2/xz-compressed) into the
  combined form, keeping every image and tag; every layer is hashed (streamed,
  bounded memory) and checked against the config's ``rootfs.diff_ids``.
- :func:`read_index`: which images (id, tags, layers) an archive holds.
- :func:`write_from_layout` / :func:`extract_to_layout`: from an OCI layout
  directory to a combined archive, and back into a layout that skopeo and
  umoci accept.

Safety: nothing is extracted by its member name. Members are read in place
from the tar; a member whose name is absolute or has a ``..`` component, a
link that points outside the archive, and any device or fifo member make the
archive invalid (:class:`~enginekit.errors.InvalidSpec`), as does a manifest,
config or layer that does not add up.

Names: a tag is given in Docker's familiar form (``busybox:1``,
``example.com/team/app:v2``; ``name`` alone means ``name:latest``); the
qualified form (``docker.io/library/busybox:1``) goes in the
``io.containerd.image.name`` annotation. Podman 4.3 calls a local image
``localhost/app:v1``, and loads a short name ``app:v1`` as
``docker.io/library/app:v1`` from a one-entry archive (it reads index.json)
but as ``localhost/app:v1`` from any other (it reads manifest.json). Its
adapter therefore saves with ``normalize(path, rename=strip_localhost)`` and
loads a copy made with
``to_combined(src, tmp, rename=add_localhost)``: every image then lands as
``localhost/...``, which the contract shows without the prefix.

Note for layouts: ``skopeo copy docker-daemon:REF oci:DIR:TAG`` rewrites the
config (the image id changes); :func:`extract_to_layout` and skopeo copies
from ``oci-archive:`` keep it.
"""

from __future__ import annotations

import bz2
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Protocol

import attrs

from .errors import ImageNotFound, InvalidSpec

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "ArchiveImage",
    "ArchiveLayer",
    "add_localhost",
    "extract_to_layout",
    "familiar_name",
    "normalize",
    "qualified_name",
    "read_index",
    "strip_localhost",
    "to_combined",
    "write_from_layout",
]

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

_MANIFEST_MEDIA = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
_INDEX_MEDIA = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})

_CHUNK = 1 << 20
_JSON_LIMIT = 32 << 20  # manifests, configs, indexes are small; refuse absurd ones
_LINK_DEPTH = 40
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_BLOB_PATH_RE = re.compile(r"blobs/sha256/([0-9a-f]{64})")

# Docker's reference grammar (distribution/reference), enough to tell the
# registry part from the path and the tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")


# --------------------------------------------------------------------------- names


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


# --------------------------------------------------------------------------- models


@attrs.frozen(kw_only=True)
class ArchiveLayer:
    """One layer of an archived image.

    ``digest`` is the blob's digest as stored (compressed or not), ``diff_id``
    the digest of the uncompressed tar (as listed in the config's
    ``rootfs.diff_ids``), ``size`` the stored size in bytes (-1 when not
    read), ``media_type`` the OCI layer media type.
    """

    digest: str
    diff_id: str
    size: int
    media_type: str


@attrs.frozen(kw_only=True)
class ArchiveImage:
    """An image held in an archive.

    ``id`` is the config digest (``sha256:`` + 64 hex), which is the image id
    on every engine; ``repo_tags`` the familiar ``name:tag`` names, sorted;
    ``layers`` bottom first; ``manifest_digest`` the digest of its OCI
    manifest in the archive (None when the archive has none).
    """

    id: str
    repo_tags: tuple[str, ...]
    layers: tuple[ArchiveLayer, ...]
    manifest_digest: str | None = None

    @property
    def layer_digests(self) -> tuple[str, ...]:
        """The stored layer blobs' digests, bottom first."""
        return tuple(layer.digest for layer in self.layers)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        """The uncompressed layers' digests, bottom first."""
        return tuple(layer.diff_id for layer in self.layers)


# --------------------------------------------------------------------------- sources


class _Source(Protocol):
    """Read access to the files of an archive or a layout directory, by path."""

    def has(self, name: str) -> bool: ...

    def open(self, name: str) -> IO[bytes]: ...

    def size(self, name: str) -> int: ...


def _clean_member(name: str) -> str | None:
    """A member name as a clean relative path (None for the root); InvalidSpec if unsafe."""
    if "\x00" in name:
        raise InvalidSpec("archive member name contains a NUL byte")
    if name.startswith("/"):
        raise InvalidSpec(f"archive member has an absolute name: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidSpec(f"archive member name contains '..': {name!r}")
    return "/".join(parts) or None


class _TarSource:
    """Members of a plain (uncompressed) tar, read in place, links resolved inside it."""

    def __init__(self, path: str) -> None:
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidSpec(f"not an image archive (not a tar file): {path}") from exc
        except OSError as exc:
            raise InvalidSpec(f"cannot read image archive {path}: {exc.strerror}") from exc
        self._files: dict[str, tarfile.TarInfo] = {}
        self._links: dict[str, str] = {}
        try:
            self._index()
        except BaseException:
            self._tar.close()
            raise

    def _index(self) -> None:
        try:
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSpec("image archive is truncated or corrupt") from exc
        if not members:
            raise InvalidSpec("not an image archive: empty tar")
        for member in members:
            name = _clean_member(member.name)
            if name is None:
                continue
            if member.isdir():
                self._files.pop(name, None)
                continue
            if member.issym():
                if member.linkname.startswith("/"):
                    raise InvalidSpec(f"archive link {name!r} points to an absolute path")
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.linkname)
                )
                if target == ".." or target.startswith("../") or target == ".":
                    raise InvalidSpec(f"archive link {name!r} points outside the archive")
                self._links[name] = target
                self._files.pop(name, None)
            elif member.islnk():
                target_name = _clean_member(member.linkname)
                if target_name is None:
                    raise InvalidSpec(f"archive hard link {name!r} has no target")
                self._links[name] = target_name
                self._files.pop(name, None)
            elif member.isreg():
                self._files[name] = member
                self._links.pop(name, None)
            else:
                raise InvalidSpec(f"archive member {name!r} is not a file, directory or link")

    def _resolve(self, name: str) -> tarfile.TarInfo:
        path = _clean_member(name)
        if path is None:
            raise InvalidSpec(f"archive path {name!r} names no file")
        for _ in range(_LINK_DEPTH):
            member = self._files.get(path)
            if member is not None:
                return member
            parts = path.split("/")
            for i in range(len(parts), 0, -1):
                target = self._links.get("/".join(parts[:i]))
                if target is not None:
                    path = posixpath.normpath(posixpath.join(target, *parts[i:]))
                    if path == ".." or path.startswith("../"):
                        raise InvalidSpec(f"archive path {name!r} leads outside the archive")
                    break
            else:
                raise InvalidSpec(f"image archive has no file {name!r}")
        raise InvalidSpec(f"too many levels of links resolving {name!r} in the archive")

    def has(self, name: str) -> bool:
        try:
            self._resolve(name)
        except InvalidSpec:
            return False
        return True

    def open(self, name: str) -> IO[bytes]:
        stream = self._tar.extractfile(self._resolve(name))
        if stream is None:  # pragma: no cover - _resolve returns regular files only
            raise InvalidSpec(f"archive member {name!r} is not a file")
        return stream

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def close(self) -> None:
        self._tar.close()


class _DirSource:
    """Files of an OCI layout directory; nothing outside it is ever opened."""

    def __init__(self, root: str) -> None:
        self._root = os.path.realpath(root)
        if not os.path.isdir(self._root):
            raise InvalidSpec(f"not an OCI layout directory: {root}")

    def _path(self, name: str) -> str:
        clean = _clean_member(name)
        if clean is None:
            raise InvalidSpec(f"layout path {name!r} names no file")
        real = os.path.realpath(os.path.join(self._root, clean))
        if os.path.commonpath([real, self._root]) != self._root:
            raise InvalidSpec(f"layout path {name!r} leads outside the layout")
        return real

    def has(self, name: str) -> bool:
        try:
            return os.path.isfile(self._path(name))
        except InvalidSpec:
            return False

    def open(self, name: str) -> IO[bytes]:
        path = self._path(name)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise InvalidSpec(f"OCI layout has no readable file {name!r}") from exc

    def size(self, name: str) -> int:
        try:
            return os.path.getsize(self._path(name))
        except OSError as exc:
            raise InvalidSpec(f"OCI layout has no readable file {name!r}") from exc


@contextlib.contextmanager
def _open_archive(path: str) -> Iterator[_TarSource]:
    """Open an archive as a :class:`_TarSource`, decompressing a compressed one first."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except IsADirectoryError as exc:
        raise InvalidSpec(f"not an image archive (a directory): {path}") from exc
    except OSError as exc:
        raise InvalidSpec(f"cannot read image archive {path}: {exc.strerror}") from exc
    opener: Callable[[str], Any] | None = None
    if magic.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif magic.startswith(b"BZh"):
        opener = bz2.open
    elif magic.startswith(b"\xfd7zXZ\x00"):
        opener = lzma.open
    if opener is None:
        source = _TarSource(path)
        try:
            yield source
        finally:
            source.close()
        return
    with tempfile.TemporaryDirectory(prefix="enginekit-archive-") as tmp:
        plain = os.path.join(tmp, "archive.tar")
        try:
            with opener(path) as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise InvalidSpec(f"compressed image archive is corrupt: {path}") from exc
        source = _TarSource(plain)
        try:
            yield source
        finally:
            source.close()


# --------------------------------------------------------------------------- parsing


@attrs.define
class _LayerSrc:
    member: str  # path of the blob in the source
    digest: str | None = None  # claimed by a descriptor or a blob path; checked when hashed
    media_type: str | None = None
    size: int | None = None


@attrs.define
class _ImageSrc:
    config: bytes
    config_digest: str
    diff_ids: list[str]
    layers: list[_LayerSrc]
    tags: list[str] = attrs.field(factory=list)
    manifest: bytes | None = None  # an OCI manifest to reuse as is, when it still holds
    manifest_digest: str | None = None


def _read_small(source: _Source, name: str, what: str) -> bytes:
    if source.size(name) > _JSON_LIMIT:
        raise InvalidSpec(f"{what} {name!r} is too large")
    with source.open(name) as fh:
        return fh.read()


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"{what} is not valid JSON") from exc


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob_name(digest: str) -> str:
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidSpec(f"unsupported or malformed digest {digest!r}")
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _parse_config(data: bytes, what: str) -> list[str]:
    config = _load_json(data, what)
    if not isinstance(config, dict):
        raise InvalidSpec(f"{what} is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and _DIGEST_RE.fullmatch(d) for d in diff_ids
    ):
        raise InvalidSpec(f"{what} has no valid rootfs.diff_ids")
    return list(diff_ids)


def _add_tag(image: _ImageSrc, tag: str) -> None:
    if tag not in image.tags:
        image.tags.append(tag)


def _parse_docker_manifest(source: _Source) -> list[_ImageSrc]:
    entries = _load_json(_read_small(source, "manifest.json", "manifest.json"), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidSpec("manifest.json is not a list")
    images: list[_ImageSrc] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidSpec("manifest.json entry is not an object")
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        repo_tags = entry.get("RepoTags") or []
        if (
            not isinstance(config_name, str)
            or not isinstance(layer_names, list)
            or not all(isinstance(n, str) for n in layer_names)
            or not isinstance(repo_tags, list)
            or not all(isinstance(t, str) for t in repo_tags)
        ):
            raise InvalidSpec("manifest.json entry lacks Config, Layers or RepoTags")
        config = _read_small(source, config_name, "image config")
        diff_ids = _parse_config(config, f"image config {config_name!r}")
        if len(diff_ids) != len(layer_names):
            raise InvalidSpec(
                f"image config {config_name!r} lists {len(diff_ids)} layers,"
                f" manifest.json {len(layer_names)}"
            )
        layers = []
        for layer_name in layer_names:
            clean = _clean_member(layer_name) or ""
            match = _BLOB_PATH_RE.fullmatch(clean)
            layers.append(
                _LayerSrc(member=layer_name, digest="sha256:" + match[1] if match else None)
            )
        image = _ImageSrc(
            config=config, config_digest=_sha256(config), diff_ids=diff_ids, layers=layers
        )
        for tag in repo_tags:
            _add_tag(image, familiar_name(tag))
        images.append(image)
    return images


def _descriptor(value: Any, what: str) -> tuple[str, str, int, dict[str, Any]]:
    """``(media_type, digest, size, annotations)`` of a descriptor; InvalidSpec if broken."""
    if not isinstance(value, dict):
        raise InvalidSpec(f"{what} is not a descriptor object")
    media_type = value.get("mediaType", "")
    digest = value.get("digest")
    size = value.get("size")
    annotations = value.get("annotations") or {}
    if (
        not isinstance(media_type, str)
        or not isinstance(digest, str)
        or not _DIGEST_RE.fullmatch(digest)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or not isinstance(annotations, dict)
    ):
        raise InvalidSpec(f"{what} is not a valid descriptor")
    return media_type, digest, size, annotations


def _read_blob(source: _Source, digest: str, size: int | None, what: str) -> bytes:
    name = _blob_name(digest)
    data = _read_small(source, name, what)
    if _sha256(data) != digest or (size is not None and len(data) != size):
        raise InvalidSpec(f"{what} {digest} does not match its digest or size")
    return data


def _parse_oci_manifest(
    source: _Source, digest: str, size: int, media_type: str, annotations: Mapping[str, Any]
) -> _ImageSrc:
    raw = _read_blob(source, digest, size, "image manifest")
    manifest = _load_json(raw, f"image manifest {digest}")
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise InvalidSpec(f"image manifest {digest} is not a schema 2 manifest")
    _, config_digest, config_size, _ = _descriptor(manifest.get("config"), "manifest config")
    config = _read_blob(source, config_digest, config_size, "image config")
    diff_ids = _parse_config(config, f"image config {config_digest}")
    descriptors = manifest.get("layers")
    if not isinstance(descriptors, list) or len(descriptors) != len(diff_ids):
        raise InvalidSpec(f"image manifest {digest} layers do not match its config's diff_ids")
    layers = []
    for value in descriptors:
        layer_media, layer_digest, layer_size, _ = _descriptor(value, "manifest layer")
        layers.append(
            _LayerSrc(
                member=_blob_name(layer_digest),
                digest=layer_digest,
                media_type=layer_media or None,
                size=layer_size,
            )
        )
    manifest_media = manifest.get("mediaType", media_type)
    image = _ImageSrc(
        config=config,
        config_digest=config_digest,
        diff_ids=diff_ids,
        layers=layers,
        manifest=raw if manifest_media in ("", MEDIA_OCI_MANIFEST) else None,
        manifest_digest=digest,
    )
    name = _name_from_annotations(annotations)
    if name:
        _add_tag(image, name)
    return image


def _parse_oci_index(
    source: _Source, index: Any, annotations: Mapping[str, Any], depth: int = 0
) -> list[_ImageSrc]:
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidSpec("OCI index has no manifests list")
    if depth > 4:
        raise InvalidSpec("OCI indexes nested too deep")
    images: list[_ImageSrc] = []
    for value in index["manifests"]:
        media_type, digest, size, entry_annotations = _descriptor(value, "index entry")
        merged = {**annotations, **entry_annotations}
        if media_type in _INDEX_MEDIA:
            if not source.has(_blob_name(digest)):
                continue
            nested = _load_json(_read_blob(source, digest, size, "image index"), "image index")
            images.extend(_parse_oci_index(source, nested, merged, depth + 1))
        elif media_type in _MANIFEST_MEDIA or media_type == "":
            # A multi-platform index often carries only some platforms' blobs.
            if depth > 0 and not source.has(_blob_name(digest)):
                continue
            images.append(_parse_oci_manifest(source, digest, size, media_type, merged))
        else:
            raise InvalidSpec(f"OCI index entry has unsupported media type {media_type!r}")
    return images


def _parse_layout(source: _Source) -> list[_ImageSrc]:
    index = _load_json(_read_small(source, "index.json", "index.json"), "index.json")
    return _parse_oci_index(source, index, {})


def _merge(images: Iterable[_ImageSrc]) -> list[_ImageSrc]:
    """One entry per config digest, tags united, in first-seen order."""
    merged: dict[str, _ImageSrc] = {}
    for image in images:
        seen = merged.get(image.config_digest)
        if seen is None:
            merged[image.config_digest] = image
            continue
        for tag in image.tags:
            _add_tag(seen, tag)
        if seen.manifest is None and image.manifest is not None:
            seen.manifest, seen.manifest_digest = image.manifest, image.manifest_digest
        for mine, theirs in zip(seen.layers, image.layers, strict=True):
            # Facts about the other side's blob hold for ours only if it is the same file.
            if _clean_member(mine.member) == _clean_member(theirs.member):
                mine.media_type = mine.media_type or theirs.media_type
                mine.digest = mine.digest or theirs.digest
                mine.size = mine.size if mine.size is not None else theirs.size
    # A tag names one image: the first that claims it keeps it.
    owner: dict[str, str] = {}
    for image in merged.values():
        image.tags = [
            t for t in image.tags if owner.setdefault(t, image.config_digest) == image.config_digest
        ]
    return list(merged.values())


def _parse(source: _Source) -> list[_ImageSrc]:
    """Every image of a docker-archive, an OCI layout, or both at once."""
    images: list[_ImageSrc] = []
    has_docker = source.has("manifest.json")
    has_oci = source.has("index.json") and source.has("oci-layout")
    if not has_docker and not has_oci:
        raise InvalidSpec("not an image archive: it has neither manifest.json nor index.json")
    if has_docker:
        images.extend(_parse_docker_manifest(source))
    if has_oci:
        oci = _parse_layout(source)
        if has_docker:
            # manifest.json decides which images there are; the OCI side adds
            # media types, manifests and tags for those same images.
            known = {image.config_digest for image in images}
            oci = [image for image in oci if image.config_digest in known]
        images.extend(oci)
    return _merge(images)


# --------------------------------------------------------------------------- hashing


class _HashingReader:
    """Reads a stream while hashing and counting what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n if n is not None and n >= 0 else _CHUNK)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return MEDIA_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return MEDIA_LAYER_ZSTD
    return MEDIA_LAYER_TAR


_OCI_LAYER_MEDIA = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": MEDIA_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": MEDIA_LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": MEDIA_LAYER_ZSTD,
}


def _media_type(stated: str | None, sniffed: str) -> str:
    """The OCI media type to record: the stated one (in OCI spelling) unless the bytes disagree."""
    oci = _OCI_LAYER_MEDIA.get(stated or "", stated or "")
    if oci in (MEDIA_LAYER_TAR, MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD) or not oci:
        return sniffed
    return oci  # e.g. a non-distributable layer type: keep what the image says


def _gunzip_digest(reader: _HashingReader, head: bytes, member: str) -> str:
    """Digest of the uncompressed content of a gzip stream (several members allowed)."""
    digest = hashlib.sha256()
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = head
    try:
        while True:
            if not pending:
                pending = reader.read(_CHUNK)
                if not pending:
                    break
            digest.update(decomp.decompress(pending, _CHUNK))
            pending = decomp.unconsumed_tail
            if decomp.eof:
                rest = decomp.unused_data + pending or reader.read(_CHUNK)
                if not rest.strip(b"\x00"):
                    reader.drain()  # end of stream, or zero padding after it
                    break
                decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = rest
    except zlib.error as exc:
        raise InvalidSpec(f"layer {member!r} is not valid gzip") from exc
    if not decomp.eof:
        raise InvalidSpec(f"layer {member!r} is a truncated gzip stream")
    return "sha256:" + digest.hexdigest()


def _hash_layer(source: _Source, layer: _LayerSrc, diff_id: str) -> ArchiveLayer:
    """Hash a layer (stored and uncompressed), streamed; check it against the config."""
    with source.open(layer.member) as raw:
        reader = _HashingReader(raw)
        head = reader.read(6)
        sniffed = _sniff(head)
        content: str | None = None
        if sniffed == MEDIA_LAYER_GZIP:
            content = _gunzip_digest(reader, head, layer.member)
        else:
            reader.drain()
    digest = "sha256:" + reader.hash.hexdigest()
    if sniffed == MEDIA_LAYER_TAR:
        content = digest
    # zstd (content None) cannot be unpacked with the standard library: the
    # config's diff_id is taken as it is.
    if layer.digest is not None and layer.digest != digest:
        raise InvalidSpec(f"layer {layer.member!r} does not match its digest {layer.digest}")
    if layer.size is not None and layer.size != reader.count:
        raise InvalidSpec(f"layer {layer.member!r} does not match its stated size")
    if content is not None and content != diff_id:
        raise InvalidSpec(
            f"layer {layer.member!r} does not match the config's diff_id {diff_id}"
            f" (its content is {content})"
        )
    return ArchiveLayer(
        digest=digest,
        diff_id=diff_id,
        size=reader.count,
        media_type=_media_type(layer.media_type, sniffed),
    )


def _cheap_layer(source: _Source, layer: _LayerSrc, diff_id: str) -> ArchiveLayer:
    """Layer facts without hashing when a descriptor or blob path already names the digest."""
    if layer.digest is None:
        return _hash_layer(source, layer, diff_id)
    with source.open(layer.member) as fh:
        sniffed = _sniff(fh.read(6))
    return ArchiveLayer(
        digest=layer.digest,
        diff_id=diff_id,
        size=source.size(layer.member),
        media_type=_media_type(layer.media_type, sniffed),
    )


def _layers(
    source: _Source, image: _ImageSrc, *, verify: bool, cache: dict[str, ArchiveLayer]
) -> tuple[ArchiveLayer, ...]:
    out = []
    for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
        key = f"{layer.member}\x00{diff_id}"
        known = cache.get(key)
        if known is None:
            known = (_hash_layer if verify else _cheap_layer)(source, layer, diff_id)
            cache[key] = known
        out.append(known)
    return tuple(out)


# --------------------------------------------------------------------------- writing


def _oci_manifest(image: _ImageSrc, layers: Sequence[ArchiveLayer]) -> bytes:
    """The image's OCI manifest: the original bytes when they still describe it."""
    if image.manifest is not None:
        manifest = _load_json(image.manifest, "image manifest")
        stated = [(d.get("digest"), d.get("size"), d.get("mediaType")) for d in manifest["layers"]]
        if manifest["config"].get("digest") == image.config_digest and stated == [
            (layer.digest, layer.size, layer.media_type) for layer in layers
        ]:
            return image.manifest
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_OCI_CONFIG,
            "digest": image.config_digest,
            "size": len(image.config),
        },
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def _index_entries(
    manifest_digest: str,
    manifest_size: int,
    tags: Sequence[str],
    ref_name: Callable[[str], str],
) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "mediaType": MEDIA_OCI_MANIFEST,
        "digest": manifest_digest,
        "size": manifest_size,
    }
    if not tags:
        return [base]
    return [
        {
            **base,
            "annotations": {
                ANNOTATION_IMAGE_NAME: qualified_name(tag),
                ANNOTATION_REF_NAME: ref_name(tag),
            },
        }
        for tag in tags
    ]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _TarWriter:
    def __init__(self, fileobj: IO[bytes]) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=fileobj, mode="w:", format=tarfile.PAX_FORMAT
        )
        self._written: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        return info

    def has(self, name: str) -> bool:
        return name in self._written

    def directory(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self._tar.addfile(info)

    def data(self, name: str, data: bytes) -> None:
        if name in self._written:
            return
        self._written.add(name)
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def stream(self, name: str, size: int, fileobj: IO[bytes]) -> None:
        if name in self._written:
            return
        self._written.add(name)
        self._tar.addfile(self._info(name, size), fileobj)

    def close(self) -> None:
        self._tar.close()


def _write_combined(
    source: _Source,
    images: Sequence[_ImageSrc],
    dest: str,
    *,
    ref_name: Callable[[str], str],
) -> list[ArchiveImage]:
    """Hash and check every layer, then write the combined archive to ``dest`` atomically."""
    cache: dict[str, ArchiveLayer] = {}
    resolved = [(image, _layers(source, image, verify=True, cache=cache)) for image in images]
    dest = os.path.abspath(dest)
    fd, tmp = tempfile.mkstemp(prefix=".enginekit-", suffix=".tar.part", dir=os.path.dirname(dest))
    result: list[ArchiveImage] = []
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = _TarWriter(fh)
            writer.data("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
            writer.directory("blobs/")
            writer.directory("blobs/sha256/")
            index: list[dict[str, Any]] = []
            docker: list[dict[str, Any]] = []
            for image, layers in resolved:
                for src, layer in zip(image.layers, layers, strict=True):
                    name = _blob_name(layer.digest)
                    if not writer.has(name):
                        with source.open(src.member) as blob:
                            writer.stream(name, layer.size, blob)
                writer.data(_blob_name(image.config_digest), image.config)
                manifest = _oci_manifest(image, layers)
                manifest_digest = _sha256(manifest)
                writer.data(_blob_name(manifest_digest), manifest)
                index.extend(_index_entries(manifest_digest, len(manifest), image.tags, ref_name))
                docker.append(
                    {
                        "Config": _blob_name(image.config_digest),
                        "RepoTags": list(image.tags),
                        "Layers": [_blob_name(layer.digest) for layer in layers],
                    }
                )
                result.append(
                    ArchiveImage(
                        id=image.config_digest,
                        repo_tags=tuple(sorted(image.tags)),
                        layers=layers,
                        manifest_digest=manifest_digest,
                    )
                )
            writer.data(
                "index.json",
                _json_bytes({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}),
            )
            writer.data("manifest.json", _json_bytes(docker))
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.exists(dest):
            with contextlib.suppress(OSError):
                shutil.copymode(dest, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return result


def _default_ref_name(tag: str) -> str:
    return _tag_of(tag)


# --------------------------------------------------------------------------- public API


def to_combined(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    rename: Callable[[str], str] | None = None,
) -> list[ArchiveImage]:
    """Write the archive at ``src`` (any form) to ``dest`` in the combined form.

    ``src`` may be a docker-archive (Docker's or Podman's, links included), an
    OCI archive, or a combined one, plain or gzip/bzip2/xz-compressed. Every
    image and tag is kept; ``rename`` maps each tag (familiar form) to the tag
    to write instead (e.g. to add Podman's ``localhost/``). Every layer is read
    twice as a stream (hash, then copy): memory stays bounded whatever the
    layer sizes. ``dest`` is replaced atomically (it may be ``src``).

    Returns the images written. Raises :class:`InvalidSpec` for anything
    that is not a sound image archive (nothing is written to ``dest`` then).
    """
    with _open_archive(os.fspath(src)) as source:
        images = _parse(source)
        if rename is not None:
            for image in images:
                image.tags = list(dict.fromkeys(familiar_name(rename(t)) for t in image.tags))
        return _write_combined(source, images, os.fspath(dest), ref_name=_default_ref_name)


def normalize(
    path: str | os.PathLike[str], *, rename: Callable[[str], str] | None = None
) -> list[ArchiveImage]:
    """Rewrite the archive at ``path`` in place into the combined form (see :func:`to_combined`)."""
    return to_combined(path, path, rename=rename)


def read_index(path: str | os.PathLike[str], *, verify: bool = False) -> list[ArchiveImage]:
    """The images an archive (any form) holds: id, tags, layers, in archive order.

    Reading is cheap for combined and OCI archives (digests come from the
    manifests); layers whose digest is written nowhere (a plain
    docker-archive) are hashed. ``verify=True`` hashes every layer and checks
    it against its digest and the config's ``diff_ids``.
    """
    with _open_archive(os.fspath(path)) as source:
        cache: dict[str, ArchiveLayer] = {}
        return [
            ArchiveImage(
                id=image.config_digest,
                repo_tags=tuple(sorted(image.tags)),
                layers=_layers(source, image, verify=verify, cache=cache),
                manifest_digest=image.manifest_digest,
            )
            for image in _parse(source)
        ]


def _select(
    layout: _DirSource, refs: Mapping[str, Iterable[str]] | Iterable[str]
) -> list[_ImageSrc]:
    index = _load_json(_read_small(layout, "index.json", "index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidSpec("OCI layout index.json has no manifests list")
    entries = [_descriptor(value, "index entry") for value in index["manifests"]]
    wanted: dict[str, list[str] | None]
    if isinstance(refs, Mapping):
        wanted = {key: [familiar_name(t) for t in tags] for key, tags in refs.items()}
    else:
        wanted = {key: None for key in refs}
    chosen: list[_ImageSrc] = []
    for key, tags in wanted.items():
        for media_type, digest, size, entry_annotations in entries:
            if key in (
                digest,
                entry_annotations.get(ANNOTATION_REF_NAME),
                entry_annotations.get(ANNOTATION_IMAGE_NAME),
            ):
                images = _parse_oci_index(
                    layout,
                    {
                        "manifests": [
                            {
                                "mediaType": media_type,
                                "digest": digest,
                                "size": size,
                                "annotations": entry_annotations,
                            }
                        ]
                    },
                    {},
                )
                for image in images:
                    if tags is not None:
                        image.tags = list(tags)
                chosen.extend(images)
                break
        else:
            raise ImageNotFound(f"OCI layout has no image {key!r}")
    return _merge(chosen)


def write_from_layout(
    layout_dir: str | os.PathLike[str],
    refs: Mapping[str, Iterable[str]] | Iterable[str],
    dest: str | os.PathLike[str],
) -> list[ArchiveImage]:
    """Write images of an OCI layout directory as a combined archive at ``dest``.

    ``refs`` picks the layout's index entries, each by its
    ``org.opencontainers.image.ref.name``, its ``io.containerd.image.name`` or
    its manifest digest. As a mapping it also gives the tags to write for each
    (``{"app-v1": ["app:v1", "app:latest"]}``; an empty list writes the image
    untagged); as a plain list of selectors the tags come from the entries'
    own annotations. A selector that matches nothing raises
    :class:`ImageNotFound`; a broken layout :class:`InvalidSpec`.
    """
    layout = _DirSource(os.fspath(layout_dir))
    images = _select(layout, refs)
    return _write_combined(layout, images, os.fspath(dest), ref_name=_default_ref_name)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _put_blob(blob_dir: str, digest: str, stream: IO[bytes]) -> None:
    """Copy a blob into the layout under its digest, checking it; no-op if it is there."""
    target = os.path.join(blob_dir, digest.removeprefix("sha256:"))
    if os.path.isfile(target):
        return
    fd, tmp = tempfile.mkstemp(prefix=".enginekit-", dir=blob_dir)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if "sha256:" + hasher.hexdigest() != digest:
            raise InvalidSpec(f"blob does not match its digest {digest}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".enginekit-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def extract_to_layout(
    path: str | os.PathLike[str],
    layout_dir: str | os.PathLike[str],
    *,
    ref_name: Callable[[str], str] | None = None,
) -> list[ArchiveImage]:
    """Add every image of the archive at ``path`` (any form) to an OCI layout directory.

    The layout is created if ``layout_dir`` is missing or empty. Blobs are
    copied in under their digests (checked; blobs already there are kept);
    each tag gets an ``index.json`` entry annotated with
    ``io.containerd.image.name`` (qualified name) and
    ``org.opencontainers.image.ref.name`` = ``ref_name(tag)`` (default: the
    familiar ``name:tag``, which skopeo's ``oci:DIR:name:tag`` and umoci's
    ``--image DIR:name:tag`` accept); an entry with the same ref name is
    replaced. An untagged image gets an entry without annotations. The
    layout is locked (flock on the directory) while it changes, and
    index.json is replaced atomically.
    """
    name_of = ref_name or (lambda tag: tag)
    layout_dir = os.fspath(layout_dir)
    with _open_archive(os.fspath(path)) as source:
        images = _parse(source)
        cache: dict[str, ArchiveLayer] = {}
        resolved = [(image, _layers(source, image, verify=True, cache=cache)) for image in images]
        os.makedirs(layout_dir, exist_ok=True)
        with _locked(layout_dir):
            layout_file = os.path.join(layout_dir, "oci-layout")
            index_file = os.path.join(layout_dir, "index.json")
            index: dict[str, Any]
            if os.path.exists(index_file):
                index = _load_json(
                    _read_small(_DirSource(layout_dir), "index.json", "index.json"), "index.json"
                )
                if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
                    raise InvalidSpec(f"{layout_dir} has an index.json without a manifests list")
            else:
                index = {"schemaVersion": 2, "manifests": []}
            if not os.path.exists(layout_file):
                _atomic_write(layout_file, _json_bytes({"imageLayoutVersion": "1.0.0"}))
            blob_dir = os.path.join(layout_dir, "blobs", "sha256")
            os.makedirs(blob_dir, exist_ok=True)
            result = []
            entries: list[dict[str, Any]] = []
            for image, layers in resolved:
                for src, layer in zip(image.layers, layers, strict=True):
                    with source.open(src.member) as blob:
                        _put_blob(blob_dir, layer.digest, blob)
                _put_blob(blob_dir, image.config_digest, io.BytesIO(image.config))
                manifest = _oci_manifest(image, layers)
                manifest_digest = _sha256(manifest)
                _put_blob(blob_dir, manifest_digest, io.BytesIO(manifest))
                entries.extend(_index_entries(manifest_digest, len(manifest), image.tags, name_of))
                result.append(
                    ArchiveImage(
                        id=image.config_digest,
                        repo_tags=tuple(sorted(image.tags)),
                        layers=layers,
                        manifest_digest=manifest_digest,
                    )
                )
            new_refs = {
                e["annotations"][ANNOTATION_REF_NAME] for e in entries if "annotations" in e
            }
            new_digests = {e["digest"] for e in entries}
            kept = []
            for entry in index["manifests"]:
                annotations = entry.get("annotations") if isinstance(entry, dict) else None
                ref = (
                    annotations.get(ANNOTATION_REF_NAME) if isinstance(annotations, dict) else None
                )
                if ref in new_refs:
                    continue
                if ref is None and isinstance(entry, dict) and entry.get("digest") in new_digests:
                    continue
                kept.append(entry)
            kept_untagged = {
                e.get("digest") for e in kept if isinstance(e, dict) and not e.get("annotations")
            }
            for entry in entries:
                if "annotations" not in entry and entry["digest"] in kept_untagged:
                    continue
                kept.append(entry)
            index["manifests"] = kept
            _atomic_write(index_file, _json_bytes(index))
        return result
