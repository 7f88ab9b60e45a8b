"""Images: inspect, list, tag, remove, save, load and build."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from enginekit.toolkit import archives
from enginekit.toolkit.driver import labels_match
from enginekit.toolkit.errors import Conflict, EngineError, ImageNotFound
from enginekit.toolkit.http import Response, build_params
from enginekit.toolkit.models import BuildRequest, Image
from enginekit.toolkit.references import Reference

from . import convert
from ._base import Base
from ._base import quote as _q
from .build import BuildLog
from .errors import (
    map_errors,
    message_of,
    registry_error,
)

__all__ = ["ImagesMixin"]


class ImagesMixin(Base):
    """The image half of the driver."""

    def image_inspect(self, ref: str) -> Image:
        data = self._image_raw(ref)
        with map_errors("image inspect"):
            return convert.image_from_inspect(data, engine=self.name)

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        rows = self._list_images()
        ids: list[str] = []
        with map_errors("image list"):
            for row in rows or ():
                tags = [convert.user_image_name(t) for t in row.get("RepoTags") or ()]
                tags = [t for t in tags if not t.startswith("<none>")]
                if name is not None and not _name_matches(name, tags):
                    continue
                if labels and not labels_match(row.get("Labels") or {}, labels):
                    continue
                ids.append(str(row["Id"]))
        images = self._each(self._image_or_none, ids)
        out = [img for img in images if img is not None]
        return sorted(out, key=lambda i: (i.tags, i.id))

    def _list_images(self) -> Any:
        return self._list("/images/json", {"all": False}, "image list")

    def _image_or_none(self, image_id: str) -> Image | None:
        try:
            return self.image_inspect(image_id)
        except ImageNotFound:
            return None

    def image_tag(self, ref: str, new_ref: str) -> None:
        source = self._image_raw(ref)
        target = convert.engine_image_ref(new_ref)
        repo, _, tag = target.rpartition(":")
        if "/" in tag or not repo:
            repo, tag = target, "latest"
        self._empty(
            "POST",
            f"/images/{_q(str(source['Id']))}/tag",
            operation="image tag",
            params={"repo": repo, "tag": tag},
            missing=ImageNotFound,
        )

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        data = self._image_raw(ref)
        image_id = str(data["Id"])
        names = [str(n) for n in data.get("RepoTags") or ()]
        by_name = not (ref.startswith("sha256:") or image_id.startswith(ref))
        if by_name:
            wanted = convert.engine_image_ref(ref)
            name = wanted if wanted in names else ref
            if len(names) > 1:
                # Only that tag goes, the image stays (as `docker rmi name:tag`).
                self._untag(image_id, name)
                return
        elif len(names) > 1 and not force:
            raise Conflict(
                f"image {ref} is referenced by several tags ({len(names)}); remove them by name "
                "or use force"
            )
        users = self._containers_using(image_id)
        if users:
            if not force:
                raise Conflict(f"image {ref} is in use by {len(users)} container(s)")
            if not by_name and self._containers_using(image_id, running=True):
                raise Conflict(f"image {ref} is in use by a running container (cannot be forced)")
            # `docker rmi -f` of an image a stopped container uses removes
            # it and leaves the container; Podman cannot keep a container
            # without its image (it would remove the containers): the tags
            # go and the image stays, untagged, for the container.
            for n in names if not by_name else [convert.engine_image_ref(ref)]:
                self._untag(image_id, n)
            return
        self._empty(
            "DELETE",
            f"/images/{_q(image_id)}",
            operation="image remove",
            params={"force": bool(force)},
            missing=ImageNotFound,
        )

    def _untag(self, image_id: str, name: str) -> None:
        repo, _, tag = name.rpartition(":")
        if "/" in tag or not repo:
            repo, tag = name, "latest"
        self._empty(
            "POST",
            f"/images/{_q(image_id)}/untag",
            operation="image untag",
            params={"repo": repo, "tag": tag},
            missing=ImageNotFound,
        )

    def _containers_using(self, image_id: str, *, running: bool = False) -> list[str]:
        filters: dict[str, list[str]] = {"ancestor": [image_id]}
        if running:
            filters["status"] = ["running", "paused"]
        rows = self._list("/containers/json", {"all": True, "filters": filters}, "container list")
        with map_errors("container list"):
            return [str(r["Id"]) for r in rows or () if str(r.get("ImageID", "")) == image_id]

    def image_save(self, ref: str, path: str) -> None:
        data = self._image_raw(ref)
        name = convert.engine_image_ref(ref)
        wanted = name if name in (data.get("RepoTags") or ()) else str(data["Id"])
        with map_errors("image save"):
            resp = self._request(
                "GET",
                f"/images/{_q(wanted)}/get",
                params={"format": "docker-archive"},
                timeout=None,
            )
            self._check(resp, operation="image save", missing=ImageNotFound)
            with resp, open(path, "wb") as out:
                for chunk in resp.iter_chunks():
                    out.write(chunk)
            archives.normalize(path, rename=convert.user_image_name)

    def image_load(self, path: str) -> list[Image]:
        with map_errors("image load"), tempfile.TemporaryDirectory(prefix="ek-podman-") as tmp:
            staged = os.path.join(tmp, "image.tar")
            # Loaded as Podman names the images it builds (``localhost/app:1``), not
            # as ``docker.io/library/app:1`` (what Podman makes of a short name
            # in a one-entry archive's index.json).
            archives.to_combined(path, staged, rename=convert.engine_image_ref)
            with open(staged, "rb") as body:
                data = self._json(
                    "POST",
                    "/images/load",
                    body=body,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=None,
                    missing=ImageNotFound,
                    operation="image load",
                )
            names = [str(n) for n in (data or {}).get("Names") or ()]
        seen: dict[str, Image] = {}
        for n in names:
            image = self.image_inspect(n)
            seen.setdefault(image.id, image)
        return sorted(seen.values(), key=lambda i: (i.tags, i.id))

    def image_pull(self, ref: str) -> Image:
        # The qualified name: a short one would go through Podman's short-name
        # search (several registries), where Docker asks Docker Hub alone.
        params: dict[str, Any] = {"reference": str(Reference.parse(ref)), "quiet": False}
        params.update(_tls(ref))
        with map_errors("image pull"):
            resp = self._request("POST", "/images/pull", params=params, timeout=None)
            _read_progress(resp, "pull")
        return self.image_inspect(ref)

    def image_push(self, ref: str) -> None:
        _, name = self._image_lookup(ref)  # ImageNotFound before anything is sent
        params: dict[str, Any] = {"destination": str(Reference.parse(ref)), "quiet": False}
        params.update(_tls(ref))
        with map_errors("image push"):
            resp = self._request("POST", f"/images/{_q(name)}/push", params=params, timeout=None)
            _read_progress(resp, "push")

    def image_build(
        self, request: BuildRequest, *, progress: Callable[[str], None] | None = None
    ) -> Image:
        from enginekit.toolkit.build import context_tar

        params = build_params(request, [convert.engine_image_ref(t) for t in request.tags])
        # No intermediate layers (a failed build leaves no image), nothing pulled,
        # and no builder identity label: the image carries only what the
        # Dockerfile and the caller gave it, wherever it is loaded later.
        params += [("layers", False), ("pull", False), ("identitylabel", False)]
        log = BuildLog(progress=progress)
        # Podman before 5.8.2 extracts the context without a chroot and refuses a
        # link climbing out of it: the context is written so that none does.
        with (
            map_errors("image build"),
            context_tar(request.context, request.dockerfile, confined_links=True) as body,
        ):
            resp = self._send_tar("POST", "/build", body, params=params, timeout=None)
            self._check(resp, operation="image build", missing=ImageNotFound)
            try:
                with resp:
                    for item in resp.iter_json():
                        log.feed(item)
            except BaseException:
                # Interrupted (the caller's progress raised, Ctrl-C): the closed
                # stream ends the build; what it made goes, tags included.
                self._remove_made(log.committed, request.tags)
                raise
        try:
            log.finish()
        except EngineError:
            self._remove_leftovers(log.committed)
            raise
        if log.committed[:-1]:
            self._remove_leftovers(log.committed[:-1])
        ref = request.tags[0] if request.tags else log.image_id
        if ref is None:
            raise EngineError("podman: the build ended without an image id")
        return self.image_inspect(ref)

    def _remove_made(self, short_ids: list[str], tags: tuple[str, ...]) -> None:
        """Remove the images an interrupted build committed, untagging first
        the requested tags that point at one of them."""
        for tag in tags:
            try:
                data = self._image_raw(tag)
                image_id = str(data["Id"])
                if any(image_id.startswith(short) for short in short_ids):
                    self._untag(image_id, convert.engine_image_ref(tag))
            except (EngineError, KeyError):
                continue
        self._remove_leftovers(short_ids)

    def _remove_leftovers(self, short_ids: list[str]) -> None:
        """Remove untagged images a build committed on its way (stage images)."""
        for short in reversed(short_ids):
            try:
                data = self._json(
                    "GET",
                    f"/images/{_q(short)}/json",
                    operation="image inspect",
                    missing=ImageNotFound,
                )
                if data.get("RepoTags") or self._containers_using(str(data["Id"])):
                    continue
                self._empty(
                    "DELETE",
                    f"/images/{_q(str(data['Id']))}",
                    operation="image remove",
                    missing=ImageNotFound,
                )
            except EngineError:
                continue


def _tls(ref: str) -> dict[str, Any]:
    """A registry on a loopback address is spoken to over plain HTTP, as Docker
    does; any other keeps TLS verification (Podman's default)."""
    return {"tlsVerify": False} if Reference.parse(ref).loopback else {}


def _read_progress(resp: Response, operation: str) -> None:
    """Read a pull's or push's answer to its end; an error in it raises."""
    with resp:
        if not resp.ok:
            raise registry_error(message_of(resp.read()), operation=operation)
        for item in resp.iter_json():
            if isinstance(item, Mapping) and item.get("error"):
                raise registry_error(str(item["error"]), operation=operation)


def _name_matches(name: str, tags: list[str]) -> bool:
    if ":" in name.rsplit("/", 1)[-1]:
        return name in tags
    return any(t.rpartition(":")[0] == name for t in tags)
