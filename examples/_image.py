"""Shared by the examples: connect to the chosen engine and build the example image.

The image is ``examples/hello`` (a Dockerfile and a script) plus a static
busybox copied from the host (``busybox-static``), built under a tag of its own
and labelled ``enginekit.example=<run id>``; :func:`example_image` removes it
(and every container so labelled) afterwards, also when the example fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import enginekit

HERE = Path(__file__).resolve().parent
#: Every container and image the examples make carries this label.
LABEL = "enginekit.example"
RUN_ID = uuid.uuid4().hex[:8]
LABELS = {LABEL: RUN_ID}


def connect() -> enginekit.Engine:
    """The engine named on the command line, else as ``enginekit.connect()`` chooses
    (``ENGINEKIT_ENGINE``, ``enginekit.toml``, the first reachable engine)."""
    return enginekit.connect(sys.argv[1] if len(sys.argv) > 1 else None)


def busybox() -> Path:
    path = Path(os.environ.get("ENGINEKIT_BUSYBOX") or shutil.which("busybox") or "/bin/busybox")
    if not path.is_file():
        raise SystemExit("these examples need a static busybox: apt-get install busybox-static")
    return path


def cleanup(engine: enginekit.Engine) -> None:
    """Remove every container and image this run of the example made."""
    for c in engine.containers.list(all=True, labels=LABELS):
        with contextlib.suppress(enginekit.NotFound):
            engine.containers.remove(c, force=True)
    for image in engine.images.list(labels=LABELS):
        with contextlib.suppress(enginekit.NotFound):
            engine.images.remove(image.id, force=True)


@contextlib.contextmanager
def example_image(engine: enginekit.Engine, *, quiet: bool = True) -> Iterator[str]:
    """Build ``examples/hello`` on ``engine``; yield its tag; remove everything after."""
    tag = f"enginekit-example/hello:{RUN_ID}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            context = Path(tmp) / "hello"
            shutil.copytree(HERE / "hello", context, ignore=shutil.ignore_patterns("busybox"))
            shutil.copy2(busybox(), context / "busybox")
            engine.images.build(context, tag=tag, labels=LABELS, progress=None if quiet else print)
        yield tag
    finally:
        cleanup(engine)
