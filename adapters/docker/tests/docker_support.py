"""Names shared by conftest.py and the tests (imported as a top-level module)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

__all__ = ["BUSYBOX_DOCKERFILE", "IMAGE_REPO", "LABELS", "LABEL_KEY", "RUN", "busybox_context"]

RUN = uuid.uuid4().hex[:10]
LABEL_KEY = "enginekit.test"
LABELS = {LABEL_KEY: f"docker-adapter-{RUN}"}
IMAGE_REPO = "enginekit-docker-test/busybox"
BUSYBOX_DOCKERFILE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    "ENV PATH=/bin\n"
    'CMD ["sh"]\n'
)


def busybox_context(root: Path, dockerfile: str = BUSYBOX_DOCKERFILE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", root / "busybox")
    (root / "Dockerfile").write_text(dockerfile)
    return root
