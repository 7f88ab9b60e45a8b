"""enginekit.Reference: image references parsed and normalised as Docker does.

No engine is needed: normalisation is checked here, and the core's refusals are
checked over a driver that fails the test if it is called at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import enginekit
from enginekit import validate as v
from enginekit.capabilities import Capability
from enginekit.engine import Engine
from enginekit.errors import ImageNotFound, InvalidSpec
from enginekit.reference import Reference, named_registry

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "normal", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("index.docker.io/busybox:2", "docker.io/library/busybox:2", "busybox:2"),
        ("index.docker.io/team/app", "docker.io/team/app:latest", "team/app:latest"),
        ("team/app:v1", "docker.io/team/app:v1", "team/app:v1"),
        ("library/team/app:v1", "docker.io/library/team/app:v1", "library/team/app:v1"),
        ("app:v1", "docker.io/library/app:v1", "app:v1"),
        ("localhost/app:v1", "localhost/app:v1", "localhost/app:v1"),
        ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
        ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2"),
        ("example.com/a/b/c:1.0", "example.com/a/b/c:1.0", "example.com/a/b/c:1.0"),
        ("REG.example:443/app", "REG.example:443/app:latest", "REG.example:443/app:latest"),
        ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),  # a tag
        # a Docker Hub path whose first component reads as a host keeps docker.io/
        ("docker.io/a.b/app:1", "docker.io/a.b/app:1", "docker.io/a.b/app:1"),
        (
            "docker.io/localhost/app",
            "docker.io/localhost/app:latest",
            "docker.io/localhost/app:latest",
        ),
        (
            "a-b__c_d/e---f.g:T_1.x-y",
            "docker.io/a-b__c_d/e---f.g:T_1.x-y",
            "a-b__c_d/e---f.g:T_1.x-y",
        ),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
        (
            f"127.0.0.1:5000/app@{DIGEST}",
            f"127.0.0.1:5000/app@{DIGEST}",
            f"127.0.0.1:5000/app@{DIGEST}",
        ),
    ],
)
def test_normalised_as_docker_does(text: str, normal: str, familiar: str) -> None:
    ref = Reference.parse(text)
    assert str(ref) == normal
    assert ref.familiar == familiar
    assert Reference.parse(normal) == ref
    assert Reference.parse(familiar) == ref


def test_parts() -> None:
    ref = Reference.parse("busybox")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "docker.io",
        "library/busybox",
        "latest",
        None,
    )
    assert (ref.name, ref.familiar_name) == ("docker.io/library/busybox", "busybox")
    digested = Reference.parse(f"localhost:5000/team/app@{DIGEST}")
    assert (digested.registry, digested.repository, digested.tag, digested.digest) == (
        "localhost:5000",
        "team/app",
        None,  # a digest and no tag: no "latest" added
        DIGEST,
    )
    both = Reference.parse(f"app:1@{DIGEST}")
    assert (both.tag, both.digest) == ("1", DIGEST)


def test_built_directly_by_the_same_rules() -> None:
    assert Reference(repository="busybox") == Reference.parse("busybox")
    assert Reference(registry="index.docker.io", repository="team/app", tag="2") == (
        Reference.parse("team/app:2")
    )
    with pytest.raises(InvalidSpec, match="must be lowercase"):
        Reference(registry="example.com", repository="App")
    with pytest.raises(InvalidSpec, match="tag"):
        Reference(repository="app", tag="-x")


def test_frozen_hashable_and_exported() -> None:
    ref = Reference.parse("app:1")
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
    assert {ref, Reference.parse("docker.io/library/app:1")} == {ref}
    assert enginekit.Reference is Reference


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty"),
        ("UPPER", "must be lowercase"),
        ("Reg/app:1", "has a '.' or a ':port', or is localhost"),  # not a host on Podman
        ("LocalHost/app", "has a '.' or a ':port', or is localhost"),
        ("Reg.example/App:1", "must be lowercase"),
        ("example.com/Team/app", "must be lowercase"),
        ("a b", "lowercase letters and digits"),
        ("-x:1", "lowercase letters and digits"),
        ("_x:1", "lowercase letters and digits"),
        ("a//b", "lowercase letters and digits"),
        ("a/", "lowercase letters and digits"),
        ("a/..:1", "lowercase letters and digits"),
        ("a___b", "lowercase letters and digits"),
        ("a.-b", "lowercase letters and digits"),
        ("x:", "followed by a tag"),
        ("x:-bad", "tag must be"),
        ("x:.bad", "tag must be"),
        ("x:" + "t" * 129, "tag must be"),
        ("x:a:b", "tag must be"),
        ("x:é", "tag must be"),  # \w is ASCII in Docker's grammar
        ("x@", "followed by a digest"),
        ("x@sha256:00", "digest must be"),
        ("x@md5:" + "0" * 32, "digest must be"),
        ("x@sha256:" + "0" * 63, "64 lowercase hex"),
        ("x@sha256:" + "A" * 64, "64 lowercase hex"),
        ("a" * 64, "image id"),
        ("-reg.example/app", "registry host"),
        ("reg_x.example/app", "registry host"),
        ("reg.example:port/app", "registry host"),
        ("[::1]:5000/app", "IPv6"),
        ("x" * 250, "longer than 255"),
        ("example.com/" + "x" * 244, "longer than 255"),
        ("a\0b", "lowercase letters and digits"),
        ("a:1\n", "tag must be"),
    ],
)
def test_bad_text_is_invalid_spec(text: str, problem: str) -> None:
    with pytest.raises(InvalidSpec, match=problem) as info:
        Reference.parse(text, field="tag")
    if text:
        assert str(info.value).startswith(f"tag {text!r} is not a valid image reference: ")


def test_longest_names() -> None:
    assert Reference.parse("example.com/" + "x" * 243).repository == "x" * 243  # 255 in all
    assert Reference.parse("x" * 237).repository == "library/" + "x" * 237  # with docker.io/


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000"),
        ("localhost/app:1", "localhost"),
        ("LOCALHOST:5000/app:1", "localhost:5000"),  # written lowercase
        ("Reg/app:1", None),  # a repository (which Reference.parse refuses: uppercase)
        ("registry.example/team/app:1", "registry.example"),
        ("docker.io/busybox", "docker.io"),
        ("index.docker.io/library/busybox", "docker.io"),
        ("app:1", None),
        ("team/app:1", None),
        ("localhost:5000", None),
        ("sha256:" + "a" * 64, None),
        ("a" * 64, None),
        ("abcdef0123456789", None),
    ],
)
def test_the_registry_the_text_names(text: str, registry: str | None) -> None:
    assert named_registry(text) == registry
    assert v.registry_of(text) == registry


@pytest.mark.parametrize(
    ("text", "loopback"),
    [
        ("127.0.0.1:5000/app", True),
        ("127.1.2.3/app", True),
        ("localhost:5000/app", True),
        ("LOCALHOST:5000/app", True),
        ("LocalHost:5000/app", True),
        ("localhost/app", True),
        ("localhost.example.com/app", False),
        ("registry.example:5000/app", False),
        ("busybox", False),
        ("128.0.0.1:5000/app", False),
    ],
)
def test_loopback_registries(text: str, loopback: bool) -> None:
    assert Reference.parse(text).loopback is loopback


@pytest.mark.parametrize(
    ("text", "checked"),
    [
        ("busybox", "busybox:latest"),
        ("a/b:1.0", "a/b:1.0"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("docker.io/busybox", "busybox:latest"),
        ("index.docker.io/library/busybox:1", "busybox:1"),
        ("library/busybox:1", "busybox:1"),
        ("localhost/app", "localhost/app:latest"),
        ("sha256:" + "a" * 64, "sha256:" + "a" * 64),
        ("abcdef012345", "abcdef012345"),
    ],
)
def test_the_core_passes_on_the_familiar_form(text: str, checked: str) -> None:
    assert v.image_ref(text) == checked


def test_the_core_refuses_digests_for_now() -> None:
    with pytest.raises(InvalidSpec, match="digest references are not supported"):
        v.image_ref(f"busybox@{DIGEST}")


class _NoCalls:
    """A driver whose every method fails the test: the core must refuse first."""

    name = "nocalls"
    address = "nowhere"
    capabilities = frozenset(Capability)
    unsupported: dict[Capability, str] = {}

    def __getattr__(self, attr: str) -> Any:
        def call(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"the driver was called: {attr}{args}")

        return call


@pytest.mark.parametrize("ref", ["busybox:latest", "library/busybox:1", "app", "a" * 12])
def test_a_name_without_registry_is_refused_by_the_core_alone(ref: str) -> None:
    engine = Engine(_NoCalls())  # type: ignore[arg-type]
    with pytest.raises(ImageNotFound, match="names no registry"):
        engine.images.pull(ref)
    with pytest.raises(InvalidSpec, match="names no registry"):
        engine.images.push(ref)


@pytest.mark.parametrize("ref", ["Reg/app:1", "Reg/team/app", "LocalHost/app:1"])
def test_an_uppercase_first_component_is_refused_everywhere_before_the_driver(ref: str) -> None:
    """Docker 28 reads ``Reg`` as a registry host, Podman as part of a repository
    that must be lowercase: the core refuses it for every engine."""
    images = Engine(_NoCalls()).images  # type: ignore[arg-type]
    for call in (
        lambda: images.push(ref),
        lambda: images.pull(ref),
        lambda: images.tag("busybox:1", ref),
        lambda: images.get(ref),
    ):
        with pytest.raises(InvalidSpec, match="must be lowercase"):
            call()


class _Recording(_NoCalls):
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, attr: str) -> Any:
        def call(*args: object, **kwargs: object) -> None:
            self.calls.append((attr, args))

        return call


@pytest.mark.parametrize(
    ("ref", "given"),
    [
        ("LOCALHOST:5000/team/app", "localhost:5000/team/app:latest"),
        ("docker.io/busybox", "busybox:latest"),
        ("index.docker.io/library/busybox:1", "busybox:1"),
    ],
)
def test_push_of_a_registry_name_reaches_the_driver_familiar(ref: str, given: str) -> None:
    driver = _Recording()
    Engine(driver).images.push(ref)  # type: ignore[arg-type]
    assert driver.calls == [("image_push", (given,))]


_ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_COMPONENTS = st.builds(
    lambda parts, seps: parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=False)),
    st.lists(_ALNUM, min_size=1, max_size=3),
    st.lists(st.sampled_from([".", "_", "__", "-", "--"]), min_size=2, max_size=2),
)
_REGISTRIES = st.one_of(
    st.none(),
    st.sampled_from(["localhost", "docker.io", "index.docker.io", "LOCALHOST:5000"]),
    st.builds(lambda a, b, port: f"{a}.{b}{port}", _ALNUM, _ALNUM, st.sampled_from(["", ":5000"])),
)


@given(
    registry=_REGISTRIES,
    path=st.lists(_COMPONENTS, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    digest=st.one_of(st.none(), st.just(DIGEST)),
)
def test_every_form_reads_back_the_same(
    registry: str | None, path: list[str], tag: str | None, digest: str | None
) -> None:
    # Without a registry, a first component with a "." would read as one.
    assume(registry is not None or len(path) == 1 or "." not in path[0])
    text = "/".join(([registry] if registry else []) + path)
    text += "" if tag is None else f":{tag}"
    text += "" if digest is None else f"@{digest}"
    ref = Reference.parse(text)
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.familiar) == ref
    assert ref.tag == (tag if tag is not None or digest is not None else "latest")
    assert ref.digest == digest
    assert str(ref).startswith(ref.registry + "/")
