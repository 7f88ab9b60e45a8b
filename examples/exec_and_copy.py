"""Run commands in a running container and copy files in and out.

    python examples/exec_and_copy.py [ENGINE]

A folder of the host goes into the container (``copy_to``), a command run
with ``exec`` turns it into a report, and the report comes back to the host
(``copy_from``), with ``docker cp``'s rules on every engine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _image import LABELS, connect, example_image

with connect() as engine, example_image(engine) as tag, tempfile.TemporaryDirectory() as tmp:
    host = Path(tmp)
    (host / "notes").mkdir()
    (host / "notes" / "a.txt").write_text("apples\n")
    (host / "notes" / "b.txt").write_text("bananas\nblueberries\n")

    c = engine.containers.run(tag, ["sleep", "60"], labels=LABELS)
    engine.containers.copy_to(c, host / "notes", "/tmp")
    print("copied notes/ into /tmp")

    r = engine.containers.exec(c, ["ls", "/tmp/notes"])
    print(f"exec ls -> exit {r.exit_code}: {r.stdout.decode().split()}")
    r = engine.containers.exec(
        c,
        ["sh", "-c", "wc -l notes/*.txt | sort > report.txt; cat report.txt; echo done >&2"],
        workdir="/tmp",
        env={"LC_ALL": "C"},
    )
    print(f"exec wc -> exit {r.exit_code}, stderr {r.stderr!r}")

    r = engine.containers.exec(c, ["sh", "-c", "exit 9"])
    print(f"a failing exec -> exit {r.exit_code}")

    engine.containers.copy_from(c, "/tmp/report.txt", host / "report.txt")
    print("copied /tmp/report.txt back:")
    print((host / "report.txt").read_text().rstrip())
    engine.containers.stop(c, timeout=2)
    engine.containers.copy_from(c, "/tmp/notes", host / "back")  # a stopped container too
    print(f"from the stopped container: {sorted(p.name for p in (host / 'back').iterdir())}")
print("done: nothing left behind")
