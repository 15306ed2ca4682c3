"""The terminal UI's keys as Markdown for the docs, from the help screen's own sections (so
the page lists exactly what `?` shows)."""

from __future__ import annotations

from typing import cast

from simulator.reference import cell, code


def keys_markdown() -> str:
    """Every key of the terminal UI, one table per section of the help screen."""
    from simulator.tui.app import WasimApp
    from simulator.tui.screens.compose import RowScreen, SendScreen
    from simulator.tui.screens.dialogs import RunScreen, TargetScreen
    from simulator.tui.screens.edit import EditScreen
    from simulator.tui.screens.help import binding_rows
    from simulator.tui.screens.scenarios import ScenarioScreen
    from simulator.tui.screens.users import UserScreen
    from simulator.tui.widgets.log import LogFilter

    # help_sections reads only the bindings, never the running app's state.
    sections = list(WasimApp.help_sections(cast(WasimApp, None)))
    # The dialogs' own keys, which the help screen leaves to each dialog's footer.
    dialogs = [("Edit the user (e)", EditScreen.BINDINGS), ("Pick a user (u)", UserScreen.BINDINGS),
               ("Open (o)", ScenarioScreen.BINDINGS), ("Run (s)", RunScreen.BINDINGS),
               ("Target (t)", TargetScreen.BINDINGS), ("Send menu (m)", SendScreen.BINDINGS),
               ("List row (m)", RowScreen.BINDINGS), ("Log filter (/)", LogFilter.BINDINGS)]
    sections.append(("In dialogs", [(keys, f"{where}: {what}") for where, bindings in dialogs
                                    for keys, what in binding_rows(bindings)]))
    out: list[str] = []
    for title, rows in sections:
        out += [f"**{title}**", "", "| key | does |", "|---|---|"]
        out += [f"| {code(keys)} | {cell(what)} |" for keys, what in rows]
        out.append("")
    return "\n".join(out)
