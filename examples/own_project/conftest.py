"""Fixtures of a user's own project, on top of the enginekit plugin's.

The plugin (``pytest -p enginekit.testing --engine NAME``, repeatable) gives
``engine`` (each chosen engine in turn), ``labels`` (every object carrying them
is removed when the run ends), ``busybox_path`` and more. Only the image of
this project has to be built here.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

import enginekit
from enginekit.testing.session import SuiteRun

APP = Path(__file__).parent / "app"


@pytest.fixture(scope="session")
def app_image(
    engine: enginekit.Engine,
    tmp_path_factory: pytest.TempPathFactory,
    busybox_path: Path,
    enginekit_run: SuiteRun,
) -> str:
    """This project's image, built once per engine, with the run's labels."""
    context = tmp_path_factory.mktemp("app")
    shutil.copytree(APP, context, dirs_exist_ok=True)
    shutil.copy2(busybox_path, context / "busybox")
    tag = f"own-project/app:{uuid.uuid4().hex[:8]}"
    engine.images.build(context, tag=tag, labels=enginekit_run.labels)
    return tag
