"""The LXC runtime's pieces that need no LXC: log framing, LXC noise filter,
users, config rendering, rootfs-confined paths, the container store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from enginekit_lxc import logfile
from enginekit_lxc.fsroot import Root
from enginekit_lxc.helper import NoiseFilter, helper_argv
from enginekit_lxc.lxcconf import LxcSettings, container_env, render
from enginekit_lxc.lxchost import CgroupConfig
from enginekit_lxc.store import ContainerStore
from enginekit_lxc.users import ExecUser, resolve_user

from enginekit.errors import InvalidSpec
from enginekit.models import Mount

ROOT_USER = ExecUser(uid=0, gid=0, groups=(0,), home="/root")


def test_log_lines_are_whole_and_apart(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    fd = logfile.open_for_append(path)
    big = b"y" * 70000
    for rec in (
        logfile.record(logfile.START),
        logfile.record(logfile.STDOUT, big[:30000]),
        logfile.record(logfile.STDERR, b"e1\ne"),
        logfile.record(logfile.STDOUT, big[30000:] + b"\n\x00\xff"),
        logfile.record(logfile.STDERR, b"2\n"),
        logfile.record(logfile.END),
        logfile.record(logfile.START),
        logfile.record(logfile.STDOUT, b"second\n"),
    ):
        os.write(fd, rec)
    os.close(fd)
    lines = list(logfile.iter_lines(logfile.iter_records(path)))
    # In the order lines complete; each whole.
    assert [(s, d) for s, _, d in lines] == [
        (logfile.STDERR, b"e1\n"),
        (logfile.STDOUT, big + b"\n"),
        (logfile.STDERR, b"e2\n"),
        (logfile.STDOUT, b"\x00\xff"),  # cut by the end of the run
        (logfile.STDOUT, b"second\n"),
    ]
    assert lines[1][1] <= lines[0][1] <= lines[-1][1]  # a line's time: its first byte
    only_err = list(logfile.iter_lines(logfile.iter_records(path), stdout=False))
    assert [d for _, _, d in only_err] == [b"e1\n", b"e2\n"]


def test_log_partial_record_waits_when_following(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    rec = logfile.record(logfile.STDOUT, b"abc\n")
    with open(path, "wb") as fh:
        fh.write(rec[:5])
    calls = []

    def running() -> bool:
        calls.append(1)
        if len(calls) == 1:
            with open(path, "ab") as fh:
                fh.write(rec[5:])
            return True
        return False

    got = list(logfile.iter_records(path, follow=True, still_running=running, poll=0.001))
    assert got[0][2] == b"abc\n"


def test_noise_filter_drops_only_lxc_lines() -> None:
    f = NoiseFilter("ek-0123")
    noise = b"lxc-execute: ek-0123: ../src/lxc/conf.c: x: 1 Failed. Continuing...\n"
    assert f.feed(b"a\n" + noise + b"b") == b"a\nb"
    assert f.feed(noise) == noise  # not at a line start: the command's own bytes
    assert f.feed(b"\n" + noise) == b"\n"
    assert NoiseFilter("ek-1").feed(noise) == noise  # another container's name


def test_helper_argv() -> None:
    assert helper_argv(["a=b", "x"]) == [
        "/dev/.enginekit/busybox", "env", "-u", "container", "a=b", "x",
    ]  # fmt: skip


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n")
    return root


def test_resolve_user_forms(tmp_path: Path) -> None:
    with Root(str(_rootfs(tmp_path))) as root:
        assert resolve_user(root, None) == ExecUser(uid=0, gid=0, groups=(0, 10), home="/root")
        assert resolve_user(root, "app") == ExecUser(
            uid=1000, gid=1000, groups=(1000, 10), home="/home/app"
        )
        assert resolve_user(root, "1000") == resolve_user(root, "app")
        assert resolve_user(root, "4242") == ExecUser(uid=4242, gid=0, groups=(0,), home="/")
        assert resolve_user(root, "app:wheel") == ExecUser(
            uid=1000, gid=10, groups=(10,), home="/home/app"
        )
        assert resolve_user(root, "7:8").gid == 8
        with pytest.raises(InvalidSpec):
            resolve_user(root, "nobody")
        with pytest.raises(InvalidSpec):
            resolve_user(root, "app:nogroup")


def test_passwd_symlink_cannot_reach_the_host(tmp_path: Path) -> None:
    root_dir = tmp_path / "rootfs"
    (root_dir / "etc").mkdir(parents=True)
    (root_dir / "etc" / "passwd").symlink_to("/etc/passwd")  # the host's, by its name
    with Root(str(root_dir)) as root:
        # Resolved inside the rootfs: a link to itself's target that does not exist.
        assert resolve_user(root, None).home == "/"
        with pytest.raises(InvalidSpec):
            resolve_user(root, "root:daemon")


def test_root_confines_lookups_and_mkdir(tmp_path: Path) -> None:
    root_dir = tmp_path / "rootfs"
    (root_dir / "a").mkdir(parents=True)
    (root_dir / "a" / "up").symlink_to("../../../../../..")
    (root_dir / "a" / "abs").symlink_to("/")
    outside = tmp_path / "outside"
    outside.mkdir()
    with Root(str(root_dir)) as root:
        root.makedirs("/a/up/tmp/x/y")
        root.makedirs("/a/abs/z/../w")
    assert (root_dir / "tmp" / "x" / "y").is_dir()
    assert (root_dir / "w").is_dir() and not (root_dir / "z").exists()
    assert not (tmp_path / "tmp").exists() and sorted(os.listdir(tmp_path)) == [
        "outside",
        "rootfs",
    ]


def test_container_env_order_and_defaults() -> None:
    env = container_env(
        image_env={"PATH": "/bin", "A": "1"}, env={"B": "2", "A": "3"}, hostname="h", home="/r"
    )
    assert list(env.items()) == [
        ("PATH", "/bin"), ("HOSTNAME", "h"), ("A", "3"), ("B", "2"), ("HOME", "/r"),
    ]  # fmt: skip
    env = container_env(image_env={}, env={"HOME": "/x"}, hostname="h", home="/r")
    assert env["HOME"] == "/x" and env["PATH"].startswith("/usr/local/sbin:")


def _settings(**kw: object) -> LxcSettings:
    base: dict[str, object] = {
        "rootfs": "/r",
        "hostname": "h",
        "env": {"PLAIN": "v", "TRAIL": "v ", "NL": "a\nb", "EMPTY": ""},
        "user": ROOT_USER,
        "cgroup": CgroupConfig(("lxc.cgroup.pids.max = 9",), True),
    }
    base.update(kw)
    return LxcSettings(**base)  # type: ignore[arg-type]


def test_render_env_lines_and_inherited_values() -> None:
    if not os.path.exists("/bin/busybox"):
        pytest.skip("needs busybox-static")
    text, inherit = render(_settings())
    assert "lxc.environment = PLAIN=v\n" in text and "lxc.environment = EMPTY=\n" in text
    assert "lxc.environment = TRAIL\n" in text and "lxc.environment = NL\n" in text
    assert inherit == {"TRAIL": "v ", "NL": "a\nb"}
    assert "lxc.net.0.type = empty\n" in text
    assert "lxc.cgroup.pids.max = 9\n" in text  # the cgroup part, as given
    assert "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n" in text
    assert "lxc.keyring.session = 0\n" in text
    with pytest.raises(InvalidSpec):
        render(_settings(env={"LD_PRELOAD": "x\n"}))
    text, _ = render(_settings(env={}, network="host"))
    assert "lxc.net.0.type = none\n" in text
    text, _ = render(_settings(cgroup=CgroupConfig((), False)))
    assert "lxc.mount.auto = proc:mixed sys:mixed\n" in text and "lxc.cgroup" not in text
    # Names a shell or Python on the host would act on are not carried there.
    for name in ("BASH_ENV", "ENV", "PS4", "SHELLOPTS", "BASH_FUNC_x%%", "PYTHONSTARTUP"):
        with pytest.raises(InvalidSpec):
            render(_settings(env={name: "x\n"}))
    assert render(_settings(env={"PS4": "x"}))[1] == {}  # on a config line: fine


def test_render_bind_mounts(tmp_path: Path) -> None:
    if not os.path.exists("/bin/busybox"):
        pytest.skip("needs busybox-static")
    src = tmp_path / "with space"
    src.mkdir()
    text, _ = render(
        _settings(env={}, mounts=(Mount(source=str(src), target="/data", read_only=True),))
    )
    assert f"lxc.mount.entry = {tmp_path}/with\\040space data none bind,ro,create=dir 0 0" in text


def test_store_names_are_unique(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    store.ensure()
    a, b = "a" * 64, "b" * 64
    assert store.claim_name("web", a)
    os.makedirs(store.dir(a))
    assert not store.claim_name("web", b)
    assert store.name_owner("web") == a
    store.release_name("web", b)  # not b's: kept
    assert store.name_owner("web") == a
    store.delete(a)
    assert store.claim_name("web", b)  # a stale claim is taken over
    assert store.name_owner("web") == b


# LXC's log at level INFO (lxc-execute 5.0.2; the lines are the same in 6.0 and 7.0).
_HEAD = "lxc-execute ek-1 20261205075757.861 "
_LXC_LOG_KILLED = (
    f'{_HEAD}NOTICE   conf - ../src/lxc/conf.c:lxc_setup:4518 - The container "ek-1" is set up\n'
    f"{_HEAD}NOTICE   execute - ../src/lxc/execute.c:execute_post_start:34 - "
    "'/dev/.enginekit/busybox' started with pid '24494'\n"
    f"{_HEAD}INFO     error - ../src/lxc/error.c:lxc_error_set_and_log:34 - "
    "Child <24494> ended on signal SIGKILL(9)\n"
).encode()
_LXC_LOG_EXITED = (
    f"{_HEAD}NOTICE   execute - ../src/lxc/execute.c:execute_post_start:34 - "
    "'/dev/.enginekit/busybox' started with pid '8521'\n"
    f"{_HEAD}INFO     error - ../src/lxc/error.c:lxc_error_set_and_log:31 - "
    "Child <8521> ended on error (3)\n"
).encode()


def test_init_signal_read_from_lxcs_log(tmp_path: Path) -> None:
    from enginekit_lxc.monitor import _init_signal

    log = tmp_path / "lxc.log"
    log.write_bytes(_LXC_LOG_KILLED)
    assert _init_signal(str(log), 24494) == 9
    assert _init_signal(str(log), None) == 9
    assert _init_signal(str(log), 1234) is None  # another process's line does not count
    log.write_bytes(_LXC_LOG_EXITED)
    assert _init_signal(str(log), 8521) is None
    assert _init_signal(str(tmp_path / "absent.log"), 8521) is None


def test_a_start_waits_for_the_previous_lxc_execute_to_let_go() -> None:
    """LXC's command socket of a container, ``@<lxcpath>/<name>/command``, still
    bound by an ``lxc-execute`` tearing down: the start waits until it is free."""
    import socket
    import threading
    import time

    from enginekit_lxc import launcher

    lxcpath, name = "/tmp/enginekit-test-lxcpath", f"ek-{os.getpid()}"
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    held.bind(f"\0{lxcpath}/{name}/command")
    held.listen(1)
    try:
        assert launcher._command_socket_bound(lxcpath, name)
        assert not launcher._command_socket_bound(lxcpath, name + "x")
        assert launcher.await_lxc_gone(lxcpath, name, within=0.2) is False
        threading.Timer(0.3, held.close).start()
        t0 = time.monotonic()
        assert launcher.await_lxc_gone(lxcpath, name, within=30) is True
        assert time.monotonic() - t0 > 0.2  # it waited for the socket to go
    finally:
        held.close()
    assert not launcher._command_socket_bound(lxcpath, name)
