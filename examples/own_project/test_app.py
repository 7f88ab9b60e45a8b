"""The project's image behaves the same on every engine chosen with --engine."""

from __future__ import annotations

import enginekit


def run(
    engine: enginekit.Engine,
    image: str,
    labels: dict[str, str],
    *args: str,
    env: dict[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    c = engine.containers.run(image, list(args) or None, labels=labels, env=env or {})
    code = engine.containers.wait(c, timeout=60)
    out = engine.containers.logs(c, stderr=False)
    err = engine.containers.logs(c, stdout=False)
    engine.containers.remove(c)
    return code, out, err


def test_greets_the_default_name(
    engine: enginekit.Engine, app_image: str, labels: dict[str, str]
) -> None:
    assert run(engine, app_image, labels) == (0, b"hello, world\n", b"")


def test_greets_its_arguments(
    engine: enginekit.Engine, app_image: str, labels: dict[str, str]
) -> None:
    assert run(engine, app_image, labels, "Ada", "Lovelace") == (0, b"hello, Ada Lovelace\n", b"")


def test_nobody_to_greet_is_an_error(
    engine: enginekit.Engine, app_image: str, labels: dict[str, str]
) -> None:
    code, out, err = run(engine, app_image, labels, env={"NAME": ""})
    assert (code, out, err) == (2, b"", b"nobody to greet\n")


def test_image_metadata(engine: enginekit.Engine, app_image: str) -> None:
    image = engine.images.get(app_image)
    assert image.config.entrypoint == ("sh", "/app/greet.sh")
    assert image.config.workdir == "/app"
