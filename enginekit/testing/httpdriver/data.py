"""Logs, files and images, at driver level."""

from __future__ import annotations

import tarfile
import uuid
from pathlib import Path

import pytest

from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    NotFound,
)
from enginekit.models import BuildRequest, ContainerState, Stream
from enginekit.testing.helpers import call_within

from ._kit import (
    SLEEP,
    Kit,
    await_output,
    closed_port,
    members,
    tar_of,
    write_dockerfile,
)

# --------------------------------------------------------------------------- logs


LOG_SCRIPT = (
    "printf 'out1\\n'; printf 'err1\\n' >&2; "
    "printf 'bin\\377\\376\\000x\\r\\n'; "
    "head -c 40000 /dev/zero | tr '\\0' a; echo; "
    "head -c 16384 /dev/zero | tr '\\0' b; echo; "
    "head -c 20000 /dev/zero | tr '\\0' c >&2; echo >&2; "
    "printf 'last'"
)


class TestHttpDriverLogs:
    def test_logs_are_whole_lines_bytes_unchanged(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("sh", "-c", LOG_SCRIPT))
        assert d.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        out = [x.data for x in lines if x.stream is Stream.STDOUT]
        err = [x.data for x in lines if x.stream is Stream.STDERR]
        assert out == [
            b"out1\n",
            b"bin\xff\xfe\x00x\r\n",
            b"a" * 40000 + b"\n",
            b"b" * 16384 + b"\n",
            b"last",
        ]
        assert err == [b"err1\n", b"c" * 20000 + b"\n"]
        for x in lines:
            assert x.timestamp is not None and x.timestamp.tzinfo is not None
        assert [x.data for x in kit.lines(cid, stdout=False)] == err
        assert [x.data for x in kit.lines(cid, tail=1, stderr=False)] == [b"last"]

    def test_long_unterminated_last_lines(self, kit: Kit) -> None:
        script = "head -c 70000 /dev/zero | tr '\\0' e >&2; head -c 20000 /dev/zero | tr '\\0' o"
        cid = kit.run(("sh", "-c", script))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        assert [x.data for x in lines if x.stream is Stream.STDERR] == [b"e" * 70000]
        assert [x.data for x in lines if x.stream is Stream.STDOUT] == [b"o" * 20000]

    def test_logs_of_no_stream(self, kit: Kit) -> None:
        cid = kit.run(("echo", "x"))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        assert kit.lines(cid, stdout=False, stderr=False) == []
        with pytest.raises(ContainerNotFound):
            kit.driver.container_logs("a" * 64, stdout=False, stderr=False)

    def test_logs_since(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "echo early; sleep 2.5; echo late"))
        assert kit.driver.container_wait(cid, timeout=30) == 0
        lines = kit.lines(cid)
        assert [x.data for x in lines] == [b"early\n", b"late\n"]
        late = lines[1].timestamp
        assert late is not None
        # A whole second (Podman before 5.8 reads ``since`` so), after ``early``:
        # 2.5 s of the container's own apart (a busy machine only widens the gap).
        since = float(int(late.timestamp()))
        assert [x.data for x in kit.lines(cid, since=since)] == [b"late\n"]

    def test_follow_ends_when_the_container_exits(self, kit: Kit) -> None:
        cid = kit.run(("sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 2"))

        def follow() -> list[bytes]:
            return [x.data for x in kit.driver.container_logs(cid, follow=True)]

        assert call_within(60, follow) == [b"1\n", b"2\n", b"3\n"]
        assert kit.driver.container_wait(cid, timeout=30) == 2

    def test_follow_closed_early_releases(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(("sh", "-c", "while :; do echo tick; sleep 0.1; done"))
        stream = d.container_logs(cid, follow=True)
        assert next(stream).data == b"tick\n"
        stream.close()  # type: ignore[attr-defined]
        with pytest.raises(StopIteration):
            next(stream)
        assert d.container_inspect(cid).state is ContainerState.RUNNING
        for _ in range(10):
            d.ping()

    def test_logs_missing(self, kit: Kit) -> None:
        with pytest.raises(ContainerNotFound):
            kit.driver.container_logs("e" * 64)


# --------------------------------------------------------------------------- files


class TestHttpDriverFiles:
    def test_archive_round_trip_on_a_container_never_started(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.create(SLEEP)
        d.container_put_archive(cid, "/bin", tar_of({"dir/hello.txt": b"hi\n"}))
        st = d.container_stat_path(cid, "/bin/dir/hello.txt")
        assert st is not None and st.name == "hello.txt" and st.size == 3 and not st.is_dir
        assert not st.is_symlink and st.link_target == ""
        folder = d.container_stat_path(cid, "/bin/dir")
        assert folder is not None and folder.is_dir
        link = d.container_stat_path(cid, "/bin/sh")
        assert link is not None and link.is_symlink and link.link_target == "/bin/busybox"
        assert d.container_stat_path(cid, "/nope") is None
        assert d.container_stat_path(cid, "/bin/dir/hello.txt/x") is None  # through a file
        assert members(d.container_get_archive(cid, "/bin/dir")) == {
            "dir": None,
            "dir/hello.txt": b"hi\n",
        }
        for missing in ("/nope", "/bin/dir/hello.txt/x"):
            with pytest.raises(NotFound):
                d.container_get_archive(cid, missing)
        with pytest.raises(NotFound):
            d.container_put_archive(cid, "/nope", tar_of({"x": b""}))

    def test_copy_in_and_out_of_a_running_then_stopped_container(self, kit: Kit) -> None:
        d = kit.driver
        script = "mkdir /d; echo hi > /d/f; ln -s /d/f /d/l; echo ready; sleep 100"
        cid = kit.run(("sh", "-c", script))
        await_output(kit, cid)
        link = d.container_stat_path(cid, "/d/l")
        assert link is not None and link.is_symlink and link.name == "l"
        assert link.link_target == "/d/f"
        d.container_put_archive(cid, "/d", tar_of({"new.txt": b"abc"}))
        d.container_stop(cid, timeout=1)
        found = members(d.container_get_archive(cid, "/d"))  # stopped containers too
        assert (found["d/new.txt"], found["d/f"]) == (b"abc", b"hi\n")
        d.container_put_archive(cid, "/", tar_of({"top.txt": b"t"}))
        assert d.container_stat_path(cid, "/top.txt") is not None

    def test_links_to_nothing_are_links(self, kit: Kit) -> None:
        d = kit.driver
        script = "mkdir /d; ln -s nowhere /d/dang; ln -s ../../../x /d/up; echo ready; sleep 100"
        cid = kit.run(("sh", "-c", script))
        await_output(kit, cid)
        for name, text in (("dang", "nowhere"), ("up", "../../../x")):
            st = d.container_stat_path(cid, f"/d/{name}")
            assert st is not None and st.is_symlink and st.name == name and not st.is_dir
            with (
                d.container_get_archive(cid, f"/d/{name}") as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                assert [(m.name, m.issym(), m.linkname) for m in tar] == [(name, True, text)]
        assert d.container_stat_path(cid, "/d/dang/x") is None
        assert d.container_stat_path(cid, "/d/nope") is None

    def test_get_archive_closed_early_releases(self, kit: Kit) -> None:
        d = kit.driver
        cid = kit.run(SLEEP)
        stream = d.container_get_archive(cid, "/bin")
        assert stream.read(512)
        stream.close()
        for _ in range(10):
            d.ping()
        assert d.container_stat_path(cid, "/bin/sh") is not None

    def test_stat_path_of_a_missing_container(self, kit: Kit) -> None:
        with pytest.raises(ContainerNotFound):
            kit.driver.container_stat_path("d" * 64, "/bin")


# --------------------------------------------------------------------------- images


class TestHttpDriverImages:
    def test_image_inspect_and_list(self, kit: Kit) -> None:
        d = kit.driver
        img = d.image_inspect(kit.image)
        assert kit.image in img.tags and img.id.startswith("sha256:") and len(img.id) == 71
        assert img.size > 0 and img.architecture and img.os == "linux"
        assert d.image_inspect(img.id) == img
        assert d.image_inspect(img.id[7:19]).id == img.id
        repo = kit.image.rpartition(":")[0]
        # (Another run of these tests may hold an image of the same name with its own tag.)
        by_repo = d.image_list(name=repo)
        assert img.id in [i.id for i in by_repo]
        assert all(any(t.rpartition(":")[0] == repo for t in i.tags) for i in by_repo), by_repo
        assert [i.id for i in d.image_list(name=kit.image)] == [img.id]
        assert d.image_list(name=repo + ":other") == []
        assert img.id in [i.id for i in d.image_list(labels=kit.labels)]
        with pytest.raises(ImageNotFound):
            d.image_inspect(f"enginekit-test/absent:{kit.run_id}")

    def test_tag_and_remove(self, kit: Kit) -> None:
        d = kit.driver
        img = d.image_inspect(kit.image)
        extra = f"enginekit-test/tagged:{kit.run_id}"
        d.image_tag(kit.image, extra)
        assert d.image_inspect(extra).id == img.id
        assert set(d.image_inspect(kit.image).tags) == {*img.tags, extra}
        d.image_remove(extra)  # one tag of several: only that tag goes
        with pytest.raises(ImageNotFound):
            d.image_inspect(extra)
        assert d.image_inspect(kit.image).tags == img.tags
        with pytest.raises(ImageNotFound):
            d.image_remove(extra)
        with pytest.raises(ImageNotFound):
            d.image_tag(f"enginekit-test/absent:{kit.run_id}", extra)
        # In use by a container: Conflict unless forced; a tag of several goes
        # alone, the container and the image stay (as `docker rmi`).
        other = f"enginekit-test/other:{kit.run_id}"
        d.image_tag(kit.image, other)
        cid = kit.create(("true",), image=other)
        d.image_remove(other)
        d.image_tag(kit.image, other)
        with pytest.raises(Conflict):
            d.image_remove(img.id)
        assert d.container_inspect(cid).image == other
        d.image_remove(other)

    def test_build_target(self, kit: Kit, tmp_path: Path) -> None:
        d = kit.driver
        ctx = write_dockerfile(
            tmp_path,
            f'FROM {kit.image} AS first\nRUN echo one > /one\nCMD ["cat", "/one"]\n'
            "FROM first AS second\nRUN exit 9\n",
        )
        tag = f"enginekit-test/target:{kit.run_id}"
        # The second stage fails: building it at all would fail the build.
        img = d.image_build(
            BuildRequest(context=ctx, target="first", tags=(tag,), labels=dict(kit.labels))
        )
        cid = None
        try:
            assert img.tags == (tag,) and img.config.cmd == ("cat", "/one")
            cid = kit.run(None, image=tag)
            assert d.container_wait(cid, timeout=30) == 0
            assert kit.output(cid) == b"one\n"
        finally:  # the container first: forced, a used image would only lose its tag
            if cid is not None:
                d.container_remove(cid, force=True)
            d.image_remove(img.id, force=True)

    def test_build_of_a_bad_dockerfile_fails(self, kit: Kit, tmp_path: Path) -> None:
        ctx = write_dockerfile(tmp_path, "FROM scratch\nNOSUCHINSTRUCTION x\n")
        with pytest.raises(BuildFailed):
            kit.driver.image_build(BuildRequest(context=ctx, labels=dict(kit.labels)))

    def test_push_then_pull_through_a_local_registry(
        self, kit: Kit, registry: str, tmp_path: Path
    ) -> None:
        d = kit.driver
        ref = f"{registry}/enginekit-test/pushed:{kit.run_id}"
        ctx = write_dockerfile(
            tmp_path, f"FROM {kit.image}\nRUN echo {uuid.uuid4().hex} > /marker\n"
        )
        built = d.image_build(BuildRequest(context=ctx, tags=(ref,), labels=dict(kit.labels)))
        assert built.tags == (ref,)
        d.image_push(ref)
        d.image_remove(ref)  # its only tag: the image and its own layer go
        with pytest.raises(ImageNotFound):
            d.image_inspect(built.id)
        pulled = d.image_pull(ref)
        assert pulled.id == built.id and pulled.tags == (ref,)
        assert pulled.labels == built.labels
        d.image_remove(ref)

    def test_pull_and_push_errors(self, kit: Kit, registry: str) -> None:
        d = kit.driver
        with pytest.raises(ImageNotFound, match=r"manifest unknown|not found"):
            d.image_pull(f"{registry}/enginekit-test/never-pushed:{kit.run_id}")
        with pytest.raises(ImageNotFound):
            d.image_push(f"{registry}/enginekit-test/not-here:{kit.run_id}")
        closed = f"127.0.0.1:{closed_port()}/enginekit-test/x:{kit.run_id}"
        with pytest.raises(EngineError, match="refused") as info:
            d.image_pull(closed)
        assert type(info.value) is EngineError
        d.image_tag(kit.image, closed)
        try:
            with pytest.raises(EngineError, match="refused") as info:
                d.image_push(closed)
            assert type(info.value) is EngineError
        finally:
            d.image_remove(closed)
