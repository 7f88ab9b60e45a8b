"""Build context: .dockerignore matching, the walk, the tar, and the source checks."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enginekit.buildcontext import (
    DockerIgnore,
    check_sources,
    clean_path,
    context_tar,
    dockerfile_path,
    go_match,
    iter_context,
    load_dockerignore,
    parse_dockerignore,
    resolve_context,
    validate_build,
)
from enginekit.dockerfile import parse
from enginekit.errors import InvalidSpec


def make_tree(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(content)


def sent(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    return [e.path for e in iter_context(str(context), dockerfile)]


def tar_names(context: Path, dockerfile: str = "Dockerfile") -> dict[str, tarfile.TarInfo]:
    with context_tar(str(context), dockerfile) as f, tarfile.open(fileobj=f) as tar:
        return {m.name: m for m in tar.getmembers()}


# --------------------------------------------------------------------------- clean_path


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        (".", "."),
        ("a/b/", "a/b"),
        ("a//b", "a/b"),
        ("./a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/../../b", "../b"),
        ("/../a", "/a"),
        ("/", "/"),
        ("..", ".."),
    ],
)
def test_clean_path(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


# --------------------------------------------------------------------------- Go filepath.Match


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        # the cases of Go's own filepath.Match tests
        ("abc", "abc", True),
        ("*", "abc", True),
        ("*c", "abc", True),
        ("a*", "a", True),
        ("a*", "abc", True),
        ("a*", "ab/c", False),
        ("a*/b", "abc/b", True),
        ("a*/b", "a/c/b", False),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
        ("a*b?c*x", "abxbbxdbxebxczzx", True),
        ("a*b?c*x", "abxbbxdbxebxczzy", False),
        ("ab[c]", "abc", True),
        ("ab[b-d]", "abc", True),
        ("ab[e-g]", "abc", False),
        ("ab[^c]", "abc", False),
        ("ab[^b-d]", "abc", False),
        ("ab[^e-g]", "abc", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "ab", False),
        ("a?b", "a☺b", True),
        ("a[^a]b", "a☺b", True),
        ("a???b", "a☺b", False),
        ("a[^a][^a][^a]b", "a☺b", False),
        ("[a-ζ]*", "\u03b1", True),
        ("*[a-ζ]", "A", False),
        ("a?b", "a/b", False),
        ("a*b", "a/b", False),
        ("[\\]a]", "]", True),
        ("[\\-]", "-", True),
        ("[x\\-]", "x", True),
        ("[x\\-]", "-", True),
        ("[x\\-]", "z", False),
        ("[\\-x]", "x", True),
        ("*x", "xxx", True),
    ],
)
def test_go_match(pattern: str, name: str, matched: bool) -> None:
    assert go_match(pattern, name) is matched


@pytest.mark.parametrize(
    "pattern", ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "*x\\"]
)
def test_go_match_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidSpec):
        go_match(pattern, "a")


def test_go_match_reports_bad_pattern_even_after_mismatch() -> None:
    # Go checks the rest of the pattern before answering "no match".
    with pytest.raises(InvalidSpec):
        go_match("a[", "x")


# --------------------------------------------------------------------------- .dockerignore


def test_parse_dockerignore_rules() -> None:
    text = (
        "\ufeff# a comment\n"
        "   # not a comment: leading blanks\n"
        "\n"
        "  spaced  \n"
        "/rooted\n"
        "a//b/../c/\n"
        "! keep \n"
        "!/abs/keep\n"
        "./dot\n"
        "/\n"
    )
    assert parse_dockerignore(text) == [
        "# not a comment: leading blanks",
        "spaced",
        "rooted",
        "a/c",
        "!keep",
        "!abs/keep",
        "dot",
        "/",
    ]


def test_load_dockerignore_missing(tmp_path: Path) -> None:
    assert load_dockerignore(str(tmp_path)) == []


def test_load_dockerignore_symlink_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("x\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / ".dockerignore").symlink_to(outside)
    with pytest.raises(InvalidSpec, match="outside"):
        load_dockerignore(str(ctx))


def test_load_dockerignore_symlink_inside(tmp_path: Path) -> None:
    (tmp_path / "ignore.txt").write_text("foo\n")
    (tmp_path / ".dockerignore").symlink_to("ignore.txt")
    assert load_dockerignore(str(tmp_path)) == ["foo"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),  # * does not cross /
        (["**/*.md"], "docs/a/README.md", True),
        (["**/*.md"], "README.md", True),  # ** matches no directory too
        (["docs/**"], "docs/x/y", True),
        (["docs/**"], "docs", False),
        (["**"], "anything/at/all", True),
        (["docs"], "docs/a/b.txt", True),  # a parent matches
        (["docs/*"], "docs/a/b.txt", True),
        (["d?cs"], "docs", True),
        (["d?cs"], "d/cs", False),
        (["[a-c]*"], "bob", True),
        (["[^a-c]*"], "bob", False),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # the last match wins
        (["*.md", "!README.md", "README.md"], "README.md", True),
        (["docs", "!docs/keep.txt"], "docs/keep.txt", False),
        (["docs", "!docs/keep.txt"], "docs/other.txt", True),
        (["a/b"], "a", False),
        (["**/node_modules"], "x/y/node_modules/z", True),
        (["**/node_modules"], "node_modules", True),
        (["a.b"], "axb", False),  # regexp metacharacters are literal
        (["a+b"], "a+b", True),
        (["(x)"], "(x)", True),
        (["a\\*b"], "a*b", True),
        (["a\\*b"], "axb", False),
        (["foo/"], "foo/bar", True),  # cleaned to "foo"
        (["./foo"], "foo", True),
        (["/foo"], "foo", True),
        (["**foo"], "barfoo", True),  # Docker's suffix match
        (["**/foo"], "barfoo", False),
    ],
)
def test_dockerignore_matching(patterns: list[str], path: str, excluded: bool) -> None:
    ignore = DockerIgnore(parse_dockerignore("\n".join(patterns)))
    assert ignore.matches(path) is excluded


def test_dockerignore_root_is_never_excluded() -> None:
    assert DockerIgnore(["*"]).matches(".") is False


@pytest.mark.parametrize("bad", ["!", "[", "a[b"])
def test_dockerignore_bad_patterns(bad: str) -> None:
    with pytest.raises(InvalidSpec):
        DockerIgnore([bad])


def test_may_descend() -> None:
    ignore = DockerIgnore(["dir", "!dir/sub/keep", "!*/other"])
    assert ignore.may_descend("dir")
    assert ignore.may_descend("dir/sub")
    assert not ignore.may_descend("elsewhere")
    assert not DockerIgnore(["dir"]).may_descend("dir")


# --------------------------------------------------------------------------- the walk


def test_walk_order_and_ignores(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "Dockerfile": "FROM scratch\n",
            "b.txt": "b",
            "a/z.txt": "z",
            "a/b.md": "md",
            "a.txt": "a",
            "node_modules/pkg/index.js": "js",
            "docs/keep.md": "keep",
            "docs/drop.md": "drop",
            "empty/": "",
            ".dockerignore": "node_modules\n**/*.md\n!docs/keep.md\n",
        },
    )
    assert sent(tmp_path) == [
        ".dockerignore",
        "Dockerfile",
        "a",
        "a/z.txt",
        "a.txt",
        "b.txt",
        "docs",
        "docs/keep.md",
        "empty",
    ]


def test_excluded_dir_is_walked_for_exceptions_but_not_sent(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "Dockerfile": "",
            "vendor/a/keep.txt": "k",
            "vendor/a/drop.txt": "d",
            "vendor/b.txt": "b",
            ".dockerignore": "vendor\n!vendor/a/keep.txt\n",
        },
    )
    assert sent(tmp_path) == [".dockerignore", "Dockerfile", "vendor/a/keep.txt"]


def test_exception_with_wildcard_does_not_reopen_a_skipped_dir(tmp_path: Path) -> None:
    # Docker only descends an excluded directory for exceptions that name it literally.
    make_tree(
        tmp_path,
        {"Dockerfile": "", "vendor/keep.txt": "k", ".dockerignore": "vendor\n!*/keep.txt\n"},
    )
    assert sent(tmp_path) == [".dockerignore", "Dockerfile"]


def test_dockerfile_and_dockerignore_always_sent(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "build/Dockerfile.dev": "FROM scratch\n",
            "build/other": "",
            "x": "",
            ".dockerignore": "*\n",
        },
    )
    assert sent(tmp_path, "build/Dockerfile.dev") == [".dockerignore", "build/Dockerfile.dev"]


def test_symlinks_are_listed_not_followed(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Dockerfile": "", "real/f": "x"})
    (tmp_path / "outside").symlink_to("/etc")
    (tmp_path / "inside").symlink_to("real")
    entries = {e.path: e for e in iter_context(str(tmp_path))}
    assert entries["outside"].kind == "symlink"
    assert entries["outside"].link_target == "/etc"
    assert entries["inside"].kind == "symlink"
    assert "outside/passwd" not in entries
    assert "inside/f" not in entries


def test_sockets_are_not_sent(tmp_path: Path) -> None:
    import socket

    (tmp_path / "Dockerfile").write_text("")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        assert sent(tmp_path) == ["Dockerfile"]
    finally:
        sock.close()


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="not an existing directory"):
        resolve_context(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidSpec):
        resolve_context(str(tmp_path / "file"))


def test_context_path_is_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    assert resolve_context(str(tmp_path / "link")) == str((tmp_path / "real").resolve())


# --------------------------------------------------------------------------- dockerfile path


def test_dockerfile_path(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Dockerfile": "", "sub/Dockerfile.x": ""})
    assert dockerfile_path(str(tmp_path)) == "Dockerfile"
    assert dockerfile_path(str(tmp_path), "sub//Dockerfile.x") == "sub/Dockerfile.x"
    assert dockerfile_path(str(tmp_path), str(tmp_path / "sub/Dockerfile.x")) == "sub/Dockerfile.x"


def test_dockerfile_outside_is_refused(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InvalidSpec, match="outside"):
        dockerfile_path(str(ctx), "../Dockerfile")
    with pytest.raises(InvalidSpec, match="outside"):
        dockerfile_path(str(ctx), str(tmp_path / "Dockerfile"))
    (ctx / "Dockerfile").symlink_to(tmp_path / "Dockerfile")
    with pytest.raises(InvalidSpec, match="outside"):
        dockerfile_path(str(ctx), "Dockerfile")


def test_dockerfile_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="not found"):
        dockerfile_path(str(tmp_path))
    (tmp_path / "Dockerfile").mkdir()
    with pytest.raises(InvalidSpec, match="not found"):
        dockerfile_path(str(tmp_path))


# --------------------------------------------------------------------------- context_tar


def test_context_tar_contents(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "Dockerfile": "FROM scratch\n",
            "bin/tool": "#!/bin/sh\n",
            "data/big.txt": "x" * 70000,
            "secret.key": "s",
            ".dockerignore": "*.key\n",
        },
    )
    (tmp_path / "bin/tool").chmod(0o4755)
    (tmp_path / "out").symlink_to("/etc/passwd")
    (tmp_path / "dirlink").symlink_to("data")
    os.link(tmp_path / "data/big.txt", tmp_path / "hard.txt")
    os.utime(tmp_path / "Dockerfile", (1_600_000_000, 1_600_000_000.75))

    members = tar_names(tmp_path)
    assert list(members) == [
        ".dockerignore",
        "Dockerfile",
        "bin",
        "bin/tool",
        "data",
        "data/big.txt",
        "dirlink",
        "hard.txt",
        "out",
    ]
    assert "secret.key" not in members
    assert members["out"].issym() and members["out"].linkname == "/etc/passwd"
    assert members["dirlink"].issym() and members["dirlink"].linkname == "data"
    assert members["hard.txt"].islnk() and members["hard.txt"].linkname == "data/big.txt"
    assert members["bin"].isdir()
    assert members["bin/tool"].mode == 0o4755
    assert members["data/big.txt"].size == 70000
    assert members["Dockerfile"].mtime == 1_600_000_000
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")


def test_context_tar_file_contents_and_cleanup(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Dockerfile": "FROM scratch\n", "a/b": "hello"})
    f = context_tar(str(tmp_path))
    try:
        assert f.tell() == 0
        fd = f.fileno()
        with tarfile.open(fileobj=f) as tar:
            member = tar.extractfile("a/b")
            assert member is not None
            assert member.read() == b"hello"
        # An anonymous temporary file: nothing on disk carries it.
        assert os.fstat(fd).st_nlink == 0
    finally:
        f.close()


def test_context_tar_fifo(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("")
    os.mkfifo(tmp_path / "pipe")
    members = tar_names(tmp_path)  # must not block on the FIFO
    assert members["pipe"].isfifo()


def _unreadable_file_refused(ctx: Path) -> bool:
    try:
        context_tar(str(ctx)).close()
    except InvalidSpec as exc:
        return "secret" in str(exc)
    return False


def test_context_tar_unreadable_file() -> None:
    ctx = Path(tempfile.mkdtemp(prefix="ekt-unreadable-", dir="/tmp"))
    try:
        ctx.chmod(0o755)
        (ctx / "Dockerfile").write_text("")
        (ctx / "Dockerfile").chmod(0o644)
        secret = ctx / "secret"
        secret.write_text("x")
        secret.chmod(0)
        if os.geteuid() != 0:
            assert _unreadable_file_refused(ctx)
            return
        # Root reads every file: check as an unprivileged user in a forked child
        # (the modules are already loaded, so it needs no access to the install).
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 2
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                code = 0 if _unreadable_file_refused(ctx) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def test_context_tar_extracts_like_the_tree(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx, {"Dockerfile": "", "d/e/f.txt": "f", "g.bin": "\x00\x01"})
    (ctx / "d/e/f.txt").chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    with context_tar(str(ctx)) as f, tarfile.open(fileobj=f) as tar:
        tar.extractall(out, filter="tar")
    assert (out / "d/e/f.txt").read_text() == "f"
    assert stat.S_IMODE((out / "d/e/f.txt").stat().st_mode) == 0o600
    assert (out / "g.bin").read_bytes() == b"\x00\x01"


# --------------------------------------------------------------------------- check_sources


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    make_tree(
        root,
        {
            "a.txt": "a",
            "b.txt": "b",
            "real/f": "f",
            "real/sub/g": "g",
            "secret.key": "s",
            "ignored/x": "x",
            ".dockerignore": "*.key\nignored\n",
        },
    )
    (tmp_path / "outside.txt").write_text("outside")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir/f").write_text("f")
    (root / "linkdir").symlink_to("real")
    (root / "link_out_file").symlink_to(tmp_path / "outside.txt")
    (root / "link_out_dir").symlink_to(tmp_path / "outdir")
    (root / "link_out_rel").symlink_to("../outside.txt")
    (root / "real/up").symlink_to("../../outdir")
    (root / "abs_in").symlink_to(root / "real")
    (root / "dangling").symlink_to("nowhere")
    return root


def check(root: Path, dockerfile: str, build_args: dict[str, str] | None = None) -> None:
    (root / "Dockerfile").write_text(dockerfile)
    validate_build(str(root), "Dockerfile", build_args or {})


@pytest.mark.parametrize(
    "body",
    [
        "COPY a.txt /",
        "COPY . /",
        "COPY ./real/../a.txt /x",
        "COPY *.txt /dst/",
        "COPY real/s* /dst/",
        'COPY ["a.txt", "b.txt", "/dst/"]',
        "COPY linkdir/f /f",
        "COPY linkdir /d",
        "COPY abs_in/f /f",
        "ADD real /r",
        "COPY real/sub /s",
    ],
)
def test_sources_inside_are_accepted(ctx: Path, body: str) -> None:
    check(ctx, f"FROM scratch\n{body}\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("COPY ../outside.txt /", "outside the build context"),
        ("COPY real/../../outside.txt /", "outside the build context"),
        ("COPY /etc/passwd /", "absolute path"),
        ("COPY /tmp /", "absolute path"),
        ("COPY link_out_file /", "symbolic link 'link_out_file'"),
        ("COPY link_out_dir /", "symbolic link 'link_out_dir'"),
        ("COPY link_out_dir/f /", "symbolic link 'link_out_dir'"),
        ("COPY link_out_rel /", "symbolic link 'link_out_rel'"),
        ("COPY real/up/f /", "symbolic link 'real/up'"),
        ("COPY linkdir/up/f /", "symbolic link 'real/up'"),
        ("COPY link_* /d/", "outside"),
        ("COPY missing /", "no such file"),
        ("COPY dangling /", "no such file"),
        ("COPY *.nothing /", "nothing matches"),
        ("COPY secret.key /", "excluded by .dockerignore"),
        ("COPY ignored/x /", "excluded by .dockerignore"),
        ("COPY ignored /", "excluded by .dockerignore"),
        ("COPY a.txt/x /", "not a directory"),
        ("ADD http://example.com/f /", "remote ADD sources are not supported"),
        ("ADD https://example.com/f.tar.gz /", "remote ADD sources are not supported"),
        ("ADD git@github.com:x/y.git /", "remote ADD"),
        ("COPY a.txt b.txt /dst", "must be a directory and end with a /"),
        ("COPY *.txt /dst", "must be a directory and end with a /"),
    ],
)
def test_bad_sources_are_refused(ctx: Path, body: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("(", r"\(").replace(".", r"\.")):
        check(ctx, f"FROM scratch\n{body}\n")


def test_messages_name_the_instruction_and_source(ctx: Path) -> None:
    with pytest.raises(InvalidSpec) as info:
        check(ctx, "FROM scratch\nRUN true\nCOPY ../outside.txt /\n")
    assert "COPY source '../outside.txt' (Dockerfile line 3)" in str(info.value)


def test_messages_quote_a_source_as_written_not_its_arg_value(ctx: Path) -> None:
    secret = "s3cr3t-build-arg"
    with pytest.raises(InvalidSpec) as info:
        check(ctx, "FROM scratch\nARG TOKEN\nCOPY missing-${TOKEN} /\n", {"TOKEN": secret})
    assert "COPY source 'missing-${TOKEN}' (Dockerfile line 3)" in str(info.value)
    assert secret not in str(info.value)


def test_sources_after_substitution(ctx: Path) -> None:
    check(ctx, "FROM scratch\nARG SRC=a.txt\nCOPY $SRC /\n")
    with pytest.raises(InvalidSpec, match="outside"):
        check(ctx, "FROM scratch\nARG SRC=a.txt\nCOPY $SRC /\n", {"SRC": "../outside.txt"})
    with pytest.raises(InvalidSpec, match="outside"):
        check(ctx, "FROM scratch\nENV D=..\nCOPY ${D}/outside.txt /\n")
    # An undeclared build argument is not substituted.
    with pytest.raises(InvalidSpec, match="no such file"):
        check(ctx, "FROM scratch\nCOPY ${SRC}x /\n", {"SRC": "a.txt"})


def test_copy_from_a_stage_is_not_checked(ctx: Path) -> None:
    check(ctx, "FROM scratch AS b\nFROM scratch\nCOPY --from=b /etc/passwd /\n")
    check(ctx, "FROM scratch AS b\nFROM scratch\nCOPY --from=0 ../x /\n")


def test_stages_after_the_target_are_not_checked(ctx: Path) -> None:
    text = "FROM scratch AS good\nCOPY a.txt /\nFROM scratch AS bad\nCOPY ../outside.txt /\n"
    (ctx / "Dockerfile").write_text(text)
    validate_build(str(ctx), "Dockerfile", {}, target="good")
    with pytest.raises(InvalidSpec):
        validate_build(str(ctx), "Dockerfile", {})


def test_unused_stages_before_the_target_are_checked(ctx: Path) -> None:
    # Docker's classic builder builds them, so their sources must be good too.
    text = "FROM scratch AS bad\nCOPY ../outside.txt /\nFROM scratch AS good\nCOPY a.txt /\n"
    (ctx / "Dockerfile").write_text(text)
    with pytest.raises(InvalidSpec):
        validate_build(str(ctx), "Dockerfile", {}, target="good")


def test_validate_build_errors(ctx: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="not an existing directory"):
        validate_build(str(tmp_path / "nope"), "Dockerfile", {})
    with pytest.raises(InvalidSpec, match="not found"):
        validate_build(str(ctx), "Nope", {})
    (ctx / "Dockerfile").write_text("FROM scratch\nBOGUS x\n")
    with pytest.raises(InvalidSpec, match="line 2"):
        validate_build(str(ctx), "Dockerfile", {})
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InvalidSpec, match="target"):
        validate_build(str(ctx), "Dockerfile", {}, target="missing")


def test_validate_build_returns_the_parse(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch AS one\nCOPY a.txt /\n")
    df = validate_build(str(ctx), "Dockerfile", {})
    assert [s.name for s in df.stages] == ["one"]


def test_check_sources_direct(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n")
    check_sources(str(ctx), "Dockerfile", parse("FROM scratch\nCOPY a.txt /\n"))
    with pytest.raises(InvalidSpec):
        check_sources(str(ctx), "Dockerfile", parse("FROM scratch\nCOPY nope /\n"))


# --------------------------------------------------------------------------- properties

_name = st.text(alphabet="abcXYZ._-", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@given(st.lists(_name, min_size=1, max_size=4))
def test_literal_pattern_excludes_itself_and_below(parts: list[str]) -> None:
    path = "/".join(parts)
    ignore = DockerIgnore([path])
    assert ignore.matches(path)
    assert ignore.matches(path + "/child")
    assert not DockerIgnore([path, "!" + path]).matches(path)


@given(st.lists(_name, min_size=1, max_size=4))
def test_double_star_prefix_matches_at_any_depth(parts: list[str]) -> None:
    ignore = DockerIgnore(["**/" + parts[-1]])
    assert ignore.matches("/".join(parts))


def test_import_is_cheap() -> None:
    code = (
        "import sys, enginekit.buildcontext, enginekit.dockerfile\n"
        "bad = [m for m in ('docker', 'podman', 'lxc', 'requests', 'httpx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_for_copy_leaves_out_excluded_build_files(tmp_path: Path) -> None:
    # Docker's builder deletes the Dockerfile and .dockerignore it received when
    # .dockerignore excludes them: COPY never sees them (checked against Docker 20.10).
    make_tree(
        tmp_path,
        {"sub/Dockerfile.x": "", "sub/other": "", "a": "", ".dockerignore": "sub\n.dockerignore\n"},
    )
    assert sent(tmp_path, "sub/Dockerfile.x") == [".dockerignore", "a", "sub/Dockerfile.x"]
    copied = [e.path for e in iter_context(str(tmp_path), "sub/Dockerfile.x", for_copy=True)]
    assert copied == ["a"]
    with (
        context_tar(str(tmp_path), "sub/Dockerfile.x", for_copy=True) as f,
        tarfile.open(fileobj=f) as tar,
    ):
        assert tar.getnames() == ["a"]


def test_for_copy_keeps_build_files_not_excluded(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Dockerfile": "", ".dockerignore": "x\n"})
    assert [e.path for e in iter_context(str(tmp_path), for_copy=True)] == [
        ".dockerignore",
        "Dockerfile",
    ]


def test_excluded_dockerfile_cannot_be_copied(tmp_path: Path) -> None:
    make_tree(tmp_path, {".dockerignore": "Dockerfile\n"})
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    with pytest.raises(InvalidSpec, match="excluded"):
        validate_build(str(tmp_path), "Dockerfile", {})
