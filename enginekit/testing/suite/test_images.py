"""``engine.images``: get, exists, list, tag, remove, save and load."""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest

from enginekit.capabilities import Capability
from enginekit.errors import Conflict, ImageNotFound, NotFound

from ._ids import ids_are_manifest_digests, loaded_ids
from ._runs import remove_image_quietly, run_to_end

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.models import Image
    from enginekit.testing.fixtures import BuildContextFactory
    from enginekit.testing.session import SuiteRun


@attrs.frozen
class Made:
    image: Image
    tag: str
    repo: str
    mark: str
    output: bytes


def _build(
    engine: Engine,
    base_image: str,
    build_context: BuildContextFactory,
    run: SuiteRun,
    *,
    suffix: str,
) -> Made:
    """A small image of its own (unique content and label) built on the base image."""
    mark = uuid.uuid4().hex
    repo = run.make_name(suffix)
    tag = f"{repo}:v1"
    ctx = build_context(
        f"FROM {base_image}\n"
        f"LABEL enginekit.test.mark={mark}\n"
        f"RUN echo {mark} > /mark.txt\n"
        'CMD ["cat", "/mark.txt"]\n',
        busybox=False,
    )
    image = engine.images.build(str(ctx), tag=tag, labels=run.labels)
    return Made(image=image, tag=tag, repo=repo, mark=mark, output=f"{mark}\n".encode())


class _OwnImage:
    """A fresh image of its own for each test (removed after it)."""

    @pytest.fixture
    def own_image(
        self,
        engine: Engine,
        base_image: str,
        build_context: BuildContextFactory,
        enginekit_run: SuiteRun,
    ) -> Iterator[Made]:
        made = _build(engine, base_image, build_context, enginekit_run, suffix="img")
        try:
            yield made
        finally:
            remove_image_quietly(engine, made.image.id)


@pytest.mark.requires(Capability.BUILD)
class TestImageLookup(_OwnImage):
    def test_get_by_tag_id_and_id_prefix(self, engine: Engine, own_image: Made) -> None:
        img = own_image.image
        hex_id = img.id.removeprefix("sha256:")
        assert engine.images.get(own_image.tag) == img
        assert engine.images.get(img.id) == img
        assert engine.images.get(hex_id) == img
        assert engine.images.get(hex_id[:12]) == img
        assert engine.images.get("sha256:" + hex_id[:12]) == img

    def test_name_without_tag_means_latest(self, engine: Engine, own_image: Made) -> None:
        latest = f"{own_image.repo}:latest"
        engine.images.tag(own_image.tag, latest)
        assert engine.images.get(own_image.repo).id == own_image.image.id
        assert engine.images.exists(own_image.repo)

    def test_exists(self, engine: Engine, own_image: Made, make_name: Callable[..., str]) -> None:
        assert engine.images.exists(own_image.tag)
        assert engine.images.exists(own_image.image.id)
        assert not engine.images.exists(f"{make_name()}:missing")
        assert not engine.images.exists(f"{own_image.repo}:othertag")
        assert not engine.images.exists("sha256:" + "0" * 64)

    def test_missing_image(self, engine: Engine, make_name: Callable[..., str]) -> None:
        missing = f"{make_name()}:missing"
        for call in (
            lambda: engine.images.get(missing),
            lambda: engine.images.get("sha256:" + "0" * 64),
            lambda: engine.images.remove(missing),
            lambda: engine.images.tag(missing, f"{make_name()}:new"),
        ):
            with pytest.raises(ImageNotFound):
                call()
        assert issubclass(ImageNotFound, NotFound)

    def test_list_filters(
        self, engine: Engine, own_image: Made, make_name: Callable[..., str], labels: dict[str, str]
    ) -> None:
        img = own_image.image

        def ids(found: list[Image]) -> list[str]:
            return [i.id for i in found]

        assert img.id in ids(engine.images.list())
        assert ids(engine.images.list(name=own_image.repo)) == [img.id]
        assert ids(engine.images.list(name=own_image.tag)) == [img.id]
        assert engine.images.list(name=f"{own_image.repo}:nope") == []
        assert engine.images.list(name=make_name()) == []
        marked = {**labels, "enginekit.test.mark": own_image.mark}
        assert ids(engine.images.list(labels=marked)) == [img.id]
        assert ids(engine.images.list(labels={"enginekit.test.mark": None, **labels})) != []
        assert img.id in ids(engine.images.list(labels={"enginekit.test.mark": None}))
        assert engine.images.list(labels={"enginekit.test.mark": "other"}) == []
        (listed,) = engine.images.list(labels=marked)
        for field in ("id", "tags", "labels", "created", "size", "engine"):
            assert getattr(listed, field) == getattr(img, field), field


@pytest.mark.requires(Capability.BUILD)
class TestImageTagRemove(_OwnImage):
    def test_tag_adds_a_name(
        self, engine: Engine, own_image: Made, make_name: Callable[..., str]
    ) -> None:
        # A repository sorting before the first: tags come back sorted.
        new = f"a{make_name()}:other"
        tagged = engine.images.tag(own_image.tag, new)
        assert tagged.id == own_image.image.id
        assert tagged.tags == tuple(sorted((own_image.tag, new)))
        assert engine.images.get(new).id == engine.images.get(own_image.tag).id
        assert engine.images.get(own_image.image.id).tags == tagged.tags

    def test_tag_by_id(
        self, engine: Engine, own_image: Made, make_name: Callable[..., str]
    ) -> None:
        new = f"{make_name()}:byid"
        tagged = engine.images.tag(own_image.image.id, new)
        assert new in tagged.tags and own_image.tag in tagged.tags

    def test_remove_one_tag_keeps_the_image(
        self, engine: Engine, own_image: Made, make_name: Callable[..., str]
    ) -> None:
        other = f"{make_name()}:second"
        engine.images.tag(own_image.tag, other)
        engine.images.remove(other)
        assert not engine.images.exists(other)
        assert engine.images.get(own_image.tag).tags == (own_image.tag,)
        assert engine.images.exists(own_image.image.id)

    def test_remove_last_tag_removes_the_image(self, engine: Engine, own_image: Made) -> None:
        engine.images.remove(own_image.tag)
        assert not engine.images.exists(own_image.tag)
        assert not engine.images.exists(own_image.image.id)
        assert own_image.image.id not in [i.id for i in engine.images.list()]

    def test_remove_by_id(self, engine: Engine, own_image: Made) -> None:
        engine.images.remove(own_image.image.id)
        assert not engine.images.exists(own_image.image.id)
        assert not engine.images.exists(own_image.tag)

    def test_remove_in_use_conflicts_unless_forced(
        self, engine: Engine, own_image: Made, labels: dict[str, str]
    ) -> None:
        container = engine.containers.create(own_image.tag, labels=labels)
        try:
            with pytest.raises(Conflict):
                engine.images.remove(own_image.tag)
            with pytest.raises(Conflict):
                engine.images.remove(own_image.image.id)
            assert engine.images.get(own_image.tag).id == own_image.image.id
            engine.images.remove(own_image.tag, force=True)
            assert not engine.images.exists(own_image.tag)
            assert own_image.tag not in [t for i in engine.images.list() for t in i.tags]
        finally:
            engine.containers.remove(container, force=True)


@pytest.mark.requires(Capability.BUILD)
class TestImageSaveLoad(_OwnImage):
    @pytest.mark.requires(Capability.IMAGE_SAVE, Capability.IMAGE_LOAD)
    def test_save_remove_load_round_trip(
        self, engine: Engine, own_image: Made, tmp_path: Path, labels: dict[str, str]
    ) -> None:
        first = run_to_end(engine, own_image.tag, None, labels=labels)
        assert (first.exit_code, first.stdout, first.stderr) == (0, own_image.output, b"")
        archive = tmp_path / "image.tar"
        engine.images.save(own_image.tag, archive)
        assert archive.is_file() and archive.stat().st_size > 0
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert {"oci-layout", "index.json"} <= names, sorted(names)
        assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())

        engine.images.remove(own_image.tag)
        assert not engine.images.exists(own_image.image.id)

        loaded = engine.images.load(archive)
        # The id of the config, or on Docker's containerd store of the
        # archive's manifest (see _ids): the config's id never changes.
        assert [i.id for i in loaded] == loaded_ids(engine, archive)
        if not ids_are_manifest_digests(engine):
            assert loaded[0].id == own_image.image.id
        assert loaded[0].tags == (own_image.tag,)
        again = engine.images.get(own_image.tag)
        assert loaded[0] == again
        assert again.config == own_image.image.config
        assert again.labels == own_image.image.labels
        # Saved and loaded once more, it keeps the id it has now, on every engine.
        archive_again = tmp_path / "again.tar"
        engine.images.save(own_image.tag, archive_again)
        engine.images.remove(own_image.tag)
        assert [i.id for i in engine.images.load(archive_again)] == [again.id]
        second = run_to_end(engine, own_image.tag, None, labels=labels)
        assert (second.exit_code, second.stdout, second.stderr) == (0, own_image.output, b"")

    @pytest.mark.requires(Capability.IMAGE_LOAD)
    def test_load_of_a_missing_file(self, engine: Engine, tmp_path: Path) -> None:
        from enginekit.errors import EngineError

        with pytest.raises(EngineError):
            engine.images.load(tmp_path / "nothing.tar")

    @pytest.mark.requires(Capability.IMAGE_SAVE)
    def test_save_of_a_missing_image(
        self, engine: Engine, tmp_path: Path, make_name: Callable[..., str]
    ) -> None:
        target = tmp_path / "never.tar"
        with pytest.raises(ImageNotFound):
            engine.images.save(f"{make_name()}:missing", target)
        assert list(tmp_path.iterdir()) == []
