"""Live tests of the Podman driver against the local ``podman system service``.

Driver level (no core facade): what the adapter itself promises. Every
container and image is labelled and removed (see conftest.py).
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import tarfile
import threading
import time
from collections.abc import Callable

import pytest
from enginekit_podman import PodmanDriver, connect

from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    NotFound,
)
from enginekit.models import (
    BuildRequest,
    ContainerSpec,
    ContainerState,
    Image,
    Mount,
    PortBinding,
    Stream,
)

from .conftest import BASE_TAG, LABELS, RUN, write_context

Make = Callable[..., str]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------- engine


def test_connect_does_no_io_and_ping_names_the_address() -> None:
    d = connect("unix:///nonexistent/podman.sock")
    with pytest.raises(EngineUnavailable) as err:
        d.ping()
    assert "/nonexistent/podman.sock" in str(err.value)
    assert "podman system service" in str(err.value)
    # ssh: nothing runs until the first call (the host does not exist).
    remote = connect("ssh://core@example.invalid/run/podman/podman.sock")
    assert remote.address == "ssh://core@example.invalid/run/podman/podman.sock"


def test_connect_honours_container_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "unix:///tmp/elsewhere.sock")
    assert connect().address == "unix:///tmp/elsewhere.sock"
    monkeypatch.delenv("CONTAINER_HOST")
    assert connect().address == "unix:///run/podman/podman.sock"


def test_info(driver: PodmanDriver) -> None:
    info = driver.info()
    assert info.name == "podman"
    assert info.version.split(".")[0] in ("4", "5")
    assert info.api_version and info.api_version.split(".")[0] == info.version.split(".")[0]
    assert info.max_api_version == info.version
    assert info.min_api_version == "4.0.0"
    assert info.cgroup_version in (1, 2)
    assert info.rootless is False  # the service here and on the test host runs as root
    assert info.image_store == "overlay"
    caps, missing = driver.capabilities, driver.unsupported
    assert caps.isdisjoint(missing) and caps | set(missing) == set(Capability)
    assert driver.capabilities is caps  # worked out once
    assert info.os == "linux"
    assert info.storage_root


# --------------------------------------------------------------------------- containers


def test_run_to_completion(driver: PodmanDriver, make: Make, base_image: Image) -> None:
    cid = make(["sh", "-c", "echo out; echo err >&2; exit 3"], name=f"ekpm-{RUN}-a")
    assert driver.container_wait(cid) == 3
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.EXITED
    assert c.exit_code == 3
    assert c.name == f"ekpm-{RUN}-a"
    assert c.image == BASE_TAG
    assert c.image_id == base_image.id
    assert c.pid is None
    assert c.created_at and c.started_at and c.finished_at
    assert c.created_at.tzinfo is dt.UTC
    assert c.command == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert c.entrypoint == ()
    # As Docker reports it: the image's (Podman 5's builder writes "/" into
    # images without a WORKDIR; 4.x's wrote nothing: None).
    assert c.workdir == base_image.config.workdir
    assert base_image.config.workdir in (None, "/")
    assert c.stop_signal is None
    assert c.resources.pids_limit is None
    assert c.labels == LABELS
    lines = list(driver.container_logs(cid))
    assert [(line.stream, line.data) for line in lines] == [
        (Stream.STDOUT, b"out\n"),
        (Stream.STDERR, b"err\n"),
    ]
    assert all(line.timestamp is not None for line in lines)
    assert driver.container_inspect(c.name).id == cid
    assert driver.container_inspect(cid[:12]).id == cid


def test_created_state_and_ref_errors(driver: PodmanDriver, make: Make) -> None:
    cid = make(["true"], start=False)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.CREATED
    assert c.exit_code is None and c.pid is None and c.started_at is None
    with pytest.raises(ContainerNotFound):
        driver.container_inspect("ekpm-no-such-container")
    with pytest.raises(ImageNotFound):
        driver.container_create(ContainerSpec(image="ekpm-no-such-image:1", labels=LABELS))


def test_duplicate_name_is_conflict(make: Make) -> None:
    make(["true"], start=False, name=f"ekpm-{RUN}-dup")
    with pytest.raises(Conflict):
        make(["true"], start=False, name=f"ekpm-{RUN}-dup")


def test_env_is_what_docker_shows(driver: PodmanDriver, make: Make) -> None:
    cid = make(["env"], env={"A": "1", "B": "two words"})
    assert driver.container_wait(cid) == 0
    c = driver.container_inspect(cid)
    assert dict(c.env) == {"A": "1", "B": "two words", "PATH": PATH}
    inside = b"".join(line.data for line in driver.container_logs(cid)).decode()
    seen = dict(line.split("=", 1) for line in inside.splitlines())
    # No TERM, no container=podman; HOSTNAME and HOME as on Docker.
    assert set(seen) == {"A", "B", "PATH", "HOSTNAME", "HOME"}
    assert seen["HOSTNAME"] == c.hostname
    assert seen["HOME"] == "/root"


def test_user_given_env_wins(driver: PodmanDriver, make: Make) -> None:
    cid = make(["env"], env={"TERM": "dumb", "container": "mine", "HOSTNAME": "h1"})
    driver.container_wait(cid)
    c = driver.container_inspect(cid)
    assert c.env["TERM"] == "dumb" and c.env["container"] == "mine" and c.env["HOSTNAME"] == "h1"
    inside = b"".join(line.data for line in driver.container_logs(cid))
    assert b"TERM=dumb\n" in inside and b"container=mine\n" in inside


def test_spec_fields_round_trip(driver: PodmanDriver, make: Make, tmp_path: object) -> None:
    cid = make(
        ["sh", "-c", "pwd; id -u; hostname; cat /mnt/ro/f"],
        entrypoint=None,
        workdir="/made/for/me",
        user="1000:1000",
        hostname="ekpm-host",
        mounts=(Mount(source=str(tmp_path), target="/mnt/ro", read_only=True),),
        memory=64 * 1024 * 1024,
        cpus=0.5,
        pids_limit=64,
        stop_signal="SIGUSR1",
        network="none",
        start=False,
    )
    import os
    import pathlib

    os.chmod(str(tmp_path), 0o755)
    (pathlib.Path(str(tmp_path)) / "f").write_text("from-host\n")
    driver.container_start(cid)
    assert driver.container_wait(cid) == 0
    c = driver.container_inspect(cid)
    assert c.workdir == "/made/for/me"
    assert c.user == "1000:1000"
    assert c.hostname == "ekpm-host"
    assert c.mounts == (Mount(source=str(tmp_path), target="/mnt/ro", read_only=True),)
    assert c.resources.memory == 64 * 1024 * 1024
    assert c.resources.cpus == 0.5
    assert c.resources.pids_limit == 64
    assert c.stop_signal == "SIGUSR1"
    assert c.network == "none"
    out = b"".join(line.data for line in driver.container_logs(cid))
    assert out == b"/made/for/me\n1000\nekpm-host\nfrom-host\n"


def test_entrypoint_reported_without_the_init(driver: PodmanDriver, make: Make) -> None:
    cid = make(["-c", "exit 0"], entrypoint=("sh",))
    driver.container_wait(cid)
    c = driver.container_inspect(cid)
    assert c.entrypoint == ("sh",)
    assert c.command == ("-c", "exit 0")


def _await_ready(driver: PodmanDriver, cid: str) -> None:
    """Until the command has printed ``ready``: the init forwards signals by then (a
    SIGTERM sent while it is still setting up is lost, as on every engine)."""
    deadline = time.monotonic() + 30
    while not any(line.data == b"ready\n" for line in driver.container_logs(cid)):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)


def test_stop_gives_143_through_the_init(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "echo ready; exec sleep 100"])
    _await_ready(driver, cid)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    assert driver.container_inspect(cid).pid
    driver.container_stop(cid, timeout=10)
    c = driver.container_inspect(cid)
    # 143: SIGTERM ended it through the init (SIGKILL after the timeout gives 137).
    assert c.state is ContainerState.EXITED and c.exit_code == 143
    driver.container_stop(cid, timeout=10)  # not running: left as it is
    with pytest.raises(Conflict):
        driver.container_kill(cid, signal="SIGKILL")


def test_kill_gives_137(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sleep", "100"])
    driver.container_kill(cid, signal="SIGKILL")
    assert driver.container_wait(cid, timeout=10) == 137


def test_pause_unpause_and_conflicts(driver: PodmanDriver, make: Make) -> None:
    created = make(["sleep", "100"], start=False)
    with pytest.raises(Conflict):
        driver.container_pause(created)
    with pytest.raises(Conflict):
        driver.container_exec(created, ("true",))
    cid = make(["sleep", "100"])
    driver.container_pause(cid)
    c = driver.container_inspect(cid)
    assert c.state is ContainerState.PAUSED and c.pid
    with pytest.raises(Conflict):
        driver.container_exec(cid, ("true",))
    with pytest.raises(Conflict):
        driver.container_pause(cid)
    with pytest.raises(Conflict):
        driver.container_remove(cid)
    driver.container_unpause(cid)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    with pytest.raises(Conflict):
        driver.container_unpause(cid)
    with pytest.raises(Conflict):
        driver.container_remove(cid)
    driver.container_restart(cid, timeout=1)
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    driver.container_remove(cid, force=True)
    with pytest.raises(ContainerNotFound):
        driver.container_inspect(cid)


def test_exec(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sleep", "100"], env={"A": "1"})
    r = driver.container_exec(cid, ("sh", "-c", "echo out; echo err >&2; exit 5"))
    assert (r.exit_code, r.stdout, r.stderr) == (5, b"out\n", b"err\n")
    r = driver.container_exec(
        cid, ("sh", "-c", "echo $A $B; pwd; id -u"), env={"B": "2"}, workdir="/tmp", user="1000"
    )
    assert (r.exit_code, r.stdout, r.stderr) == (0, b"1 2\n/tmp\n1000\n", b"")
    big = driver.container_exec(cid, ("sh", "-c", "head -c 300000 /dev/zero"))
    assert big.stdout == b"\0" * 300000
    missing = driver.container_exec(cid, ("no-such-command",))
    assert missing.exit_code in (126, 127)


def test_wait(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sleep", "100"])
    t0 = time.monotonic()
    with pytest.raises(EngineTimeout):
        driver.container_wait(cid, timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 2
    assert driver.container_inspect(cid).state is ContainerState.RUNNING
    with pytest.raises(EngineTimeout):
        driver.container_wait(cid, timeout=1.5)  # past the client-side polling
    assert driver.container_inspect(cid).state is ContainerState.RUNNING

    quick = make(["sh", "-c", "exit 7"])
    t0 = time.monotonic()
    assert driver.container_wait(quick) == 7
    assert time.monotonic() - t0 < 0.5

    slow = make(["sh", "-c", "sleep 1.5; exit 9"])
    assert driver.container_wait(slow, timeout=30) == 9


def test_wait_on_created_waits_for_start(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "exit 4"], start=False)
    timer = threading.Timer(0.5, driver.container_start, args=(cid,))
    timer.start()
    try:
        t0 = time.monotonic()
        assert driver.container_wait(cid, timeout=20) == 4
        assert time.monotonic() - t0 >= 0.45
    finally:
        timer.join()


def test_oom_kill_is_137(driver: PodmanDriver, make: Make) -> None:
    cid = make(["tail", "/dev/zero"], memory=32 * 1024 * 1024)
    assert driver.container_wait(cid, timeout=60) == 137
    assert driver.container_inspect(cid).oom_killed
    # Killed through the engine: not an OOM kill.
    killed = make(["sleep", "100"], memory=32 * 1024 * 1024)
    driver.container_kill(killed, signal="SIGKILL")
    assert driver.container_wait(killed, timeout=10) == 137
    assert not driver.container_inspect(killed).oom_killed
    stopped = make(["sleep", "100"], memory=32 * 1024 * 1024, stop_signal="SIGKILL")
    driver.container_stop(stopped, timeout=1)
    c = driver.container_inspect(stopped)
    assert c.exit_code == 137 and not c.oom_killed


def test_stats(driver: PodmanDriver, make: Make) -> None:
    limited = make(["sleep", "100"], memory=64 * 1024 * 1024)
    free = make(["sleep", "100"])
    s = driver.container_stats(limited)
    assert s.memory_limit == 67108864
    assert s.memory_bytes > 0
    assert s.pids and s.pids >= 1
    assert s.cpu_seconds >= 0
    assert driver.container_stats(free).memory_limit is None


def test_ports_answer_on_loopback(driver: PodmanDriver, make: Make) -> None:
    script = "while true; do echo hello | nc -l -p 8080; done"
    cid = make(["sh", "-c", script], ports=(PortBinding(container_port=8080),))
    c = driver.container_inspect(cid)
    (binding,) = c.ports
    assert binding.host_ip == "127.0.0.1" and binding.container_port == 8080
    assert binding.host_port
    data = b""
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", binding.host_port), timeout=2) as s:
                data = s.recv(100)
            if data:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert data == b"hello\n"
    driver.container_stop(cid, timeout=1)
    (after,) = driver.container_inspect(cid).ports
    assert after.host_port is None  # picked at start, as Docker reports it


def test_network_none_has_only_loopback(driver: PodmanDriver, make: Make) -> None:
    cid = make(["ls", "/sys/class/net"], network="none")
    driver.container_wait(cid)
    out = b"".join(line.data for line in driver.container_logs(cid))
    assert out == b"lo\n"
    bridged = make(["ls", "/sys/class/net"])
    driver.container_wait(bridged)
    assert b"eth0" in b"".join(line.data for line in driver.container_logs(bridged))


# --------------------------------------------------------------------------- logs


def test_logs_bytes_unchanged(driver: PodmanDriver, make: Make) -> None:
    script = (
        "head -c 40000 /dev/zero | tr '\\0' a; echo; "
        "printf '\\377\\376bin\\r\\n'; printf 'e1\\n' >&2; printf 'no newline'"
    )
    cid = make(["sh", "-c", script])
    driver.container_wait(cid)
    lines = list(driver.container_logs(cid))
    out = [line.data for line in lines if line.stream is Stream.STDOUT]
    err = [line.data for line in lines if line.stream is Stream.STDERR]
    assert out == [b"a" * 40000 + b"\n", b"\xff\xfebin\r\n", b"no newline"]
    assert err == [b"e1\n"]
    only_err = list(driver.container_logs(cid, stdout=False))
    assert [line.data for line in only_err] == [b"e1\n"]
    tail = list(driver.container_logs(cid, stderr=False, tail=2))
    assert [line.data for line in tail] == [b"\xff\xfebin\r\n", b"no newline"]


def test_logs_follow_ends_when_the_container_exits(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "echo one; sleep 1; echo two"])
    t0 = time.monotonic()
    got = [line.data for line in driver.container_logs(cid, follow=True)]
    assert got == [b"one\n", b"two\n"]
    assert time.monotonic() - t0 < 5


def test_logs_follow_can_be_closed(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "while true; do echo tick; sleep 0.1; done"])
    it = driver.container_logs(cid, follow=True)
    assert next(it).data == b"tick\n"
    it.close()  # type: ignore[attr-defined]
    assert driver.container_inspect(cid).state is ContainerState.RUNNING


# --------------------------------------------------------------------------- files


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _read(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    f = tf.extractfile(member) if member.isfile() else None
    return f.read() if f is not None else None


def test_copy_in_and_out(driver: PodmanDriver, make: Make) -> None:
    cid = make(["sh", "-c", "mkdir /d; echo hi > /d/f; ln -s /d/f /d/l; sleep 100"])
    time.sleep(0.3)
    st = driver.container_stat_path(cid, "/d")
    assert st is not None and st.is_dir and st.name == "d" and not st.is_symlink
    f = driver.container_stat_path(cid, "/d/f")
    assert f is not None and not f.is_dir and f.size == 3 and f.link_target == ""
    link = driver.container_stat_path(cid, "/d/l")
    assert link is not None and link.is_symlink and link.name == "l"
    assert link.link_target == "/d/f"
    assert driver.container_stat_path(cid, "/nope") is None
    driver.container_put_archive(cid, "/d", _tar({"new.txt": b"abc"}))
    with pytest.raises(NotFound):
        driver.container_put_archive(cid, "/nope", _tar({"x": b"x"}))
    driver.container_stop(cid, timeout=1)
    # Stopped containers too.
    with (
        driver.container_get_archive(cid, "/d") as stream,
        tarfile.open(fileobj=stream, mode="r|") as tf,
    ):
        names = {m.name: _read(tf, m) for m in tf}
    assert names["d/new.txt"] == b"abc"
    assert names["d/f"] == b"hi\n"
    with pytest.raises(NotFound):
        driver.container_get_archive(cid, "/nope")
    driver.container_put_archive(cid, "/", _tar({"top.txt": b"t"}))
    assert driver.container_stat_path(cid, "/top.txt") is not None
    with pytest.raises(ContainerNotFound):
        driver.container_stat_path("ekpm-no-such-container", "/")


def test_links_to_nothing_are_links(driver: PodmanDriver, make: Make) -> None:
    # libpod answers 404 for a link to nothing (with its stat): still the link.
    cid = make(["sh", "-c", "mkdir /d; ln -s nowhere /d/dang; ln -s ../../../x /d/up; sleep 100"])
    time.sleep(0.3)
    for name, text in (("dang", "nowhere"), ("up", "../../../x")):
        st = driver.container_stat_path(cid, f"/d/{name}")
        assert st is not None and st.is_symlink and st.name == name and not st.is_dir
        with (
            driver.container_get_archive(cid, f"/d/{name}") as stream,
            tarfile.open(fileobj=stream, mode="r|") as tf,
        ):
            assert [(m.name, m.issym(), m.linkname) for m in tf] == [(name, True, text)]
    assert driver.container_stat_path(cid, "/d/dang/x") is None
    assert driver.container_stat_path(cid, "/d/nope") is None


# --------------------------------------------------------------------------- images


def test_image_names_without_localhost(driver: PodmanDriver, base_image: Image) -> None:
    assert base_image.tags == (BASE_TAG,)
    assert base_image.id.startswith("sha256:") and len(base_image.id) == 71
    assert "io.buildah.version" not in base_image.labels
    assert driver.image_inspect(BASE_TAG).id == base_image.id
    assert driver.image_inspect(base_image.id).id == base_image.id
    assert driver.image_inspect(base_image.short_id).id == base_image.id
    with pytest.raises(ImageNotFound):
        driver.image_inspect("ekpm-nope:1")
    repo = BASE_TAG.rpartition(":")[0]
    assert [i.id for i in driver.image_list(name=repo)] == [base_image.id]
    assert [i.id for i in driver.image_list(name=BASE_TAG)] == [base_image.id]
    assert driver.image_list(name=repo + ":nope") == []
    assert base_image.id in [i.id for i in driver.image_list(labels=LABELS)]


def test_tag_and_remove(driver: PodmanDriver, base_image: Image, make: Make) -> None:
    extra = f"ekpm-extra-{RUN}:2"
    driver.image_tag(BASE_TAG, extra)
    assert set(driver.image_inspect(extra).tags) == {BASE_TAG, extra}
    driver.image_remove(extra)  # one tag of several: only that tag goes
    assert driver.image_inspect(BASE_TAG).tags == (BASE_TAG,)
    with pytest.raises(ImageNotFound):
        driver.image_inspect(extra)
    # In use by a container: Conflict unless forced; forced, the tag goes, the
    # container and the image stay (as `docker rmi -f`).
    other = f"ekpm-other-{RUN}:1"
    driver.image_tag(BASE_TAG, other)
    cid = make(["true"], image=other, start=False)
    driver.image_remove(other)  # still tagged BASE_TAG too: untag only
    driver.image_tag(BASE_TAG, other)
    with pytest.raises(Conflict):
        driver.image_remove(base_image.id)
    assert driver.container_inspect(cid).image == other


def test_build_everything(driver: PodmanDriver, tmp_path: object, base_image: Image) -> None:
    import pathlib

    root = pathlib.Path(str(tmp_path))
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tf:
        info = tarfile.TarInfo("inner/hello.txt")
        info.size = 6
        tf.addfile(info, io.BytesIO(b"hello\n"))
    dockerfile = f"""
FROM {BASE_TAG} AS first
RUN echo from-first > /first.txt
FROM scratch AS empty
COPY --from=first /first.txt /copied.txt
FROM {BASE_TAG}
ARG GREETING=hi
ENV E1=v1 GREETING=$GREETING
WORKDIR /work
COPY --from=empty /copied.txt ./
ADD payload.tar /unpacked/
COPY . /ctx/
RUN ["sh", "-c", "echo exec-form > /work/exec.txt"]
RUN echo shell-form $GREETING > /work/shell.txt
USER 1000
LABEL one=1
EXPOSE 8080/tcp 53/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /work/shell.txt"]
"""
    ctx = write_context(
        root / "ctx",
        dockerfile,
        {
            "payload.tar": payload.getvalue(),
            ".dockerignore": "ignored.txt\n",
            "ignored.txt": "no",
            "kept.txt": "yes",
        },
    )
    seen: list[str] = []
    tag = f"ekpm-built-{RUN}:1"
    image = driver.image_build(
        BuildRequest(
            context=ctx,
            tags=(tag, f"ekpm-built-{RUN}:2"),
            build_args={"GREETING": "bonjour"},
            labels={**LABELS, "two": "2"},
        ),
        progress=seen.append,
    )
    assert any("STEP" in line and "RUN echo shell-form" in line for line in seen)
    assert image.tags == (tag, f"ekpm-built-{RUN}:2")
    assert image.labels == {**LABELS, "one": "1", "two": "2"}
    cfg = image.config
    assert cfg.entrypoint == ("sh", "-c") and cfg.cmd == ("cat /work/shell.txt",)
    assert cfg.workdir == "/work" and cfg.user == "1000"
    assert cfg.exposed_ports == ("53/udp", "8080/tcp")
    assert cfg.env["E1"] == "v1" and cfg.env["GREETING"] == "bonjour"
    cid = driver.container_create(
        ContainerSpec(
            image=tag,
            command=(
                "cat /work/shell.txt /work/exec.txt /work/copied.txt /unpacked/inner/hello.txt;"
                " ls /ctx; id -u",
            ),
            labels=LABELS,
        )
    )
    try:
        driver.container_start(cid)
        assert driver.container_wait(cid) == 0
        out = b"".join(line.data for line in driver.container_logs(cid)).decode()
    finally:
        driver.container_remove(cid, force=True)
    assert out.startswith("shell-form bonjour\nexec-form\nfrom-first\nhello\n")
    assert "kept.txt" in out and "ignored.txt" not in out
    assert out.endswith("1000\n")
    # Only the tagged image is left: no stage images, no intermediate layers.
    mine = [i for i in driver.image_list(labels=LABELS) if i.id != base_image.id]
    assert [i.id for i in mine] == [image.id]
    driver.image_remove(image.id, force=True)


def test_build_failure_leaves_nothing(
    driver: PodmanDriver, tmp_path: object, base_image: Image
) -> None:
    import pathlib

    # Stage images would carry the base image's labels: only this run's count
    # (other clients may be building on the same engine meanwhile).
    before = {i.id for i in driver.image_list(labels=LABELS)}
    ctx = write_context(
        pathlib.Path(str(tmp_path)) / "ctx",
        f"FROM {BASE_TAG} AS a\nRUN echo ok > /ok\n"
        f"FROM {BASE_TAG}\nCOPY --from=a /ok /ok\nRUN echo some-output; exit 3\nRUN echo never\n",
    )
    with pytest.raises(BuildFailed) as err:
        driver.image_build(BuildRequest(context=ctx, tags=(f"ekpm-fail-{RUN}:1",), labels=LABELS))
    assert err.value.exit_code == 3
    assert err.value.step == "RUN echo some-output; exit 3"
    assert "some-output" in err.value.output
    assert {i.id for i in driver.image_list(labels=LABELS)} == before
    # No build container left (buildah's are "external": `podman ps -a --external`).
    resp = driver.transport.request(
        "GET", driver._api().prefix + "/containers/json", params={"all": True, "external": True}
    )
    mine = [
        c
        for c in resp.json()
        if c.get("IsExternal") and RUN in f"{c.get('Names')} {c.get('Image')}"
    ]
    assert mine == []


def test_save_and_load(driver: PodmanDriver, base_image: Image, tmp_path: object) -> None:
    import json
    import os

    path = os.path.join(str(tmp_path), "img.tar")
    driver.image_save(BASE_TAG, path)
    with tarfile.open(path) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        names = tf.getnames()
    assert manifest[0]["RepoTags"] == [BASE_TAG]
    assert "index.json" in names and "oci-layout" in names
    loaded_tag = f"ekpm-loaded-{RUN}:1"
    driver.image_tag(BASE_TAG, loaded_tag)
    path2 = os.path.join(str(tmp_path), "img2.tar")
    driver.image_save(loaded_tag, path2)
    driver.image_remove(loaded_tag)
    (img,) = driver.image_load(path2)
    assert img.id == base_image.id
    assert loaded_tag in img.tags
    assert all(not t.startswith("localhost/") for t in img.tags)
    driver.image_remove(loaded_tag)


def test_push_then_pull_through_a_local_registry(
    driver: PodmanDriver, base_image: Image, registry: str, tmp_path: object
) -> None:
    ref = f"{registry}/ekpm/pushed:{RUN}"
    dockerfile = f"FROM {BASE_TAG}\nRUN echo {RUN} > /marker\n"
    ctx = write_context(tmp_path / "ctx", dockerfile)  # type: ignore[operator]
    built = driver.image_build(BuildRequest(context=ctx, tags=(ref,), labels=LABELS))
    assert built.tags == (ref,)  # a registry name gets no localhost/
    driver.image_push(ref)
    driver.image_remove(ref)
    with pytest.raises(ImageNotFound):
        driver.image_inspect(built.id)
    pulled = driver.image_pull(ref)
    assert pulled.id == built.id and pulled.tags == (ref,)
    assert pulled.labels == built.labels
    driver.image_remove(ref)


def test_pull_and_push_errors(driver: PodmanDriver, base_image: Image, registry: str) -> None:
    with pytest.raises(ImageNotFound, match="manifest unknown"):
        driver.image_pull(f"{registry}/ekpm/never-pushed:{RUN}")
    with pytest.raises(ImageNotFound):
        driver.image_push(f"{registry}/ekpm/not-here:{RUN}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}/ekpm/x:{RUN}"
    with pytest.raises(EngineError, match="refused") as info:
        driver.image_pull(closed)
    assert type(info.value) is EngineError
    driver.image_tag(BASE_TAG, closed)
    try:
        with pytest.raises(EngineError, match="refused") as info:
            driver.image_push(closed)
        assert type(info.value) is EngineError
    finally:
        driver.image_remove(closed)
