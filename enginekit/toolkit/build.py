"""Builds: the context (``enginekit.buildcontext``) and the Dockerfile
(``enginekit.dockerfile``).

The core has checked a :class:`~enginekit.models.BuildRequest` before a
driver sees it (every COPY/ADD source inside the context). An engine that
builds from a context tar sends :func:`context_tar` (``.dockerignore``
applied, links confined); an adapter that runs the steps itself
:func:`parse` s the Dockerfile and walks its stages with a
:class:`BuildState`, reading the context with :func:`iter_context` /
:func:`resolve_context` and matching sources with :func:`go_match`.
"""

from __future__ import annotations

from enginekit.buildcontext import *  # noqa: F403
from enginekit.buildcontext import __all__ as _context
from enginekit.dockerfile import *  # noqa: F403
from enginekit.dockerfile import __all__ as _dockerfile
from enginekit.models import BuildRequest

__all__ = ["BuildRequest", *_context, *_dockerfile]
