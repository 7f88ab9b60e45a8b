"""Differential tests: one scenario on every chosen engine, results compared.

Each scenario runs on every engine of ``engines`` and compares what came back:
states in order, exit codes, stdout and stderr bytes, env, labels, workdir,
user and host name as seen from inside, and the ``Image`` and ``Container``
fields of CONTRACT.md (ids and times excepted; nothing else is normalised).
A difference fails with a table of both sides. With one engine chosen the
scenarios still run, and every scenario also checks its expected values.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability
from enginekit.errors import EngineError, InvalidSpec
from enginekit.models import Container, ContainerState, Image

from ._ids import ids_are_manifest_digests, loaded_ids
from ._runs import parse_probe, probe_command, remove_image_quietly, run_to_end, table

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory

# Fields compared between engines (ids, times, pids and the engine's name are not;
# nor an image's size, which each engine counts its own way: Docker and LXC the
# bytes of the files in the layers, Podman the bytes of the layers' tars; see the
# per-engine tables in docs/engines.md).
IMAGE_FIELDS = ("tags", "labels", "architecture", "os", "config")
CONTAINER_FIELDS = (
    "name",
    "image",
    "state",
    "exit_code",
    "oom_killed",
    "labels",
    "command",
    "entrypoint",
    "env",
    "workdir",
    "user",
    "hostname",
    "ports",
    "mounts",
    "resources",
    "network",
    "stop_signal",
)


def _image_row(image: Image) -> dict[str, Any]:
    row: dict[str, Any] = {f: getattr(image, f) for f in IMAGE_FIELDS if f != "config"}
    cfg = image.config
    for f in ("entrypoint", "cmd", "workdir", "user", "exposed_ports", "stop_signal"):
        row[f"config.{f}"] = getattr(cfg, f)
    row["config.env"] = dict(cfg.env)
    row["config.labels"] = dict(cfg.labels)
    row["labels"] = dict(image.labels)
    return row


def _container_row(c: Container) -> dict[str, Any]:
    row = {f: getattr(c, f) for f in CONTAINER_FIELDS}
    row["labels"] = dict(c.labels)
    row["env"] = dict(c.env)
    return row


def assert_same(rows: Mapping[str, Mapping[str, Any]], *, title: str) -> None:
    """Every engine's row is the same; otherwise fail with the table."""
    names = list(rows)
    first = rows[names[0]]
    if all(dict(rows[n]) == dict(first) for n in names[1:]):
        return
    pytest.fail(table(rows, title=f"{title}: the engines differ"), pytrace=False)


def assert_expected(
    rows: Mapping[str, Mapping[str, Any]], expected: Mapping[str, Any], *, title: str
) -> None:
    """Every engine's row holds ``expected`` (field by field)."""
    wrong = {
        name: {f: row.get(f) for f in expected if row.get(f) != expected[f]}
        for name, row in rows.items()
    }
    if any(wrong.values()):
        shown = {
            "expected": dict(expected),
            **{n: {f: rows[n].get(f) for f in expected} for n in rows},
        }
        pytest.fail(table(shown, title=f"{title}: not the expected values"), pytrace=False)


DIFF_DOCKERFILE = """\
FROM {base}
ARG FLAVOUR=plain
ENV GREETING="hello world" EMPTY= EQ="a=b" FLAVOUR=$FLAVOUR
LABEL com.example.diff="yes" com.example.flavour="$FLAVOUR"
WORKDIR /srv/app
RUN echo "$FLAVOUR" > flavour.txt && mkdir -p data
USER 1000:1000
EXPOSE 8080/tcp 5353/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["sh", "-c"]
CMD ["cat /srv/app/flavour.txt; id -u; pwd"]
"""


@pytest.mark.requires(Capability.BUILD)
class TestDifferentialBuild:
    def test_same_context_same_image(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        tag = f"{make_name('diff')}:v1"
        rows: dict[str, dict[str, Any]] = {}
        runs: dict[str, dict[str, Any]] = {}
        built: dict[str, Engine] = {}
        try:
            for name, eng in engines.items():
                ctx = build_context(DIFF_DOCKERFILE.format(base=base_images[name]), busybox=False)
                image = eng.images.build(
                    str(ctx), tag=tag, build_args={"FLAVOUR": "spicy"}, labels=labels
                )
                built[name] = eng
                rows[name] = _image_row(image)
                res = run_to_end(eng, tag, None, labels=labels)
                runs[name] = {
                    "exit_code": res.exit_code,
                    "stdout": res.stdout,
                    "stderr": res.stderr,
                }
            assert_same(rows, title="Image of the same build context")
            assert_same(runs, title="default run of the built image")
            assert_expected(
                rows,
                {
                    "tags": (tag,),
                    "os": "linux",
                    "config.entrypoint": ("sh", "-c"),
                    "config.cmd": ("cat /srv/app/flavour.txt; id -u; pwd",),
                    "config.workdir": "/srv/app",
                    "config.user": "1000:1000",
                    "config.exposed_ports": ("5353/udp", "8080/tcp"),
                    "labels": {**labels, "com.example.diff": "yes", "com.example.flavour": "spicy"},
                },
                title="Image of the same build context",
            )
            for name, row in rows.items():
                env = row["config.env"]
                assert {k: env.get(k) for k in ("GREETING", "EMPTY", "EQ", "FLAVOUR")} == {
                    "GREETING": "hello world",
                    "EMPTY": "",
                    "EQ": "a=b",
                    "FLAVOUR": "spicy",
                }, name
            assert_expected(
                runs,
                {"exit_code": 0, "stdout": b"spicy\n1000\n/srv/app\n", "stderr": b""},
                title="default run of the built image",
            )
        finally:
            for eng in built.values():
                remove_image_quietly(eng, tag)


SPEC_ENV = {
    "PLAIN": "value",
    "SPACES": "  a  b  ",
    "EQUALS": "k=v=w",
    "QUOTES": 'it\'s "q" `b` $HOME \\n',
    "UNICODE": "héllo 日本 🙂",
    "EMPTY": "",
    "DOTTED.NAME": "dotted",
    "DASHED-NAME": "dashed",
}
SPEC_LABELS = {"com.example.a": "1", "com.example.b": "with space = and ünicode"}
SPEC_ARGS = ["plain", "with space", "", "$HOME", "ü", "'\""]


class TestDifferentialRun:
    def test_probe_with_a_spec(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        name = make_name("probe")
        spec = {
            "env": SPEC_ENV,
            "labels": {**SPEC_LABELS, **labels},
            "workdir": "/work/dir",
            "user": "1000:1000",
            "hostname": "diffhost",
        }
        seen: dict[str, dict[str, Any]] = {}
        fields: dict[str, dict[str, Any]] = {}
        for eng_name, eng in engines.items():
            image = base_images[eng_name]
            c = eng.containers.create(image, probe_command(SPEC_ARGS), name=name, **spec)
            try:
                created_state = c.state
                start_state = eng.containers.start(c).state
                code = eng.containers.wait(c, timeout=60)
                final = eng.containers.get(c)
                out = eng.containers.logs(c, stderr=False)
                err = eng.containers.logs(c, stdout=False)
                probe = parse_probe(out)
                seen[eng_name] = {
                    "states": [created_state, final.state],
                    "start -> running or exited": start_state
                    in (ContainerState.RUNNING, ContainerState.EXITED),
                    "exit_code": code,
                    "stderr": err,
                    "args": probe.args,
                    "uid": probe.uid,
                    "gid": probe.gid,
                    "pwd": probe.pwd,
                    "hostname": probe.hostname,
                    **{f"env {k.decode()}": v for k, v in sorted(probe.environ.items())},
                }
                fields[eng_name] = _container_row(final)
            finally:
                eng.containers.remove(c, force=True)
        assert_same(seen, title="what the container saw")
        assert_same(fields, title="Container after exit")
        expected_seen: dict[str, Any] = {
            "states": [ContainerState.CREATED, ContainerState.EXITED],
            "start -> running or exited": True,
            "exit_code": 0,
            "stderr": b"",
            "args": tuple(a.encode() for a in SPEC_ARGS),
            "uid": "1000",
            "gid": "1000",
            "pwd": "/work/dir",
            "hostname": "diffhost",
            **{f"env {k}": v.encode() for k, v in SPEC_ENV.items()},
        }
        assert_expected(seen, expected_seen, title="what the container saw")
        first = next(iter(engines))
        assert_expected(
            fields,
            {
                "name": name,
                "image": base_images[first],
                "state": ContainerState.EXITED,
                "exit_code": 0,
                # The base image's labels are the run's own: nothing else is merged in.
                "labels": {**SPEC_LABELS, **labels},
                "command": tuple(probe_command(SPEC_ARGS)),
                "workdir": "/work/dir",
                "user": "1000:1000",
                "hostname": "diffhost",
                "network": "bridge",
            },
            title="Container after exit",
        )
        for eng_name, row in fields.items():
            assert {k: row["env"].get(k) for k in SPEC_ENV} == SPEC_ENV, eng_name

    def test_exit_code_and_streams(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        script = (
            "echo out-1; echo err-1 >&2; printf 'out-2 no newline'; "
            "printf 'err-2\\r\\n' >&2; exit 7"
        )
        rows = {}
        for name, eng in engines.items():
            res = run_to_end(eng, base_images[name], ["sh", "-c", script], labels=labels)
            rows[name] = {"exit_code": res.exit_code, "stdout": res.stdout, "stderr": res.stderr}
        assert_same(rows, title="exit code and streams")
        assert_expected(
            rows,
            {"exit_code": 7, "stdout": b"out-1\nout-2 no newline", "stderr": b"err-1\nerr-2\r\n"},
            title="exit code and streams",
        )

    def test_logs_keep_binary_bytes(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        script = (
            "printf 'bin:\\000\\001\\377\\376\\r\\n'; "
            "head -c 20000 /dev/zero | tr '\\000' 'a'; echo; "
            "printf 'utf8: \\303\\251 bad: \\303\\n' >&2; "
            "head -c 17000 /dev/zero | tr '\\000' 'e' >&2; "
            "printf 'tail-without-newline'"
        )
        rows = {}
        for name, eng in engines.items():
            res = run_to_end(eng, base_images[name], ["sh", "-c", script], labels=labels)
            rows[name] = {"exit_code": res.exit_code, "stdout": res.stdout, "stderr": res.stderr}
        assert_same(rows, title="log bytes")
        assert_expected(
            rows,
            {
                "exit_code": 0,
                "stdout": b"bin:\x00\x01\xff\xfe\r\n" + b"a" * 20000 + b"\ntail-without-newline",
                "stderr": b"utf8: \xc3\xa9 bad: \xc3\n" + b"e" * 17000,
            },
            title="log bytes",
        )

    def test_one_character_name_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        name = uuid.uuid4().hex[0].upper()
        rows = {}
        for eng_name, eng in engines.items():
            try:
                c = eng.containers.create(base_images[eng_name], ["true"], name=name, labels=labels)
            except EngineError as exc:
                rows[eng_name] = {"outcome": type(exc).__name__}
                continue
            try:
                rows[eng_name] = {"outcome": "created", "name": eng.containers.get(c).name}
            finally:
                eng.containers.remove(c, force=True)
        assert_same(rows, title=f"a one-character name ({name!r})")
        for eng_name, row in rows.items():
            assert row["outcome"] in ("created", InvalidSpec.__name__), (eng_name, row)


class TestDifferentialLifecycle:
    @pytest.mark.requires(Capability.PAUSE)
    def test_states_in_order_and_stop(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        rows = {}
        for name, eng in engines.items():
            c = eng.containers.create(base_images[name], ["sleep", "600"], labels=labels)
            try:
                states = [c.state]
                codes = [c.exit_code]
                for step in (
                    eng.containers.start,
                    eng.containers.pause,
                    eng.containers.unpause,
                    eng.containers.stop,
                ):
                    now = step(c)
                    states.append(now.state)
                    codes.append(now.exit_code)
                rows[name] = {
                    "states": states,
                    "exit codes": codes,
                    "wait": eng.containers.wait(c, timeout=30),
                }
            finally:
                eng.containers.remove(c, force=True)
        assert_same(rows, title="states: create, start, pause, unpause, stop")
        assert_expected(
            rows,
            {
                "states": [
                    ContainerState.CREATED,
                    ContainerState.RUNNING,
                    ContainerState.PAUSED,
                    ContainerState.RUNNING,
                    ContainerState.EXITED,
                ],
                "exit codes": [None, None, None, None, 143],
                "wait": 143,
            },
            title="states: create, start, pause, unpause, stop",
        )

    def test_signals(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        rows = {}
        for name, eng in engines.items():
            row: dict[str, Any] = {}
            for how in ("stop", "kill", "kill SIGTERM"):
                c = eng.containers.run(base_images[name], ["sleep", "600"], labels=labels)
                try:
                    if how == "stop":
                        after = eng.containers.stop(c, timeout=10)
                    elif how == "kill":
                        after = eng.containers.kill(c)
                    else:
                        eng.containers.kill(c, "SIGTERM")
                        eng.containers.wait(c, timeout=30)
                        after = eng.containers.get(c)
                    row[f"{how}: state"] = after.state
                    row[f"{how}: exit_code"] = after.exit_code
                    row[f"{how}: wait"] = eng.containers.wait(c, timeout=30)
                finally:
                    eng.containers.remove(c, force=True)
            rows[name] = row
        assert_same(rows, title="signals")
        assert_expected(
            rows,
            {
                "stop: state": ContainerState.EXITED,
                "stop: exit_code": 143,
                "stop: wait": 143,
                "kill: state": ContainerState.EXITED,
                "kill: exit_code": 137,
                "kill: wait": 137,
                "kill SIGTERM: state": ContainerState.EXITED,
                "kill SIGTERM: exit_code": 143,
                "kill SIGTERM: wait": 143,
            },
            title="signals",
        )


@pytest.mark.requires(Capability.BUILD, Capability.IMAGE_SAVE, Capability.IMAGE_LOAD)
class TestDifferentialImageTransfer:
    def test_save_on_one_load_on_another(
        self,
        engines: dict[str, Engine],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        tmp_path: Path,
    ) -> None:
        """Each engine's saved image loads on every engine (itself included),
        with the id the rule gives (see _ids: the config's digest, or on
        Docker's containerd store the archive's manifest digest; the same id
        between engines that name images alike, Docker's containerd store
        aside, whose builder's manifests enginekit's archives rewrite), the
        same tags and config, and runs the same."""
        mark = uuid.uuid4().hex
        ctx = build_context(
            "FROM scratch\n"
            "COPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            f"RUN echo {mark} > /mark.txt\n"
            'ENV MOVED="yes it moved"\n'
            'CMD ["sh", "-c", "cat /mark.txt; echo \\"$MOVED\\""]\n'
        )
        expected_out = f"{mark}\nyes it moved\n".encode()
        rows: dict[str, dict[str, Any]] = {}
        made: list[tuple[Engine, str]] = []
        try:
            numbered = list(enumerate(engines.items()))
            for (n, (src_name, src)), (m, (dst_name, dst)) in itertools.product(numbered, numbered):
                tag = f"{make_name('moved')}:from-{n}"  # a name may be a URL: not in a tag
                # An image of this route's own: a build cache must not hand back
                # (with an earlier route's tag still on it) the image of another.
                route = {**labels, "enginekit.test.route": f"{n}-{m}"}
                image = src.images.build(str(ctx), tag=tag, labels=route)
                made.append((src, tag))
                archive = tmp_path / f"{n}-to-{m}.tar"
                src.images.save(tag, archive)
                if dst is src:
                    src.images.remove(tag)
                    assert not src.images.exists(image.id)
                loaded = dst.images.load(archive)
                made.append((dst, tag))
                res = run_to_end(dst, tag, None, labels=labels)
                there = dst.images.get(tag)
                expected = loaded_ids(dst, archive)
                if not ids_are_manifest_digests(dst) and not ids_are_manifest_digests(src):
                    expected = [image.id]  # configs travel byte for byte
                rows[f"{src_name} -> {dst_name}"] = {
                    "id": "as the rule says"
                    if [i.id for i in loaded] == expected
                    else {"loaded": [i.id for i in loaded], "expected": expected},
                    "tags": "as saved"
                    if tuple(t for i in loaded for t in i.tags) == (tag,)
                    else tuple(t for i in loaded for t in i.tags),
                    "config": "same" if there.config == image.config else there.config,
                    "labels": "same" if there.labels == image.labels else dict(there.labels),
                    "run": (res.exit_code, res.stdout, res.stderr),
                }
                if there.config != image.config:
                    rows[f"{src_name} -> {dst_name}"]["config on " + src_name] = image.config
        finally:
            for eng, tag in made:
                remove_image_quietly(eng, tag)
        ok = {
            "id": "as the rule says",
            "tags": "as saved",
            "config": "same",
            "labels": "same",
            "run": (0, expected_out, b""),
        }
        wrong = {route: row for route, row in rows.items() if {k: row.get(k) for k in ok} != ok}
        if wrong:
            # One column per failing route (a route is "saved on -> loaded on").
            pytest.fail(
                table(wrong, title="image moved between engines: routes that failed"),
                pytrace=False,
            )
