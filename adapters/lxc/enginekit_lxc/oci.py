"""OCI image layout primitives for the LXC adapter's image store.

An OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``) is
read and written here directly where it is cheap and exact (index entries,
config and manifest blobs); ``umoci`` does the layer work (unpack, repack, gc).

Ref names. Tags are stored as the index entries' ``org.opencontainers.image.ref.name``.
The OCI grammar for ref names is ``component ("/" component)*`` with
``component = alnum+ (separator alnum+)*`` and ``separator = [-._:@+] | "--"``,
which a Docker ``name:tag`` does not always meet (``a__b:v1``, a tag ``_x`` or
``v1.``). :func:`encode_ref` maps a ``name:tag`` reversibly onto that grammar:
letters, digits and ``/`` are kept; ``-``, ``.``, ``_`` and ``:`` are kept when both
neighbours are letters or digits; every other character becomes ``+`` followed by
its two hex digits (``a__b:_x`` -> ``a+5f+5fb:+5fx``). ``+`` never occurs in a
Docker reference, so :func:`decode_ref` is exact. The common case
(``busybox:latest``, ``localhost:5000/team/app:v2``) is stored unchanged, as
skopeo and umoci expect it.

Every image also has one entry whose ref name is ``sha256-<hex of the image id>``
(:func:`id_ref`): it keeps an image that has lost its last tag (Docker's
``<none>`` image) from being collected. A ref name is a tag when it decodes to
something holding ``:``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

from enginekit.toolkit.archives import write_whole
from enginekit.toolkit.errors import EngineError, InvalidSpec

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "REF_ANNOTATION",
    "Layout",
    "ToolError",
    "decode_ref",
    "encode_ref",
    "file_lock",
    "id_ref",
    "run_tool",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SEPARATORS = frozenset("-._:")
_HEX = re.compile(r"[0-9a-f]{64}")
_ID_REF = re.compile(r"sha256-([0-9a-f]{64})")
_HEX2 = re.compile(r"[0-9a-f]{2}")


def encode_ref(tag: str) -> str:
    """A ``name:tag`` as an OCI ref name (see the module docstring)."""
    out: list[str] = []
    last = len(tag) - 1
    for i, ch in enumerate(tag):
        if (
            ch in _ALNUM
            or ch == "/"
            or (
                ch in _SEPARATORS and 0 < i < last and tag[i - 1] in _ALNUM and tag[i + 1] in _ALNUM
            )
        ):
            out.append(ch)
        else:
            code = ord(ch)
            if code > 0xFF:
                raise InvalidSpec(f"image reference {tag!r} holds a character no engine accepts")
            out.append(f"+{code:02x}")
    return "".join(out)


def decode_ref(name: str) -> str:
    """The ``name:tag`` (or id ref) that :func:`encode_ref` turned into ``name``."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "+" and _HEX2.fullmatch(name[i + 1 : i + 3]):
            out.append(chr(int(name[i + 1 : i + 3], 16)))
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def id_ref(image_id: str) -> str:
    """The ref name that keeps image ``image_id`` (``sha256:<hex>``) in the layout."""
    return "sha256-" + image_id.removeprefix("sha256:")


def is_id_ref(name: str) -> bool:
    return _ID_REF.fullmatch(name) is not None


def tag_of_ref(name: str) -> str | None:
    """The tag a ref name stands for, or None when it is no tag (id ref, bare name)."""
    if is_id_ref(name):
        return None
    decoded = decode_ref(name)
    return decoded if ":" in decoded else None


def digest_hex(digest: str) -> str:
    hexpart = digest.removeprefix("sha256:")
    if not _HEX.fullmatch(hexpart):
        raise InvalidSpec(f"not a sha256 digest: {digest!r}")
    return hexpart


class ToolError(EngineError):
    """An image tool exited non-zero; ``output`` is the tail of what it said."""

    def __init__(self, message: str, *, output: str) -> None:
        super().__init__(message)
        self.output = output


def run_tool(argv: Sequence[str], *, what: str, timeout: float | None = None) -> str:
    """Run an image tool (umoci, skopeo); its stdout, or ``ToolError`` with its stderr."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise EngineError(
            f"{argv[0]} is not installed (needed to {what}); install the Debian package"
        ) from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(f"{argv[0]} failed to {what}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise ToolError(f"{argv[0]} failed to {what} (exit {proc.returncode}): {tail}", output=tail)
    return proc.stdout


@contextlib.contextmanager
def file_lock(path: str, *, exclusive: bool = True) -> Iterator[None]:
    """An advisory lock (flock) on ``path``, across threads and processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the description drops the lock


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def atomic_write(path: str, data: bytes) -> None:
    write_whole(path, data, sync=False)


class Layout:
    """One OCI image layout directory. Callers hold the store's lock around changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.blobs = os.path.join(path, "blobs", "sha256")
        self._json_cache: dict[str, Any] = {}

    # -- layout ---------------------------------------------------------------
    def init(self) -> None:
        """Create an empty layout (idempotent)."""
        os.makedirs(self.blobs, exist_ok=True)
        marker = os.path.join(self.path, "oci-layout")
        if not os.path.exists(marker):
            atomic_write(marker, json_bytes({"imageLayoutVersion": "1.0.0"}))
        if not os.path.exists(self.index_path):
            atomic_write(self.index_path, json_bytes({"schemaVersion": 2, "manifests": []}))

    @property
    def index_path(self) -> str:
        return os.path.join(self.path, "index.json")

    def exists(self) -> bool:
        return os.path.exists(self.index_path)

    def entries(self) -> list[dict[str, Any]]:
        """The index's manifest descriptors (empty for a layout not yet made)."""
        try:
            with open(self.index_path, "rb") as f:
                index = json.load(f)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read {self.index_path}: {exc}") from exc
        manifests = index.get("manifests") if isinstance(index, dict) else None
        return [m for m in manifests or [] if isinstance(m, dict)]

    def write_entries(self, entries: list[dict[str, Any]]) -> None:
        atomic_write(self.index_path, json_bytes({"schemaVersion": 2, "manifests": entries}))

    @staticmethod
    def ref_name(entry: dict[str, Any]) -> str | None:
        annotations = entry.get("annotations")
        if isinstance(annotations, dict):
            value = annotations.get(REF_ANNOTATION)
            if isinstance(value, str):
                return value
        return None

    @staticmethod
    def entry(manifest_digest: str, size: int, ref: str) -> dict[str, Any]:
        return {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": size,
            "annotations": {REF_ANNOTATION: ref},
        }

    def set_ref(self, ref: str, manifest_digest: str) -> None:
        """Point ``ref`` at a manifest already in the layout (replacing what it named)."""
        size = os.path.getsize(self.blob_path(manifest_digest))
        entries = [e for e in self.entries() if self.ref_name(e) != ref]
        entries.append(self.entry(manifest_digest, size, ref))
        self.write_entries(entries)

    def manifest_of(self, ref: str) -> str:
        for entry in self.entries():
            if self.ref_name(entry) == ref:
                return str(entry["digest"])
        raise EngineError(f"ref {ref!r} missing from {self.path}")

    # -- blobs ----------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs, digest_hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_json(self, digest: str) -> Any:
        """A JSON blob (manifest, config), cached: blobs never change."""
        cached = self._json_cache.get(digest)
        if cached is not None:
            return cached
        try:
            with open(self.blob_path(digest), "rb") as f:
                value = json.load(f)
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read blob {digest} in {self.path}: {exc}") from exc
        self._json_cache[digest] = value
        return value

    def put_json(self, value: Any) -> tuple[str, int]:
        """Store ``value`` as a canonical JSON blob; its digest and size."""
        data = json_bytes(value)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not os.path.exists(path):
            os.makedirs(self.blobs, exist_ok=True)
            atomic_write(path, data)
        return digest, len(data)

    def link_blob(self, source: Layout, digest: str) -> None:
        """Make ``source``'s blob ``digest`` present here (hard link, else copy)."""
        target = self.blob_path(digest)
        if os.path.exists(target):
            return
        src = source.blob_path(digest)
        tmp = f"{target}.tmp-{os.getpid()}-{id(self)}"
        try:
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        except FileNotFoundError as exc:
            raise EngineError(f"blob {digest} missing from {source.path}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def closure(self, manifest_digest: str) -> list[str]:
        """Every blob an image manifest needs: itself, its config, its layers."""
        manifest = self.read_json(manifest_digest)
        digests = [manifest_digest, str(manifest["config"]["digest"])]
        digests.extend(str(layer["digest"]) for layer in manifest.get("layers") or [])
        return digests

    def copy_image(self, source: Layout, manifest_digest: str) -> None:
        """Bring an image's blobs over from ``source`` (layers first, manifest last)."""
        for digest in reversed(source.closure(manifest_digest)):
            self.link_blob(source, digest)
