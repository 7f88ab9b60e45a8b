"""TLS to an engine's ``tcp://`` address (``enginekit.tls``): :class:`TLSConfig`
(from an option, Docker's environment or a context's files) makes the client's
SSL context; :func:`check_plain_tcp` refuses plain TCP to a host other than
loopback unless the user insists."""

from __future__ import annotations

from enginekit.tls import TLSConfig, check_plain_tcp, is_loopback

__all__ = ["TLSConfig", "check_plain_tcp", "is_loopback"]
