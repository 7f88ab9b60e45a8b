"""How every engine words what it refused (``enginekit.refusals``): a start for a
missing user, group or working directory, a host port in use; an adapter
recognises its engine's words and raises these."""

from __future__ import annotations

from enginekit.refusals import (
    account_refusal,
    missing_group,
    missing_user,
    names_not_a_directory,
    port_in_use,
    port_refusal,
    start_refusal,
    workdir_not_a_directory,
)

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
