"""Reliability: secrets never show in a repr, a message or a traceback.

A random value passed as an environment value (``run(..., env=...)``, ``exec(...,
env=...)``, a build argument, an ``ENV`` of a Dockerfile) and a password in a
connection URL appear nowhere in:

- ``repr``/``str`` of the ``Engine``, of ``Container`` and ``Image`` snapshots (and
  their configs), of an ``ExecResult`` whose output does not print it;
- ``str``/``repr`` of any error raised on the way (a missing image, a refused spec
  that echoes fields, a start that fails, a ``Conflict``, an ``EngineTimeout``, a
  build that fails), nor in its attributes (``vars()``), nor in the traceback
  ``traceback.format_exception`` writes, which follows ``__cause__`` and
  ``__context__``, nor in any exception of that chain.

The container's own log may hold the value (it printed it, and the test checks it
did, so that the value demonstrably reached the engine); an error about that
container does not.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

import enginekit
from enginekit.capabilities import Capability
from enginekit.errors import (
    BuildFailed,
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    ImageNotFound,
    InvalidSpec,
)
from enginekit.models import Container, ContainerState, FrozenDict, ImageConfig
from enginekit.testing.helpers import poll

from ._runs import remove_image_quietly

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory, ContainerFactory


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception of its ``__cause__``/``__context__`` chain (a
    context hidden by ``raise ... from None`` excepted, as tracebacks leave it out)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        context = None if cur.__suppress_context__ else cur.__context__
        todo += [e for e in (cur.__cause__, context) if e is not None]


def _texts_of_error(exc: BaseException) -> dict[str, str]:
    texts = {"traceback": "".join(traceback.format_exception(exc))}
    for n, e in enumerate(_chain(exc)):
        where = f"chain[{n}] {type(e).__name__}"
        texts[f"{where} str"] = str(e)
        texts[f"{where} repr"] = repr(e)
        texts[f"{where} args"] = repr(e.args)
        texts[f"{where} vars"] = repr(getattr(e, "__dict__", {}))
    return texts


def assert_hidden(secret: str, what: str, *objects: object) -> None:
    """``secret`` is in no repr/str of ``objects`` (for errors: nor in their chain,
    attributes and formatted traceback)."""
    shown = []
    for obj in objects:
        if isinstance(obj, BaseException):
            texts = _texts_of_error(obj)
        else:
            texts = {f"{type(obj).__name__} repr": repr(obj), f"{type(obj).__name__} str": str(obj)}
        shown += [f"{what}: {name}" for name, text in texts.items() if secret in text]
    assert shown == [], "a secret is shown:\n  " + "\n  ".join(shown)


def _printed(engine: Engine, c: Container, secret: str) -> None:
    """Wait until the container has printed its env (the value reached it)."""
    poll(
        lambda: f"TOKEN={secret}".encode() in engine.containers.logs(c),
        timeout=30,
        message="the container's env in its log",
    )


def provoke(call: Callable[[], object], expected: type[BaseException]) -> BaseException:
    """The error ``call()`` raises, which must be an ``expected``."""
    with pytest.raises(EngineError) as info:
        call()
    assert isinstance(info.value, expected), (
        f"expected {expected.__name__}, got {type(info.value).__name__}: {info.value}"
    )
    return info.value


class TestReliabilitySecrets:
    def test_reprs_of_engine_container_and_results(
        self,
        engine: Engine,
        labels: dict[str, str],
        run_container: ContainerFactory,
        create_container: ContainerFactory,
    ) -> None:
        secret = _secret()
        env = {"TOKEN": secret, "OTHER": f"prefix {secret} suffix"}
        created = create_container(["sh", "-c", "env; sleep 600"], env=env)
        running = run_container(["sh", "-c", "env; sleep 600"], env=env)
        _printed(engine, running, secret)
        got = engine.containers.get(running)
        assert got.env["TOKEN"] == secret, "the env did not reach the snapshot"
        listed = engine.containers.list(all=True, labels=labels)
        assert_hidden(secret, "snapshots", engine, created, running, got, listed)
        if Capability.EXEC in engine.capabilities:
            res = engine.containers.exec(running, ["sh", "-c", "exit 3"], env=env)
            assert res.exit_code == 3
            assert_hidden(secret, "exec result", res)
        stopped = engine.containers.stop(running, timeout=1)
        assert stopped.state is ContainerState.EXITED
        assert_hidden(secret, "stopped", stopped)
        # The log holds what the container printed: the value reached it.
        assert f"TOKEN={secret}".encode() in engine.containers.logs(stopped)

    def test_models_made_by_hand_mask_env(self) -> None:
        secret = _secret()
        c = Container(
            id="0" * 64,
            name="x",
            image="app:1",
            state=ContainerState.CREATED,
            env={"TOKEN": secret},
        )
        cfg = ImageConfig(env={"TOKEN": secret})
        assert_hidden(secret, "models", c, cfg)
        assert c.env == FrozenDict({"TOKEN": secret})

    def test_errors_of_containers(
        self,
        engine: Engine,
        base_image: str,
        labels: dict[str, str],
        make_name: Callable[..., str],
        run_container: ContainerFactory,
    ) -> None:
        secret = _secret()
        env = {"TOKEN": secret}
        run = engine.containers.run
        create = engine.containers.create
        errors: dict[str, BaseException] = {
            "missing image": provoke(
                lambda: run(f"{make_name()}:missing", ["true"], env=env, labels=labels),
                ImageNotFound,
            ),
            "bad name beside the env": provoke(
                lambda: create(base_image, ["true"], name="a/b", env=env, labels=labels),
                InvalidSpec,
            ),
            "bad env name, secret value": provoke(
                lambda: create(base_image, ["true"], env={**env, "A=B": secret}, labels=labels),
                InvalidSpec,
            ),
            "env value with a line break": provoke(
                lambda: create(base_image, ["true"], env={"TOKEN": f"{secret}\nX"}, labels=labels),
                InvalidSpec,
            ),
            "env in an unknown key": provoke(
                lambda: create(base_image, ["true"], environment=env, labels=labels),
                InvalidSpec,
            ),
            "env as a list": provoke(
                lambda: create(base_image, ["true"], env=[f"TOKEN={secret}"], labels=labels),
                InvalidSpec,
            ),
            "bad memory beside the env": provoke(
                lambda: create(base_image, ["true"], env=env, memory="-1m", labels=labels),
                InvalidSpec,
            ),
            "a user that does not exist": provoke(
                lambda: run(base_image, ["true"], env=env, user="nosuchuser", labels=labels),
                EngineError,
            ),
        }
        name = make_name()
        first = create(base_image, ["true"], name=name, env=env, labels=labels)
        errors["name in use"] = provoke(
            lambda: create(base_image, ["true"], name=name, env=env, labels=labels), Conflict
        )
        c = run_container(["sh", "-c", "env; sleep 600"], env=env)
        _printed(engine, c, secret)
        errors["wait past its deadline"] = provoke(
            lambda: engine.containers.wait(c, timeout=0.2), EngineTimeout
        )
        errors["remove while running"] = provoke(lambda: engine.containers.remove(c), Conflict)
        if Capability.EXEC in engine.capabilities:
            errors["exec with a bad env"] = provoke(
                lambda: engine.containers.exec(c, ["true"], env={**env, "B": "x\0y"}),
                InvalidSpec,
            )
        engine.containers.kill(c)
        assert f"TOKEN={secret}".encode() in engine.containers.logs(c), "the env never arrived"
        if Capability.EXEC in engine.capabilities:
            errors["exec of an exited container"] = provoke(
                lambda: engine.containers.exec(c, ["env"], env=env), Conflict
            )
        if Capability.PAUSE in engine.capabilities:
            errors["pause of an exited container"] = provoke(
                lambda: engine.containers.pause(c), Conflict
            )
        engine.containers.remove(c)
        engine.containers.remove(first)
        errors["logs of a removed container"] = provoke(
            lambda: engine.containers.logs(c), ContainerNotFound
        )
        if Capability.EXEC in engine.capabilities:
            errors["exec of a removed container"] = provoke(
                lambda: engine.containers.exec(c, ["env"], env=env), ContainerNotFound
            )
        for what, exc in errors.items():
            assert_hidden(secret, what, exc)

    @pytest.mark.requires(Capability.BUILD)
    @pytest.mark.parametrize(
        ("dockerfile", "expected"),
        [
            ('ARG TOKEN\nENV T2=$TOKEN\nRUN test -z "$T2"\n', BuildFailed),
            ("ENV T2={secret}\nRUN exit 4\n", BuildFailed),
            ("ARG TOKEN\nENV T2=${{TOKEN}}\nWORKDIR /srv/$T2\nRUN exit 5\n", BuildFailed),
            ("ARG TOKEN\nCOPY missing-${{TOKEN}} /x\n", InvalidSpec),
            ("ARG TOKEN\nENV T2=$TOKEN\nRUN printenv T2 > /dev/null; exit 6\n", BuildFailed),
        ],
        ids=[
            "RUN fails with an ARG in its env",
            "RUN fails after an ENV written in the Dockerfile",
            "WORKDIR made of the ARG",
            "COPY source made of the ARG",
            "RUN reads the value and fails",
        ],
    )
    def test_errors_of_builds(
        self,
        engine: Engine,
        base_image: str,
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        dockerfile: str,
        expected: type[BaseException],
    ) -> None:
        secret = _secret()
        text = f"FROM {base_image}\n" + dockerfile.format(secret=secret)
        ctx = build_context(text, busybox=False)
        tag = f"{make_name('secret')}:v1"
        try:
            exc = provoke(
                lambda: engine.images.build(
                    str(ctx),
                    tag=tag,
                    build_args={"TOKEN": secret},
                    labels=labels,
                ),
                expected,
            )
        finally:
            remove_image_quietly(engine, tag)
        assert_hidden(secret, "build", exc)

    @pytest.mark.requires(Capability.BUILD)
    def test_image_with_a_secret_env(
        self,
        engine: Engine,
        base_image: str,
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        secret = _secret()
        ctx = build_context(f"FROM {base_image}\nARG TOKEN\nENV T2=$TOKEN\n", busybox=False)
        tag = f"{make_name('secret')}:v1"
        try:
            image = engine.images.build(
                str(ctx), tag=tag, build_args={"TOKEN": secret}, labels=labels
            )
            assert dict(image.config.env).get("T2") == secret
            again = engine.images.get(tag)
            listed = engine.images.list(name=tag)
            assert_hidden(secret, "image", image, image.config, again, listed)
            c = engine.containers.create(tag, ["true"], labels=labels)
            try:
                assert c.env.get("T2") == secret
                assert_hidden(secret, "container of the image", c, engine.containers.get(c))
            finally:
                engine.containers.remove(c, force=True)
        finally:
            remove_image_quietly(engine, tag)


class TestReliabilitySecretsInUrls:
    """A password in an engine URL: refused, or accepted and never shown."""

    @staticmethod
    def _urls(engine_name: str, password: str) -> list[str]:
        name = engine_name.split("+", 1)[0].split(":", 1)[0]
        return [
            f"{name}+tcp://user:{password}@127.0.0.1:9",
            f"{name}+http://user:{password}@127.0.0.1:9",
            f"{name}://user:{password}@127.0.0.1:9/x",
        ]

    def test_connect(self, engine: Engine, engine_name: str) -> None:
        password = _secret()
        for url in self._urls(engine_name, password):
            try:
                eng = enginekit.connect(url)
            except EngineError as exc:
                assert_hidden(password, f"connect({url!r})", exc)
                continue
            try:
                assert_hidden(password, f"connected with {url!r}", eng)
                exc2 = provoke(eng.ping, EngineError)
                assert_hidden(password, f"ping of {url!r}", exc2)
            finally:
                eng.close()
            status = enginekit.engines(url)
            assert_hidden(password, f"engines({url!r})", status)

    def test_connect_from_the_environment(
        self, engine: Engine, engine_name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        password = _secret()
        for url in self._urls(engine_name, password):
            monkeypatch.setenv("ENGINEKIT_URL", url)
            monkeypatch.delenv("ENGINEKIT_ENGINE", raising=False)
            try:
                eng = enginekit.connect()
            except EngineError as exc:
                assert_hidden(password, f"ENGINEKIT_URL={url!r}", exc)
                continue
            try:
                assert_hidden(password, f"connected with ENGINEKIT_URL={url!r}", eng)
            finally:
                eng.close()
