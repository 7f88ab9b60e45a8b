"""What of a container spec only the image or the host can judge, refused as
every engine refuses it (:mod:`enginekit.refusals`).

The user and group are resolved in the image's files by :mod:`.users` as the
container starts (``InvalidSpec``, Docker's words). Here: a working directory
that is, or runs through, a file in the image is refused as the container is
created, as Docker refuses it; a host port the monitor could not bind because
something holds it is ``Conflict`` naming that binding.
"""

from __future__ import annotations

import errno
import posixpath
import stat
from collections.abc import Mapping
from typing import Any

from enginekit.toolkit import refusals
from enginekit.toolkit.errors import Conflict, InvalidSpec
from enginekit.toolkit.models import PortBinding

from .fsroot import Root

__all__ = ["check_workdir", "port_refused", "workdir_error"]


def check_workdir(rootfs: str, workdir: str) -> None:
    """Refuse ``workdir`` (``InvalidSpec``) if it is, or runs through, a file
    under ``rootfs``. A missing one is fine (the start makes it); one that
    cannot be looked at is left to the start to report."""
    path = posixpath.normpath(workdir)  # as Docker: "/file/.." is "/"
    try:
        with Root(rootfs) as root:
            is_dir = stat.S_ISDIR(root.stat(path).st_mode)
    except NotADirectoryError:
        is_dir = False
    except OSError:
        return
    if not is_dir:
        raise refusals.workdir_not_a_directory(workdir)


def workdir_error(workdir: str, exc: OSError) -> InvalidSpec | None:
    """The error for the start failing to make ``workdir`` because a file is
    in its way; None for another failure."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return refusals.workdir_not_a_directory(workdir)
    return None


def port_refused(message: Mapping[str, Any]) -> Conflict | None:
    """``Conflict`` for the monitor's report of a host port in use, or None."""
    busy = message.get("port_in_use")
    if not isinstance(busy, Mapping):
        return None
    try:
        binding = PortBinding(
            container_port=int(busy["container_port"]),
            protocol=str(busy.get("protocol") or "tcp"),
            host_ip=str(busy["host_ip"]),
            host_port=int(busy["host_port"]) or None,
        )
    except (KeyError, TypeError, ValueError):
        binding = None
    return refusals.port_in_use(binding)
