"""The user's manual builds with ``mkdocs build --strict`` (mkdocs is a dev dependency)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("ContainerService", "ImageService", "EngineUnavailable", "Driver"):
        assert name in api, f"{name} missing from the API reference"
    assert (tmp_path / "site" / "engines" / "index.html").is_file()


def test_every_cli_command_is_documented() -> None:
    from enginekit.cli._parser import build_parser

    text = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command_name")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"`{name}" in text, f"enginekit {name} is not in docs/cli.md"


def _exit_code_table(text: str) -> dict[int, str]:
    """docs/cli.md's exit-code table: code -> its meaning (the row's second cell)."""
    rows: dict[int, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            assert int(cells[0]) not in rows, f"exit code {cells[0]} is in the table twice"
            rows[int(cells[0])] = cells[1]
    return rows


def test_every_exit_code_is_documented_with_its_error_class() -> None:
    from enginekit.cli import EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE

    table = _exit_code_table((ROOT / "docs" / "cli.md").read_text())
    for cls, code in EXIT_CODES.items():
        assert code in table, f"exit code {code} ({cls}) is not in docs/cli.md's table"
        # The row names its class first: `| 122 | `NotFound` (...) |`.
        named = re.findall(r"`([A-Za-z]+)`", table[code])
        assert named[:1] == [cls], (
            f"docs/cli.md gives exit code {code} to {table[code]!r}, not {cls}"
        )
    assert "usage" in table.get(EXIT_USAGE, ""), table
    assert "interrupted" in table.get(EXIT_INTERRUPTED, ""), table
    # No row for a class the command line does not map (a code changed in one place only).
    documented = {
        code for code, meaning in table.items() if re.match(r"(any other )?`[A-Z]", meaning)
    }
    assert documented == set(EXIT_CODES.values()), sorted(documented ^ set(EXIT_CODES.values()))
