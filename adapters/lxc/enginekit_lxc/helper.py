"""The command line that runs a container's command through the in-container helper.

Standard library only: the monitor imports it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ENV_HELPER", "helper_argv"]

#: Where the helper appears inside the container (a tmpfs: nothing lands in the rootfs).
ENV_HELPER = "/dev/.enginekit/busybox"


def helper_argv(
    argv: Sequence[str], *, out_fd: int, err_fd: int, close: Sequence[int] = ()
) -> list[str]:
    """``argv`` run through the helper inside the container.

    The command's stdout and stderr are the inherited descriptors ``out_fd``
    and ``err_fd`` (``lxc-execute``'s own stdout and stderr then carry only
    LXC's messages, never mixed into the container's output); ``close`` are
    more inherited descriptors the command must not see. ``container=lxc``
    is dropped from the environment, then ``argv`` is executed.
    """
    closes = " ".join(f"{fd}>&-" for fd in (out_fd, err_fd, *close))
    script = f'exec 1>&{out_fd} 2>&{err_fd} {closes}; exec {ENV_HELPER} env -u container "$@"'
    return [ENV_HELPER, "sh", "-c", script, "sh", *argv]
