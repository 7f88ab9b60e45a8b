"""One-character container names on Docker.

enginekit's names match ``[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}``; dockerd refuses
names shorter than two characters. A container named with one character
``N`` is therefore created under the Docker name :func:`engine_name` ``(N)``:
``N`` + ``--ek-`` + 64 hex digits, 70 characters in all. No valid enginekit
name is that long, so it never collides with a name a caller gives; it is the
same for every container named ``N``, so Docker's own name check refuses a
second one atomically. The container also carries the label
``io.enginekit.name=N``. A container is reported as named ``N`` only when
both agree (label ``N`` and Docker name ``engine_name(N)``); that label is
then not shown among its labels. A label ``io.enginekit.name`` on any other
container is an ordinary label.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NAME_LABEL", "engine_name", "is_mapped", "user_view"]

NAME_LABEL = "io.enginekit.name"
_MARK = "--ek-"


def is_mapped(name: str) -> bool:
    """Whether ``name`` is stored under another Docker name (one character)."""
    return len(name) == 1


def engine_name(name: str) -> str:
    """The Docker name for ``name``: itself, or the mapped name of a one-character one."""
    if not is_mapped(name):
        return name
    import hashlib  # rarely needed: not on every start-up

    digest = hashlib.sha256(f"enginekit container name {name}".encode()).hexdigest()
    return name + _MARK + digest


def user_view(docker_name: str, labels: Mapping[str, str]) -> tuple[str, Mapping[str, str]]:
    """(name, labels) as enginekit reports them for a container Docker calls ``docker_name``."""
    name = labels.get(NAME_LABEL)
    if name is None or not is_mapped(name) or engine_name(name) != docker_name:
        return docker_name, labels
    return name, {k: v for k, v in labels.items() if k != NAME_LABEL}
