"""The docs site builds with --strict (no broken link, no orphan page), offline, and its
generated reference lists every command, option, setting, kind, exit code and key."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from simulator.cli import cli
from simulator.errors import ExitCode
from simulator.reference import walk

ROOT = Path(__file__).parents[1]
GENERATED = ("cli", "settings", "kinds", "exit-codes", "scenario-format")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def text_of(page: Path) -> str:
    """A built page's text without tags, entities decoded (what a reader sees)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_the_site_builds_strictly_with_every_page_in_the_nav(site: Path) -> None:
    assert (site / "index.html").is_file()
    pages = {p.relative_to(ROOT / "docs").with_suffix(".html")
             for p in (ROOT / "docs").rglob("*.md")}
    built = {p.relative_to(site) for p in site.rglob("*.html")}
    assert pages <= built
    generated = {Path("reference") / f"{n}.html" for n in GENERATED}
    assert generated <= built


def test_no_generated_page_is_committed() -> None:
    for name in GENERATED:
        assert not (ROOT / "docs" / "reference" / f"{name}.md").exists(), name


def test_the_site_fetches_nothing_from_the_network(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in index
    assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", index)


def sections_of(page: Path) -> dict[str, str]:
    """A built page's text by its second-level headings."""
    parts = re.split(r"<h2[^>]*>", page.read_text(encoding="utf-8"))[1:]
    sections = {}
    for part in parts:
        title, _, rest = part.partition("</h2>")
        sections[text_of_html(title).strip()] = text_of_html(rest)
    return sections


def text_of_html(text: str) -> str:
    """HTML as the text a reader sees."""
    return html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\u00b6", "").strip()


def test_the_command_reference_lists_every_option_of_every_command(site: Path) -> None:
    sections = sections_of(site / "reference" / "cli.html")
    commands = list(walk(cli))
    assert len(commands) > 15
    for path, command, ctx in commands:
        section = sections[path]
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                for flag in (*param.opts, *param.secondary_opts):
                    assert flag in section, f"{path}: {flag}"
    for name in ("api", "demo", "tui", "fire", "run", "load", "scenarios show", "verify"):
        assert f"wasim {name}" in sections, name


def test_a_missing_option_would_be_caught(site: Path) -> None:
    """The check above can fail: an option that is not on the page is not found there."""
    page = text_of(site / "reference" / "cli.html")
    assert "--no-such-option-anywhere" not in page


def test_the_settings_kinds_and_exit_codes_pages_list_every_one(site: Path) -> None:
    from simulator.kinds import kind_names
    from simulator.settings import SETTINGS

    settings = text_of(site / "reference" / "settings.html")
    for setting in SETTINGS:
        assert setting.key in settings and setting.flag in settings, setting.key
    kinds = text_of(site / "reference" / "kinds.html")
    for name in kind_names():
        assert name in kinds, name
    codes = text_of(site / "reference" / "exit-codes.html")
    for exit_code in ExitCode:
        assert f"{int(exit_code)}\n{exit_code.name}" in codes, exit_code


def test_the_terminal_ui_page_lists_every_key_of_the_app(site: Path) -> None:
    from textual.binding import Binding

    from simulator.tui.app import WasimApp
    from simulator.tui.screens.help import key_label

    page = text_of(site / "guides" / "tui.html")
    for binding in WasimApp.BINDINGS:
        assert isinstance(binding, Binding)
        shown = binding.key_display or key_label(binding.key)
        if binding.key in "23456789":
            shown = "1-9"
        assert shown in page, binding.key
    for key in ("m", "/", "a", "tab", "enter", "^s"):
        assert f"\n{key}\n" in page or f"\n{key}," in page, key


def test_the_site_publishes_the_schema_and_every_key_of_the_format(site: Path) -> None:
    from simulator.scenario_format import BLOCKS
    from simulator.schema import schema_text

    assert (site / "reference" / "wasim-schema.json").read_text() == schema_text()
    sections = sections_of(site / "reference" / "scenario-format.html")
    assert len(sections) == len(BLOCKS) + 1  # and target
    page = text_of(site / "reference" / "scenario-format.html")
    for declared in BLOCKS.values():
        for key in declared:
            help_text = " ".join(key.help.replace("`", "").split())[:40]
            assert key.name in page and help_text in page, key.name


def test_the_readme_is_a_short_front_door_whose_links_all_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    # the quickstart lines are what people paste and what CI runs (.ci/run)
    assert "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/wasim demo" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python " \
           "-m pytest" in readme
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert len(links) > 10
    for link in links:
        if not link.startswith(("http://", "https://")):
            target = (ROOT / link.split("#")[0]).resolve()
            assert target.is_relative_to(ROOT) and target.exists(), link
