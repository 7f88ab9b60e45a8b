"""The Kit the scenarios take and the helpers they share."""

from __future__ import annotations

import datetime as dt
import io
import socket
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from enginekit.driver import Driver
from enginekit.models import LogLine

__all__ = [
    "READY_SLEEP",
    "SLEEP",
    "Kit",
    "await_output",
    "closed_port",
    "fetch_first_bytes",
    "members",
    "read_member",
    "seconds_between",
    "tar_of",
    "write_dockerfile",
]

SLEEP = ("sleep", "100")
#: Prints ``ready`` once it runs: a signal sent after that reaches the command
#: through the init (one sent while the init still sets up may be lost).
READY_SLEEP = ("sh", "-c", "echo ready; exec sleep 100")


@attrs.frozen
class Kit:
    """What the scenarios need from an adapter's tests."""

    #: The adapter's driver, connected to the engine under test.
    driver: Driver
    #: An image with busybox installed in /bin (labelled, removed by the adapter's tests).
    image: str
    #: The labels of everything the adapter's tests make (their clean-up removes it).
    labels: Mapping[str, str]
    #: ``create(command, **spec) -> id``: a labelled container of ``image`` (spec
    #: fields as ContainerSpec's; ``image=`` another), created, removed after the test.
    create: Callable[..., str]
    #: The adapter's ``connect(address)``.
    connect: Callable[[str], Any]
    #: What an unreachable engine's message tells to start (``"dockerd"``, ...).
    start_hint: str
    #: A short string unique to this test run, for names.
    run_id: str

    def run(self, command: Iterable[str] | None, **spec: Any) -> str:
        """Created and started."""
        cid = self.create(tuple(command) if command is not None else None, **spec)
        self.driver.container_start(cid)
        return cid

    def output(self, cid: str, **kw: Any) -> bytes:
        """Everything the container wrote (both streams unless told)."""
        return b"".join(line.data for line in self.lines(cid, **kw))

    def lines(self, cid: str, **kw: Any) -> list[LogLine]:
        return list(self.driver.container_logs(cid, **kw))


# --------------------------------------------------------------------------- helpers


def await_output(kit: Kit, cid: str, line: bytes = b"ready\n", *, timeout: float = 30) -> None:
    """Until the container has written ``line``."""
    deadline = time.monotonic() + timeout
    while not any(x.data == line for x in kit.lines(cid)):
        assert time.monotonic() < deadline, f"the container did not write {line!r}"
        time.sleep(0.05)


def tar_of(files: Mapping[str, bytes]) -> io.BytesIO:
    """An uncompressed tar of regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    f = tar.extractfile(member) if member.isfile() else None
    return f.read() if f is not None else None


def members(stream: IO[bytes]) -> dict[str, bytes | None]:
    with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return {m.name: read_member(tar, m) for m in tar}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (once this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch_first_bytes(port: int, *, timeout: float = 30) -> bytes:
    """The first bytes a server on 127.0.0.1:``port`` sends, once it listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                data = s.recv(100)
            if data:
                return data
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing answered on 127.0.0.1:{port}"
        time.sleep(0.1)


def seconds_between(later: dt.datetime | None, earlier: dt.datetime | None) -> float:
    assert later is not None and earlier is not None
    return (later - earlier).total_seconds()


def write_dockerfile(root: Path, dockerfile: str) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    return str(root)
