"""Bad input is refused alike on every engine: ``InvalidSpec`` (a ``ValueError``)
before anything is created; a missing image or container is ``NotFound``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from enginekit.capabilities import Capability
from enginekit.errors import ContainerNotFound, ImageNotFound, InvalidSpec, NotFound
from enginekit.models import Mount
from enginekit.testing.strategies import InvalidCase, invalid_specs

from ._runs import examples, new_objects, snapshot

if TYPE_CHECKING:
    from enginekit import Engine


# (why, command, spec): each breaks one rule of CONTRACT.md's spec.
BAD_SPECS: list[tuple[str, Any, dict[str, Any]]] = [
    ("name with /", ["true"], {"name": "a/b"}),
    ("name with a space", ["true"], {"name": "a b"}),
    ("name with leading -", ["true"], {"name": "-abc"}),
    ("name with leading .", ["true"], {"name": ".abc"}),
    ("name of 64 characters", ["true"], {"name": "a" * 64}),
    ("empty name", ["true"], {"name": ""}),
    ("name not a str", ["true"], {"name": 12}),
    ("string command", "echo hi", {}),
    ("bytes command", b"echo hi", {}),
    ("command with a non-str", ["echo", 1], {}),
    ("command with NUL", ["echo", "a\0b"], {}),
    ("string entrypoint", ["x"], {"entrypoint": "/bin/sh -c"}),
    ("env name with =", ["true"], {"env": {"A=B": "v"}}),
    ("empty env name", ["true"], {"env": {"": "v"}}),
    ("env name with NUL", ["true"], {"env": {"A\0": "v"}}),
    ("env value with NUL", ["true"], {"env": {"A": "a\0b"}}),
    ("env value not a str", ["true"], {"env": {"A": 1}}),
    ("env not a mapping", ["true"], {"env": ["A=1"]}),
    ("empty label key", ["true"], {"labels": {"": "v"}}),
    ("label value with NUL", ["true"], {"labels": {"k": "a\0b"}}),
    ("label value not a str", ["true"], {"labels": {"k": 1}}),
    ("negative memory", ["true"], {"memory": -1}),
    ("zero memory", ["true"], {"memory": 0}),
    ("memory with a bad unit", ["true"], {"memory": "64x"}),
    ("memory of a negative size", ["true"], {"memory": "-64m"}),
    ("zero cpus", ["true"], {"cpus": 0}),
    ("negative cpus", ["true"], {"cpus": -1.5}),
    ("cpus not a number", ["true"], {"cpus": "two"}),
    ("zero pids_limit", ["true"], {"pids_limit": 0}),
    ("negative pids_limit", ["true"], {"pids_limit": -5}),
    ("unknown spec key", ["true"], {"bogus": 1}),
    ("docker-py spelling of a key", ["true"], {"environment": {"A": "1"}}),
    ("container port 0", ["true"], {"ports": {0: 8080}}),
    ("container port above 65535", ["true"], {"ports": {70000: 8080}}),
    ("host port above 65535", ["true"], {"ports": {80: 70000}}),
    ("negative host port", ["true"], {"ports": {80: -1}}),
    ("unknown protocol", ["true"], {"ports": {"80/sctp": 8080}}),
    ("relative mount source", ["true"], {"mounts": [Mount(source="rel", target="/mnt")]}),
    ("relative mount target", ["true"], {"mounts": [Mount(source="/tmp", target="mnt")]}),
    ("relative workdir", ["true"], {"workdir": "relative/dir"}),
    ("empty workdir", ["true"], {"workdir": ""}),
    ("unknown network", ["true"], {"network": "weird"}),
    ("hostname with a space", ["true"], {"hostname": "a b"}),
    ("hostname of 64 characters", ["true"], {"hostname": "h" * 64}),
    ("user with a space", ["true"], {"user": "a b"}),
    ("unknown stop signal", ["true"], {"stop_signal": "SIGBOGUS"}),
]


def _labelled(engine: Engine, labels: dict[str, str]) -> set[str]:
    return {c.id for c in engine.containers.list(all=True, labels=labels)}


def _check_refused(
    engine: Engine, image: str, command: Any, spec: dict[str, Any], labels: dict[str, str]
) -> None:
    """Both ``create`` and ``run`` refuse with InvalidSpec and create nothing."""
    spec = dict(spec)
    extra = spec.get("labels", {})
    spec["labels"] = {**labels, **extra} if isinstance(extra, Mapping) else extra
    before_labelled = _labelled(engine, labels)
    # A container spec cannot make an image: containers are what to look for.
    before = snapshot(engine, images=False)
    for call in (engine.containers.create, engine.containers.run):
        with pytest.raises(InvalidSpec) as info:
            call(image, command, **spec)
        assert isinstance(info.value, ValueError)
        # Messages never quote an env value.
        env = spec.get("env")
        for value in env.values() if isinstance(env, Mapping) else ():
            if isinstance(value, str) and len(value) > 2:
                assert value not in str(info.value)
    assert _labelled(engine, labels) == before_labelled
    assert new_objects(engine, before, images=False) == {"containers": [], "images": []}


class TestInvalidSpecs:
    @pytest.mark.parametrize(
        ("why", "command", "spec"), BAD_SPECS, ids=[why for why, _, _ in BAD_SPECS]
    )
    def test_refused(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        why: str,
        command: Any,
        spec: dict[str, Any],
    ) -> None:
        _check_refused(engine, base_image, command, spec, labels)

    @settings(
        max_examples=examples(25),
        deadline=None,
        database=None,  # the suite runs in other projects: leave no example database
        # differing_executors: one test class runs once per chosen engine.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(case=invalid_specs())
    def test_drawn_invalid_specs_refused(
        self, engine: Engine, base_image: str, labels: dict[str, str], case: InvalidCase
    ) -> None:
        _check_refused(engine, base_image, case.command, dict(case.spec), labels)

    def test_env_value_never_shown(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        secret = "s3cr3t-" + uuid.uuid4().hex
        with pytest.raises(InvalidSpec) as info:
            engine.containers.create(
                base_image, ["true"], env={"OK": secret, "BAD NAME": secret}, labels=labels
            )
        assert secret not in str(info.value)
        assert secret not in repr(info.value)

    def test_bad_image_references(self, engine: Engine, labels: dict[str, str]) -> None:
        for ref in ("UPPER/Case:1", "has space:1", "a:bad tag", "", "sha256:xyz"):
            with pytest.raises(InvalidSpec):
                engine.containers.create(ref, ["true"], labels=labels)
            with pytest.raises(InvalidSpec):
                engine.images.get(ref)

    def test_bad_label_filter(self, engine: Engine) -> None:
        with pytest.raises(InvalidSpec):
            engine.containers.list(labels="enginekit.test.run")  # type: ignore[arg-type]
        with pytest.raises(InvalidSpec):
            engine.images.list(labels="enginekit.test.run")  # type: ignore[arg-type]

    @pytest.mark.requires(Capability.EXEC)
    def test_exec_string_command(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        c = engine.containers.run(base_image, ["sleep", "600"], labels=labels)
        try:
            with pytest.raises(InvalidSpec):
                engine.containers.exec(c, "echo hi")  # type: ignore[arg-type]
            with pytest.raises(InvalidSpec):
                engine.containers.exec(c, ["true"], env={"A=B": "1"})
            with pytest.raises(InvalidSpec):
                engine.containers.exec(c, ["true"], workdir="relative")
        finally:
            engine.containers.remove(c, force=True)

    def test_bad_build_inputs(
        self,
        engine: Engine,
        build_context: Callable[..., Any],
        labels: dict[str, str],
    ) -> None:
        ctx = build_context("FROM scratch\nCOPY busybox /bin/busybox\n")
        bad: tuple[dict[str, Any], ...] = (
            {"tag": "Bad:Tag"},
            {"tag": "a b:1"},
            {"tags": "single-string:1"},
            {"build_args": {"A=B": "1"}},
            {"labels": {"": "x", **labels}},
        )
        for kwargs in bad:
            args: dict[str, Any] = {"labels": labels, **kwargs}
            with pytest.raises(InvalidSpec):
                engine.images.build(str(ctx), **args)


class TestMissingObjects:
    def test_missing_image(
        self, engine: Engine, labels: dict[str, str], make_name: Callable[..., str]
    ) -> None:
        missing = f"{make_name()}:missing"
        before = _labelled(engine, labels)
        for call in (engine.containers.create, engine.containers.run):
            with pytest.raises(ImageNotFound) as info:
                call(missing, ["true"], labels=labels)
            assert isinstance(info.value, NotFound)
        assert _labelled(engine, labels) == before

    def test_missing_container(
        self, engine: Engine, make_name: Callable[..., str], tmp_path: Path
    ) -> None:
        name = make_name("missing")
        calls: list[tuple[str, Callable[[], object]]] = [
            ("get", lambda: engine.containers.get(name)),
            ("start", lambda: engine.containers.start(name)),
            ("stop", lambda: engine.containers.stop(name)),
            ("kill", lambda: engine.containers.kill(name)),
            ("restart", lambda: engine.containers.restart(name)),
            ("remove", lambda: engine.containers.remove(name)),
            ("remove force", lambda: engine.containers.remove(name, force=True)),
            ("wait", lambda: engine.containers.wait(name, timeout=5)),
            ("logs", lambda: engine.containers.logs(name)),
            ("get by id", lambda: engine.containers.get("f" * 64)),
        ]
        caps = engine.capabilities
        if Capability.PAUSE in caps:
            calls += [
                ("pause", lambda: engine.containers.pause(name)),
                ("unpause", lambda: engine.containers.unpause(name)),
            ]
        if Capability.EXEC in caps:
            calls.append(("exec", lambda: engine.containers.exec(name, ["true"])))
        if Capability.STATS in caps:
            calls.append(("stats", lambda: engine.containers.stats(name)))
        if Capability.COPY in caps:
            calls.append(("copy_from", lambda: engine.containers.copy_from(name, "/", tmp_path)))
        wrong = []
        for what, call in calls:
            try:
                call()
            except ContainerNotFound:
                continue
            except Exception as exc:
                wrong.append(f"{what}: {type(exc).__name__}: {exc}")
            else:
                wrong.append(f"{what}: no error")
        assert wrong == [], "not ContainerNotFound:\n" + "\n".join(wrong)
