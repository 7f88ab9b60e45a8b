"""``copy_to`` / ``copy_from``: ``docker cp``'s rules on every engine, and nothing
ever written outside ``host_path`` whatever the container holds."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings

from enginekit.capabilities import Capability
from enginekit.errors import InvalidSpec, NotFound
from enginekit.models import ContainerState
from enginekit.testing.strategies import FileTree, file_trees

from ._runs import examples

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.models import Container
    from enginekit.testing.session import SuiteRun

READY = "ENGINEKIT-READY"
TREE_SETUP = (
    "mkdir -p /src/tree/nested /src/tree/empty /dest-dir && "
    "printf 'file one\\n' > /src/one.txt && "
    "printf 'a\\n' > /src/tree/a.txt && "
    "printf 'b\\0\\377\\n' > /src/tree/nested/b.bin && "
    "ln -s a.txt /src/tree/link-to-a"
)


def _wait_ready(engine: Engine, container: Container, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY.encode() in engine.containers.logs(container, stderr=False):
            return
        state = engine.containers.get(container).state
        if state is ContainerState.EXITED:
            break
        time.sleep(0.1)
    raise AssertionError(f"container did not get ready: {engine.containers.logs(container)!r}")


def _running(engine: Engine, image: str, setup: str, labels: dict[str, str]) -> Container:
    c = engine.containers.run(
        image, ["sh", "-c", f"{setup} && echo {READY} && exec sleep 600"], labels=labels
    )
    try:
        _wait_ready(engine, c)
    except BaseException:
        engine.containers.remove(c, force=True)
        raise
    return c


def _stopped(engine: Engine, image: str, setup: str, labels: dict[str, str]) -> Container:
    c = engine.containers.run(image, ["sh", "-c", setup], labels=labels)
    try:
        code = engine.containers.wait(c, timeout=60)
        assert code == 0, engine.containers.logs(c)
    except BaseException:
        engine.containers.remove(c, force=True)
        raise
    return engine.containers.get(c)


def _inside(engine: Engine, c: Container, script: str) -> bytes:
    res = engine.containers.exec(c, ["sh", "-c", script])
    assert res.exit_code == 0, (res.exit_code, res.stdout, res.stderr)
    return res.stdout


def _tree(root: Path) -> dict[str, str | bytes]:
    """Files as bytes, links as ``-> target``, empty folders as ``/``, relative to ``root``."""
    out: dict[str, str | bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
                dirnames.remove(name)
            elif not os.listdir(full):
                out[rel] = "/"
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            else:
                out[rel] = Path(full).read_bytes()
    return out


EXPECTED_TREE: dict[str, str | bytes] = {
    "a.txt": b"a\n",
    "nested/b.bin": b"b\0\377\n",
    "empty": "/",
    "link-to-a": "-> a.txt",
}


class _CopyFixtures:
    """Fixtures of the copy tests (methods, so that they travel with the classes)."""

    @pytest.fixture
    def stopped(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> Iterator[Container]:
        c = _stopped(engine, base_image, TREE_SETUP, labels)
        try:
            yield c
        finally:
            engine.containers.remove(c, force=True)

    @pytest.fixture
    def running(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> Iterator[Container]:
        c = _running(engine, base_image, TREE_SETUP, labels)
        try:
            yield c
        finally:
            engine.containers.remove(c, force=True)


@pytest.mark.requires(Capability.COPY)
class TestCopyFrom(_CopyFixtures):
    def test_file_into_existing_folder(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        assert engine.containers.get(stopped).state is ContainerState.EXITED
        engine.containers.copy_from(stopped, "/src/one.txt", tmp_path)
        assert _tree(tmp_path) == {"one.txt": b"file one\n"}

    def test_file_to_a_new_path(self, engine: Engine, stopped: Container, tmp_path: Path) -> None:
        engine.containers.copy_from(stopped, "/src/one.txt", tmp_path / "renamed.txt")
        assert _tree(tmp_path) == {"renamed.txt": b"file one\n"}

    def test_file_over_an_existing_file(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        (tmp_path / "there.txt").write_text("old content that is longer\n")
        engine.containers.copy_from(stopped, "/src/one.txt", tmp_path / "there.txt")
        assert _tree(tmp_path) == {"there.txt": b"file one\n"}

    def test_folder_into_existing_folder(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        engine.containers.copy_from(stopped, "/src/tree", tmp_path)
        assert _tree(tmp_path) == {f"tree/{k}": v for k, v in EXPECTED_TREE.items()}

    def test_folder_to_a_new_path(self, engine: Engine, stopped: Container, tmp_path: Path) -> None:
        engine.containers.copy_from(stopped, "/src/tree", tmp_path / "copy")
        assert _tree(tmp_path) == {f"copy/{k}": v for k, v in EXPECTED_TREE.items()}

    def test_from_a_running_container(
        self, engine: Engine, running: Container, tmp_path: Path
    ) -> None:
        engine.containers.copy_from(running, "/src/tree", tmp_path / "copy")
        assert _tree(tmp_path / "copy") == EXPECTED_TREE

    def test_from_a_created_container(
        self, engine: Engine, base_image: str, labels: dict[str, str], tmp_path: Path
    ) -> None:
        c = engine.containers.create(base_image, ["true"], labels=labels)
        try:
            engine.containers.copy_from(c, "/etc/passwd", tmp_path)
            assert (tmp_path / "passwd").read_text().startswith("root:x:0:0:")
        finally:
            engine.containers.remove(c, force=True)

    def test_missing_container_path(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        with pytest.raises(NotFound):
            engine.containers.copy_from(stopped, "/src/no-such-file", tmp_path)
        assert list(tmp_path.iterdir()) == []

    def test_path_through_a_file(self, engine: Engine, stopped: Container, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            engine.containers.copy_from(stopped, "/src/one.txt/x", tmp_path)
        assert list(tmp_path.iterdir()) == []

    def test_missing_container(self, engine: Engine, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            engine.containers.copy_from(
                "ekt-no-such-container-" + uuid.uuid4().hex[:8], "/", tmp_path
            )


@pytest.mark.requires(Capability.COPY)
class TestCopyTo(_CopyFixtures):
    @pytest.mark.requires(Capability.EXEC)
    def test_file_into_existing_folder(
        self, engine: Engine, running: Container, tmp_path: Path
    ) -> None:
        (tmp_path / "f.txt").write_bytes(b"to the container\n")
        engine.containers.copy_to(running, tmp_path / "f.txt", "/dest-dir")
        assert _inside(engine, running, "cat /dest-dir/f.txt") == b"to the container\n"

    @pytest.mark.requires(Capability.EXEC)
    def test_file_to_a_new_path(self, engine: Engine, running: Container, tmp_path: Path) -> None:
        (tmp_path / "f.txt").write_bytes(b"renamed\n")
        engine.containers.copy_to(running, tmp_path / "f.txt", "/dest-dir/g.txt")
        assert _inside(engine, running, "ls /dest-dir; cat /dest-dir/g.txt") == b"g.txt\nrenamed\n"

    @pytest.mark.requires(Capability.EXEC)
    def test_folder_into_existing_folder_and_to_a_new_path(
        self, engine: Engine, running: Container, tmp_path: Path
    ) -> None:
        src = tmp_path / "hosttree"
        (src / "sub").mkdir(parents=True)
        (src / "sub" / "x.txt").write_bytes(b"x\n")
        (src / "top.txt").write_bytes(b"top\n")
        engine.containers.copy_to(running, src, "/dest-dir")
        engine.containers.copy_to(running, src, "/brand-new")
        listing = _inside(
            engine,
            running,
            "cd /dest-dir && find . | sort; echo ==; cd /brand-new && find . | sort; "
            "cat /brand-new/sub/x.txt",
        )
        assert listing == (
            b".\n./hosttree\n./hosttree/sub\n./hosttree/sub/x.txt\n./hosttree/top.txt\n"
            b"==\n.\n./sub\n./sub/x.txt\n./top.txt\nx\n"
        )

    @pytest.mark.requires(Capability.EXEC)
    def test_host_symlink_is_copied_as_a_link(
        self, engine: Engine, running: Container, tmp_path: Path
    ) -> None:
        (tmp_path / "target.txt").write_text("target\n")
        os.symlink("target.txt", tmp_path / "link")
        os.symlink("/etc/hostname-on-the-host", tmp_path / "abs-link")
        engine.containers.copy_to(running, tmp_path / "link", "/dest-dir")
        engine.containers.copy_to(running, tmp_path / "abs-link", "/dest-dir")
        engine.containers.copy_to(running, tmp_path, "/linktree")
        out = _inside(
            engine,
            running,
            "readlink /dest-dir/link; readlink /dest-dir/abs-link; "
            "readlink /linktree/link; cat /linktree/target.txt",
        )
        assert out == b"target.txt\n/etc/hostname-on-the-host\ntarget.txt\ntarget\n"

    def test_into_a_stopped_container(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        (tmp_path / "f.txt").write_bytes(b"into a stopped one\n")
        engine.containers.copy_to(stopped, tmp_path / "f.txt", "/dest-dir")
        back = tmp_path / "back"
        back.mkdir()
        engine.containers.copy_from(stopped, "/dest-dir/f.txt", back)
        assert (back / "f.txt").read_bytes() == b"into a stopped one\n"

    def test_missing_container_folder(
        self, engine: Engine, running: Container, tmp_path: Path
    ) -> None:
        (tmp_path / "f.txt").write_bytes(b"x")
        with pytest.raises(NotFound):
            engine.containers.copy_to(running, tmp_path / "f.txt", "/no/such/folder/f.txt")
        with pytest.raises(NotFound):
            engine.containers.copy_to(running, tmp_path / "f.txt", "/src/one.txt/f.txt")


def _dir_listing(path: Path) -> dict[str, tuple[int, int]]:
    """Names in ``path`` with (mode, mtime_ns), links not followed."""
    out = {}
    for name in os.listdir(path):
        st = os.lstat(path / name)
        out[name] = (st.st_mode, st.st_mtime_ns)
    return out


@pytest.mark.requires(Capability.COPY)
class TestCopyFromNeverEscapes(_CopyFixtures):
    """A container's content cannot make copy_from write outside ``host_path``."""

    def test_links_and_dotdot_stay_inside(
        self, engine: Engine, base_image: str, labels: dict[str, str], tmp_path: Path
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        dest_parent = tmp_path / "dest"
        dest_parent.mkdir()
        up = "../" * 40
        rel_out = up + str(outside).lstrip("/")
        pwned = f"enginekit-pwned-{uuid.uuid4().hex}"
        first_setup = (
            "mkdir -p /hostile/sub && "
            "ln -s /etc /hostile/etc && "
            f"ln -s '{rel_out}' /hostile/evil && "
            f"ln -s '{outside}' /hostile/abs && "
            "ln -s .. /hostile/sub/up && "
            "printf inside > /hostile/sub/file.txt"
        )
        # The same names as real folders: copied over the first copy, they must
        # not be written through the links it left on the host.
        second_setup = (
            "mkdir -p /hostile/etc /hostile/evil /hostile/abs /hostile/sub/up && "
            f"printf x > /hostile/etc/{pwned} && "
            f"printf x > /hostile/evil/{pwned} && "
            f"printf x > /hostile/abs/{pwned} && "
            f"printf x > /hostile/sub/up/{pwned}"
        )
        parent_before = _dir_listing(tmp_path)
        first = _stopped(engine, base_image, first_setup, labels)
        second = _stopped(engine, base_image, second_setup, labels)
        try:
            refused_first = False
            try:
                engine.containers.copy_from(first, "/hostile", dest_parent)
            except InvalidSpec:
                refused_first = True
            copied = dest_parent / "hostile"
            if refused_first:
                assert not copied.exists()
            else:
                tree = _tree(copied)
                assert tree["etc"] == "-> /etc"
                assert tree["evil"] == "-> " + rel_out
                assert tree["abs"] == "-> " + str(outside)
                assert tree["sub/up"] == "-> .."
                assert tree["sub/file.txt"] == b"inside"
            try:
                engine.containers.copy_from(second, "/hostile", dest_parent)
            except InvalidSpec:
                pass
            else:
                for name in ("etc", "evil", "abs", "sub/up"):
                    entry = copied / name
                    assert not entry.is_symlink(), name
                    assert (entry / pwned).read_bytes() == b"x"
            # Nothing outside dest_parent changed.
            assert list(outside.iterdir()) == []
            assert not (Path("/etc") / pwned).exists()
            after = _dir_listing(tmp_path)
            assert set(after) == set(parent_before)
            assert after["outside"] == parent_before["outside"]
        finally:
            leaked = Path("/etc") / pwned
            if leaked.exists():
                leaked.unlink()
            engine.containers.remove(first, force=True)
            engine.containers.remove(second, force=True)

    def test_single_link_is_copied_as_the_link(
        self, engine: Engine, base_image: str, labels: dict[str, str], tmp_path: Path
    ) -> None:
        c = _stopped(engine, base_image, "ln -s /etc /etc-link", labels)
        try:
            try:
                engine.containers.copy_from(c, "/etc-link", tmp_path)
            except InvalidSpec:
                assert list(tmp_path.iterdir()) == []
            else:
                assert _tree(tmp_path) == {"etc-link": "-> /etc"}
        finally:
            engine.containers.remove(c, force=True)

    def test_dotdot_in_the_container_path(
        self, engine: Engine, stopped: Container, tmp_path: Path
    ) -> None:
        dest = tmp_path / "dest"
        dest.mkdir()
        sentinel = tmp_path / "sentinel"
        sentinel.write_text("unchanged")
        engine.containers.copy_from(stopped, "/src/tree/nested/../nested", dest / "n")
        assert _tree(dest) == {"n/b.bin": b"b\0\377\n"}
        with contextlib.suppress(InvalidSpec, NotFound):
            engine.containers.copy_from(stopped, "/src/tree/..", dest)
        assert sorted(os.listdir(tmp_path)) == ["dest", "sentinel"]
        assert sentinel.read_text() == "unchanged"
        for path in Path(dest).rglob("*"):
            assert os.path.realpath(path).startswith(str(dest)) or path.is_symlink(), path


@pytest.mark.requires(Capability.COPY)
class TestCopyRoundTrip:
    @pytest.fixture(scope="class")
    @staticmethod
    def round_trip_container(
        engine: Engine, base_image: str, enginekit_run: SuiteRun
    ) -> Iterator[Container]:
        c = _running(engine, base_image, "true", enginekit_run.labels)
        try:
            yield c
        finally:
            engine.containers.remove(c, force=True)

    @settings(
        max_examples=examples(12),
        deadline=None,
        database=None,  # the suite runs in other projects: leave no example database
        # differing_executors: one test class runs once per chosen engine.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(tree=file_trees())
    def test_tree_round_trip(
        self,
        engine: Engine,
        round_trip_container: Container,
        tmp_path_factory: pytest.TempPathFactory,
        tree: FileTree,
    ) -> None:
        root = tmp_path_factory.mktemp("rt")
        src = root / "src"
        src.mkdir()
        tree.write(str(src))
        target = f"/rt-{uuid.uuid4().hex[:12]}"
        engine.containers.copy_to(round_trip_container, src, target)
        back = root / "back"
        engine.containers.copy_from(round_trip_container, target, back)
        assert FileTree.read(str(back)) == dict(tree.entries)


@pytest.mark.requires(Capability.COPY)
class TestCopyPathsResolveInsideTheContainer:
    """A container path is resolved inside the container: a link in it that
    names a host path never leads to the host's file system, either way."""

    @pytest.mark.parametrize("running_state", [True, False], ids=["running", "stopped"])
    def test_links_to_host_paths(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        tmp_path: Path,
        running_state: bool,
    ) -> None:
        host_only = tmp_path / "host-only"
        host_only.mkdir()
        (host_only / "secret.txt").write_bytes(b"HOST SECRET\n")
        dest = tmp_path / "dest"
        dest.mkdir()
        payload = tmp_path / "payload.txt"
        payload.write_bytes(b"payload\n")
        setup = (
            f"ln -s '{host_only}' /hostdir && "
            f"ln -s '{host_only}/secret.txt' /hostsecret && "
            f"mkdir -p /box && ln -s '{host_only}' /box/link"
        )
        make = _running if running_state else _stopped
        c = make(engine, base_image, setup, labels)
        try:
            for path in ("/hostdir/secret.txt", "/box/link/secret.txt", "/hostsecret", "/hostdir"):
                with contextlib.suppress(NotFound, InvalidSpec):
                    engine.containers.copy_from(c, path, dest)
                for found in dest.rglob("*"):
                    if found.is_file() and not found.is_symlink():
                        assert b"HOST SECRET" not in found.read_bytes(), (path, found)
            for path in ("/hostdir", "/hostdir/", "/hostdir/x.txt", "/box/link/y.txt"):
                with contextlib.suppress(NotFound, InvalidSpec):
                    engine.containers.copy_to(c, payload, path)
                assert sorted(p.name for p in host_only.iterdir()) == ["secret.txt"], path
            assert (host_only / "secret.txt").read_bytes() == b"HOST SECRET\n"
        finally:
            engine.containers.remove(c, force=True)
