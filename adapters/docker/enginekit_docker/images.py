"""The image half of the Docker driver: build, inspect, list, tag, remove, save, load."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import tempfile
import time
from collections.abc import Mapping
from typing import IO, Any

from enginekit.toolkit.driver import ProgressCallback
from enginekit.toolkit.errors import BuildFailed, EngineError, ImageNotFound, InvalidSpec, NotFound
from enginekit.toolkit.http import Response, build_params
from enginekit.toolkit.models import BuildRequest, Image
from enginekit.toolkit.references import Reference

from . import convert
from .api import Api, label_filters
from .build import BuildLog
from .errors import build_error, error_for, map_errors, message_of, registry_error

__all__ = ["ImageOps"]

# How long an interrupted build waits for its step containers to go.
_STEP_CONTAINER_GONE = 10.0
_LIST_ATTEMPTS = 5
_LOADED = re.compile(r"^Loaded image(?: ID)?: (\S+)$")
# No credentials: the daemon's own configuration applies (it wants the header).
_NO_AUTH = base64.b64encode(b"{}").decode("ascii")


def _split_ref(ref: str) -> tuple[str, str]:
    """``name:tag`` -> (name, tag), ``name`` -> (name, ``latest``), the name as
    Docker shows it (``docker.io/library/`` left out)."""
    parsed = Reference.parse(ref)
    return parsed.familiar_name, parsed.tag or "latest"


class ImageOps(Api):
    """Driver methods on images (see :class:`enginekit.toolkit.driver.Driver`)."""

    def image_build(
        self, request: BuildRequest, *, progress: ProgressCallback | None = None
    ) -> Image:
        from enginekit.toolkit.build import context_tar

        with context_tar(request.context, request.dockerfile) as tar:
            return self.build_tar(tar, request, progress=progress)

    def build_tar(
        self, tar: IO[bytes], request: BuildRequest, *, progress: ProgressCallback | None = None
    ) -> Image:
        """Build from ``tar``, the context already packed (``request.context`` unused)."""
        params = [*build_params(request, request.tags), ("version", "1")]
        log = BuildLog(progress)
        with map_errors("build"):
            resp = self._send_tar("POST", "/build", tar, params=params, timeout=None)
            if not resp.ok:
                message = message_of(resp)
                raise self._refusal(resp.status, message) or build_error(resp.status, message)
            try:
                with resp:
                    for message in resp.iter_json():
                        if isinstance(message, Mapping):
                            log.feed(message)
                log.flush()
                if log.image_id is None:
                    raise BuildFailed("docker build: the daemon reported no image", step=log.step)
            except BaseException:
                # Interrupted, the daemon may still be running a step: its
                # container holds the images below it until it is gone.
                self._remove_step_containers(log.containers)
                self._remove_images(reversed(log.created))
                raise
            self._remove_strays(log.image_id, log.created)
        return self.image_inspect(log.image_id)

    def _remove_step_containers(self, ids: list[str]) -> None:
        """Force-remove a build's step containers and wait until they are gone
        (Docker 28 answers while the container is still "dead", holding its image)."""
        for container in ids:
            with contextlib.suppress(EngineError):
                self._empty(
                    "DELETE",
                    f"/containers/{container}",
                    operation="remove",
                    params={"force": True, "v": True},
                )
        deadline = time.monotonic() + _STEP_CONTAINER_GONE
        for container in ids:
            while time.monotonic() < deadline:
                resp = self._request("GET", f"/containers/{container}/json")
                resp.read()
                if resp.status == 404:
                    break
                time.sleep(0.05)

    def _remove_images(self, ids: Any) -> None:
        for image_id in ids:
            # In use by a later image, or gone already: leave it.
            with contextlib.suppress(EngineError):
                self._delete_image(image_id, force=False)

    def _delete_image(self, ref: str, *, force: bool) -> None:
        """``DELETE /images/{ref}``, and the builder's images below it that nothing
        else needs.

        On the classic store Docker removes those itself. On the containerd
        store Docker 28 removes every untagged builder image below the one
        removed, even one another image stands on (a build that hit the cache
        shares them): that other image is then left with a broken chain, and
        removing it later leaves its own builder images behind. There the
        adapter asks Docker not to prune (``noprune``) and removes each image
        below, nearest first, while it is untagged, unused and no other image
        stands on it.
        """
        if not self._instance().containerd_store:
            with map_errors("rmi"):
                self._call(
                    "DELETE",
                    f"/images/{ref}",
                    operation="rmi",
                    missing=ImageNotFound,
                    params={"force": force},
                ).read()
            return
        chain = self._builder_chain(ref)
        with map_errors("rmi"):
            self._call(
                "DELETE",
                f"/images/{ref}",
                operation="rmi",
                missing=ImageNotFound,
                params={"force": force, "noprune": True},
            ).read()
        if chain and not self._exists(chain[0]):
            self._prune_below(chain)

    def _builder_chain(self, ref: str) -> list[str]:
        """The image's id, then the ids of the builder's images below it, nearest first."""
        history = self._json(
            "GET", f"/images/{ref}/history", operation="rmi", missing=ImageNotFound
        )
        with map_errors("rmi"):
            ids = [str(h.get("Id") or "") for h in history]
        chain: list[str] = []
        for image_id in ids:
            if not image_id.startswith("sha256:"):
                break  # "<missing>": below here, layers of an image not built here
            chain.append(image_id)
        return chain

    def _exists(self, image_id: str) -> bool:
        resp = self._request("GET", f"/images/{image_id}/json")
        resp.read()
        return resp.ok

    def _prune_below(self, chain: list[str]) -> None:
        """Remove ``chain[1:]`` (the images below the removed ``chain[0]``), nearest
        first, up to the first one that is tagged, used or stood on."""
        try:
            entries = self._images_json({"all": True}, operation="rmi")
        except EngineError:
            return  # best effort: the image asked for is gone already
        with map_errors("rmi"):
            parent = {str(e["Id"]): str(e.get("ParentId") or "") for e in entries}
            tagged = {
                str(e["Id"])
                for e in entries
                if any(t != "<none>:<none>" for t in e.get("RepoTags") or ())
            }
        children: dict[str, int] = {}
        for parent_id in parent.values():
            if parent_id:
                children[parent_id] = children.get(parent_id, 0) + 1
        for image_id in chain[1:]:
            if image_id not in parent or image_id in tagged or children.get(image_id):
                return
            resp = self._request("DELETE", f"/images/{image_id}", params={"noprune": True})
            resp.read()
            if not resp.ok:  # a container uses it, or another client took it: leave the rest
                return
            above = parent.pop(image_id)
            if above:
                children[above] = children.get(above, 0) - 1

    def _remove_strays(self, final_id: str, created: list[str]) -> None:
        """Drop what this build made that the final image does not stand on
        (the last images of earlier stages), as no half-made image may stay."""
        history = self._json("GET", f"/images/{final_id}/history", operation="history")
        ancestors = {str(h.get("Id", "")).removeprefix("sha256:") for h in history}
        strays = [i for i in created if not any(a.startswith(i) for a in ancestors)]
        self._remove_images(reversed(strays))

    def image_inspect(self, ref: str) -> Image:
        data = self._json(
            "GET", f"/images/{ref}/json", operation="image inspect", missing=ImageNotFound
        )
        with map_errors("image inspect"):
            return convert.image_from_inspect(data)

    def image_list(
        self, *, name: str | None = None, labels: Mapping[str, str | None] | None = None
    ) -> list[Image]:
        filters: dict[str, list[str]] = {}
        if labels:
            filters["label"] = label_filters(labels)
        if name:
            filters["reference"] = [name]
        entries = self._images_json({"filters": filters or None}, operation="image list")
        images: list[Image] = []
        for entry in entries:
            tags = [t for t in entry.get("RepoTags") or () if t != "<none>:<none>"]
            if name and not any(_matches_name(t, name) for t in tags):
                continue
            try:
                images.append(self.image_inspect(entry["Id"]))
            except ImageNotFound:
                continue  # removed since the list was taken
        return images

    def _images_json(self, params: Mapping[str, Any], *, operation: str) -> Any:
        """``GET /images/json``, asked again when an image went away while it was
        being listed (the containerd store then answers 404 "content digest ...
        not found")."""
        for attempt in range(_LIST_ATTEMPTS):
            try:
                return self._json(
                    "GET", "/images/json", operation=operation, params=params, missing=NotFound
                )
            except NotFound:
                if attempt == _LIST_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return []  # pragma: no cover

    def image_tag(self, ref: str, new_ref: str) -> None:
        repo, tag = _split_ref(new_ref)
        with map_errors("tag"):
            self._call(
                "POST",
                f"/images/{ref}/tag",
                operation="tag",
                missing=ImageNotFound,
                params={"repo": repo, "tag": tag},
            ).read()

    def image_remove(self, ref: str, *, force: bool = False) -> None:
        self._delete_image(ref, force=force)

    def image_save(self, ref: str, path: str) -> None:
        from enginekit.toolkit.archives import normalize

        with map_errors("save"):
            resp = self._call(
                "GET", "/images/get", operation="save", missing=ImageNotFound, params={"names": ref}
            )
            try:
                with resp, open(path, "wb") as out:
                    for chunk in resp.iter_chunks():
                        out.write(chunk)
                normalize(path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise

    def image_load(self, path: str) -> list[Image]:
        from enginekit.toolkit.archives import to_combined

        refs: list[str] = []
        with map_errors("load"), tempfile.TemporaryDirectory(prefix="enginekit-load-") as tmp:
            # Docker 20.10 reads only docker-archives: rewrite any archive
            # (OCI, Podman's) into the combined form it reads; Podman's
            # ``localhost/`` names are local names here.
            combined = os.path.join(tmp, "image.tar")
            to_combined(path, combined, rename=_local_name)
            with open(combined, "rb") as body:
                resp = self._call(
                    "POST",
                    "/images/load",
                    operation="load",
                    params={"quiet": "1"},
                    body=body,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=None,
                )
                with resp:
                    for message in resp.iter_json():
                        if not isinstance(message, Mapping):
                            continue
                        if "errorDetail" in message or "error" in message:
                            detail = message.get("errorDetail") or {}
                            text = detail.get("message") or message.get("error") or ""
                            raise error_for(500, str(text), operation="load")
                        for line in str(message.get("stream") or "").splitlines():
                            loaded = _LOADED.match(line.strip())
                            if loaded:
                                refs.append(loaded.group(1))
        images: dict[str, Image] = {}
        for ref in refs:
            image = self.image_inspect(ref)
            images.setdefault(image.id, image)
        return list(images.values())

    def image_pull(self, ref: str) -> Image:
        repo, tag = _split_ref(ref)
        with map_errors("pull"):
            resp = self._request(
                "POST",
                "/images/create",
                params={"fromImage": repo, "tag": tag},
                headers={"X-Registry-Auth": _NO_AUTH},
                timeout=None,
            )
            if not resp.ok:
                message = message_of(resp)
                raise self._refusal(resp.status, message) or registry_error(
                    message, operation="pull"
                )
            _read_progress(resp, "pull")
        return self.image_inspect(ref)

    def image_push(self, ref: str) -> None:
        self.image_inspect(ref)  # ImageNotFound before anything is sent
        repo, tag = _split_ref(ref)
        with map_errors("push"):
            resp = self._request(
                "POST",
                f"/images/{repo}/push",
                params={"tag": tag},
                headers={"X-Registry-Auth": _NO_AUTH},
                timeout=None,
            )
            if not resp.ok:
                message = message_of(resp)
                raise self._refusal(resp.status, message) or registry_error(
                    message, operation="push"
                )
            _read_progress(resp, "push")


def _read_progress(resp: Response, operation: str) -> None:
    """Read a pull's or push's progress stream to its end; an error in it raises."""
    with resp:
        for message in resp.iter_json():
            if isinstance(message, Mapping) and ("errorDetail" in message or "error" in message):
                detail = message.get("errorDetail") or {}
                text = detail.get("message") if isinstance(detail, Mapping) else None
                raise registry_error(str(text or message.get("error") or ""), operation=operation)


def _local_name(tag: str) -> str:
    return tag.removeprefix("localhost/")


def _matches_name(tag: str, name: str) -> bool:
    """``name`` keeps tags of repository ``name``; ``name:tag`` that tag only."""
    if name.rfind(":") > name.rfind("/"):
        return tag == name
    try:
        return _split_ref(tag)[0] == name
    except InvalidSpec:  # a name another client gave that enginekit would refuse
        return False
