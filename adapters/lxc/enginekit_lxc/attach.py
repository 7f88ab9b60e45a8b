"""``exec``: a command run in a running container with ``lxc-attach``."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from enginekit.errors import EngineUnavailable

from .errors import HINT, tool_path
from .helper import ENV_HELPER
from .users import ExecUser

__all__ = ["attach"]

# Names that must not reach the host-side lxc-attach through its environment.
_HOST_SENSITIVE_PREFIXES = ("LD_", "LXC_", "GCONV_", "MALLOC_", "GLIBC_", "PYTHON")


def attach(
    lxcpath: str,
    lxc_name: str,
    who: ExecUser,
    env: Mapping[str, str],
    cwd: str,
    argv: Sequence[str],
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` (``argv[0]`` a path inside the container) as ``who`` in
    ``cwd`` with exactly ``env``; its exit status and output."""
    cmd = [
        tool_path("lxc-attach"),
        "-n",
        lxc_name,
        "-P",
        lxcpath,
        "--clear-env",
        "-q",
        "-u",
        str(who.uid),
        "-g",
        str(who.gid),
    ]
    child_env: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith(_HOST_SENSITIVE_PREFIXES) or not value:
            # Empty values do not survive --keep-var; nor may these names
            # reach the host-side lxc-attach: set inside instead.
            cmd += ["-v", f"{key}={value}"]
        else:
            cmd += ["--keep-var", key]
            child_env[key] = value
    # lxc-attach has no --cwd: busybox's nsenter (entering no namespace)
    # changes directory; lxc-attach sets HOME itself, so it is set again.
    cmd += [
        "--",
        ENV_HELPER,
        "nsenter",
        "-F",
        f"-w{cwd}",
        ENV_HELPER,
        "env",
        "-u",
        "container",
        f"HOME={env['HOME']}",
        *argv,
    ]
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, env=child_env, check=False
        )
    except OSError as exc:
        raise EngineUnavailable("lxc-attach could not run", hint=HINT) from exc
