"""Reading the output of ``POST /libpod/build``: progress lines and the failing step.

Podman's builder streams JSON objects: ``{"stream": "..."}`` for output
(step headers such as ``STEP 2/5: RUN ...`` or ``[2/2] STEP 1/4: FROM ...``
in a multi-stage build, and each step's own output) and, on failure,
``{"error": "building at STEP \\"RUN exit 3\\": while running runtime:
exit status 3"}``. The HTTP status is 200 either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from enginekit.toolkit.errors import BuildFailed

__all__ = ["BuildLog"]

_STEP_RE = re.compile(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: (.*)$")
_FAILED_AT_RE = re.compile(r'building at STEP "(.*?)": (.*)$', re.S)
_EXIT_RE = re.compile(r"exit status (\d+)")
_COMMIT_RE = re.compile(r"^--> ([0-9a-f]{6,64})$")
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_TAIL = 50


@attrs.define
class BuildLog:
    """Collects a build's output as it streams, line by line."""

    progress: Callable[[str], None] | None = None
    step: str | None = None
    step_output: list[str] = attrs.field(factory=list)
    tail: list[str] = attrs.field(factory=list)
    committed: list[str] = attrs.field(factory=list)
    image_id: str | None = None
    error: str | None = None
    _partial: str = ""

    def feed(self, item: object) -> None:
        """One decoded JSON object of the build stream."""
        if not isinstance(item, dict):
            return
        error = item.get("error")
        if isinstance(error, str) and error:
            self.error = error.strip()
            return
        text = item.get("stream")
        if isinstance(text, str) and text:
            self._text(text)

    def _text(self, text: str) -> None:
        data = self._partial + text
        lines = data.split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)
        step = _STEP_RE.match(line)
        if step:
            self.step = step.group(1)
            self.step_output = []
        else:
            self.step_output.append(line)
            del self.step_output[:-_TAIL]
        commit = _COMMIT_RE.match(line)
        if commit:
            self.committed.append(commit.group(1))
        if _ID_RE.match(line):
            self.image_id = "sha256:" + line
        self.tail.append(line)
        del self.tail[:-_TAIL]

    def finish(self) -> None:
        """Call at the end of the stream; raises ``BuildFailed`` if the build failed."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        if self.error is None:
            return
        step = self.step
        exit_code: int | None = None
        m = _FAILED_AT_RE.search(self.error)
        if m:
            step = m.group(1)
            code = _EXIT_RE.search(m.group(2))
            if code and "while running runtime" in m.group(2):
                exit_code = int(code.group(1))
        # The failing step's own output only (possibly none): the earlier lines are
        # Podman's own (``STEP 2/4: ENV TOKEN=...`` quotes the Dockerfile, values
        # included), which no other engine's BuildFailed carries.
        output_lines = self.step_output if self.step is not None else self.tail
        output = "\n".join([*output_lines, self.error])
        raise BuildFailed(
            f"build failed: {self.error}", step=step, exit_code=exit_code, output=output
        )
