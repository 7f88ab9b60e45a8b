"""scripts/setup-engines.sh after a crash: stale pid files are cleared, live ones kept.

The script is sourced (it then only defines its functions) and its checks run on
fake pid files in a temporary folder, naming processes this test makes: a live
one named ``dockerd`` (a copy of ``sleep``), a zombie named ``dockerd`` (a copy of
``true`` that exited and was not reaped, as a SIGKILLed dockerd stays when PID 1
reaps no orphans), a live process of another name (the pid reused), a pid that
does not exist. No engine of this machine is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "setup-engines.sh"


def sourced(snippet: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``snippet`` in bash after sourcing the script (nothing else runs)."""
    return subprocess.run(
        ["bash", "-c", f'. "$1"\n{snippet}', "bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def _named(tmp_path: Path, tool: str, name: str) -> str:
    folder = tmp_path / f"bin-{tool}"
    folder.mkdir(exist_ok=True)
    path = folder / name
    shutil.copy(shutil.which(tool) or f"/bin/{tool}", path)
    return str(path)


@pytest.fixture
def live_dockerd(tmp_path: Path) -> Iterator[int]:
    proc = subprocess.Popen([_named(tmp_path, "sleep", "dockerd"), "600"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def zombie_dockerd(tmp_path: Path) -> Iterator[int]:
    proc = subprocess.Popen([_named(tmp_path, "true", "dockerd")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited, not reaped: a zombie
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.01)
    assert state == "Z"
    try:
        yield proc.pid
    finally:
        proc.wait()


@pytest.fixture
def other_process() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _free_pid() -> int:
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


def test_sourcing_runs_nothing() -> None:
    res = sourced("type main start_docker clear_stale_pidfile >/dev/null && echo ok")
    assert (res.returncode, res.stdout, res.stderr) == (0, "ok\n", "")


def test_live(live_dockerd: int, zombie_dockerd: int, other_process: int) -> None:
    res = sourced(
        f"for p in {live_dockerd} {zombie_dockerd} {other_process} {_free_pid()} x ''; do "
        'if live "$p" dockerd; then echo live; else echo no; fi; done; '
        f"live {other_process} && echo any-name"
    )
    assert res.stdout.split() == ["live", "no", "no", "no", "no", "no", "any-name"], res.stderr


@pytest.mark.parametrize("content", ["zombie", "other", "free", "garbage", "empty", "blanks"])
def test_stale_pid_file_is_removed(
    tmp_path: Path, zombie_dockerd: int, other_process: int, content: str
) -> None:
    text = {
        "zombie": f"{zombie_dockerd}",
        "other": f"{other_process}\n",
        "free": f"{_free_pid()}",
        "garbage": "not a pid",
        "empty": "",
        "blanks": f"  {zombie_dockerd} \n",
    }[content]
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(text)
    res = sourced(f'rc=0; clear_stale_pidfile "{pidfile}" dockerd || rc=$?; echo "rc=$rc"')
    assert res.stdout == "rc=0\n", res.stderr
    assert not pidfile.exists()
    assert "removing stale" in res.stderr


def test_live_engines_pid_file_is_kept(tmp_path: Path, live_dockerd: int) -> None:
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(f"{live_dockerd}\n")
    res = sourced(f'rc=0; clear_stale_pidfile "{pidfile}" dockerd || rc=$?; echo "rc=$rc"')
    assert res.stdout == f"{live_dockerd}\nrc=1\n", res.stderr
    assert pidfile.read_text() == f"{live_dockerd}\n"


def test_absent_pid_file(tmp_path: Path) -> None:
    res = sourced(
        f'rc=0; clear_stale_pidfile "{tmp_path}/none.pid" dockerd || rc=$?; echo "rc=$rc"'
    )
    assert (res.stdout, res.stderr) == ("rc=0\n", "")


def _paths(tmp_path: Path) -> dict[str, str]:
    """The script's paths, all in the temporary folder; dockerd a stand-in that
    records what the folder held when it was started."""
    fake = tmp_path / "fake-dockerd"
    fake.write_text(f'#!/bin/sh\nls "{tmp_path}" > "{tmp_path}/seen"\n')
    fake.chmod(0o755)
    return {
        "ENGINEKIT_DOCKER_SOCK": str(tmp_path / "docker.sock"),
        "ENGINEKIT_DOCKER_PIDFILE": str(tmp_path / "docker.pid"),
        "ENGINEKIT_CONTAINERD_PIDFILE": str(tmp_path / "containerd.pid"),
        "ENGINEKIT_PODMAN_SOCK": str(tmp_path / "podman.sock"),
        "ENGINEKIT_DOCKERD": str(fake),
        "ENGINEKIT_LOG_DIR": str(tmp_path / "log"),
    }


def test_start_docker_clears_a_zombies_pid_files_before_starting(
    tmp_path: Path, zombie_dockerd: int
) -> None:
    # dockerd's pid file names a zombie dockerd and its containerd's a dead pid:
    # both are gone when dockerd starts (the stand-in sees the folder).
    (tmp_path / "docker.pid").write_text(f"{zombie_dockerd}")
    (tmp_path / "containerd.pid").write_text(f"{_free_pid()}")
    res = sourced(
        f'docker_ok() {{ [ -e "{tmp_path}/seen" ]; }}\n'
        'WAIT_SECONDS=5\nrc=0; start_docker || rc=$?; echo "rc=$rc"',
        **_paths(tmp_path),
    )
    assert res.stdout == "rc=0\n", res.stderr
    seen = (tmp_path / "seen").read_text().split()
    assert "docker.pid" not in seen and "containerd.pid" not in seen
    assert "starting dockerd" in res.stderr


def test_start_docker_never_kills_a_live_dockerd(tmp_path: Path, live_dockerd: int) -> None:
    (tmp_path / "docker.pid").write_text(f"{live_dockerd}")
    res = sourced(
        'docker_ok() { false; }\nWAIT_SECONDS=1\nrc=0; start_docker || rc=$?; echo "rc=$rc"',
        **_paths(tmp_path),
    )
    assert res.stdout == "rc=1\n", res.stderr
    assert f"dockerd (pid {live_dockerd}) runs but does not answer" in res.stderr
    assert (tmp_path / "docker.pid").read_text() == f"{live_dockerd}"
    assert not (tmp_path / "seen").exists()  # no second dockerd was started
    assert Path(f"/proc/{live_dockerd}").exists()


def test_start_podman_removes_a_dead_services_socket(tmp_path: Path) -> None:
    # A socket file nobody serves (the service was killed), no live service: the
    # stale socket goes before the new service starts.
    sock = tmp_path / "podman.sock"
    sock.write_text("")
    # A stand-in podman first on PATH: the service is started with `exec nohup
    # podman ...`, which no shell function can stand in for.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "podman"
    fake.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/podman-args"\n')
    fake.chmod(0o755)
    res = sourced(
        f"podman_ok() {{ false; }}\nlive_podman_services() {{ :; }}\n"
        f"wait_until() {{ for _ in $(seq 100); do "
        f'[ ! -e "{sock}" ] && [ -s "{tmp_path}/podman-args" ] && return 0; sleep 0.1; done; '
        "return 1; }\n"
        'rc=0; start_podman || rc=$?; echo "rc=$rc"',
        **_paths(tmp_path),
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    )
    assert res.stdout == "rc=0\n", res.stderr
    assert "starting podman system service" in res.stderr
    args = (tmp_path / "podman-args").read_text()
    assert args == f"system service --time=0 unix://{sock}\n"


def test_live_podman_services_are_only_those_serving_the_socket(tmp_path: Path) -> None:
    # Another socket's service (a rootless user's) is not ours: with no service of
    # our socket, none is found (the one another test or user runs is ignored).
    res = sourced("live_podman_services | wc -l", **_paths(tmp_path))
    assert res.stdout.strip() == "0", res.stderr
