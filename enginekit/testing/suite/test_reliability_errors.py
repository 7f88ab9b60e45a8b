"""Reliability: the error contract, alike on every engine.

- Only engine-side failures are translated. An exception the caller's own
  ``progress`` callback raises during a build leaves ``images.build`` as it was
  raised (the very object, no ``__cause__``), on every engine, whenever it is
  raised (at the first line, in a step's output, at the last line), and the
  build leaves nothing behind (no container, no image, no tag). A call that
  does not fit a method (an unknown keyword, a missing argument) is Python's
  ``TypeError`` before anything is created.
- Errors are data: a missing container, for every container operation, and a
  missing image, for every image operation, is ``ContainerNotFound`` /
  ``ImageNotFound`` with the same message on every engine and the fields
  ``engine``, ``operation``, ``address`` and ``ref`` filled; the error pickles
  with its fields.
"""

from __future__ import annotations

import functools
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import (
    ContainerNotFound,
    EngineError,
    InvalidSpec,
    NotFound,
)

from ._runs import remove_image_quietly, snapshot, table
from .test_build import FINGERPRINT, _fingerprinted
from .test_reliability_inputs import left_by

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory


class CallbackStop(Exception):
    """What the test's progress callback raises: the caller's own exception."""


BUILD_DOCKERFILE = """\
FROM {base}
RUN echo layer-{mark} > /a
RUN echo stop-here; sleep 1; echo after-stop
RUN echo last > /b
"""

# Where the callback raises: the first line it sees, a line of a step's own
# output (a step container is running), the very last line (the image is made).
WHERE = {
    "first line": lambda line, seen: seen == 1,
    "step output": lambda line, seen: line.strip() == "stop-here",
    "last line": None,  # found by a first build that only records the lines
}


def _raising(stop_at: Callable[[str, int], bool], raised: BaseException) -> Callable[[str], None]:
    """A progress callback that raises ``raised`` at the line ``stop_at`` picks."""
    seen = 0

    def progress(line: str) -> None:
        nonlocal seen
        seen += 1
        if stop_at(line, seen):
            raise raised

    return progress


def _wrong_calls(
    eng: Engine, base: str, ctx: str, cname: str, marked: dict[str, str]
) -> dict[str, Callable[[], object]]:
    """Calls that do not fit the method they call (each would make something if it did)."""
    anything: Any = eng  # the calls are wrong on purpose: no type checking of them
    return {
        "run(bogus_kw=1)": lambda: anything.containers.run(
            base, ["true"], name=cname, labels=marked, bogus_kw=1
        ),
        "create(bogus_kw=1)": lambda: anything.containers.create(
            base, ["true"], name=cname, labels=marked, bogus_kw=1
        ),
        "build(progres=print)": lambda: anything.images.build(
            ctx, tag=f"{cname}:v1", labels=marked, progres=print
        ),
        "logs(ref, bogus=1)": lambda: anything.containers.logs(cname, bogus=1),
        "get()": lambda: anything.containers.get(),
        "stop(ref, 5, 6)": lambda: anything.containers.stop(cname, 5, 6),
    }


@pytest.mark.requires(Capability.BUILD)
class TestReliabilityCallerErrors:
    @staticmethod
    def _context(build_context: BuildContextFactory, base: str, mark: str) -> str:
        text = _fingerprinted(BUILD_DOCKERFILE.format(base=base, mark=mark), mark)
        return str(build_context(text, busybox=False))

    @pytest.mark.parametrize("where", list(WHERE))
    def test_progress_exception_leaves_unchanged_and_nothing_behind(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        where: str,
    ) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            mark = uuid.uuid4().hex[:12]
            tag = f"{make_name('cb')}:v1"
            ctx = self._context(build_context, base_images[name], mark)
            marked = {**labels, FINGERPRINT: mark}
            stop_at = WHERE[where]
            if stop_at is None:
                # A build of the same steps (another mark: nothing comes from a
                # cache) run to its end tells how many lines there are.
                lines: list[str] = []
                other = uuid.uuid4().hex[:12]
                eng.images.build(
                    self._context(build_context, base_images[name], other),
                    tag=tag,
                    labels={**labels, FINGERPRINT: other},
                    progress=lines.append,
                )
                remove_image_quietly(eng, tag)
                last = len(lines)

                def stop_at(line: str, seen: int, last: int = last) -> bool:
                    return seen == last

            raised = CallbackStop(f"stop {name}")
            progress = _raising(stop_at, raised)
            before = snapshot(eng)
            try:
                eng.images.build(ctx, tag=tag, labels=marked, progress=progress)
            except BaseException as exc:
                got: BaseException | None = exc
            else:
                got = None
            left = left_by(eng, before, mark)
            tagged = eng.images.exists(tag)
            if tagged:
                remove_image_quietly(eng, tag)
            rows[name] = {
                "raised": type(got).__name__ if got is not None else "nothing",
                "same object": got is raised,
                "cause": repr(got.__cause__) if got is not None else None,
                "left": left,
                "tag exists": tagged,
            }
        expected = {
            "raised": "CallbackStop",
            "same object": True,
            "cause": "None",
            "left": {"containers": [], "images": []},
            "tag exists": False,
        }
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title=f"progress raises at the {where}"),
                pytrace=False,
            )

    def test_wrong_calls_are_type_errors_before_anything_is_made(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for name, eng in engines.items():
            mark = uuid.uuid4().hex[:12]
            marked = {**labels, FINGERPRINT: mark}
            ctx = str(build_context(_fingerprinted(f"FROM {base_images[name]}\n", mark)))
            cname = make_name("wrong")
            calls = _wrong_calls(eng, base_images[name], ctx, cname, marked)
            before = snapshot(eng)
            row: dict[str, Any] = {}
            for what, call in calls.items():
                try:
                    call()
                except Exception as exc:
                    kind = "TypeError" if isinstance(exc, TypeError) else type(exc).__name__
                    if isinstance(exc, EngineError) and not isinstance(exc, InvalidSpec):
                        kind = f"{type(exc).__name__} (an EngineError)"
                    row[what] = kind
                else:
                    row[what] = "no error"
            row["left"] = left_by(eng, before, mark)
            rows[name] = row
        expected: dict[str, Any] = dict.fromkeys(rows[next(iter(rows))], "TypeError")
        expected["left"] = {"containers": [], "images": []}
        if any(row != expected for row in rows.values()):
            pytest.fail(table({"expected": expected, **rows}, title="wrong calls"), pytrace=False)


def _container_calls(tmp: Path) -> dict[str, tuple[Capability | None, Callable[..., object]]]:
    """Every container operation that names a container: (capability, call(svc, ref))."""
    (tmp / "file").write_text("x")
    return {
        "get": (None, lambda s, r: s.get(r)),
        "start": (None, lambda s, r: s.start(r)),
        "stop": (None, lambda s, r: s.stop(r, timeout=1)),
        "kill": (None, lambda s, r: s.kill(r)),
        "restart": (None, lambda s, r: s.restart(r, timeout=1)),
        "wait": (None, lambda s, r: s.wait(r, timeout=5)),
        "remove": (None, lambda s, r: s.remove(r, force=True)),
        "logs": (None, lambda s, r: s.logs(r)),
        "stream_logs": (None, lambda s, r: list(s.stream_logs(r, follow=False))),
        "pause": (Capability.PAUSE, lambda s, r: s.pause(r)),
        "unpause": (Capability.PAUSE, lambda s, r: s.unpause(r)),
        "exec": (Capability.EXEC, lambda s, r: s.exec(r, ["true"])),
        "stats": (Capability.STATS, lambda s, r: s.stats(r)),
        "copy_to": (Capability.COPY, lambda s, r: s.copy_to(r, str(tmp / "file"), "/tmp")),
        "copy_from": (Capability.COPY, lambda s, r: s.copy_from(r, "/etc", str(tmp / "out"))),
    }


def _image_calls(tmp: Path) -> dict[str, tuple[Capability | None, str, Callable[..., object]]]:
    """Every operation that names an image: (capability, its operation, call(engine, ref))."""
    return {
        "images.get": (None, "images.get", lambda e, r: e.images.get(r)),
        "images.tag": (None, "images.tag", lambda e, r: e.images.tag(r, f"{r}-copy")),
        "images.remove": (None, "images.remove", lambda e, r: e.images.remove(r)),
        "images.remove force": (None, "images.remove", lambda e, r: e.images.remove(r, force=True)),
        "images.save": (
            Capability.IMAGE_SAVE,
            "images.save",
            lambda e, r: e.images.save(r, str(tmp / "saved.tar")),
        ),
        "containers.create": (
            None,
            "containers.create",
            lambda e, r: e.containers.create(r, ["true"]),
        ),
        "containers.run": (None, "containers.run", lambda e, r: e.containers.run(r, ["true"])),
    }


def _error_row(exc: BaseException | None) -> dict[str, Any]:
    if exc is None:
        return {"error": "no error"}
    row: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, EngineError):
        row.update(engine=exc.engine, operation=exc.operation, ref=exc.ref)
        row["address set"] = bool(exc.address)
        copy = pickle.loads(pickle.dumps(exc))
        row["pickles"] = type(copy) is type(exc) and copy.fields == exc.fields
        row["message"] = str(exc)
    return row


def _made_of(eng: Engine, ref: str) -> list[str]:
    """Images named ``ref`` (or the tag ``images.tag`` asked for) and containers of it."""
    made = [r for r in (ref, f"{ref}-copy") if eng.images.exists(r)]
    made += [c.id for c in eng.containers.list(all=True) if c.image == ref]
    return made


def _difference(
    rows: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]], title: str
) -> str:
    return table({**rows, **{f"expected {k}": v for k, v in expected.items()}}, title=title)


def _attempt(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


class TestReliabilityErrorData:
    @pytest.mark.parametrize("form", ["name", "full id"])
    def test_a_missing_container_reads_the_same_everywhere(
        self, engines: dict[str, Engine], tmp_path: Path, form: str
    ) -> None:
        ref = f"ek-missing-{uuid.uuid4().hex[:12]}" if form == "name" else uuid.uuid4().hex * 2
        calls = _container_calls(tmp_path)
        failures: list[str] = []
        for op, (needs, call) in calls.items():
            rows: dict[str, dict[str, Any]] = {}
            expected: dict[str, dict[str, Any]] = {}
            for name, eng in engines.items():
                exc = _attempt(functools.partial(call, eng.containers, ref))
                rows[name] = _error_row(exc)
                if needs is not None and needs not in eng.capabilities:
                    expected[name] = {**rows[name], "error": "Unsupported"}
                    continue
                expected[name] = {
                    "error": "ContainerNotFound",
                    "message": f"containers.{op}: no such container: {ref}",
                    "engine": eng.name,
                    "operation": f"containers.{op}",
                    "ref": ref,
                    "address set": True,
                    "pickles": True,
                }
            messages = {
                r.get("message") for r in rows.values() if r.get("error") == "ContainerNotFound"
            }
            if rows != expected or len(messages) > 1:
                title = f"containers.{op} of a missing container ({form})"
                failures.append(_difference(rows, expected, title))
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)

    def test_a_missing_image_reads_the_same_everywhere(
        self, engines: dict[str, Engine], tmp_path: Path
    ) -> None:
        ref = f"ek-missing-{uuid.uuid4().hex[:12]}:v1"
        failures: list[str] = []
        for what, (needs, op, call) in _image_calls(tmp_path).items():
            rows: dict[str, dict[str, Any]] = {}
            expected: dict[str, dict[str, Any]] = {}
            for name, eng in engines.items():
                exc = _attempt(functools.partial(call, eng, ref))
                rows[name] = _error_row(exc)
                # Nothing named after the missing image appeared (other clients of
                # a shared engine may make other objects meanwhile).
                rows[name]["made"] = _made_of(eng, ref)
                if needs is not None and needs not in eng.capabilities:
                    expected[name] = {**rows[name], "error": "Unsupported", "made": []}
                    continue
                expected[name] = {
                    "error": "ImageNotFound",
                    "message": f"{op}: no such image: {ref}",
                    "engine": eng.name,
                    "operation": op,
                    "ref": ref,
                    "address set": True,
                    "pickles": True,
                    "made": [],
                }
            if rows != expected:
                failures.append(_difference(rows, expected, f"{what} of a missing image"))
            assert not (tmp_path / "saved.tar").exists(), "save of a missing image wrote a file"
        for name, eng in engines.items():
            if eng.images.exists(ref):
                failures.append(f"{name}: images.exists says a missing image exists")
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)

    def test_an_engine_error_is_data(self, engines: dict[str, Engine]) -> None:
        """A real engine's error carries the engine's status, and keeps the engine's
        own words as its ``__cause__`` when the facade words it the same everywhere."""
        ref = uuid.uuid4().hex * 2
        for name, eng in engines.items():
            with pytest.raises(ContainerNotFound) as info:
                eng.containers.logs(ref)
            err = info.value
            assert isinstance(err, NotFound), name
            assert err.engine == eng.name and err.operation == "containers.logs", name
            assert err.address and err.address == eng.address, (name, err.address)
            if eng.name in ("docker", "podman"):
                assert err.status == 404, (name, err.status)
            # The engine's own words stay reachable.
            assert isinstance(err.__cause__, ContainerNotFound), (name, err.__cause__)
            copy = pickle.loads(pickle.dumps(err))
            assert type(copy) is ContainerNotFound, name
            assert copy.fields == err.fields and str(copy) == str(err), name
