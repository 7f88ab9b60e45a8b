"""Driver-level scenarios that every HTTP adapter's own tests run (Docker's and Podman's).

The contract suite (:mod:`enginekit.testing.suite`) checks an engine through the
facade; these check the driver of an adapter built on
:class:`enginekit.toolkit.http.HttpDriver` directly, on the engine its tests
talk to. An adapter's test module imports the classes (``from
enginekit.testing.httpdriver import *``), where pytest collects them, and
provides one fixture, ``kit``: a :class:`Kit` with its driver, an image with
busybox (``sh``, ``nc``, ``usleep``, ``tail``, ``dd``) and how to make labelled
containers that are removed after the test. The registry tests also use the
plugin's ``registry`` fixture.

Nothing here sleeps for luck: every wait is for a condition, with a deadline.
"""

from __future__ import annotations

from ._kit import (
    Kit,
    await_output,
    closed_port,
    members,
    read_member,
    tar_of,
)
from .containers import (
    TestHttpDriverConnect,
    TestHttpDriverExec,
    TestHttpDriverLifecycle,
    TestHttpDriverResources,
    TestHttpDriverWait,
)
from .data import TestHttpDriverFiles, TestHttpDriverImages, TestHttpDriverLogs
from .listing import TestHttpDriverSummaries

__all__ = [
    "Kit",
    "TestHttpDriverConnect",
    "TestHttpDriverExec",
    "TestHttpDriverFiles",
    "TestHttpDriverImages",
    "TestHttpDriverLifecycle",
    "TestHttpDriverLogs",
    "TestHttpDriverResources",
    "TestHttpDriverSummaries",
    "TestHttpDriverWait",
    "await_output",
    "closed_port",
    "members",
    "read_member",
    "tar_of",
]
