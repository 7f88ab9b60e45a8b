"""Property tests: any valid spec round-trips through ``create``/``get`` exactly,
and the container sees its command, env, user, workdir and host name byte-exact."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from enginekit.capabilities import Capability
from enginekit.models import ContainerState
from enginekit.testing.strategies import (
    commands,
    envs,
    label_keys,
    label_values,
    name_suffixes,
    valid_specs,
)

from ._runs import examples, parse_probe, probe_command

if TYPE_CHECKING:
    from enginekit import Engine

PREFIX_LEN = 13  # "ekp" + 10 hex: unique per example, so drawn names never collide

PROPERTY_SETTINGS = settings(
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


def _prefix() -> str:
    return "ekp" + uuid.uuid4().hex[: PREFIX_LEN - 3]


class TestSpecProperties:
    @PROPERTY_SETTINGS
    @given(spec=valid_specs(), suffix=name_suffixes(PREFIX_LEN), args=commands())
    def test_valid_spec_round_trips(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        spec: dict[str, Any],
        suffix: str,
        args: list[str],
    ) -> None:
        name = _prefix() + suffix
        drawn_labels: dict[str, str] = spec["labels"]
        env: dict[str, str] = spec["env"]
        command = probe_command(args)
        kwargs = {**spec, "labels": {**drawn_labels, **labels}}
        created = engine.containers.create(base_image, command, name=name, **kwargs)
        try:
            assert created.state is ContainerState.CREATED
            got = engine.containers.get(name)
            assert got == created
            assert got.name == name
            assert got.command == tuple(command)
            assert {k: got.labels.get(k) for k in kwargs["labels"]} == kwargs["labels"]
            image_labels = engine.images.get(base_image).labels
            extra = set(got.labels) - set(kwargs["labels"])
            assert extra <= set(image_labels), sorted(extra)
            assert {k: got.env.get(k) for k in env} == env
            if "workdir" in spec:
                assert got.workdir == spec["workdir"]
            if "user" in spec:
                assert got.user == spec["user"]
            if "hostname" in spec:
                assert got.hostname == spec["hostname"]
            found = engine.containers.list(all=True, labels=kwargs["labels"])
            assert [c.id for c in found] == [created.id]
            assert [c.id for c in engine.containers.list(all=True, name=name)] == [created.id]

            engine.containers.start(created)
            assert engine.containers.wait(created, timeout=60) == 0
            err = engine.containers.logs(created, stdout=False)
            assert err == b""
            seen = parse_probe(engine.containers.logs(created, stderr=False))
            assert seen.args == tuple(a.encode() for a in args)
            inside = {k.encode(): seen.environ.get(k.encode()) for k in env}
            assert inside == {k.encode(): v.encode() for k, v in env.items()}
            if "user" in spec:
                uid, _, gid = spec["user"].partition(":")
                assert seen.uid == uid
                if gid:
                    assert seen.gid == gid
            if "workdir" in spec:
                assert seen.pwd == spec["workdir"]
            if "hostname" in spec:
                assert seen.hostname == spec["hostname"]
        finally:
            engine.containers.remove(created, force=True)
        assert engine.containers.list(all=True, name=name) == []

    @pytest.mark.requires(Capability.EXEC)
    @PROPERTY_SETTINGS
    @given(env=envs(max_size=8))
    def test_env_reaches_exec_byte_exact(
        self, engine: Engine, base_image: str, labels: dict[str, str], env: dict[str, str]
    ) -> None:
        c = engine.containers.run(base_image, ["sleep", "600"], labels=labels)
        try:
            res = engine.containers.exec(c, probe_command(), env=env)
            assert (res.exit_code, res.stderr) == (0, b"")
            seen = parse_probe(res.stdout)
            inside = {k.encode(): seen.environ.get(k.encode()) for k in env}
            assert inside == {k.encode(): v.encode() for k, v in env.items()}
        finally:
            engine.containers.remove(c, force=True)

    @PROPERTY_SETTINGS
    @given(
        key=label_keys(),
        value=label_values(),
    )
    def test_label_filter_matches_exactly(
        self, engine: Engine, base_image: str, labels: dict[str, str], key: str, value: str
    ) -> None:
        c = engine.containers.create(base_image, ["true"], labels={**labels, key: value})
        try:
            assert [
                x.id for x in engine.containers.list(all=True, labels={key: value, **labels})
            ] == [c.id]
            assert [
                x.id for x in engine.containers.list(all=True, labels={key: None, **labels})
            ] == [c.id]
            assert engine.containers.list(all=True, labels={key: value + "x", **labels}) == []
        finally:
            engine.containers.remove(c, force=True)


@pytest.mark.parametrize("length", [2, 63])
class TestNameLengths:
    def test_name_at_the_bounds(
        self, engine: Engine, base_image: str, labels: dict[str, str], length: int
    ) -> None:
        name = (_prefix() + "x" * 63)[:length] if length > PREFIX_LEN else _prefix()[-length:]
        if not name[0].isalnum():
            name = "a" + name[1:]
        c = engine.containers.create(base_image, ["true"], name=name, labels=labels)
        try:
            assert engine.containers.get(name).name == name
        finally:
            engine.containers.remove(c, force=True)


class TestOneCharacterName:
    """The contract's name rule allows a single character, Docker's own rule
    needs two: whatever the core decides, an engine carries such a name or
    refuses it with ``InvalidSpec`` and creates nothing (the differential test
    checks that every engine does the same)."""

    def test_one_character_name(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        from enginekit.errors import InvalidSpec

        name = uuid.uuid4().hex[0].upper()
        try:
            c = engine.containers.create(base_image, ["true"], name=name, labels=labels)
        except InvalidSpec:
            assert engine.containers.list(all=True, name=name, labels=labels) == []
            return
        try:
            assert engine.containers.get(name).name == name
        finally:
            engine.containers.remove(c, force=True)
