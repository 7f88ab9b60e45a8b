"""Reliability: inputs that broke enginekit once, refused or built alike on every engine.

- Dockerfile text read as Docker reads it: ``EXPOSE $PORTS`` exposes each word of
  the value; a heredoc is refused with a message saying so; ``${V:#p}`` is refused as
  Docker refuses it; a line ending with an escaped escape character (``trailing\\\\``),
  which Docker ends there and Podman's builder continues, is refused (quoted, it
  builds alike).
- A NUL character in any path argument (host or container side, build context
  file, archive path, mount, workdir) is ``InvalidSpec`` before anything is
  created, with the same message on every engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from enginekit.capabilities import Capability

from ._runs import new_objects, remove_image_quietly, snapshot, table

if TYPE_CHECKING:
    from enginekit import Engine
    from enginekit.testing.fixtures import BuildContextFactory


def _refusals(
    engines: dict[str, Engine], attempt: Callable[[str, Engine], object]
) -> dict[str, dict[str, Any]]:
    """Run ``attempt`` on every engine; per engine, what it raised and what it left."""
    rows: dict[str, dict[str, Any]] = {}
    for name, eng in engines.items():
        before = snapshot(eng)
        try:
            attempt(name, eng)
        except Exception as exc:
            error, message = type(exc).__name__, str(exc)
        else:
            error, message = "no error", ""
        rows[name] = {"error": error, "message": message, "left": new_objects(eng, before)}
    return rows


def _assert_refused_alike(rows: dict[str, dict[str, Any]], *, title: str, says: str) -> None:
    nothing: dict[str, list[str]] = {"containers": [], "images": []}
    if any(
        row["error"] != "InvalidSpec" or says not in row["message"] or row["left"] != nothing
        for row in rows.values()
    ):
        pytest.fail(table(rows, title=f"{title}: not refused alike"), pytrace=False)
    messages = {row["message"] for row in rows.values()}
    assert len(messages) == 1, table(rows, title=f"{title}: messages differ")


EXPOSE_DOCKERFILE = """\
FROM {base}
ENV PORTS="80 443"
EXPOSE $PORTS 53/udp
ENV C="trailing\\\\"
LABEL com.example.after="continuation"
"""


@pytest.mark.requires(Capability.BUILD)
class TestReliabilityDockerfileText:
    def test_expose_words_and_a_quoted_trailing_escape(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
    ) -> None:
        tag = f"{make_name('expose')}:v1"
        rows: dict[str, dict[str, Any]] = {}
        built: list[Engine] = []
        try:
            for name, eng in engines.items():
                ctx = build_context(EXPOSE_DOCKERFILE.format(base=base_images[name]), busybox=False)
                image = eng.images.build(str(ctx), tag=tag, labels=labels)
                built.append(eng)
                rows[name] = {
                    "exposed_ports": sorted(image.config.exposed_ports),
                    "env C": dict(image.config.env).get("C"),
                    "label after": image.labels.get("com.example.after"),
                }
        finally:
            for eng in built:
                remove_image_quietly(eng, tag)
        expected = {
            "exposed_ports": ["443/tcp", "53/udp", "80/tcp"],
            "env C": "trailing\\",
            "label after": "continuation",
        }
        if any(row != expected for row in rows.values()):
            pytest.fail(
                table({"expected": expected, **rows}, title='EXPOSE $PORTS, ENV C="trailing\\\\"'),
                pytrace=False,
            )

    @pytest.mark.parametrize(
        ("dockerfile", "says"),
        [
            ("FROM {base}\nRUN <<EOF\necho hi > /hi\nEOF\n", "heredocs (<<EOF) are not supported"),
            ("FROM {base}\nCOPY <<EOF /hi\nhi\nEOF\n", "heredocs (<<EOF) are not supported"),
            (
                "FROM {base}\nENV C=trailing\\\\\nLABEL a=b\n",
                "line 2: the line ends with an escaped \\",
            ),
            ("FROM {base}\nENV P=/a/b\nENV Q=${{P:#*/}}\n", "unsupported modifier (:#)"),
            ("FROM {base}\nENV P=/a/b\nENV Q=${{P:%%/*}}\n", "unsupported modifier (:%)"),
        ],
        ids=[
            "RUN heredoc",
            "COPY heredoc",
            "escaped escape at line end",
            "colon hash",
            "colon percent",
        ],
    )
    def test_refused_alike(
        self,
        engines: dict[str, Engine],
        base_images: dict[str, str],
        build_context: BuildContextFactory,
        make_name: Callable[..., str],
        labels: dict[str, str],
        dockerfile: str,
        says: str,
    ) -> None:
        tag = f"{make_name('refused')}:v1"

        def attempt(name: str, eng: Engine) -> object:
            ctx = build_context(dockerfile.format(base=base_images[name]), busybox=False)
            return eng.images.build(str(ctx), tag=tag, labels=labels)

        rows = _refusals(engines, attempt)
        for eng in engines.values():
            remove_image_quietly(eng, tag)
        _assert_refused_alike(rows, title=dockerfile.splitlines()[1], says=says)
