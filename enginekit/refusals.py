"""Refusals only the engine can make, worded once for every engine.

The core checks every value it can before an engine is called. A few values
can be judged only where they are used: a user or group the image's
``/etc/passwd`` or ``/etc/group`` does not have, a working directory that is
a file in the image, a host port that something else holds. Each engine says
so in its own words, with its own status; the adapters recognise those words
(:func:`account_refusal`, :func:`port_refusal`, :func:`names_not_a_directory`)
and raise the errors made here, so that the same refusal reads the same on
every engine:

- ``InvalidSpec("unable to find user NAME: no matching entries in passwd file")``
  and ``InvalidSpec("unable to find group NAME: no matching entries in group file")``
  (Docker's own words), from ``start``/``run`` and from an ``exec`` with ``user=``;
- ``InvalidSpec("cannot create the working directory PATH: not a directory")``
  from ``create``/``run`` (Docker refuses it as it creates the container);
- ``Conflict("host port IP:PORT is already in use")`` from ``start``/``run``.

``InvalidSpec`` because the spec does not fit this image (as a bad value the
core refuses, it is a ``ValueError``); ``Conflict`` because the port is free
or not depending on the host's state, not on the spec. A ``start`` refused so
leaves the container created, not started; ``run`` removes what it created.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .errors import Conflict, EngineError, InvalidSpec
from .models import Container, PortBinding

__all__ = [
    "account_refusal",
    "missing_group",
    "missing_user",
    "names_not_a_directory",
    "port_in_use",
    "port_refusal",
    "start_refusal",
    "workdir_not_a_directory",
]

# Docker's and Podman's words (both use the same user lookup, runc's and then
# moby's ``user`` package) for a user or group the image's files lack.
_MISSING_ACCOUNT = re.compile(
    r"unable to find (user|group) ([^\s:]+): no matching entries in (?:passwd|group) file"
)
# A host port that is taken: the socket's own error (Docker's proxy or its
# native listener, Podman's port reservation or rootless forwarder), Docker's
# port allocator, Docker Desktop's wrapper.
_PORT_IN_USE = re.compile(
    r"address already in use|port is already allocated|ports are not available", re.IGNORECASE
)
_NOT_A_DIRECTORY = re.compile(r"not a directory", re.IGNORECASE)


def missing_user(name: str) -> InvalidSpec:
    """A user the image's ``/etc/passwd`` does not have."""
    return InvalidSpec(f"unable to find user {name}: no matching entries in passwd file")


def missing_group(name: str) -> InvalidSpec:
    """A group the image's ``/etc/group`` does not have."""
    return InvalidSpec(f"unable to find group {name}: no matching entries in group file")


def workdir_not_a_directory(path: str) -> InvalidSpec:
    """A working directory that is (or runs through) a file in the image."""
    return InvalidSpec(f"cannot create the working directory {path}: not a directory")


def port_in_use(binding: PortBinding | None) -> Conflict:
    """A host port to publish that something else holds (``None``: which one
    the engine did not say)."""
    if binding is None or not binding.host_port:
        return Conflict("a host port to publish is already in use")
    host = f"[{binding.host_ip}]" if ":" in binding.host_ip else binding.host_ip
    where = f"{host}:{binding.host_port}"
    if binding.protocol != "tcp":
        where += f"/{binding.protocol}"
    return Conflict(f"host port {where} is already in use")


def account_refusal(text: str) -> InvalidSpec | None:
    """The error for an engine's ``text`` naming a missing user or group, or None."""
    found = _MISSING_ACCOUNT.search(text)
    if found is None:
        return None
    kind, name = found.group(1), found.group(2)
    return missing_user(name) if kind == "user" else missing_group(name)


def port_refusal(text: str, ports: Iterable[PortBinding]) -> Conflict | None:
    """The error for an engine's ``text`` saying a host port is taken, or None.

    ``ports`` are the container's requested bindings: the one whose host port
    the text names is the one reported (the only fixed one when the text names
    none).
    """
    if not _PORT_IN_USE.search(text):
        return None
    fixed = [p for p in ports if p.host_port]
    named = [p for p in fixed if re.search(rf":{p.host_port}(?!\d)", text)]
    picked = named or (fixed if len(fixed) == 1 else [])
    return port_in_use(picked[0] if picked else None)


def names_not_a_directory(text: str) -> bool:
    """Whether an engine's ``text`` says a path is not a directory (ENOTDIR,
    in any engine's or runtime's words)."""
    return bool(_NOT_A_DIRECTORY.search(text))


def start_refusal(
    text: str, inspect: Callable[[], Container], workdir_words: Iterable[str]
) -> EngineError | None:
    """The error for a start the engine refused with ``text`` because of what
    the image lacks (a user, a group, a working directory) or a host port in
    use; None for anything else (the caller re-raises the engine's error).

    ``inspect`` gives the container (called only when its ports or working
    directory are needed; an ``EngineError`` from it means "not known": None);
    ``workdir_words`` are the engine's and runtime's words that a failed
    change into the working directory carries beside "not a directory".
    """
    account = account_refusal(text)
    if account is not None:
        return account
    if port_refusal(text, ()) is None and not names_not_a_directory(text):
        return None
    try:
        container = inspect()
    except EngineError:
        return None
    port = port_refusal(text, container.ports)
    if port is not None:
        return port
    if container.workdir and any(word in text for word in workdir_words):
        return workdir_not_a_directory(container.workdir)
    return None
