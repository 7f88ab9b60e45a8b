"""Helpers shared by the image, build, copy, property and differential tests.

- :func:`run_to_end`: run a command in a new container, wait, return exit code
  and both streams apart; the container is removed whatever happens.
- :func:`snapshot` / :func:`new_objects`: what a failed or refused operation
  may have left behind, ignoring objects labelled by any test run.
- :func:`table`: a readable side-by-side table of values per engine.
- :func:`go_arch`: the host's architecture as OCI images name it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from enginekit import Engine

__all__ = [
    "EXAMPLES_ENV",
    "PROBE_SCRIPT",
    "Probe",
    "RunResult",
    "Snapshot",
    "examples",
    "go_arch",
    "new_objects",
    "parse_probe",
    "probe_command",
    "remove_image_quietly",
    "run_to_end",
    "snapshot",
    "table",
    "utc_now",
    "write_tar",
]

WAIT_TIMEOUT = 120.0
#: Scales the hypothesis examples of the property tests (e.g. 10 for a long hunt).
EXAMPLES_ENV = "ENGINEKIT_TEST_EXAMPLES_SCALE"


def examples(default: int) -> int:
    """``default`` hypothesis examples, times ``$ENGINEKIT_TEST_EXAMPLES_SCALE`` if set."""
    import os

    raw = os.environ.get(EXAMPLES_ENV, "").strip()
    try:
        scale = float(raw) if raw else 1.0
    except ValueError:
        scale = 1.0
    return max(1, round(default * scale))


_TEST_LABEL_PREFIX = "enginekit."  # test runs, benchmarks, experiments


@attrs.frozen
class RunResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def run_to_end(
    engine: Engine,
    image: str,
    command: Sequence[str] | None,
    *,
    labels: Mapping[str, str],
    timeout: float = WAIT_TIMEOUT,
    **spec: Any,
) -> RunResult:
    """Run ``command`` in a new labelled container, wait for it, return what it did."""
    container = engine.containers.run(
        image, None if command is None else list(command), labels=dict(labels), **spec
    )
    try:
        code = engine.containers.wait(container, timeout=timeout)
        out = engine.containers.logs(container, stdout=True, stderr=False)
        err = engine.containers.logs(container, stdout=False, stderr=True)
        return RunResult(exit_code=code, stdout=out, stderr=err)
    finally:
        engine.containers.remove(container, force=True)


@attrs.frozen
class Snapshot:
    containers: frozenset[str]
    images: frozenset[str]


def _unlabelled(objs: Iterable[Any]) -> frozenset[str]:
    # Objects labelled by any enginekit run (ours or another's) are not what a
    # failed build or a refused spec leaves behind: those carry no label.
    return frozenset(
        o.id for o in objs if not any(k.startswith(_TEST_LABEL_PREFIX) for k in o.labels)
    )


def snapshot(engine: Engine, *, images: bool = True) -> Snapshot:
    """Every container (all states) and, with ``images``, every listed image,
    leaving out those any enginekit run labelled."""
    return Snapshot(
        containers=_unlabelled(engine.containers.list(all=True)),
        images=_unlabelled(engine.images.list()) if images else frozenset(),
    )


def new_objects(engine: Engine, before: Snapshot, *, images: bool = True) -> dict[str, list[str]]:
    """What exists now and did not in ``before`` (empty lists when nothing)."""
    after = snapshot(engine, images=images)
    return {
        "containers": sorted(after.containers - before.containers),
        "images": sorted(after.images - before.images),
    }


def remove_image_quietly(engine: Engine, ref: str) -> None:
    """Force-remove an image a test made; one already gone is fine."""
    from enginekit.errors import NotFound

    with contextlib.suppress(NotFound):
        engine.images.remove(ref, force=True)


# Prints, separated by \\001 (no drawn text holds it): the argument count, each
# argument, the process's environment exactly as the engine passed it
# (``/proc/$$/environ``: the shell drops names it cannot use as variables, the
# kernel's copy keeps them), then uid, gid, working directory and host name.
PROBE_SCRIPT = (
    'printf "%s\\001" "$#" "$@"; cat /proc/$$/environ; printf "\\001"; id -u; id -g; pwd; hostname'
)


def probe_command(args: Sequence[str] = ()) -> list[str]:
    """A command that reports what it sees from inside (see :func:`parse_probe`)."""
    return ["sh", "-c", PROBE_SCRIPT, "sh", *args]


@attrs.frozen
class Probe:
    """What :func:`probe_command` saw inside the container."""

    args: tuple[bytes, ...]
    environ: dict[bytes, bytes]
    uid: str
    gid: str
    pwd: str
    hostname: str


def parse_probe(out: bytes) -> Probe:
    parts = out.split(b"\x01")
    count = int(parts[0])
    args = tuple(parts[1 : 1 + count])
    environ: dict[bytes, bytes] = {}
    for item in parts[1 + count].split(b"\0"):
        if item:
            key, _, value = item.partition(b"=")
            environ[key] = value
    lines = parts[2 + count].decode().splitlines()
    assert len(parts) == 3 + count and len(lines) == 4, out
    uid, gid, pwd, hostname = lines
    return Probe(args=args, environ=environ, uid=uid, gid=gid, pwd=pwd, hostname=hostname)


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
}


def go_arch() -> str:
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def write_tar(path: Path, files: Mapping[str, bytes]) -> Path:
    """Write an uncompressed tar holding ``files`` (relative names -> bytes)."""
    import io

    with tarfile.open(path, "w") as tar:
        dirs: set[str] = set()
        for name, data in sorted(files.items()):
            parts = name.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


_CELL_MAX = 80


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) <= _CELL_MAX:
        return text
    size = f" ({len(value)} long)" if isinstance(value, str | bytes | tuple | list | dict) else ""
    return text[: _CELL_MAX // 2] + " ... " + text[-_CELL_MAX // 4 :] + size


def _first_difference(a: Any, b: Any) -> str:
    """Where two long values part, shown around that offset."""
    if not (isinstance(a, str | bytes) and isinstance(b, type(a))):
        return ""
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, n - 10)
    return f"first difference at offset {n}: {a[lo : n + 20]!r} vs {b[lo : n + 20]!r}"


def table(rows: Mapping[str, Mapping[str, Any]], *, title: str = "") -> str:
    """A table with one column per engine and one row per field; differing rows marked ``!``.

    ``rows`` maps engine name -> {field: value}. Long values are shortened, and
    for differing strings and bytes the offset where they part is shown below.
    """
    engines = list(rows)
    fields: list[str] = []
    for values in rows.values():
        for f in values:
            if f not in fields:
                fields.append(f)
    missing = object()
    cells = {e: {f: rows[e].get(f, missing) for f in fields} for e in engines}

    def show(v: Any) -> str:
        return "<absent>" if v is missing else _show(v)

    width_f = max([len(f) for f in fields] + [5])
    widths = {e: max([len(show(cells[e][f])) for f in fields] + [len(e)]) for e in engines}
    lines = []
    if title:
        lines.append(title)
    header = "  " + "field".ljust(width_f) + " | " + " | ".join(e.ljust(widths[e]) for e in engines)
    lines.append(header)
    lines.append("-" * len(header))
    notes = []
    for f in fields:
        vals = [cells[e][f] for e in engines]
        differs = any(v != vals[0] for v in vals[1:])
        mark = "! " if differs else "  "
        lines.append(
            mark
            + f.ljust(width_f)
            + " | "
            + " | ".join(show(cells[e][f]).ljust(widths[e]) for e in engines)
        )
        if differs:
            for e, v in zip(engines[1:], vals[1:], strict=True):
                where = _first_difference(vals[0], v)
                if where and v != vals[0]:
                    notes.append(f"  {f}: {engines[0]} vs {e}: {where}")
    return "\n".join(lines + notes)
