"""Build an image and run it: the same program on every engine.

    python examples/build_and_run.py [ENGINE]      # docker, podman, lxc, a URL...

It builds ``examples/hello``, runs the image's default command and one of its
own, waits for each, and prints the exit codes and what went to stdout and
stderr (kept apart). Everything it makes is removed at the end.
"""

from __future__ import annotations

import time

from _image import LABELS, connect, example_image

with connect() as engine:
    print(f"engine: {engine.name} {engine.info().version}")
    t0 = time.perf_counter()
    with example_image(engine) as tag:
        image = engine.images.get(tag)
        print(f"built {tag} ({image.short_id}) in {time.perf_counter() - t0:.2f}s")
        print(f"image: workdir={image.config.workdir} cmd={list(image.config.cmd or ())}")

        c = engine.containers.run(tag, labels=LABELS)
        code = engine.containers.wait(c)
        print(f"default command exited with {code}")
        print("stdout:", engine.containers.logs(c, stderr=False).decode().splitlines())
        print("stderr:", engine.containers.logs(c, stdout=False).decode().splitlines())
        engine.containers.remove(c)

        c = engine.containers.run(
            tag, ["sh", "-c", "echo $((6 * 7)); exit 3"], labels=LABELS, env={"MODE": "demo"}
        )
        print(f"own command exited with {engine.containers.wait(c)}")
        print("stdout:", engine.containers.logs(c, stderr=False).decode().strip())
        final = engine.containers.get(c)
        print(f"state {final.state.name}, exit code {final.exit_code}")
        engine.containers.remove(c)
print("done: nothing left behind")
