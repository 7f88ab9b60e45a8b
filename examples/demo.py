"""The same program on every engine: build an image, run it, pause, exec, stop, inspect.

Run: ``python examples/demo.py [ENGINE ...]`` (default: every reachable engine).
Everything it makes is labelled and removed at the end, also on failure.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import enginekit

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV GREETING="hello from enginekit"
WORKDIR /app
LABEL org.example.demo=yes
CMD ["sh", "-c", "echo $GREETING; echo to-stderr >&2; i=0; while true; do i=$((i+1)); sleep 0.2; done"]
"""


def demo(name: str, context: Path, run_id: str) -> dict[str, str]:
    labels = {"enginekit.demo": run_id}
    seen: dict[str, str] = {}
    with enginekit.connect(name) as engine:
        tag = f"enginekit-demo:{run_id}"
        try:
            t0 = time.perf_counter()
            image = engine.images.build(context, tag=tag, labels=labels)
            seen["build"] = f"{image.short_id} {image.config.workdir} ({time.perf_counter() - t0:.2f}s)"
            c = engine.containers.run(tag, name=f"demo-{run_id}", labels=labels, hostname="demo")
            seen["run"] = c.state.name
            time.sleep(0.3)
            seen["pause"] = engine.containers.pause(c).state.name
            seen["unpause"] = engine.containers.unpause(c).state.name
            r = engine.containers.exec(c, ["sh", "-c", "echo $GREETING from $(hostname) in $(pwd)"])
            seen["exec"] = f"{r.exit_code} {r.stdout.decode().strip()}"
            seen["stop"] = (lambda s: f"{s.state.name} exit={s.exit_code}")(
                engine.containers.stop(c, timeout=5)
            )
            seen["stdout"] = engine.containers.logs(c, stderr=False).decode().splitlines()[0]
            seen["stderr"] = engine.containers.logs(c, stdout=False).decode().strip()
            got = engine.containers.get(c.name)
            seen["inspect"] = f"{got.name} {got.image} labels={dict(got.labels)}"
        finally:
            for c in engine.containers.list(all=True, labels=labels):
                engine.containers.remove(c, force=True)
            if engine.images.exists(tag):
                engine.images.remove(tag, force=True)
    return seen


def main(argv: list[str]) -> int:
    names = argv or [s.name for s in enginekit.engines() if s.reachable]
    busybox = shutil.which("busybox") or "/bin/busybox"
    run_id = uuid.uuid4().hex[:8]
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(DOCKERFILE)
        shutil.copy(busybox, context / "busybox")
        for name in names:
            try:
                results[name] = demo(name, context, run_id)
            except enginekit.EngineError as exc:
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    steps = list(dict.fromkeys(k for r in results.values() for k in r))
    width = max(len(s) for s in steps)
    for step in steps:
        values = {n: results[n].get(step, "-") for n in names}
        same = len(set(values.values())) == 1 or step in ("build",)
        print(f"{step:<{width}}  {'' if same else '≠ '}")
        for n in names:
            print(f"  {n:<8} {values[n]}")
    failed = any("error" in r for r in results.values())
    return 1 if failed or not names else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
