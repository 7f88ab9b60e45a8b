"""The enginekit contract suite: a pytest plugin, its fixtures, and the tests.

Run it on an engine with ``pytest -p enginekit.testing --engine NAME`` (the
``-p`` is only needed where the ``enginekit`` distribution's ``pytest11``
entry point is not installed). An adapter's own ``tests/test_contract.py``
holds no more than::

    from enginekit.testing.suite import *  # noqa: F403

and is run with ``pytest tests/test_contract.py --engine NAME``. Without a
test module of one's own: ``pytest -p enginekit.testing --engine NAME
--pyargs enginekit.testing.suite``.

Fixtures (see :mod:`enginekit.testing.fixtures`): ``engine``, ``engines``,
``engine_name``, ``labels``, ``make_name``, ``base_image``, ``base_images``,
``build_context``, ``create_container``, ``run_container``, ``run_id``.
Mark a test with ``@pytest.mark.requires(Capability.X, ...)``: it is skipped
only on an engine whose ``capabilities`` lack one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .session import RUN_LABEL

if TYPE_CHECKING:
    import pytest

__all__ = ["RUN_LABEL"]

_PLUGIN = "enginekit.testing.plugin"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Loaded with ``-p enginekit.testing``: register the real plugin module,
    under the entry point's name so that the entry point does not register it
    again."""
    import importlib

    plugin = importlib.import_module(_PLUGIN)
    if pluginmanager.is_registered(plugin):
        return
    name = plugin.ENTRY_POINT_NAME
    if pluginmanager.get_plugin(name) is not None or pluginmanager.is_blocked(name):
        name = _PLUGIN
    pluginmanager.register(plugin, name)
