"""Paths inside containers: stat, copy in and out, working directories."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from typing import IO

from enginekit.toolkit import refusals
from enginekit.toolkit.errors import EngineError, InvalidSpec, NotFound
from enginekit.toolkit.models import PathStat

from . import convert
from ._base import Base
from ._base import quote as _q
from .errors import (
    map_errors,
)
from .tartrim import trim_tar

__all__ = ["FilesMixin"]

_PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


class FilesMixin(Base):
    """The file half of the driver."""

    def container_stat_path(self, id: str, path: str) -> PathStat | None:
        stat = self._stat_raw(id, path)
        return stat[0] if stat is not None else None

    def _stat_raw(self, id: str, path: str) -> tuple[PathStat, int] | None:
        """The path's stat and its mtime (seconds), or None if absent."""
        with map_errors("stat path"):
            resp = self._request("HEAD", f"/containers/{_q(id)}/archive", params={"path": path})
            resp.read()
            header = resp.headers.get(_PATH_STAT_HEADER)
            if resp.status == 404:
                # A link to nothing: libpod says 404 but sends the link's stat
                # (Docker stats the link itself, as the contract does).
                dangling = convert.path_stat(header, path) if header else None
                if dangling is not None and dangling.is_symlink and header:
                    return dangling, convert.path_mtime(header)
                self._inspect_raw(id)  # ContainerNotFound if it is the container
                return None
            self._check(resp, operation="stat")
            if not header:
                raise EngineError("podman: no path stat in the answer")
            return convert.path_stat(header, path), convert.path_mtime(header)

    def _link_archive(self, id: str, path: str, stat: PathStat, mtime: int) -> IO[bytes]:
        """A tar holding the symbolic link ``path`` itself, as Docker sends it."""
        target = self._link_text(id, path, stat)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            entry = tarfile.TarInfo(stat.name)
            entry.type = tarfile.SYMTYPE
            entry.linkname = target
            entry.mode = 0o777
            entry.mtime = mtime
            tar.addfile(entry)
        buf.seek(0)
        return buf

    def _link_text(self, id: str, path: str, stat: PathStat) -> str:
        """What the link at ``path`` says (``readlink``).

        libpod reports the resolved target and, as the size, the length of
        the link's text: when the absolute target or the target relative to
        the link's folder has that length, that is the text. Otherwise the
        link's folder is read until the link is found.
        """
        folder = posixpath.dirname(path.rstrip("/")) or "/"
        absolute = stat.link_target
        relative = posixpath.relpath(absolute, folder) if absolute.startswith("/") else ""
        if absolute and len(absolute.encode()) == stat.size:
            return absolute
        if relative and len(relative.encode()) == stat.size:
            return relative
        with map_errors("get archive"):
            resp = self._call(
                "GET",
                f"/containers/{_q(id)}/archive",
                operation="get archive",
                params={"path": folder},
            )
            with resp, tarfile.open(fileobj=resp.fp, mode="r|") as tar:
                top = ""
                for member in tar:
                    if not top:
                        top = member.name.rstrip("/")
                        continue
                    if member.name == f"{top}/{stat.name}" and member.issym():
                        return member.linkname
        return absolute

    def container_put_archive(self, id: str, path: str, data: IO[bytes]) -> None:
        stat = self.container_stat_path(id, path)
        if stat is None:
            raise NotFound(f"no such directory in the container: {path}")
        if not stat.is_dir:
            raise InvalidSpec(f"not a directory in the container: {path}")
        self._empty(
            "PUT",
            f"/containers/{_q(id)}/archive",
            operation="put archive",
            # Keep the tar's owners, as Docker does (libpod would chown
            # everything to the container's user).
            params={"path": path, "copyUIDGID": False},
            body=trim_tar(data),
            headers={"Content-Type": "application/x-tar"},
        )

    def container_get_archive(self, id: str, path: str) -> IO[bytes]:
        stat = self._stat_raw(id, path)
        if stat is not None and stat[0].is_symlink:
            # libpod archives what a link points to; Docker (and the
            # contract) give the link itself.
            return self._link_archive(id, path, *stat)
        with map_errors("get archive"):
            resp = self._request("GET", f"/containers/{_q(id)}/archive", params={"path": path})
            if resp.status == 404:
                resp.read()
                self._inspect_raw(id)
                raise NotFound(f"no such path in the container: {path}")
            self._check(resp, operation="get archive")
        return resp.as_file()

    def _resolve_in_container(
        self, cid: str, path: str, *, given: str | None = None
    ) -> tuple[str, list[str]]:
        """The working directory ``path`` with every symbolic link resolved
        inside the container.

        Returns the existing part (resolved) and the components that do not
        exist. A path that is, or runs through, a file is ``InvalidSpec`` naming
        the path as ``given`` (Docker refuses it as it creates the container).
        """
        given = given or path
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current = "/"
        hops = 0
        on_file = False  # ``current`` is a file: only ".." may follow
        for i, part in enumerate(parts):
            if part == "..":
                current = posixpath.dirname(current) or "/"
                on_file = False
                continue
            if on_file:
                raise refusals.workdir_not_a_directory(given)
            candidate = posixpath.join(current, part)
            stat = self.container_stat_path(cid, candidate)
            if stat is None:
                rest = posixpath.normpath("/".join(parts[i:]))
                if rest.startswith(".."):
                    # ".." past the missing part: resolve what it names instead.
                    return self._resolve_in_container(
                        cid, posixpath.join(current, rest), given=given
                    )
                return current, [p for p in rest.split("/") if p not in ("", ".")]
            if stat.is_symlink:
                hops += 1
                if hops > 40:
                    raise InvalidSpec(f"too many levels of symbolic links in {path!r}")
                target = stat.link_target
                current = (
                    posixpath.normpath(posixpath.join(current, target)) if target else candidate
                )
            else:
                current = candidate
                on_file = not stat.is_dir
        if on_file:
            raise refusals.workdir_not_a_directory(given)
        return current, []

    def _prepare_workdir(self, cid: str, image_id: str, workdir: str) -> str:
        """Make sure the working directory exists; return it free of links.

        A missing one is created as Docker does: owned by root, mode 0755
        (Podman's own ``create_working_dir`` gives it to the container's user).
        How a path resolves in a new container depends only on its image: it
        is worked out once per image (each look costs a mount of the
        container's file system) and remembered.
        """
        key = (image_id, workdir)
        with self._lock:
            known = self._workdirs.get(key)
        if known is None:
            known = self._resolve_in_container(cid, workdir)
            with self._lock:
                if len(self._workdirs) > 1024:
                    self._workdirs.clear()
                self._workdirs[key] = known
        existing, missing = known
        if not missing:
            return existing
        buf = io.BytesIO()
        now = int(time.time())
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for i in range(len(missing)):
                entry = tarfile.TarInfo("/".join(missing[: i + 1]))
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o755
                entry.mtime = now
                tar.addfile(entry)
        self._empty(
            "PUT",
            f"/containers/{_q(cid)}/archive",
            operation="put archive",
            params={"path": existing, "copyUIDGID": False},
            body=b"".join(trim_tar(io.BytesIO(buf.getvalue()))),
            headers={"Content-Type": "application/x-tar"},
        )
        return posixpath.join(existing, *missing)
