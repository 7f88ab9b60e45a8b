"""``engine.images.pull`` / ``push`` against a real OCI registry on 127.0.0.1.

The ``registry`` fixture (:mod:`enginekit.testing.registry`) runs an empty
``docker-registry`` on a free port of 127.0.0.1 for the session; every
reference pushed or pulled here names it (``127.0.0.1:PORT/ekt/NAME:TAG``).
No test pulls or pushes a reference that names another registry, or none.

An image keeps its id through the registry: pushed, removed, pulled back (on
the same engine or another) it has the id it had, its config and labels, and
runs the same. Every image made or pulled carries the run's label and is
removed after the test.
"""

from __future__ import annotations

import contextlib
import http.client
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from enginekit.capabilities import Capability
from enginekit.errors import ImageNotFound, NotFound

from ._ids import ids_are_manifest_digests, pulled_id
from ._runs import remove_image_quietly, run_to_end, table

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.models import Image
    from enginekit.testing.fixtures import BuildContextFactory

_INSTALL_BUSYBOX = 'COPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


def _ref(registry: str, make_name: Callable[..., str], suffix: str, tag: str = "v1") -> str:
    return f"{registry}/ekt/{make_name(suffix)}:{tag}"


def _remove_tag_quietly(engine: Engine, ref: str) -> None:
    """Remove one tag of an image that has others (the image stays)."""
    with contextlib.suppress(NotFound):
        engine.images.remove(ref)


def _registry_tags(registry: str, ref: str) -> int:
    """The HTTP status of the registry's tag list of ``ref``'s repository (404: none)."""
    host, _, port = registry.rpartition(":")
    repository = ref[len(registry) + 1 :].rpartition(":")[0]
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", f"/v2/{repository}/tags/list")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@attrs.frozen
class Pushable:
    image: Image
    ref: str
    output: bytes


@pytest.mark.requires(Capability.PULL, Capability.PUSH)
class TestRegistry:
    @pytest.fixture
    def own_image(
        self,
        engine: Engine,
        base_image: str,
        build_context: BuildContextFactory,
        registry: str,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> Iterator[Pushable]:
        """An image of its own (unique content), tagged only with a ref of the registry."""
        mark = uuid.uuid4().hex
        ctx = build_context(
            f"FROM {base_image}\n"
            f"LABEL enginekit.test.mark={mark}\n"
            f"RUN echo {mark} > /mark.txt\n"
            'CMD ["cat", "/mark.txt"]\n',
            busybox=False,
        )
        ref = _ref(registry, make_name, "own")
        image = engine.images.build(str(ctx), tag=ref, labels=labels)
        try:
            yield Pushable(image=image, ref=ref, output=f"{mark}\n".encode())
        finally:
            remove_image_quietly(engine, ref)
            remove_image_quietly(engine, image.id)

    def test_tagged_base_image_push_remove_pull(
        self,
        engine: Engine,
        base_image: str,
        registry: str,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        base = engine.images.get(base_image)
        ref = _ref(registry, make_name, "base")
        try:
            assert engine.images.tag(base_image, ref).id == base.id
            engine.images.push(ref)
            engine.images.remove(ref)
            assert not engine.images.exists(ref)
            assert engine.images.get(base_image).tags == base.tags

            pulled = engine.images.pull(ref)
            assert pulled.id == base.id
            assert ref in pulled.tags and base_image in pulled.tags
            got = engine.images.get(ref)
            assert got.id == base.id and got.config == base.config
            res = run_to_end(engine, ref, ["sh", "-c", "echo pulled; echo err >&2"], labels=labels)
            assert (res.exit_code, res.stdout, res.stderr) == (0, b"pulled\n", b"err\n")
        finally:
            _remove_tag_quietly(engine, ref)
        assert engine.images.get(base_image).tags == base.tags

    @pytest.mark.requires(Capability.BUILD)
    def test_own_image_push_remove_pull_run(
        self, engine: Engine, own_image: Pushable, labels: dict[str, str]
    ) -> None:
        """Removed everywhere but in the registry, the image comes back as it was."""
        built = own_image.image
        assert built.tags == (own_image.ref,)
        engine.images.push(own_image.ref)
        engine.images.remove(own_image.ref)
        assert not engine.images.exists(built.id)

        pulled = engine.images.pull(own_image.ref)
        assert pulled.id == built.id
        assert pulled.tags == (own_image.ref,)
        assert pulled.labels == built.labels
        assert pulled.config == built.config
        assert (pulled.os, pulled.architecture) == (built.os, built.architecture)
        got = engine.images.get(own_image.ref)
        assert got == pulled
        res = run_to_end(engine, own_image.ref, None, labels=labels)
        assert (res.exit_code, res.stdout, res.stderr) == (0, own_image.output, b"")

    @pytest.mark.requires(Capability.BUILD)
    def test_pull_of_an_image_already_here(self, engine: Engine, own_image: Pushable) -> None:
        engine.images.push(own_image.ref)
        pulled = engine.images.pull(own_image.ref)
        assert pulled.id == own_image.image.id
        assert pulled.tags == (own_image.ref,)

    def test_pull_of_a_repository_never_pushed(
        self, engine: Engine, registry: str, make_name: Callable[..., str]
    ) -> None:
        ref = _ref(registry, make_name, "never")
        with pytest.raises(ImageNotFound):
            engine.images.pull(ref)
        assert not engine.images.exists(ref)

    def test_pull_of_a_tag_never_pushed(
        self, engine: Engine, base_image: str, registry: str, make_name: Callable[..., str]
    ) -> None:
        ref = _ref(registry, make_name, "some-tags")
        missing = ref.rpartition(":")[0] + ":not-pushed"
        engine.images.tag(base_image, ref)
        try:
            engine.images.push(ref)
        finally:
            _remove_tag_quietly(engine, ref)
        with pytest.raises(ImageNotFound):
            engine.images.pull(missing)
        assert not engine.images.exists(missing)

    def test_push_of_a_missing_local_image(
        self, engine: Engine, registry: str, make_name: Callable[..., str]
    ) -> None:
        ref = _ref(registry, make_name, "absent")
        with pytest.raises(ImageNotFound):
            engine.images.push(ref)
        assert _registry_tags(registry, ref) == 404  # nothing reached the registry


def _image_row(image: Image, pulled: Image, ref: str, expected_id: str) -> dict[str, Any]:
    return {
        "id": "as the rule says"
        if pulled.id == expected_id
        else {"pulled": pulled.id, "expected": expected_id},
        "tags": "the ref" if ref in pulled.tags else pulled.tags,
        "config": "same" if pulled.config == image.config else pulled.config,
        "labels": "same" if pulled.labels == image.labels else dict(pulled.labels),
    }


@pytest.mark.requires(Capability.BUILD, Capability.PULL, Capability.PUSH)
class TestDifferentialRegistry:
    def test_push_on_one_pull_on_another(
        self,
        engines: dict[str, Engine],
        registry: str,
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        """Each engine's pushed image pulls on every engine (itself included, after
        removing it there), with the id the rule gives (see _ids: the config's
        digest, or on Docker's containerd store the registry's manifest digest;
        the same id between engines that name images alike), the same config
        and labels, and runs the same."""
        mark = uuid.uuid4().hex
        ctx = build_context(
            f"FROM scratch\n{_INSTALL_BUSYBOX}"
            f"RUN echo {mark} > /mark.txt\n"
            'ENV MOVED="through the registry"\n'
            'CMD ["sh", "-c", "cat /mark.txt; echo \\"$MOVED\\""]\n'
        )
        expected = (0, f"{mark}\nthrough the registry\n".encode(), b"")
        rows: dict[str, dict[str, Any]] = {}
        made: list[tuple[Engine, str]] = []
        try:
            for n, (src_name, src) in enumerate(engines.items()):
                ref = _ref(registry, make_name, "moved", tag=f"from-{n}")
                image = src.images.build(str(ctx), tag=ref, labels=labels)
                made.append((src, ref))
                src.images.push(ref)
                for dst_name, dst in engines.items():
                    if dst is src:
                        src.images.remove(ref)
                        assert not src.images.exists(image.id)
                    pulled = dst.images.pull(ref)
                    made.append((dst, ref))
                    res = run_to_end(dst, ref, None, labels=labels)
                    expected_id = pulled_id(dst, registry, ref)
                    if ids_are_manifest_digests(dst) == ids_are_manifest_digests(src):
                        expected_id = image.id  # the manifest or config travelled unchanged
                    row = _image_row(image, pulled, ref, expected_id)
                    row["run"] = (res.exit_code, res.stdout, res.stderr)
                    rows[f"{src_name} -> {dst_name}"] = row
        finally:
            for eng, ref in made:
                remove_image_quietly(eng, ref)
        ok = {
            "id": "as the rule says",
            "tags": "the ref",
            "config": "same",
            "labels": "same",
            "run": expected,
        }
        wrong = {route: row for route, row in rows.items() if row != ok}
        if wrong:
            pytest.fail(
                table(wrong, title="image moved through the registry: routes that failed"),
                pytrace=False,
            )
        assert len(rows) == len(engines) ** 2
