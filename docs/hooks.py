"""MkDocs hooks: the reference pages are generated from the code at build time (never
committed), and the terminal UI's key table is filled in from its bindings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

KEYS_MARKER = "<!-- tui-keys -->"
ROOT = Path(__file__).resolve().parents[1]
# The terminal UI's picture is its snapshot test's SVG: one file, drawn by the real app.
TUI_PICTURE = ROOT / "tests" / "__snapshots__" / "test_tui_snapshots" / "test_main_screen_full.svg"


def _pages() -> dict[str, str]:
    from simulator import reference
    from simulator.cli import cli

    return {
        "reference/cli.md": reference.cli_page(cli),
        "reference/settings.md": reference.settings_page(),
        "reference/kinds.md": reference.kinds_page(),
        "reference/exit-codes.md": reference.exit_codes_page(),
        "reference/scenario-format.md": reference.scenario_format_page(),
    }


def on_files(files: Files, config: Any) -> Files:
    """Add the generated reference pages to the site."""
    for uri, content in _pages().items():
        files.append(File.generated(config, uri, content=content))
    files.append(File.generated(config, "images/tui.svg", content=TUI_PICTURE.read_bytes()))
    from simulator.schema import SCHEMA_FILE, schema_text

    files.append(File.generated(config, f"reference/{SCHEMA_FILE}", content=schema_text()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill in the generated parts of hand-written pages."""
    if KEYS_MARKER in markdown:
        from simulator.tui.reference import keys_markdown

        markdown = markdown.replace(KEYS_MARKER, keys_markdown())
    return markdown
