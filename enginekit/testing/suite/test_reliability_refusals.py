"""Reliability: what only the engine can refuse is refused alike, and leaves nothing.

The core checks every value it can before an engine is called; a few depend on
what only the engine sees (CONTRACT.md, "Errors": the same failure reads the
same on every engine):

- a user or a group the image does not have: ``InvalidSpec`` (also a
  ``ValueError``) with Docker's words, ``unable to find user NAME: no matching
  entries in passwd file`` (``group``/``group file`` for a group), from
  ``start`` and ``run`` (``run`` removes the container it made; a ``start``
  leaves the container created) and from ``exec(user=...)`` (the container
  runs on);
- a working directory that is, or runs through, a file in the image:
  ``InvalidSpec("cannot create the working directory PATH: not a directory")``
  from ``create`` and ``run``, as Docker refuses it when it creates the
  container: nothing is made;
- a host port that something else holds: ``Conflict("host port
  ADDRESS:PORT is already in use")`` from ``start`` and ``run``, ADDRESS the
  engine host's published address (127.0.0.1 for an engine here); the
  container made by ``create`` stays created, and starts once the port is free;
- an exec whose command and environment are more than one exec can carry:
  never ``EngineUnavailable`` (the engine is there), the container runs on.

Each test makes its containers with a label of its own and looks for them
after the refusal; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import Conflict, EngineError, EngineUnavailable, InvalidSpec
from enginekit.models import ContainerState

from ..helpers import busy_host_port, published_address

if TYPE_CHECKING:
    from enginekit import Engine

MARK = "enginekit.test.refusal"
#: A file in the base image (its only binary).
FILE = "/bin/busybox"

ACCOUNTS = [
    pytest.param(
        "nosuchuser",
        "unable to find user nosuchuser: no matching entries in passwd file",
        id="user",
    ),
    pytest.param(
        "0:nosuchgroup",
        "unable to find group nosuchgroup: no matching entries in group file",
        id="group",
    ),
    pytest.param(
        "nobody:nosuchgroup",
        "unable to find group nosuchgroup: no matching entries in group file",
        id="user-and-group",
    ),
]
WORKDIRS = [
    pytest.param(FILE, id="a-file"),
    pytest.param(f"{FILE}/sub", id="through-a-file"),
]


def _labelled(labels: dict[str, str]) -> tuple[dict[str, str], str]:
    mark = uuid.uuid4().hex[:12]
    return {**labels, MARK: mark}, mark


def _left(engine: Engine, mark: str) -> list[str]:
    """Containers carrying this test's mark, in any state."""
    return sorted(c.id for c in engine.containers.list(all=True, labels={MARK: mark}))


def _remove_marked(engine: Engine, mark: str) -> None:
    for cid in _left(engine, mark):
        with contextlib.suppress(EngineError):
            engine.containers.remove(cid, force=True)


def _refused(call: Any, *args: Any, **kwargs: Any) -> EngineError:
    try:
        call(*args, **kwargs)
    except EngineError as exc:
        return exc
    pytest.fail(f"{getattr(call, '__name__', call)} was not refused", pytrace=False)


class TestReliabilityRefusedForTheImage:
    """A user, group or working directory the image cannot give."""

    @pytest.mark.parametrize(("user", "message"), ACCOUNTS)
    def test_run_refuses_a_missing_account_and_leaves_nothing(
        self, engine: Engine, base_image: str, labels: dict[str, str], user: str, message: str
    ) -> None:
        marked, mark = _labelled(labels)
        try:
            error = _refused(engine.containers.run, base_image, ["true"], user=user, labels=marked)
            assert type(error) is InvalidSpec and isinstance(error, ValueError), repr(error)
            assert str(error) == message
            assert _left(engine, mark) == [], "run left the container it made"
        finally:
            _remove_marked(engine, mark)

    @pytest.mark.parametrize(("user", "message"), ACCOUNTS)
    def test_start_refuses_a_missing_account_and_leaves_it_created(
        self, engine: Engine, base_image: str, labels: dict[str, str], user: str, message: str
    ) -> None:
        marked, mark = _labelled(labels)
        try:
            c = engine.containers.create(base_image, ["true"], user=user, labels=marked)
            error = _refused(engine.containers.start, c)
            assert type(error) is InvalidSpec, repr(error)
            assert str(error) == message
            assert engine.containers.get(c).state is ContainerState.CREATED
            assert _left(engine, mark) == [c.id]
        finally:
            _remove_marked(engine, mark)

    @pytest.mark.parametrize("workdir", WORKDIRS)
    def test_a_workdir_that_is_a_file_is_refused_before_anything_is_made(
        self, engine: Engine, base_image: str, labels: dict[str, str], workdir: str
    ) -> None:
        marked, mark = _labelled(labels)
        message = f"cannot create the working directory {workdir}: not a directory"
        try:
            for call in (engine.containers.run, engine.containers.create):
                error = _refused(call, base_image, ["true"], workdir=workdir, labels=marked)
                assert type(error) is InvalidSpec, f"{call.__name__}: {error!r}"
                assert str(error) == message, call.__name__
                assert _left(engine, mark) == [], f"{call.__name__} left a container"
        finally:
            _remove_marked(engine, mark)

    @pytest.mark.requires(Capability.EXEC)
    def test_exec_refuses_a_missing_account(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        marked, mark = _labelled(labels)
        try:
            c = engine.containers.run(base_image, ["sleep", "300"], labels=marked)
            for param in ACCOUNTS:
                user, message = param.values
                error = _refused(engine.containers.exec, c, ["true"], user=user)
                assert type(error) is InvalidSpec, f"{user}: {error!r}"
                assert str(error) == message
            assert engine.containers.get(c).state is ContainerState.RUNNING
            assert engine.containers.exec(c, ["id", "-u"], user="nobody").stdout == b"65534\n"
        finally:
            _remove_marked(engine, mark)


@pytest.mark.requires(Capability.PORTS)
class TestReliabilityRefusedForTheHost:
    """A host port that something else holds."""

    def test_run_refuses_a_port_in_use_and_leaves_nothing(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        marked, mark = _labelled(labels)
        address = published_address(engine)
        try:
            with busy_host_port(engine, base_image, labels) as port:
                error = _refused(
                    engine.containers.run, base_image, ["true"], ports={80: port}, labels=marked
                )
            assert type(error) is Conflict, repr(error)
            assert str(error) == f"host port {address}:{port} is already in use"
            assert _left(engine, mark) == [], "run left the container it made"
        finally:
            _remove_marked(engine, mark)

    def test_start_refuses_a_port_in_use_and_starts_once_it_is_free(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        marked, mark = _labelled(labels)
        address = published_address(engine)
        try:
            with busy_host_port(engine, base_image, labels) as port:
                c = engine.containers.create(
                    base_image, ["sleep", "300"], ports={80: port}, labels=marked
                )
                error = _refused(engine.containers.start, c)
                assert type(error) is Conflict, repr(error)
                assert str(error) == f"host port {address}:{port} is already in use"
                assert engine.containers.get(c).state is ContainerState.CREATED
            started = engine.containers.start(c)
            assert started.state is ContainerState.RUNNING
            assert [(p.host_ip, p.host_port) for p in started.ports] == [(address, port)]
        finally:
            _remove_marked(engine, mark)


@pytest.mark.requires(Capability.EXEC)
class TestReliabilityExecNotStarted:
    """An exec the kernel will not start is the exec's failure, not a missing engine."""

    def test_a_command_too_big_for_one_exec(
        self, engine: Engine, base_image: str, labels: dict[str, str]
    ) -> None:
        marked, mark = _labelled(labels)
        # Over the 6 MiB of arguments one exec may carry whatever the stack
        # limit, each argument under the core's own bound.
        too_big = ["x" * 120_000] * 60
        try:
            c = engine.containers.run(base_image, ["sleep", "300"], labels=marked)
            try:
                result = engine.containers.exec(c, ["true", *too_big])
            except EngineUnavailable as exc:
                pytest.fail(f"the engine is there, yet: {exc!r}", pytrace=False)
            except EngineError:
                pass  # LXC: lxc-attach could not be started
            else:
                assert result.exit_code != 0, result
            assert engine.containers.get(c).state is ContainerState.RUNNING
            assert engine.containers.exec(c, ["echo", "ok"]).stdout == b"ok\n"
        finally:
            _remove_marked(engine, mark)
