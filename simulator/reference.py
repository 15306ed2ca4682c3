"""The docs' reference pages, generated from the code so they cannot drift: every command and
option (from click), the delivery settings (settings.SETTINGS), every kind (the registry) and
the exit codes (errors.ExitCode). The docs build (docs/hooks.py) calls these; nothing they
produce is committed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import click

PAGE_NOTE = ("*This page is generated from the code when the docs are built; it lists what the "
             "installed wasim does.*")


def cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table: one line, no pipes, no raw HTML."""
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(
        "*", "\\*")


def code(text: str) -> str:
    """Inline code for a table cell (pipes escaped, which Python-Markdown's tables honour)."""
    return "`" + text.replace("|", "\\|") + "`"


def walk(group: click.Command, path: str = "wasim",
         parent: click.Context | None = None) -> Iterator[tuple[str, click.Command,
                                                                 click.Context]]:
    """Every command under `group` with its full path (`wasim scenarios show`), depth first."""
    ctx = click.Context(group, info_name=path.rsplit(" ", 1)[-1], parent=parent)
    yield path, group, ctx
    if isinstance(group, click.Group):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None and not command.hidden:
                yield from walk(command, f"{path} {name}", ctx)


def _help_markdown(text: str) -> list[str]:
    """A click help text as Markdown: `\\b` paragraphs stay as written, in a code block."""
    out: list[str] = []
    for paragraph in click.unstyle(text).split("\n\n"):
        lines = paragraph.strip("\n").splitlines()
        if not lines:
            continue
        if lines[0].strip() == "\b":
            block = textwrap.dedent("\n".join(lines[1:])).splitlines()
            out += ["```text", *(line.rstrip() for line in block), "```", ""]
        else:
            out += [" ".join(" ".join(lines).split()), ""]
    return out


def cli_page(group: click.Command) -> str:
    """The command reference: usage, help and a table of every option of every command."""
    out = ["# Commands", "", PAGE_NOTE, "",
           "`python -m simulator` is the same command as `wasim`. Every command also takes "
           "`--help`.", ""]
    for path, command, ctx in walk(group):
        out += [f"## `{path}`", ""]
        pieces = " ".join(command.collect_usage_pieces(ctx))
        out += ["```text", f"{path} {pieces}".rstrip(), "```", ""]
        out += _help_markdown(command.help or "")
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        if arguments:
            out += ["| argument | required |", "|---|---|"]
            out += [f"| {code(a.make_metavar(ctx))} | {'yes' if a.required else 'no'} |"
                    for a in arguments]
            out.append("")
        rows = []
        for param in command.get_params(ctx):
            if not isinstance(param, click.Option) or param.hidden:
                continue
            record = param.get_help_record(ctx)
            if record is None:
                continue
            names, help_text = record
            rows.append(f"| {code(names)} | {cell(help_text)} |")
        if rows:
            out += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(out)


def settings_page() -> str:
    """The delivery settings table: key in `target:`, flag, environment variable, default."""
    from simulator.settings import SETTINGS

    out = ["# Delivery settings", "", PAGE_NOTE, "",
           "Every delivering command (`fire`, `run`, `replay`, `load`, `tui`) takes these as "
           "flags; a scenario's `target:` (and a step's) takes them by key; "
           "`wasim.target(...)` by keyword. The layer given last wins: flags over a step's "
           "`target:` over the scenario's `target:` over the defaults. `allow_remote` is "
           "never a setting: only the person running wasim allows remote targets "
           "(`--allow-remote`).", "",
           "| key | flag | environment | default | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        flag = s.flag + (f", {s.short}" if s.short else "")
        if s.metavar:
            flag += f" {s.metavar}"
        default = "" if s.default in (None, ()) else code(str(s.default))
        env = code(s.envvar) if s.envvar else ""
        repeat = " Repeatable; a mapping or list in a file." if s.multiple else ""
        out.append(f"| {code(s.key)} | {code(flag)} | {env} | {default} | "
                   f"{cell(s.help + repeat)} |")
    return "\n".join(out) + "\n"


def kinds_page() -> str:
    """Every kind `--kind` sends, what it is and the options it reads."""
    from simulator.kinds import kind_rows

    out = ["# Kinds", "", PAGE_NOTE, "",
           "`wasim render --kind KIND` and `wasim fire --kind KIND` send any of these, in the "
           "same envelope, with the same seeded users and ids; `wasim render --kind list` "
           "prints this table. In a scenario a step sends them with `send:` "
           "(see [the scenario file format](scenario-format.md#step)).", "",
           "| kind | what | its options |", "|---|---|---|"]
    for name, what, options in kind_rows():
        shown = ", ".join(code(o.strip()) for o in options.split(",") if o.strip())
        out.append(f"| {code(name)} | {cell(what)} | {shown} |")
    return "\n".join(out) + "\n"


def exit_codes_page() -> str:
    """Every exit code of every face."""
    from simulator.errors import EXIT_MEANINGS

    out = ["# Exit codes", "", PAGE_NOTE, "", "| code | name | meaning |", "|---|---|---|"]
    for exit_code, meaning in EXIT_MEANINGS.items():
        out.append(f"| {int(exit_code)} | {code(exit_code.name)} | {cell(meaning)} |")
    out += ["", "Errors are one line on stderr: what, where (a flag, `file:line` or a field "
            "path), and what to do next; never a traceback."]
    return "\n".join(out) + "\n"


def _type_of(key: object) -> str:
    """A declared key's type, in words."""
    from simulator.scenario_format import Key

    assert isinstance(key, Key)
    if key.type == "number":
        return f"number, {key.low:g} to {key.high:g}"
    if key.type == "whole":
        return f"whole number, {int(key.low):,} to {int(key.high):,}"
    if key.type == "flag":
        return "true or false"
    if key.type == "duration":
        return "duration (30, 500ms, 10s, 2m, 1h)"
    if key.type == "choice":
        return "one of " + ", ".join(code(c) for c in key.choices)
    if key.type == "block":
        block = key.block or key.name
        if block == "target":
            return "[delivery settings](settings.md)"
        return f"[mapping](#{block})"
    if key.type == "custom":
        return "see the meaning"
    return "text"


def scenario_format_page() -> str:
    """Every key of a scenario file, block by block, from the declared format."""
    from simulator.scenario_format import BLOCKS
    from simulator.schema import SCHEMA_FILE

    out = ["# Scenario file format", "", PAGE_NOTE, "",
           "A scenario file is Jinja first (with `fake`, `env` and `seed`), then YAML. Every "
           "key below is optional unless marked required; a key given no value is left out. "
           "An unknown key is an error naming the file, the line and the closest known key. "
           "The [Scenarios guide](../guides/scenarios.md) has an annotated example.", "",
           f"The same format as JSON Schema: [{SCHEMA_FILE}]({SCHEMA_FILE}), or "
           f"`wasim schema > {SCHEMA_FILE}`. Files that `wasim new` writes start with "
           f"`# yaml-language-server: $schema=../{SCHEMA_FILE}`, so editors that read that "
           "line (VS Code's YAML extension and others) check and complete them once the "
           "schema is in the folder above the scenarios.", ""]
    titles = {"scenario": "The file", "step": "A step (`steps[]`)",
              "button": "A button (`template.buttons[]`)", "user": "A listed user "
              "(`cast.users[]`)", "tap_reply": "`tap_reply` (in a step)",
              "verify": "`verify` (in a step)", "reply": "`reply` (in `expect`)"}
    for block, declared in BLOCKS.items():
        title = titles.get(block, f"`{block}`")
        out += [f"## {title} {{#{block}}}", "", "| key | type | default | meaning |",
                "|---|---|---|---|"]
        for key in declared:
            default = "" if key.default is None else code(str(key.default))
            meaning = cell(key.help) + (" **Required.**" if key.required else "")
            out.append(f"| {code(key.name)} | {_type_of(key)} | {default} | {meaning} |")
        out.append("")
    out += ["## `target` {#target}", "", "The [delivery settings](settings.md), by key.", ""]
    return "\n".join(out)
