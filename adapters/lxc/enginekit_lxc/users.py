"""User specs ("name", "uid", "name:group", "uid:gid") resolved as Docker does.

The image's ``/etc/passwd`` and ``/etc/group`` are read inside its rootfs. As on
Docker: no user means root; a numeric uid absent from passwd runs with gid 0
and ``HOME=/``; a name absent from passwd is an error; the supplementary
groups are the primary gid plus every group listing the user as a member.
"""

from __future__ import annotations

import attrs

from enginekit.toolkit import refusals

from .fsroot import Root

__all__ = ["ExecUser", "resolve_user"]


@attrs.frozen(kw_only=True)
class ExecUser:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _read_db(root: Root, path: str) -> list[list[str]]:
    try:
        data = root.read_bytes(path)
    except OSError:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(root: Root, user: str | None) -> ExecUser:
    """Resolve ``user`` against the passwd and group files under ``root``."""
    spec = user or ""
    name_part, _, group_part = spec.partition(":")
    passwd = _read_db(root, "/etc/passwd")
    groups = _read_db(root, "/etc/group")

    uid: int | None = None
    gid = 0
    home = "/"
    user_name: str | None = None
    if name_part == "":
        name_part = "0" if not spec else name_part
    numeric = _int(name_part)
    for row in passwd:
        if len(row) < 7:
            continue
        if (numeric is None and row[0] == name_part) or (
            numeric is not None and _int(row[2]) == numeric
        ):
            uid_v, gid_v = _int(row[2]), _int(row[3])
            if uid_v is None or gid_v is None:
                continue
            uid, gid, home, user_name = uid_v, gid_v, row[5] or "/", row[0]
            break
    if uid is None:
        if numeric is None:
            raise refusals.missing_user(name_part)
        uid = numeric

    if group_part:
        gnum = _int(group_part)
        found: int | None = gnum
        for row in groups:
            if len(row) < 3:
                continue
            if (gnum is None and row[0] == group_part) or (
                gnum is not None and _int(row[2]) == gnum
            ):
                found = _int(row[2])
                break
        if found is None:
            raise refusals.missing_group(group_part)
        return ExecUser(uid=uid, gid=found, groups=(found,), home=home)

    extra: list[int] = [gid]
    if user_name is not None:
        for row in groups:
            if len(row) < 4:
                continue
            members = [m.strip() for m in row[3].split(",")]
            g = _int(row[2])
            if user_name in members and g is not None and g not in extra:
                extra.append(g)
    return ExecUser(uid=uid, gid=gid, groups=tuple(extra), home=home)
