"""Reliability: image references read alike on every engine (``enginekit.Reference``).

- The spellings Docker reads as one reference (``NAME:1``, ``library/NAME:1``,
  ``docker.io/NAME:1``, ``index.docker.io/library/NAME:1``) name one image on
  every engine: tagged with one, it is found, run, shown and removed with any other.
- A first component with an uppercase letter and neither ``.`` nor ``:``
  (``Reg/app:1``) is a registry host for Docker 28 and part of a repository, which
  must be lowercase, for Podman: it is ``InvalidSpec`` everywhere, before any
  engine call (tag, get, push, pull), and nothing is made.
- A registry host is read in any case: ``LOCALHOST:PORT`` is ``localhost:PORT``,
  the suite's loopback registry, spoken to over plain HTTP by every engine; what
  is pushed there pulls back by ``127.0.0.1:PORT`` with its id.

Nothing here reaches a registry other than the suite's own on 127.0.0.1 (the
uppercase host is refused before any engine call; the calls are ordered so that
a refusal that came too late fails the test before a pull is ever asked).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import EngineError, ImageNotFound, InvalidSpec

from ._runs import remove_image_quietly, run_to_end
from .test_registry import _registry_tags

if TYPE_CHECKING:
    from enginekit import Engine


def _remove_quietly(engine: Engine, ref: str) -> None:
    """Remove a tag a test may have made (also one spelt as enginekit refuses now)."""
    with contextlib.suppress(EngineError):
        remove_image_quietly(engine, ref)


class TestReferenceSpellings:
    def test_docker_hub_spellings_name_one_image(
        self,
        engine: Engine,
        base_image: str,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        name = make_name("spelt")
        base = engine.images.get(base_image)
        spellings = (
            f"{name}:1",
            f"library/{name}:1",
            f"docker.io/{name}:1",
            f"docker.io/library/{name}:1",
            f"index.docker.io/library/{name}:1",
        )
        try:
            tagged = engine.images.tag(base_image, f"library/{name}:1")
            assert tagged.id == base.id
            assert f"{name}:1" in tagged.tags  # shown as Docker shows it
            assert not any(t.startswith(("library/", "docker.io/")) for t in tagged.tags)
            for spelt in spellings:
                assert engine.images.get(spelt).id == base.id, spelt
                assert engine.images.exists(spelt), spelt
            for spelt in (f"docker.io/{name}:1", f"index.docker.io/library/{name}:1"):
                res = run_to_end(engine, spelt, ["sh", "-c", "echo ran"], labels=labels)
                assert (res.exit_code, res.stdout) == (0, b"ran\n"), spelt
            engine.images.remove(f"index.docker.io/library/{name}:1")
            for spelt in spellings:
                assert not engine.images.exists(spelt), spelt
            assert engine.images.get(base_image).tags == base.tags
        finally:
            for spelt in spellings:
                _remove_quietly(engine, spelt)

    def test_an_uppercase_first_component_is_refused_before_the_engine(
        self, engine: Engine, base_image: str, make_name: Callable[..., str]
    ) -> None:
        base = engine.images.get(base_image)
        ref = f"Reg/ekt/{make_name('upper')}:1"
        try:
            with pytest.raises(InvalidSpec, match="must be lowercase"):
                engine.images.tag(base_image, ref)
            with pytest.raises(InvalidSpec, match="must be lowercase"):
                engine.images.get(ref)
            if Capability.PUSH in engine.capabilities:
                with pytest.raises(InvalidSpec, match="must be lowercase"):
                    engine.images.push(ref)
            if Capability.PULL in engine.capabilities:
                # Asked only once the refusals above held: nothing goes out to "Reg".
                with pytest.raises(InvalidSpec, match="must be lowercase"):
                    engine.images.pull(ref)
            assert engine.images.get(base_image).tags == base.tags
        finally:
            _remove_quietly(engine, ref)


@pytest.mark.requires(Capability.PULL, Capability.PUSH)
class TestRegistryHostCase:
    def test_an_uppercase_loopback_host_is_the_same_registry(
        self,
        engine: Engine,
        base_image: str,
        registry: str,
        make_name: Callable[..., str],
    ) -> None:
        port = registry.rpartition(":")[2]
        name = make_name("case")
        upper = f"LOCALHOST:{port}/ekt/{name}:v1"
        lower = f"{registry}/ekt/{name}:v1"
        base = engine.images.get(base_image)
        try:
            assert engine.images.tag(base_image, upper).id == base.id
            # The host written lowercase (a host name's case means nothing; Docker's
            # containerd store speaks plain HTTP only to a lowercase localhost).
            assert upper.replace("LOCALHOST", "localhost") in engine.images.get(upper).tags
            engine.images.push(upper)  # plain HTTP: a loopback host, whatever its case
            assert _registry_tags(registry, lower) == 200
            engine.images.remove(upper)
            with pytest.raises(ImageNotFound):
                engine.images.get(lower)
            pulled = engine.images.pull(lower)
            assert pulled.id == base.id
            assert lower in pulled.tags
        finally:
            _remove_quietly(engine, upper)
            _remove_quietly(engine, lower)
        assert engine.images.get(base_image).tags == base.tags
