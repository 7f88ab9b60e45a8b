"""The user's manual builds with ``mkdocs build --strict`` (mkdocs is a dev dependency)."""

from __future__ import annotations

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
    from enginekit.cli import EXIT_CODES

    for cls, code in EXIT_CODES.items():
        assert f"| {code} | `{cls}`" in text or f"`{cls}`" in text
