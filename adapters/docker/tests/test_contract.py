"""The enginekit contract suite on Docker.

Run with ``pytest adapters/docker/tests/test_contract.py --engine docker``;
without an engine chosen these tests are deselected.
"""

from enginekit.testing.suite import *  # noqa: F403
