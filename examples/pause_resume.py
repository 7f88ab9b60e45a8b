"""A worker paused and resumed: its counter stands still while it is paused.

    python examples/pause_resume.py [ENGINE]

The worker prints a number every 0.1 s. The program pauses it, checks that
nothing new is printed for a second, resumes it, sees it counting again, and
stops it (exit code 143: the stop signal, SIGTERM, ended it). An engine that
cannot pause (rootless Podman on cgroup v1, say) declares it: the program says
why and stops the worker, as ``pause`` would raise ``Unsupported``.
"""

from __future__ import annotations

import time

from _image import LABELS, RUN_ID, connect, example_image

import enginekit

WORKER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"]


def count(engine: enginekit.Engine, c: enginekit.Container) -> int:
    """How many numbers the worker has printed so far."""
    return len(engine.containers.logs(c).splitlines())


with connect() as engine, example_image(engine) as tag:
    worker = engine.containers.run(tag, WORKER, labels=LABELS, name=f"worker-{RUN_ID}")
    print(f"worker {worker.name} is {worker.state.name}")
    time.sleep(1)
    print(f"after 1s it has counted to {count(engine, worker)}")

    if enginekit.Capability.PAUSE in engine.capabilities:
        paused = engine.containers.pause(worker)
        before = count(engine, worker)
        time.sleep(1)
        after = count(engine, worker)
        print(f"paused ({paused.state.name}): {before} -> {after} in 1s")
        assert after == before, "a paused worker printed something"

        resumed = engine.containers.unpause(worker)
        time.sleep(1)
        print(f"resumed ({resumed.state.name}): now at {count(engine, worker)}")
        assert count(engine, worker) > after
    else:
        print(f"this engine cannot pause: {engine.unsupported.get(enginekit.Capability.PAUSE)}")

    stopped = engine.containers.stop(worker, timeout=5)
    print(f"stopped: {stopped.state.name}, exit code {stopped.exit_code}")
print("done: nothing left behind")
