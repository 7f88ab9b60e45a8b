"""Switch engines without changing code: by environment and by config file.

    python examples/choose_engine.py [ENGINE]

``enginekit.connect()`` with no argument takes ``ENGINEKIT_ENGINE`` first,
then the nearest ``enginekit.toml`` (or ``[tool.enginekit]`` in
``pyproject.toml``), then the first reachable engine. This program shows each
way picking ENGINE (default: the first reachable one), and runs one container
through it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from _image import LABELS, example_image

import enginekit
from enginekit.config import choose

wanted = sys.argv[1] if len(sys.argv) > 1 else None
if wanted is None:
    wanted = next(s.name for s in enginekit.engines() if s.reachable)
saved_env = {k: os.environ.pop(k) for k in ("ENGINEKIT_ENGINE", "ENGINEKIT_URL") if k in os.environ}
saved_cwd = os.getcwd()
try:
    # 1. by environment
    os.environ["ENGINEKIT_ENGINE"] = wanted
    with enginekit.connect() as engine:
        print(
            f"ENGINEKIT_ENGINE={wanted} -> {engine.name} at {engine.address} "
            f"(chosen from the {choose().source})"
        )
    del os.environ["ENGINEKIT_ENGINE"]

    # 2. by config file: the nearest enginekit.toml, from the current folder up
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        (project / "src").mkdir(parents=True)
        (project / "enginekit.toml").write_text(f'engine = "{wanted}"\n')
        os.chdir(project / "src")
        with enginekit.connect() as engine:
            source = Path(choose().source).relative_to(tmp)
            print(f"{source} says {wanted!r} -> {engine.name} {engine.info().version}")

            # the same program runs there, whichever engine it is
            with example_image(engine) as tag:
                c = engine.containers.run(
                    tag, ["sh", "-c", "echo hi from $(uname -s)"], labels=LABELS
                )
                engine.containers.wait(c)
                print(f"ran a container there: {engine.containers.logs(c).decode().strip()}")
        os.chdir(saved_cwd)
finally:
    os.chdir(saved_cwd)
    os.environ.pop("ENGINEKIT_ENGINE", None)
    os.environ.update(saved_env)
print("done: nothing left behind")
