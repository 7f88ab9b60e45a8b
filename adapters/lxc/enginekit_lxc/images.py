"""The LXC adapter's images: OCI images in one OCI layout, managed with umoci and skopeo.

Storage, under the adapter's root (default ``/var/lib/enginekit/lxc``)::

    images/oci/                 the OCI image layout (index.json, blobs/sha256/...)
    images/lock                 flock: shared to read the layout, exclusive to change it
    images/rootfs/<hex>/        an image's unpacked root filesystem, made on first use
    images/rootfs/.<hex>.lock   serialises the unpacking of one image
    images/sizes/<hex>          cached unpacked size of one layer blob
    tmp/                        scratch space of builds, loads and unpacks (always removed)

An image's id is ``sha256:`` + the digest of its config blob, as on Docker. Each
image has an index entry named ``sha256-<hex>`` (it survives the loss of its
last tag, as Docker's ``<none>`` images do) plus one entry per tag, whose ref
name is the tag mapped onto the OCI ref grammar (see :mod:`enginekit_lxc.oci`).
When two manifests carry the same config (the same image saved and loaded
with other layer compression), the first one stays and the tags join it.

``size`` is what Docker reports: the bytes of regular files plus the length of
symbolic links' targets, summed over the layers (computed once per layer).

The unpacked root filesystems are shared by every container made from the
image and must never be written to; a container writes to its own upper
layer. They are removed with the image unless a container still uses it.
"""

from __future__ import annotations

import bz2
import contextlib
import copy
import datetime as _dt
import fcntl
import gzip
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import attrs

from enginekit.toolkit import archives
from enginekit.toolkit.errors import Conflict, EngineError, ImageNotFound, InvalidSpec
from enginekit.toolkit.models import Image, ImageConfig
from enginekit.toolkit.references import Reference
from enginekit.toolkit.time import parse_rfc3339

from .errors import ENGINE
from .oci import (
    Layout,
    atomic_write,
    digest_hex,
    encode_ref,
    file_lock,
    id_ref,
    is_id_ref,
    run_tool,
    tag_of_ref,
)

__all__ = ["DEFAULT_ROOT", "ImageStore", "image_config_from_json", "parse_created"]

DEFAULT_ROOT = "/var/lib/enginekit/lxc"

ImageList = list[Image]
_IN_USE = ".in-use"
_ID_RE = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")


def _familiar(ref: str) -> str | None:
    """The tag a reference names as the store keeps tags (as Docker shows them),
    or None when it is not a name."""
    try:
        return Reference.parse(ref).familiar
    except InvalidSpec:
        return None


@attrs.frozen
class _Record:
    """One image of the layout: its manifest and tags (sorted)."""

    id: str
    manifest: str
    tags: tuple[str, ...]


def parse_created(value: Any) -> _dt.datetime | None:
    """An RFC 3339 time from an image config (nanoseconds cut to microseconds);
    None if absent, Go's zero time or not a timestamp."""
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _env_map(env: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        if isinstance(item, str):
            key, _, value = item.partition("=")
            out[key] = value
    return out


def image_config_from_json(config: Mapping[str, Any]) -> ImageConfig:
    """The ImageConfig of an OCI (or Docker) image config document."""
    cfg = config.get("config") or {}
    ports = cfg.get("ExposedPorts") or {}
    return ImageConfig(
        entrypoint=cfg.get("Entrypoint") or None,
        cmd=cfg.get("Cmd") or None,
        env=_env_map(cfg.get("Env")),
        workdir=cfg.get("WorkingDir") or None,
        user=cfg.get("User") or None,
        exposed_ports=sorted(str(p) for p in ports),
        labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
        stop_signal=cfg.get("StopSignal") or None,
    )


def _open_layer(path: str) -> IO[bytes]:
    """A layer blob as an uncompressed stream (gzip, bzip2, xz, zstd-less plain)."""
    f = open(path, "rb")  # noqa: SIM115 - wrapped and returned
    head = f.read(6)
    f.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f, "rb")
    return f


class ImageStore:
    """The images of one LXC adapter root. Safe for several threads and processes."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root
        self.images_dir = os.path.join(root, "images")
        self.layout = Layout(os.path.join(self.images_dir, "oci"))
        self.rootfs_dir = os.path.join(self.images_dir, "rootfs")
        self.sizes_dir = os.path.join(self.images_dir, "sizes")
        self.tmp_dir = os.path.join(root, "tmp")
        self._lock_path = os.path.join(self.images_dir, "lock")
        self._swept = False

    # -- plumbing -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the layout lock (shared to read, exclusive to change)."""
        os.makedirs(self.images_dir, exist_ok=True)
        with file_lock(self._lock_path, exclusive=exclusive):
            if exclusive and not self.layout.exists():
                self.layout.init()
            yield

    @contextlib.contextmanager
    def tempdir(self, prefix: str) -> Iterator[str]:
        """A fresh directory under ``root/tmp``, removed afterwards whatever happens.

        The directory holds a locked ``.in-use`` file while it lives, so that the
        leftovers of a process that was killed (and could not clean up) are
        recognised and removed by the next store that makes a directory there."""
        os.makedirs(self.tmp_dir, exist_ok=True)
        if not self._swept:
            self._swept = True
            self.sweep_tmp()
        path = tempfile.mkdtemp(prefix=prefix, dir=self.tmp_dir)
        # Locked before it gets its name: a sweeper never sees it unlocked.
        fd = os.open(os.path.join(path, ".new"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(os.path.join(path, ".new"), os.path.join(path, _IN_USE))
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)

    def sweep_tmp(self, *, grace: float = 60.0) -> list[str]:
        """Remove what killed processes left in ``root/tmp``; the paths removed."""
        removed: list[str] = []
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return removed
        for name in names:
            path = os.path.join(self.tmp_dir, name)
            try:
                fd = os.open(os.path.join(path, _IN_USE), os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                # Just made by another process (not locked yet), or not ours at all.
                with contextlib.suppress(OSError):
                    if time.time() - os.lstat(path).st_mtime > grace and os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                        removed.append(path)
                continue
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its process is alive
            try:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            finally:
                os.close(fd)
        return removed

    def _records(self) -> dict[str, _Record]:
        """Every image of the layout by id (caller holds the lock)."""
        manifests: dict[str, str] = {}
        tags: dict[str, list[str]] = {}
        for entry in self.layout.entries():
            digest = entry.get("digest")
            if not isinstance(digest, str):
                continue
            try:
                manifest = self.layout.read_json(digest)
                image_id = str(manifest["config"]["digest"])
            except (FileNotFoundError, KeyError, TypeError):
                continue
            ref = Layout.ref_name(entry)
            if image_id not in manifests or (ref is not None and is_id_ref(ref)):
                manifests[image_id] = digest
            tag = tag_of_ref(ref) if ref is not None else None
            bucket = tags.setdefault(image_id, [])
            if tag is not None and tag not in bucket:
                bucket.append(tag)
        return {
            image_id: _Record(image_id, manifest, tuple(sorted(tags.get(image_id, ()))))
            for image_id, manifest in manifests.items()
        }

    def _find(self, records: Mapping[str, _Record], ref: str) -> _Record:
        for record in records.values():
            if ref in record.tags:
                return record
        shown = _familiar(ref)  # busybox, docker.io/library/busybox: busybox:latest
        for record in records.values():
            if shown in record.tags:
                return record
        m = _ID_RE.fullmatch(ref)
        if m:
            prefix = "sha256:" + m.group(1)
            hits = [r for r in records.values() if r.id.startswith(prefix)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise ImageNotFound(f"image id prefix {ref!r} is ambiguous")
        raise ImageNotFound(f"no such image: {ref}")

    def _image(self, record: _Record) -> Image:
        config = self.layout.read_json(record.id)
        manifest = self.layout.read_json(record.manifest)
        image_config = image_config_from_json(config)
        return Image(
            id=record.id,
            tags=record.tags,
            created=parse_created(config.get("created")),
            size=sum(
                self._layer_size(str(layer["digest"])) for layer in manifest.get("layers") or []
            ),
            labels=image_config.labels,
            architecture=str(config.get("architecture") or ""),
            os=str(config.get("os") or ""),
            config=image_config,
            engine=ENGINE,
            raw=copy.deepcopy({"manifest": manifest, "config": config}),
        )

    def _layer_size(self, digest: str) -> int:
        """Docker's size of a layer: regular files' bytes plus symlink target lengths."""
        cache = os.path.join(self.sizes_dir, digest_hex(digest))
        try:
            with open(cache) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            pass
        total = 0
        try:
            with (
                _open_layer(self.layout.blob_path(digest)) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                for member in tar:
                    if member.isreg():
                        total += member.size
                    elif member.issym():
                        total += len(member.linkname.encode())
        except (OSError, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise EngineError(f"cannot read layer {digest}: {exc}") from exc
        os.makedirs(self.sizes_dir, exist_ok=True)
        atomic_write(cache, str(total).encode())
        return total

    def _gc(self) -> None:
        """Drop blobs no index entry needs (caller holds the exclusive lock)."""
        run_tool(["umoci", "gc", "--layout", self.layout.path], what="collect unused blobs")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.sizes_dir):
                if not os.path.exists(os.path.join(self.layout.blobs, name)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.sizes_dir, name))

    # -- queries --------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """The id of the image ``ref`` names (tag, id or unique id prefix)."""
        with self.lock(exclusive=False):
            return self._find(self._records(), ref).id

    def inspect(self, ref: str) -> Image:
        with self.lock(exclusive=False):
            return self._image(self._find(self._records(), ref))

    def list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        """Images as ``docker images`` shows them, filtered as ``Driver.image_list`` says."""
        with self.lock(exclusive=False):
            images = [self._image(r) for r in self._records().values()]
        if name is not None:
            kept: ImageList = []
            for image in images:
                if ":" in name.rsplit("/", 1)[-1]:
                    tags = tuple(t for t in image.tags if t == name)
                else:
                    tags = tuple(t for t in image.tags if t.rpartition(":")[0] == name)
                if tags:
                    kept.append(attrs.evolve(image, tags=tags))
            images = kept
        if labels:
            images = [
                i
                for i in images
                if all(k in i.labels and (v is None or i.labels[k] == v) for k, v in labels.items())
            ]
        images.sort(
            key=lambda i: i.created or _dt.datetime.min.replace(tzinfo=_dt.UTC), reverse=True
        )
        return images

    def config(self, image_id: str) -> ImageConfig:
        """What a container made from ``image_id`` runs by default."""
        with self.lock(exclusive=False):
            record = self._find(self._records(), image_id)
            return image_config_from_json(self.layout.read_json(record.id))

    def config_json(self, image_id: str) -> dict[str, Any]:
        """The image's config document as stored (a copy)."""
        with self.lock(exclusive=False):
            record = self._find(self._records(), image_id)
            config: dict[str, Any] = copy.deepcopy(self.layout.read_json(record.id))
            return config

    # -- changes --------------------------------------------------------------
    def tag(self, ref: str, new_ref: str) -> None:
        """Point tag ``new_ref`` at the image ``ref`` names (moving it if it named another)."""
        with self.lock(exclusive=True):
            record = self._find(self._records(), ref)
            self._set_tags(record.manifest, (new_ref,))

    def _set_tags(self, manifest: str, tags: tuple[str, ...]) -> None:
        size = os.path.getsize(self.layout.blob_path(manifest))
        image_id = str(self.layout.read_json(manifest)["config"]["digest"])
        names = {encode_ref(t) for t in tags}
        names.add(id_ref(image_id))
        entries = [e for e in self.layout.entries() if Layout.ref_name(e) not in names]
        # An image keeps its id entry; only the tags move.
        entries.extend(Layout.entry(manifest, size, name) for name in sorted(names))
        self.layout.write_entries(entries)

    def remove(
        self, ref: str, *, force: bool = False, in_use: Callable[[str], bool] = lambda _id: False
    ) -> None:
        """Remove a tag, or the image with all its tags (as ``docker rmi``).

        A tag of an image with other tags is only untagged. Otherwise the
        image goes; ``Conflict`` while ``in_use(image_id)`` unless ``force``,
        and ``Conflict`` for an id that several tags name unless ``force``.
        """
        remove_rootfs: str | None = None
        with self.lock(exclusive=True):
            records = self._records()
            record = self._find(records, ref)
            is_tag = ref in record.tags
            if is_tag and len(record.tags) > 1:
                name = encode_ref(ref)
                self.layout.write_entries(
                    [e for e in self.layout.entries() if Layout.ref_name(e) != name]
                )
                return
            if not is_tag and len(record.tags) > 1 and not force:
                raise Conflict(
                    f"image {record.id[7:19]} is referenced by several tags "
                    f"({', '.join(record.tags)}): remove them by name or use force"
                )
            if not force and in_use(record.id):
                raise Conflict(f"image {ref} is in use by a container")
            keep: list[dict[str, Any]] = []
            for entry in self.layout.entries():
                digest = entry.get("digest")
                try:
                    config = self.layout.read_json(str(digest))["config"]["digest"]
                except (FileNotFoundError, KeyError, TypeError, EngineError):
                    config = None
                if config != record.id:
                    keep.append(entry)
            self.layout.write_entries(keep)
            self._gc()
            if not in_use(record.id):
                remove_rootfs = record.id
        if remove_rootfs is not None:
            self._drop_rootfs(remove_rootfs)

    def drop_unused_rootfs(self, in_use: Callable[[str], bool]) -> tuple[str, ...]:
        """Remove the unpacked rootfs of every image that is gone (removed with
        ``force`` while a container used it) and that no container uses any more.
        Returns the image ids whose rootfs went. Call it after removing a container."""
        if not os.path.isdir(self.rootfs_dir):
            return ()
        with self.lock(exclusive=False):
            present = set(self._records())
        dropped: tuple[str, ...] = ()
        for name in os.listdir(self.rootfs_dir):
            if name.startswith(".gone-"):  # a removal that was killed half-way
                shutil.rmtree(os.path.join(self.rootfs_dir, name), ignore_errors=True)
            if name.startswith("."):
                continue
            image_id = "sha256:" + name
            if image_id in present or in_use(image_id):
                continue
            self._drop_rootfs(image_id)
            dropped += (image_id,)
        return dropped

    def _drop_rootfs(self, image_id: str) -> None:
        hexid = digest_hex(image_id)
        path = os.path.join(self.rootfs_dir, hexid)
        if not os.path.exists(path):
            return
        lock = os.path.join(self.rootfs_dir, f".{hexid}.lock")
        with file_lock(lock):
            if os.path.exists(path):
                doomed = os.path.join(self.rootfs_dir, f".gone-{hexid}-{os.getpid()}")
                os.rename(path, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)

    # -- root filesystems -----------------------------------------------------
    def rootfs(self, image_id: str) -> str:
        """The unpacked, shared root filesystem of ``image_id`` (made on first use).

        Concurrent callers (threads or processes) unpack it once: a per-image
        lock, an unpack into a scratch directory, then an atomic rename.
        """
        hexid = digest_hex(image_id)
        path = os.path.join(self.rootfs_dir, hexid)
        if os.path.isdir(path):
            return path
        os.makedirs(self.rootfs_dir, exist_ok=True)
        with file_lock(os.path.join(self.rootfs_dir, f".{hexid}.lock")):
            if os.path.isdir(path):
                return path
            with self.tempdir("unpack-") as scratch:
                with self.lock(exclusive=False):
                    record = self._find(self._records(), "sha256:" + hexid)
                    if record.id != "sha256:" + hexid:
                        raise ImageNotFound(f"no such image: {image_id}")
                    view = self.layout_view(scratch, record.manifest)
                    target = os.path.join(scratch, "rootfs")
                    run_tool(
                        ["umoci", "raw", "unpack", "--image", f"{view}:image", target],
                        what=f"unpack image {image_id[7:19]}",
                    )
                try:
                    os.rename(target, path)
                except OSError:
                    # Made meanwhile by a caller that held another generation of
                    # the lock file (see _drop_rootfs): theirs is as good.
                    if not os.path.isdir(path):
                        raise
        return path

    def layout_view(self, scratch: str, manifest: str) -> str:
        """A layout in ``scratch`` naming ``manifest`` as ``image``, sharing this store's
        blobs (a symlink): only valid while the caller holds the lock."""
        view = os.path.join(scratch, "view")
        os.makedirs(os.path.join(view, "blobs"))
        os.symlink(self.layout.blobs, os.path.join(view, "blobs", "sha256"))
        atomic_write(os.path.join(view, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')
        size = os.path.getsize(self.layout.blob_path(manifest))
        Layout(view).write_entries([Layout.entry(manifest, size, "image")])
        return view

    # -- between layouts (builds, loads) --------------------------------------
    def export_to(self, layout: Layout, image_id: str, ref: str) -> str:
        """Put image ``image_id`` into another layout as ``ref``; its manifest digest."""
        with self.lock(exclusive=False):
            record = self._find(self._records(), image_id)
            layout.copy_image(self.layout, record.manifest)
            layout.set_ref(ref, record.manifest)
            return record.manifest

    def import_from(self, layout: Layout, manifest: str, tags: tuple[str, ...]) -> Image:
        """Add the image ``manifest`` of another layout, with ``tags``; the image."""
        with self.lock(exclusive=True):
            image_id = str(layout.read_json(manifest)["config"]["digest"])
            existing = self._records().get(image_id)
            if existing is not None:
                manifest = existing.manifest
            else:
                self.layout.copy_image(layout, manifest)
            self._set_tags(manifest, tags)
            return self._image(self._find(self._records(), image_id))

    # -- registries -----------------------------------------------------------
    def pull(self, ref: str) -> Image:
        """Pull ``registry/name:tag`` with skopeo (see :mod:`enginekit_lxc.registry`)."""
        from .registry import pull

        return pull(self, ref)

    def push(self, ref: str) -> None:
        """Push tag ``registry/name:tag`` with skopeo (see :mod:`enginekit_lxc.registry`)."""
        from .registry import push

        push(self, ref)

    # -- archives -------------------------------------------------------------
    def save(self, ref: str, path: str) -> None:
        """Write image ``ref`` as an archive Docker, Podman and skopeo load.

        Saved by tag, the archive carries that tag; saved by id, no tag (as
        ``docker save``). The archive is written next to ``path`` and renamed.
        """
        with self.lock(exclusive=False):
            record = self._find(self._records(), ref)
            tags = [ref] if ref in record.tags else []
            selector = id_ref(record.id)
            if selector not in {Layout.ref_name(e) for e in self.layout.entries()}:
                selector = record.manifest
            try:
                archives.write_from_layout(self.layout.path, {selector: tags}, path)
            except OSError as exc:
                raise EngineError(f"cannot write image archive {path}: {exc}") from exc

    def load(self, path: str) -> ImageList:
        """Load every image of an archive (docker-archive, OCI archive or combined)."""
        if not os.path.isfile(path):
            raise InvalidSpec(f"no image archive at {path!r}")
        with self.tempdir("load-") as scratch:
            staging = os.path.join(scratch, "oci")
            try:
                loaded = archives.extract_to_layout(path, staging, ref_name=encode_ref)
            except OSError as exc:
                raise EngineError(f"cannot read image archive {path}: {exc}") from exc
            source = Layout(staging)
            images: ImageList = []
            for item in loaded:
                if item.manifest_digest is None:  # pragma: no cover - always set on extract
                    continue
                # Podman's local images carry "localhost/": tags here never do.
                tags = tuple(dict.fromkeys(t.removeprefix("localhost/") for t in item.repo_tags))
                images.append(self.import_from(source, item.manifest_digest, tags))
        return images
