"""Hypothesis strategies for container specs: valid ones every engine must carry,
and invalid ones every engine must refuse alike with ``InvalidSpec``.

The valid strategies draw only what CONTRACT.md promises on every engine:
names ``[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}``, label keys and values, env names and
values (spaces, ``=``, non-ASCII text, the empty string), argument lists of
printable text, and small file trees for copy round trips. The invalid ones
each break exactly one rule, so a refusal can be traced to that rule.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from enginekit.models import Mount

__all__ = [
    "FileTree",
    "InvalidCase",
    "commands",
    "env_names",
    "env_values",
    "envs",
    "file_trees",
    "hostnames",
    "invalid_env_names",
    "invalid_env_values",
    "invalid_label_keys",
    "invalid_names",
    "invalid_specs",
    "label_keys",
    "label_values",
    "labels",
    "name_suffixes",
    "names",
    "printable_text",
    "users",
    "valid_specs",
    "workdirs",
]

NAME_FIRST = string.ascii_letters + string.digits
NAME_REST = NAME_FIRST + "_.-"
NAME_MAX = 63

# Text a value may hold on every engine: printable characters of any script,
# spaces and ``=`` included; no control characters (NUL, newline, ...), no
# surrogates, no unassigned or private-use code points, no line separators.
_PRINTABLE = st.characters(
    blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"),
)
_TRICKY = st.sampled_from([" ", "=", "'", '"', "$", "\\", "`", "é", "ü", "€", "日本", "🙂", "%s"])


def printable_text(*, min_size: int = 0, max_size: int = 24) -> st.SearchStrategy[str]:
    """Printable text of any script, biased towards shell- and parser-hostile characters."""
    return st.lists(st.one_of(_PRINTABLE, _TRICKY), min_size=min_size, max_size=max_size).map(
        "".join
    )


# --------------------------------------------------------------------------- names


def names() -> st.SearchStrategy[str]:
    """Any name the contract allows: ``[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}``."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(NAME_FIRST),
        st.text(alphabet=NAME_REST, max_size=NAME_MAX - 1),
    )


def name_suffixes(prefix_len: int) -> st.SearchStrategy[str]:
    """The tail of a valid name whose first ``prefix_len`` characters are taken by a
    unique prefix (so drawn names never collide with other runs' containers)."""
    return st.text(alphabet=NAME_REST, max_size=max(0, NAME_MAX - prefix_len))


def invalid_names() -> st.SearchStrategy[str]:
    """Names that break the rule: a ``/``, a space, a leading ``-``/``.``/``_``,
    too long, empty, or a character outside the set."""
    valid = names()
    return st.one_of(
        st.just(""),
        valid.map(lambda n: n[:30] + "/" + n[:30]),
        valid.map(lambda n: n[:30] + " " + n[:30]),
        valid.map(lambda n: "-" + n[:60]),
        valid.map(lambda n: "." + n[:60]),
        valid.map(lambda n: "_" + n[:60]),
        st.text(alphabet=NAME_REST, min_size=NAME_MAX, max_size=NAME_MAX + 20).map(
            lambda t: "a" + t
        ),
        st.builds(
            lambda n, c: n[:30] + c,
            valid,
            st.sampled_from([":", "@", "#", "é", "\x00", "\n", "*", "?", "[", "]"]),
        ),
    )


# --------------------------------------------------------------------------- labels


def label_keys() -> st.SearchStrategy[str]:
    """Label keys: mostly reverse-DNS-ish as Docker's guidelines shape them, and
    any printable text the core accepts (no ``=``, no white space at either end)."""
    conventional = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,30}\Z", fullmatch=True)
    anything = printable_text(min_size=1, max_size=20).filter(
        lambda k: "=" not in k and k == k.strip()
    )
    return st.one_of(conventional, conventional, anything).filter(
        lambda k: not k.startswith("enginekit.")
    )


def label_values() -> st.SearchStrategy[str]:
    return printable_text(max_size=30)


def labels(*, max_size: int = 4) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(label_keys(), label_values(), max_size=max_size)


def invalid_label_keys() -> st.SearchStrategy[str]:
    return st.sampled_from(["", "bad\x00key"])


# --------------------------------------------------------------------------- env

# Engines and init processes set some variables themselves; drawn names stay
# clear of them by a fixed prefix.
ENV_PREFIX = "EK_"


def env_names() -> st.SearchStrategy[str]:
    """Portable variable names (``EK_`` + ``[A-Za-z0-9_.-]``)."""
    return st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=20).map(
        lambda t: ENV_PREFIX + t
    )


def env_values() -> st.SearchStrategy[str]:
    """Values with spaces (inside, leading, trailing), ``=``, quotes, non-ASCII
    text and the empty string."""
    return st.one_of(
        st.just(""),
        st.just("a b  c"),
        st.just("x=y=z"),
        st.just(" padded "),
        printable_text(max_size=40),
    )


def envs(*, max_size: int = 5) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(env_names(), env_values(), max_size=max_size)


def invalid_env_names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        env_names().map(lambda n: n + "=x"),
        env_names().map(lambda n: "=" + n),
        env_names().map(lambda n: n + "\x00"),
        env_names().map(lambda n: n[:2] + "\x00" + n[2:]),
    )


def invalid_env_values() -> st.SearchStrategy[str]:
    return st.builds(
        lambda a, b: a + "\x00" + b, printable_text(max_size=10), printable_text(max_size=10)
    )


# --------------------------------------------------------------------------- commands and the rest


def commands(*, min_size: int = 0, max_size: int = 5) -> st.SearchStrategy[list[str]]:
    """Argument lists of printable strings (empty strings included)."""
    return st.lists(printable_text(max_size=20), min_size=min_size, max_size=max_size)


def workdirs() -> st.SearchStrategy[str]:
    segment = st.text(
        alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=10
    )
    # The engine mounts /proc, /sys and /dev over the image: a working directory
    # there cannot be made.
    return (
        st.lists(segment, min_size=1, max_size=3)
        .filter(lambda parts: parts[0] not in ("proc", "sys", "dev"))
        .map(lambda parts: "/" + "/".join(parts))
    )


def users() -> st.SearchStrategy[str]:
    """Numeric users (the test images have no /etc/passwd): ``uid`` or ``uid:gid``."""
    ids = st.integers(min_value=0, max_value=65000)
    return st.one_of(
        ids.map(str),
        st.builds(lambda u, g: f"{u}:{g}", ids, ids),
    )


def hostnames() -> st.SearchStrategy[str]:
    return st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z", fullmatch=True)


# --------------------------------------------------------------------------- whole specs


def valid_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A spec (keyword arguments of ``create``) minus ``name`` and the command,
    which the caller chooses so that it can check them from inside."""
    return st.fixed_dictionaries(
        {
            "env": envs(),
            "labels": labels(),
        },
        optional={
            "workdir": workdirs(),
            "user": users(),
            "hostname": hostnames(),
        },
    )


@attrs.frozen
class InvalidCase:
    """One invalid input: ``why`` names the rule it breaks (shown in failures)."""

    why: str
    command: Any
    spec: Mapping[str, Any]


def _case(why: str, spec: Mapping[str, Any], command: Any = ("true",)) -> InvalidCase:
    return InvalidCase(
        why=why, command=list(command) if isinstance(command, tuple) else command, spec=dict(spec)
    )


def invalid_specs() -> st.SearchStrategy[InvalidCase]:
    """Each case breaks exactly one rule of the contract's spec."""
    return st.one_of(
        invalid_names().map(lambda n: _case("invalid name", {"name": n})),
        printable_text(min_size=1).map(lambda c: _case("string command", {}, command=c)),
        printable_text(min_size=1).map(lambda c: _case("string entrypoint", {"entrypoint": c})),
        invalid_env_names().map(lambda n: _case("invalid env name", {"env": {n: "v"}})),
        invalid_env_values().map(lambda v: _case("env value with NUL", {"env": {"EK_X": v}})),
        invalid_label_keys().map(lambda k: _case("invalid label key", {"labels": {k: "v"}})),
        invalid_env_values().map(lambda v: _case("label value with NUL", {"labels": {"ek.x": v}})),
        st.integers(max_value=0).map(lambda m: _case("memory <= 0", {"memory": m})),
        st.sampled_from(["64x", "-64m", "0m", "m", "", "64 xb", "1.5.2g", "1e9"]).map(
            lambda m: _case("memory with bad unit", {"memory": m})
        ),
        st.floats(max_value=0.0, allow_nan=False).map(lambda c: _case("cpus <= 0", {"cpus": c})),
        st.sampled_from(["bogus", "cmd", "image_name", "Env", "volumes"]).map(
            lambda k: _case("unknown spec key", {k: "x"})
        ),
        st.one_of(
            st.integers(max_value=0).map(lambda p: {p: 8080}),
            st.integers(min_value=65536, max_value=10**6).map(lambda p: {p: 8080}),
            st.integers(min_value=65536, max_value=10**6).map(lambda p: {80: p}),
            st.integers(max_value=-1).map(lambda p: {80: p}),
        ).map(lambda ports: _case("port out of range", {"ports": ports})),
        st.sampled_from(
            [
                Mount(source="relative/dir", target="/mnt"),
                Mount(source="/tmp", target="relative/target"),
            ]
        ).map(lambda m: _case("relative mount path", {"mounts": [m]})),
        st.sampled_from(["relative", "./x", "x/y", ""]).map(
            lambda w: _case("relative workdir", {"workdir": w})
        ),
        st.sampled_from(["weird", "", "NONE", "bridge0"]).map(
            lambda n: _case("unknown network", {"network": n})
        ),
    )


# --------------------------------------------------------------------------- file trees


@attrs.frozen
class FileTree:
    """A small tree of files and directories, relative paths to contents.

    A path ending in ``/`` is an (empty) directory; every other path is a file
    whose bytes are the value.
    """

    entries: Mapping[str, bytes]

    def write(self, root: str) -> None:
        import os

        for rel, data in self.entries.items():
            path = os.path.join(root, rel)
            if rel.endswith("/"):
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)

    @staticmethod
    def read(root: str) -> dict[str, bytes]:
        """The tree under ``root`` in the same shape (empty directories end in ``/``)."""
        import os

        found: dict[str, bytes] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir != "." and not dirnames and not filenames:
                found[rel_dir + "/"] = b""
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, root)
                with open(full, "rb") as fh:
                    found[rel] = fh.read()
        return found


_SEGMENT = st.text(
    alphabet=string.ascii_letters + string.digits + "_-. é", min_size=1, max_size=12
).filter(lambda s: s not in (".", "..") and s.strip() == s)


def file_trees(*, max_files: int = 6) -> st.SearchStrategy[FileTree]:
    """Trees of up to ``max_files`` entries, up to 3 levels deep, with binary contents
    (NUL bytes, invalid UTF-8, empty files) and empty directories."""
    paths = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)
    contents = st.one_of(st.binary(max_size=300), st.just(b""), st.just(b"\x00\xff\xfe\n"))

    def build(items: list[tuple[str, bytes, bool]]) -> FileTree:
        entries: dict[str, bytes] = {}
        placed: set[str] = set()  # every path placed, file or directory
        for path, data, is_dir in items:
            parts = path.split("/")
            parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
            # A path clashing with one already placed (same path, a file or an
            # empty directory as a parent, or already a parent itself) is dropped.
            if path in placed or any(p in placed for p in parents):
                continue
            if any(k.startswith(path + "/") for k in entries):
                continue
            placed.add(path)
            entries[path + "/" if is_dir else path] = b"" if is_dir else data
        return FileTree(entries=entries)

    return st.lists(
        st.tuples(paths, contents, st.sampled_from([False, False, False, True])),
        min_size=1,
        max_size=max_files,
    ).map(build)
