"""How a container's command is run inside it, and LXC's noise kept out of its output.

Standard library only: the monitor imports it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ENV_HELPER", "NoiseFilter", "helper_argv", "not_found_argv"]

#: Where the helper appears inside the container (a tmpfs: nothing lands in the rootfs).
ENV_HELPER = "/dev/.enginekit/busybox"


def helper_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` run through the helper: ``container=lxc`` (which LXC always
    sets) is dropped from the environment, every other variable is passed on
    byte for byte, then ``argv`` is executed.

    ``argv[0]`` must already be a path (see :func:`resolved_argv`): given a
    bare name that is also one of its applets, busybox would run its own
    applet instead of the container's program.
    """
    return [ENV_HELPER, "env", "-u", "container", *argv]


def not_found_argv(name: str) -> list[str]:
    """What runs when the command is not in the container's PATH: Docker's
    message on stderr and exit code 127."""
    script = 'printf \'exec: "%s": executable file not found in $PATH\\n\' "$0" >&2; exit 127'
    return [ENV_HELPER, "sh", "-c", script, name]


class NoiseFilter:
    """Drops the lines LXC itself writes to the container's stderr.

    ``lxc-execute`` hands its own stdout and stderr to the container, and a
    few warnings (``... Continuing...``) are printed there even with ``-q``.
    Each is one write of one whole line starting with ``lxc-execute: NAME: ``
    (NAME being the container's unique LXC name), so a line that starts so
    is LXC's and never the command's.
    """

    def __init__(self, lxc_name: str) -> None:
        self.prefix = f"lxc-execute: {lxc_name}: ".encode()
        self.at_line_start = True
        self.dropping = False

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        pos = 0
        while pos < len(chunk):
            if self.at_line_start and chunk.startswith(self.prefix, pos):
                self.dropping = True
            nl = chunk.find(b"\n", pos)
            end = len(chunk) if nl < 0 else nl + 1
            if not self.dropping:
                out += chunk[pos:end]
            if nl < 0:
                self.at_line_start = False
            else:
                self.at_line_start = True
                self.dropping = False
            pos = end
        return bytes(out)
