"""Collect a container's logs as a stream, stdout and stderr kept apart.

    python examples/stream_logs.py [ENGINE]

The container writes to both streams over about a second; ``stream_logs``
yields each line as it comes (with its stream and time) and ends by itself
when the container exits.
"""

from __future__ import annotations

import time

from _image import LABELS, connect, example_image

SCRIPT = "for i in 1 2 3 4 5; do echo step $i; echo warn $i >&2; sleep 0.2; done; echo bye"

with connect() as engine, example_image(engine) as tag:
    c = engine.containers.run(tag, ["sh", "-c", SCRIPT], labels=LABELS)
    t0 = time.perf_counter()
    seen = {"stdout": 0, "stderr": 0}
    for line in engine.containers.stream_logs(c, follow=True):
        seen[line.stream.value] += 1
        stamp = line.timestamp.strftime("%H:%M:%S.%f")[:-3] if line.timestamp else "-"
        print(
            f"+{time.perf_counter() - t0:4.1f}s {stamp} [{line.stream.value}] "
            f"{line.data.decode().rstrip()}"
        )
    print(
        f"the stream ended with the container: {seen['stdout']} stdout lines, "
        f"{seen['stderr']} stderr lines, exit code {engine.containers.wait(c)}"
    )
print("done: nothing left behind")
