"""The ``enginekit`` command: Docker's everyday commands, on any installed engine.

It is built on the public API only (``enginekit.connect`` and the
:class:`~enginekit.Engine` facade), so it behaves alike on every engine.
Importing this package is cheap: the parser and the engine code load only
when :func:`main` runs.

Exit codes (``enginekit run`` and ``enginekit exec`` pass the container's
own exit code on instead; ``enginekit compare`` exits 1 when engines differ):

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     ``compare``: the engines disagree
2     usage error (bad flags or arguments)
118   ``Unsupported``: the engine cannot do this
119   ``BuildFailed``: a build step failed
120   ``InvalidSpec``: input refused before anything was created
121   ``Conflict``: the object's state forbids the operation
122   ``NotFound``: no such container or image
123   ``EngineUnavailable``: the engine does not answer
124   ``EngineTimeout``: an operation's deadline passed
125   any other ``EngineError`` (as ``docker``'s 125)
130   interrupted (Ctrl-C)
143   terminated (SIGTERM); cleanup ran as after Ctrl-C
====  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["EXIT_CODES", "main"]

#: Exit code per error class name (most specific first when matching).
EXIT_CODES: dict[str, int] = {
    "Unsupported": 118,
    "BuildFailed": 119,
    "InvalidSpec": 120,
    "Conflict": 121,
    "NotFound": 122,
    "EngineUnavailable": 123,
    "EngineTimeout": 124,
    "EngineError": 125,
}
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from ._app import run

    return run(argv)
