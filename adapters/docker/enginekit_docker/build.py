"""Reading the classic builder's JSON stream (``POST /build``)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from enginekit.toolkit.driver import ProgressCallback
from enginekit.toolkit.errors import BuildFailed

__all__ = ["BuildLog"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP = re.compile(r"^Step \d+/\d+ : (.*)$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_QUIET = (" ---> ", "Removing intermediate container ", "Successfully ")
_OUTPUT_TAIL = 50


class BuildLog:
    """Follows one build: the current step, its output, the layers it made, the result.

    Feed it every JSON message. ``{"stream": ...}`` text is cut into lines
    (Docker sends a step header and its newline apart), each handed to
    ``progress`` without colour codes. ``created`` lists the images this
    build made (``" ---> <id>"`` after a step that was not ``FROM`` and not
    taken from the cache) and ``containers`` the step containers it ran, so
    that a failed or interrupted build can remove them.
    ``{"errorDetail": ...}`` raises :class:`BuildFailed` with the step, the
    exit code (RUN steps) and the tail of the step's output.
    """

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.step: str | None = None
        self.output: deque[str] = deque(maxlen=_OUTPUT_TAIL)
        self.created: list[str] = []
        self.containers: list[str] = []
        self.image_id: str | None = None
        self._cached = False
        self._partial = ""

    def feed(self, message: Mapping[str, Any]) -> None:
        if "errorDetail" in message or "error" in message:
            self.flush()
            detail = message.get("errorDetail") or {}
            text = detail.get("message") or message.get("error") or "build failed"
            code = detail.get("code")
            raise BuildFailed(
                f"docker build: {text}",
                step=self.step,
                exit_code=int(code) if code is not None else None,
                output="\n".join(self.output),
            )
        aux = message.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        text = message.get("stream")
        if isinstance(text, str):
            *lines, self._partial = (self._partial + _ANSI.sub("", text)).split("\n")
            for line in lines:
                self._line(line)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._line(line)

    def _line(self, line: str) -> None:
        if self.progress is not None and line:
            self.progress(line)
        step = _STEP.match(line)
        if step:
            self.step = step.group(1)
            self.output.clear()
            self._cached = False
        elif line == " ---> Using cache":
            self._cached = True
        elif running := _RUNNING.match(line):
            self.containers.append(running.group(1))
        elif layer := _LAYER.match(line):
            if not self._cached and not (self.step or "").upper().startswith("FROM"):
                self.created.append(layer.group(1))
        elif line and not line.startswith(_QUIET):
            self.output.append(line)
