"""The suite's busybox image, as a build context or as a ready image archive.

An engine that declares ``Capability.BUILD`` gets the image built from
:func:`write_context`; one that only declares ``Capability.IMAGE_LOAD`` gets
the same file system loaded from :func:`write_archive` (a docker-archive:
``manifest.json``, the config, one ``layer.tar``), so that the container
tests do not depend on building.

Content: ``/bin/busybox`` and every applet as a symlink to it in ``/bin``,
``/etc/passwd`` and ``/etc/group`` with root, ``app`` (1000) and ``nobody``
(65534), ``/tmp`` (1777), ``/root`` and ``/home/app`` (owned by 1000).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import pathlib
import platform
import shutil
import subprocess
import tarfile
from collections.abc import Mapping

__all__ = [
    "DOCKERFILE",
    "ETC_GROUP",
    "ETC_PASSWD",
    "write_archive",
    "write_context",
]

ETC_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
ETC_GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"

_SETUP = "mkdir -p /tmp /root /home/app && chmod 1777 /tmp && chown 1000:1000 /home/app"
DOCKERFILE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    "COPY passwd group /etc/\n"
    f'RUN ["/bin/busybox", "sh", "-c", "{_SETUP}"]\n'
)

_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def write_context(root: pathlib.Path, busybox: pathlib.Path) -> pathlib.Path:
    """Write the image's build context (Dockerfile, busybox, passwd, group) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "busybox")
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "passwd").write_text(ETC_PASSWD)
    (root / "group").write_text(ETC_GROUP)
    return root


def _applets(busybox: pathlib.Path) -> list[str]:
    out = subprocess.run(
        [str(busybox), "--list"], capture_output=True, check=True, timeout=30
    ).stdout.decode()
    return sorted({name for name in out.split() if name and "/" not in name} - {"busybox"})


def _layer(busybox: pathlib.Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, *, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755,
                data: bytes = b"", uid: int = 0, link: str = "") -> None:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.uid = info.gid = uid
            info.mtime = 0
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for d in ("bin", "etc", "root", "home"):
            add(d)
        add("tmp", mode=0o1777)
        add("home/app", uid=1000)
        add("bin/busybox", kind=tarfile.REGTYPE, data=busybox.read_bytes())
        for applet in _applets(busybox):
            add(f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, link="/bin/busybox")
        add("etc/passwd", kind=tarfile.REGTYPE, mode=0o644, data=ETC_PASSWD.encode())
        add("etc/group", kind=tarfile.REGTYPE, mode=0o644, data=ETC_GROUP.encode())
    return buf.getvalue()


def write_archive(
    path: pathlib.Path, busybox: pathlib.Path, *, tag: str, labels: Mapping[str, str]
) -> pathlib.Path:
    """Write the image as a docker-archive at ``path``, tagged ``tag``, with ``labels``."""
    layer = _layer(busybox)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = json.dumps(
        {
            "architecture": _GO_ARCH.get(platform.machine(), platform.machine()),
            "os": "linux",
            "created": created,
            "config": {"Env": [_PATH], "Labels": dict(labels)},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "enginekit.testing.baseimage"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]
    ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), (layer_name, layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
