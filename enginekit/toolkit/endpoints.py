"""What ``connect()`` is given, and what ``enginekit engines`` shows.

- :class:`Endpoint`, :func:`redact` (``enginekit.endpoints``): an adapter's
  known addresses as ``enginekit engines`` lists them (no secrets).
- :func:`check_address`: the checks every ``connect(address, **options)`` of
  an adapter makes before anything is opened: known options, an address or
  the adapter's own choice (a context, a connection; not both), the
  ``<engine>+`` prefix taken off, no password in it, a known scheme,
  ssh-only options only for ``ssh://``.

Cheap to import: a CLI reads this on every start.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Collection, Mapping
from typing import Any, Generic, Protocol, TypeVar

from enginekit.endpoints import Endpoint, redact
from enginekit.errors import InvalidSpec

__all__ = ["SCHEMES", "Address", "Chosen", "Endpoint", "check_address", "redact"]

#: The schemes an engine's address may have.
SCHEMES = ("unix", "tcp", "http", "ssh")
#: Options that are for an ``ssh://`` address only.
_SSH_OPTIONS = ("identity", "ssh_config")


class Chosen(Protocol):
    """What an adapter's own lookup chose when ``connect()`` got no address
    (a Docker context, a Podman connection)."""

    @property
    def address(self) -> str: ...

    def describe(self) -> str:
        """How messages name it (``"docker context 'ci' (chosen by DOCKER_CONTEXT)"``)."""
        ...


C = TypeVar("C", bound=Chosen)


class Address(Generic[C]):
    """An address ``connect()`` was given or chose, checked (:func:`check_address`)."""

    __slots__ = ("address", "parts", "pool_size", "target", "where")

    def __init__(
        self,
        address: str,
        parts: urllib.parse.SplitResult,
        target: C | None,
        where: str,
        pool_size: int,
    ) -> None:
        #: As given (or as ``target`` says), without the ``<engine>+`` prefix.
        self.address = address
        #: Its parts (a bare socket path read as ``unix://``).
        self.parts = parts
        #: What chose it when ``connect()`` got no address.
        self.target = target
        #: ``"<what chose it> points at <address>; "`` for messages, or ``""``.
        self.where = where
        #: The ``pool_size`` option (idle connections kept; 8 unless given).
        self.pool_size = pool_size

    @property
    def scheme(self) -> str:
        return self.parts.scheme

    @property
    def url(self) -> str:
        """The address with its scheme (a bare socket path as ``unix://``)."""
        return self.address if "://" in self.address else "unix://" + self.address

    @property
    def origin(self) -> str:
        """How messages name what chose the address (``""`` when it was given)."""
        return self.target.describe() if self.target is not None else ""


def check_address(
    engine: str,
    address: str | None,
    options: Mapping[str, Any],
    known: Collection[str],
    choice: str,
    choose: Callable[[Any], C],
    *,
    tls: bool,
) -> Address[C]:
    """``address`` and ``options`` of ``connect()`` checked (``InvalidSpec`` for
    what is wrong, before anything is opened).

    ``known``: the options the adapter takes; ``choice``: the option naming
    the adapter's own choice (``"context"``), resolved by ``choose`` (given
    the option's value, or None) when ``address`` is None; ``tls``: whether
    the adapter speaks TLS to a ``tcp://`` address (what messages suggest).
    """
    advice = "unix://, tcp:// or ssh://" if tls else "unix:// or ssh://"
    secrets = "use SSH keys or TLS certificates" if tls else "use SSH keys"
    unknown = set(options) - set(known)
    if unknown:
        raise InvalidSpec(f"{engine}: unknown connect options: {', '.join(sorted(unknown))}")
    if not isinstance(options.get("insecure", False), bool):
        raise InvalidSpec(f"{engine}: insecure must be True or False")
    chosen = options.get(choice)
    target: C | None = None
    if address is None:
        target = choose(chosen)
        address = target.address
    elif chosen is not None:
        raise InvalidSpec(f"{engine}: give an address or a {choice}, not both")
    address = address.removeprefix(f"{engine}+")
    parts = urllib.parse.urlsplit(address if "://" in address else "unix://" + address)
    where = f"{target.describe()} points at {redact(address)}; " if target else ""
    if parts.password is not None:
        what = target.describe() if target else f"{engine}: the address"
        raise InvalidSpec(
            f"{what} holds a password (user:password@): enginekit sends none to an engine; "
            + secrets
        )
    if parts.scheme not in SCHEMES:
        raise InvalidSpec(
            f"{engine}: unsupported address scheme {parts.scheme!r} ({where}use {advice})"
        )
    for name in _SSH_OPTIONS:
        if parts.scheme != "ssh" and options.get(name) is not None:
            raise InvalidSpec(f"{engine}: {name}= is for an ssh:// address, not {parts.scheme}://")
    return Address(address, parts, target, where, int(options.get("pool_size", 8)))
