"""The one fact Docker's logs API loses for the ``local`` log driver, read from its file.

Docker cuts an output line longer than 16 KiB into pieces. The piece that
ends the line is marked ``last``; a piece written at end of output without a
newline is not. The ``json-file`` driver keeps that difference (it writes the
newline back) but replaces invalid UTF-8; the ``local`` driver keeps the
bytes, yet its reader (Docker 20.10) drops the newline of every piece, so
through the API a long last line with and without its newline look the same.

:class:`PieceResolver` answers "did this piece end its line?" for the logs
reader (:func:`.streams.log_lines`), only for such an ambiguous piece:

* the container logs through another driver: False (its pieces are exact);
* the ``local`` driver's file (``<DockerRootDir>/containers/<id>/local-logs/
  container.log``, and rotated ``container.log.N[.gz]``) is readable here (a
  daemon on this machine, read as root): the ``last`` mark of that piece;
* otherwise: True (a long line ending in a newline is the common case).

The file is a sequence of ``<u32 size><protobuf LogEntry><u32 size>``
records (``source``=1, ``time_nano``=2, ``line``=3, ``partial``=4,
``partial_log_metadata``=5 {``last``=1, ``id``=2, ``ordinal``=3}).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from enginekit.toolkit.errors import EngineError

__all__ = ["PieceResolver", "read_entries"]

_SIZE = struct.Struct(">I")
Key = tuple[str, int, int]  # (source, time_nano, ordinal)


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints and length-delimited only."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield field, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


def _piece(entry: bytes) -> tuple[Key, bool] | None:
    """The key and ``last`` mark of a partial entry; None for a whole line."""
    source, time_nano, meta = "", 0, b""
    for field, value in _fields(entry):
        if field == 1 and isinstance(value, bytes):
            source = value.decode("ascii", "replace")
        elif field == 2 and isinstance(value, int):
            time_nano = value
        elif field == 5 and isinstance(value, bytes):
            meta = value
    if not meta:
        return None
    last, ordinal = False, 0
    for field, value in _fields(meta):
        if field == 1 and isinstance(value, int):
            last = bool(value)
        elif field == 3 and isinstance(value, int):
            ordinal = value
    return (source, time_nano, ordinal), last


def read_entries(stream: _Readable, *, start: int = 0) -> tuple[dict[Key, bool], int]:
    """``last`` marks of the partial entries in a ``local`` driver file, read
    from offset ``start`` (where ``stream`` stands); and the offset after the
    last whole record."""
    marks: dict[Key, bool] = {}
    offset = start
    while True:
        head = stream.read(4)
        if len(head) < 4:
            return marks, offset
        (size,) = _SIZE.unpack(head)
        entry = stream.read(size)
        if len(entry) < size or len(stream.read(4)) < 4:
            return marks, offset  # a record still being written
        offset += size + 8
        piece = _piece(entry)
        if piece is not None:
            marks[piece[0]] = piece[1]


def _rotated(directory: str) -> Iterator[str]:
    """Rotated files, newest first: ``container.log.1[.gz]``, ``.2``..."""
    n = 1
    while True:
        for name in (f"container.log.{n}", f"container.log.{n}.gz"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                yield path
                break
        else:
            return
        n += 1


class PieceResolver:
    """Per logs read: did the piece ``(source, time_nano, ordinal)`` end its line?

    ``inspect`` gives the container's inspect JSON and ``root_dir`` the
    daemon's ``DockerRootDir``; each is called at most once, and only when an
    ambiguous piece shows up. The current file is read on from where the last
    look stopped (it grows while a read follows); rotated files once.
    """

    def __init__(
        self,
        container_id: str,
        inspect: Callable[[], Mapping[str, Any]],
        root_dir: Callable[[], str],
    ) -> None:
        self._id = container_id
        self._inspect = inspect
        self._root_dir = root_dir
        self._log_driver: str | None = None
        self._directory: str | None = None
        self._marks: dict[Key, bool] = {}
        self._offset = 0
        self._rotated_read = False

    def __call__(self, source: str, time_nano: int, ordinal: int) -> bool:
        if self._log_driver is None:
            try:
                config = (self._inspect().get("HostConfig") or {}).get("LogConfig") or {}
                self._log_driver = str(config.get("Type") or "")
            except EngineError:  # gone meanwhile: enginekit made it with ``local``
                self._log_driver = "local"
        if self._log_driver != "local":
            return False
        key = (source, time_nano, ordinal)
        if key not in self._marks:
            self._search(key)
        return self._marks.get(key, True)

    def _search(self, key: Key) -> None:
        if self._directory is None:
            try:
                root = self._root_dir()
            except EngineError:
                root = ""
            self._directory = (
                os.path.join(root, "containers", self._id, "local-logs") if root else ""
            )
        if not self._directory:
            return
        current = os.path.join(self._directory, "container.log")
        try:
            with open(current, "rb") as stream:
                if os.fstat(stream.fileno()).st_size < self._offset:
                    self._offset = 0  # rotated since the last look
                stream.seek(self._offset)
                marks, self._offset = read_entries(stream, start=self._offset)
                self._marks.update(marks)
        except (OSError, ValueError, IndexError):  # unreadable here: keep the default
            return
        if key in self._marks or self._rotated_read:
            return
        self._rotated_read = True
        import gzip  # rarely needed: not at import time

        for path in _rotated(self._directory):
            try:
                with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as stream:
                    self._marks.update(read_entries(stream)[0])
            except (OSError, EOFError, ValueError, IndexError):
                continue
