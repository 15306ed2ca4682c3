"""How the command line asks for a kind: `--kind` and each kind's own options, shared by
`wasim render`, `wasim fire` and `wasim load`, generated from the fields the registered kinds
declare (simulator.kinds.base.Field) and checked against the fields the chosen kind reads."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from simulator.errors import WasimError
from simulator.kinds import BUTTON, KIND_SPECS, get_kind, kind_rows
from simulator.kinds.base import Field, KindArgs
from simulator.params import Number, check_not_empty


def declared_fields() -> dict[str, tuple[Field, tuple[str, ...]]]:
    """Every field the kinds declare, by name, with the kinds that read it (first declaration
    first: the order of the registry, so of `--help`)."""
    found: dict[str, tuple[Field, tuple[str, ...]]] = {}
    for spec in KIND_SPECS.values():
        for declared in spec.fields:
            first, kinds = found.get(declared.name, (declared, ()))
            found[declared.name] = (first, (*kinds, spec.name))
    return found


def _click_option(declared: Field, kinds: tuple[str, ...]) -> Callable[..., Any]:
    """The command-line option of a declared field: `--name`, its help prefixed with the kinds
    that read it, its type and bounds checked by click."""
    from simulator.kinds.media import MEDIA

    who = "media" if set(kinds) == set(MEDIA) else "/".join(kinds)
    help_text = f"{who}: {declared.help}"
    param = f"kind_{declared.name}"
    if declared.type == "flag":
        return click.option(declared.option, param, is_flag=True, help=help_text)
    kind: Any = None
    if declared.choices:
        kind = click.Choice([str(choice) for choice in declared.choices])
    elif declared.type in ("number", "integer"):
        kind = Number(declared.low, declared.high, integer=declared.type == "integer",
                      what=declared.unit or "a number")
    return click.option(declared.option, param, type=kind,
                        metavar=None if declared.choices else declared.metavar, help=help_text)


def kind_option() -> Callable[..., Any]:
    """`--kind`, its help naming every registered kind."""
    return click.option(
        "--kind", "-k", "kind", metavar="KIND", default=None, callback=check_not_empty,
        help=f"What to send: {BUTTON} (the default), {', '.join(KIND_SPECS)}; "
             "'--kind list' prints them with their options.")


def kind_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--kind` and every kind's options (render, fire, load), generated from the fields
    the registered kinds declare."""
    for declared, kinds in reversed(declared_fields().values()):
        command = _click_option(declared, kinds)(command)
    decorated: Callable[..., Any] = kind_option()(command)
    return decorated


def wants_kind_list(options: dict[str, Any]) -> bool:
    """`--kind list`: print the kinds (and do nothing else)."""
    if options.get("kind") == "list":
        for line in kind_table(sys.stdout):
            click.echo(line)
        return True
    return False


def kind_table(stream: Any, indent: int = 0) -> list[str]:
    """The kinds as a table for `stream` (less `indent` columns): name, what, options."""
    from simulator.terminal import Col, table_lines, width_of

    width = width_of(stream)
    return table_lines([Col("KIND"), Col("WHAT", wrap=True), Col("OPTIONS", wrap=True)],
                       kind_rows(), stream, None if width is None else max(width - indent, 40))


def kind_from(options: dict[str, Any]) -> tuple[str, KindArgs]:
    """The kind asked for and its arguments; an option the kind does not read is an error."""
    name = options.get("kind") or (options.get("kind_media") or BUTTON)
    if name == "media":
        name = options.get("kind_media") or "image"
    spec = get_kind(name) if name != BUTTON else None
    values: dict[str, Any] = {}
    for declared, _ in declared_fields().values():
        given = options.get(f"kind_{declared.name}")
        if given in (None, False):
            continue
        if spec is None or spec.get_field(declared.name) is None:
            raise WasimError(f"not an option of kind {name}", where=declared.option,
                             hint=_which_kinds(declared.option))
        if declared.type == "flag":
            values[declared.name] = not declared.negated
        elif declared.type == "integer":
            values[declared.name] = int(given)
        else:
            values[declared.name] = given
    if name != BUTTON and (options.get("button") is not None
                           or options.get("payload") is not None):
        raise WasimError(f"--button is for quick-reply taps, not kind {name}",
                         where="--button", hint="Drop --button, or use --kind button.")
    args = KindArgs.of(values)
    broken = spec.broken(args, lambda declared: declared.option) if spec else None
    if spec is not None and broken is not None:
        field_name, message, hint = broken
        at = spec.get_field(field_name)
        raise WasimError(message, where=at.option if at else field_name, hint=hint)
    return name, args


def _which_kinds(flag: str) -> str:
    kinds = [spec.name for spec in KIND_SPECS.values() if flag in spec.options]
    return f"It is for {', '.join(kinds)}." if kinds else "See `wasim render --kind list`."
