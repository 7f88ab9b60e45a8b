"""scripts/rootless-podman.sh: the subordinate id ranges it gives, and its usage.

The script is sourced (it then only defines its functions) and its range
arithmetic runs on files in a temporary folder: nothing of this machine's
users, ranges or engines is touched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "rootless-podman.sh"


def sourced(snippet: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``snippet`` in bash after sourcing the script (nothing else runs)."""
    return subprocess.run(
        ["bash", "-c", f'. "$1"\n{snippet}', "bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_sourced_it_does_nothing() -> None:
    done = sourced("echo sourced")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sourced\n" and done.stderr == ""


def test_next_free_comes_after_every_range(tmp_path: Path) -> None:
    ids = tmp_path / "subuid"
    ids.write_text("")
    assert sourced(f'next_free "{ids}"').stdout == "100000\n"
    ids.write_text("alice:100000:65536\nbob:165536:65536\n# note\nbad:x:1\nlow:1000:10\n")
    assert sourced(f'next_free "{ids}"').stdout == "231072\n"
    ids.write_text("carol:300000:65536\nalice:100000:65536\n")
    assert sourced(f'next_free "{ids}"').stdout == "365536\n"


def test_has_range_by_name_or_uid(tmp_path: Path) -> None:
    ids = tmp_path / "subuid"

    def has(text: str) -> int:
        ids.write_text(text)
        return sourced(f'has_range "{ids}"', ENGINEKIT_ROOTLESS_USER="root").returncode

    assert has("root:100000:65536\n") == 0
    assert has("0:100000:65536\n") == 0  # by uid
    assert has("root:100000:1000\n") == 1  # too few ids
    assert has("rooty:100000:65536\nother:1:65536\n") == 1
    assert has("") == 1


def test_unknown_command_is_refused() -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "restart"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "usage:" in done.stderr
