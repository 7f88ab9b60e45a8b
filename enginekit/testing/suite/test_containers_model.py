"""Containers: the ``Container`` model and the spec's round trip.

CONTRACT.md, "Models" (Container fields, frozen, equal by value, repr without
env values), "Containers" (``spec`` fields), "Time" and "Errors" (no message
shows an env value); also the spec as seen from inside the container.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import pytest

from enginekit import Capability, ContainerState, Mount
from enginekit.errors import Conflict, EngineError, ImageNotFound, InvalidSpec
from enginekit.testing.helpers import assert_utc, parse_env

if TYPE_CHECKING:
    from enginekit import Container, Engine
    from enginekit.testing.fixtures import ContainerFactory

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SLEEP = ["sleep", "100"]


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _output(engine: Engine, c: Container) -> bytes:
    assert engine.containers.wait(c, timeout=30) == 0, engine.containers.logs(c)
    return engine.containers.logs(c, stderr=False)


class TestContainerModel:
    def test_identity_fields(
        self, engine: Engine, base_image: str, run_container: ContainerFactory
    ) -> None:
        c = run_container(SLEEP)
        got = engine.containers.get(c)
        for snap in (c, got):
            assert HEX64.match(snap.id), snap.id
            assert not snap.name.startswith("/")
            assert snap.image == base_image
            assert snap.image_id == engine.images.get(base_image).id
            assert snap.image_id.startswith("sha256:")
            assert snap.engine == engine.name
            assert snap.short_id == snap.id[:12]

    def test_name_as_given(
        self, engine: Engine, create_container: ContainerFactory, make_name: Callable[..., str]
    ) -> None:
        name = make_name("Mixed_Case.name")
        c = create_container(SLEEP, name=name)
        assert c.name == name
        assert engine.containers.get(name).name == name

    def test_image_as_asked_by_id(
        self, engine: Engine, base_image: str, create_container: ContainerFactory
    ) -> None:
        image_id = engine.images.get(base_image).id
        c = create_container(SLEEP, image=image_id)
        assert c.image == image_id
        assert c.image_id == image_id

    def test_timestamps_aware_utc_and_ordered(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        before = dt.datetime.now(dt.UTC)
        c = run_container(["sh", "-c", "sleep 0.2"])
        engine.containers.wait(c, timeout=30)
        got = engine.containers.get(c)
        after = dt.datetime.now(dt.UTC)
        created = assert_utc(got.created_at, "created_at")
        started = assert_utc(got.started_at, "started_at")
        finished = assert_utc(got.finished_at, "finished_at")
        slack = dt.timedelta(seconds=5)
        assert before - slack <= created <= started <= finished <= after + slack
        assert finished - started >= dt.timedelta(seconds=0.1)

    def test_running_snapshot_timestamps(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = engine.containers.get(run_container(SLEEP))
        assert_utc(c.created_at, "created_at")
        assert_utc(c.started_at, "started_at")
        assert c.finished_at is None

    def test_frozen_hashable_equal_by_value(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["true"])
        engine.containers.wait(c, timeout=30)
        a = engine.containers.get(c)
        b = engine.containers.get(c.id)
        assert a == b
        assert hash(a) == hash(b)
        assert len({a, b}) == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            a.name = "other"  # type: ignore[misc]
        assert attrs.evolve(a, name="x") != a

    def test_spec_round_trip(
        self,
        engine: Engine,
        create_container: ContainerFactory,
        labels: dict[str, str],
    ) -> None:
        env = {"EKT_PLAIN": "value with spaces", "EKT_EMPTY": "", "EKT_EQ": "a=b=c"}
        extra = {"ekt.k": "v", "ekt.dotted.key-name": "x y z"}
        c = create_container(
            ["-c", "sleep 100"],
            entrypoint=["/bin/sh"],
            env=env,
            workdir="/tmp",
            user="1000",
            hostname="ekt-host",
            labels=extra,
            stop_signal="SIGTERM",
        )
        for snap in (c, engine.containers.get(c)):
            assert snap.command == ("-c", "sleep 100")
            assert snap.entrypoint == ("/bin/sh",)
            for k, v in env.items():
                assert snap.env.get(k) == v, k
            assert snap.workdir == "/tmp"
            assert snap.user == "1000"
            assert snap.hostname == "ekt-host"
            assert dict(snap.labels) == {**labels, **extra}
            assert snap.network == "bridge"

    def test_default_command_from_image(
        self, engine: Engine, create_container: ContainerFactory
    ) -> None:
        # The base image has neither ENTRYPOINT nor CMD: nothing is made up.
        c = create_container(None, entrypoint=["sleep", "100"])
        assert c.entrypoint == ("sleep", "100")
        assert c.command == ()
        c2 = create_container(SLEEP)
        assert c2.command == tuple(SLEEP)
        assert c2.entrypoint == ()

    @pytest.mark.requires(Capability.MEMORY_LIMIT, Capability.CPU_LIMIT, Capability.PIDS_LIMIT)
    def test_resources_round_trip(self, engine: Engine, create_container: ContainerFactory) -> None:
        c = create_container(SLEEP, memory="64m", cpus=0.5, pids_limit=64)
        for snap in (c, engine.containers.get(c)):
            assert snap.resources.memory == 67108864
            assert snap.resources.cpus == 0.5
            assert snap.resources.pids_limit == 64
        d = create_container(SLEEP, memory=33554432, cpus=1.5)
        assert engine.containers.get(d).resources.memory == 33554432
        assert engine.containers.get(d).resources.cpus == 1.5
        unlimited = create_container(SLEEP)
        assert unlimited.resources.memory is None
        assert unlimited.resources.pids_limit is None

    @pytest.mark.requires(Capability.BIND_MOUNTS)
    def test_mounts_round_trip(
        self, engine: Engine, create_container: ContainerFactory, mount_source: pathlib.Path
    ) -> None:
        (mount_source / "ro").mkdir()
        (mount_source / "rw").mkdir()
        mounts = [
            Mount(source=str(mount_source / "ro"), target="/data/ro", read_only=True),
            Mount(source=str(mount_source / "rw"), target="/data/rw", read_only=False),
        ]
        c = create_container(SLEEP, mounts=mounts)
        for snap in (c, engine.containers.get(c)):
            assert sorted(snap.mounts, key=lambda m: m.target) == mounts


class TestContainerSecrets:
    def test_repr_shows_no_env_value(self, engine: Engine, run_container: ContainerFactory) -> None:
        secret = _secret()
        c = run_container(SLEEP, env={"EKT_TOKEN": secret})
        got = engine.containers.get(c)
        assert got.env["EKT_TOKEN"] == secret
        for snap in (c, got):
            assert secret not in repr(snap)
            assert secret not in str(snap)
        listed = engine.containers.list(all=True, name=c.name)
        assert listed and secret not in repr(listed)

    def test_errors_show_no_env_value(
        self,
        engine: Engine,
        base_image: str,
        create_container: ContainerFactory,
        labels: dict[str, str],
        make_name: Callable[..., str],
    ) -> None:
        secret = _secret()
        first = create_container(SLEEP, env={"EKT_TOKEN": secret})
        attempts: list[tuple[type[EngineError], dict[str, object]]] = [
            (Conflict, {"image": base_image, "name": first.name}),
            (ImageNotFound, {"image": f"enginekit-test/missing:{make_name()}"}),
            (InvalidSpec, {"image": base_image, "workdir": "relative/dir"}),
            (InvalidSpec, {"image": base_image, "name": "-bad name-"}),
        ]
        for expected, spec in attempts:
            image = str(spec.pop("image"))
            spec.setdefault("name", make_name())
            with pytest.raises(expected) as info:
                engine.containers.create(
                    image, SLEEP, env={"EKT_TOKEN": secret}, labels=labels, **spec
                )
            assert secret not in str(info.value), expected
            assert secret not in repr(info.value), expected
        with pytest.raises(InvalidSpec) as bad:
            engine.containers.create(
                base_image, SLEEP, env={"BAD=NAME": secret}, labels=labels, name=make_name()
            )
        assert secret not in str(bad.value)


class TestContainerInside:
    """The spec as seen from inside the container equals the spec."""

    def test_env_user_workdir_hostname(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        env = {"EKT_A": "1", "EKT_B": "two words", "EKT_C": "x=y"}
        c = run_container(
            ["sh", "-c", "env; echo --; id -u; id -g; pwd; hostname"],
            env=env,
            user="1000",
            workdir="/home/app",
            hostname="ekt-inside",
        )
        out = _output(engine, c)
        env_part, _, rest = out.partition(b"--\n")
        seen = parse_env(env_part)
        for k, v in env.items():
            assert seen.get(k) == v, k
        assert rest.split(b"\n")[:4] == [b"1000", b"1000", b"/home/app", b"ekt-inside"]

    @pytest.mark.parametrize(
        ("user", "uid"), [("app", "1000"), ("nobody", "65534"), ("0", "0"), ("1000:65534", "1000")]
    )
    def test_user_forms(
        self, engine: Engine, run_container: ContainerFactory, user: str, uid: str
    ) -> None:
        c = run_container(["id", "-u"], user=user)
        assert _output(engine, c) == uid.encode() + b"\n"

    def test_defaults_root_and_slash(self, engine: Engine, run_container: ContainerFactory) -> None:
        c = run_container(["sh", "-c", "id -u; pwd"])
        assert _output(engine, c) == b"0\n/\n"

    def test_entrypoint_and_command_are_argv(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(
            ["$HOME", "a b", "'q'", "*"], entrypoint=["/bin/busybox", "printf", "[%s]"]
        )
        assert _output(engine, c) == b"[$HOME][a b]['q'][*]"

    @pytest.mark.requires(Capability.MEMORY_LIMIT, Capability.CPU_LIMIT, Capability.PIDS_LIMIT)
    def test_limits_inside(self, engine: Engine, run_container: ContainerFactory) -> None:
        script = (
            "cat /sys/fs/cgroup/memory.max 2>/dev/null"
            " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes;"
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max;"
            "cat /sys/fs/cgroup/cpu.max 2>/dev/null"
            " || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"
            " $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
        )
        c = run_container(["sh", "-c", script], memory="64m", cpus=0.5, pids_limit=64)
        lines = _output(engine, c).decode().split()
        assert lines[0] == "67108864"
        assert lines[1] == "64"
        quota, period = int(lines[2]), int(lines[3])
        assert quota / period == pytest.approx(0.5)

    def test_state_after_run_reflects_exit(
        self, engine: Engine, run_container: ContainerFactory
    ) -> None:
        c = run_container(["sh", "-c", "echo hi"])
        assert _output(engine, c) == b"hi\n"
        assert engine.containers.get(c).state is ContainerState.EXITED
