"""The contract suite on the engines chosen with ``--engine NAME`` (or ``ENGINEKIT_TEST_ENGINES``).

This is all an adapter's own ``tests/test_contract.py`` needs::

    pytest tests/test_contract.py --engine docker
"""

from enginekit.testing.suite import *  # noqa: F403
