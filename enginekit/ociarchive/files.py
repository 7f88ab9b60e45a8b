"""Writing a file whole or not at all: a temporary file beside it that replaces it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def _replacing(
    path: str, *, suffix: str = "", sync: bool = True, keep_mode: bool = False
) -> Iterator[IO[bytes]]:
    """A temporary file beside ``path`` that replaces it when the block ends without error.

    On an error the temporary file is removed and ``path`` left as it was.
    ``sync``: flushed to disk first; ``keep_mode``: an existing ``path``'s mode is
    kept (else the mode is 0644).
    """
    fd, tmp = tempfile.mkstemp(prefix=".enginekit-", suffix=suffix, dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            if sync:
                out.flush()
                os.fsync(out.fileno())
        if keep_mode and os.path.exists(path):
            with contextlib.suppress(OSError):
                shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_whole(path: str, data: bytes, *, sync: bool = True) -> None:
    """``data`` as ``path``'s whole content, or ``path`` left as it was (mode 0644)."""
    with _replacing(path, sync=sync) as out:
        out.write(data)
