"""How the command line asks for a kind: `--kind` and each kind's own options, shared by
`wasim render` and `wasim fire`, checked against the options the chosen kind reads."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from simulator.errors import WasimError
from simulator.kinds import BUTTON, KIND_SPECS, get_kind, kind_rows
from simulator.kinds.base import KindArgs
from simulator.kinds.media import MEDIA
from simulator.kinds.status import ERRORS, STATUSES
from simulator.kinds.text import FORWARDS
from simulator.params import Number, check_not_empty

# (click option, the KindArgs field it fills, its flag): the flag names a kind lists.
_OPTIONS: list[tuple[Any, str, str]] = [
    (click.option("--text", "kind_text", metavar="TEXT", help="text: the message body."),
     "text", "--text"),
    (click.option("--forwarded", "kind_forwarded", type=click.Choice(FORWARDS),
                  help="text: mark it forwarded (or frequently forwarded)."),
     "forwarded", "--forwarded"),
    (click.option("--reply-id", "kind_reply_id", metavar="ID",
                  help="button_reply/list_reply: the chosen button's or row's id."),
     "reply_id", "--reply-id"),
    (click.option("--reply-title", "kind_reply_title", metavar="TITLE",
                  help="button_reply/list_reply: its title."), "reply_title", "--reply-title"),
    (click.option("--reply-description", "kind_reply_description", metavar="TEXT",
                  help="list_reply: the row's description."),
     "reply_description", "--reply-description"),
    (click.option("--media", "kind_media", type=click.Choice(list(MEDIA)),
                  help="Media kind to send (the same as --kind NAME)."), "media", "--media"),
    (click.option("--caption", "kind_caption", metavar="TEXT",
                  help="image/video/document: the caption."), "caption", "--caption"),
    (click.option("--lat", "kind_lat", type=Number(-90, 90, what="degrees"),
                  help="location: latitude."), "lat", "--lat"),
    (click.option("--lng", "kind_lng", type=Number(-180, 180, what="degrees"),
                  help="location: longitude."), "lng", "--lng"),
    (click.option("--place-name", "kind_place_name", metavar="NAME",
                  help="location: the place's name."), "place_name", "--place-name"),
    (click.option("--address", "kind_address", metavar="TEXT",
                  help="location: the place's address."), "address", "--address"),
    (click.option("--place-url", "kind_url", metavar="URL", help="location: the place's url."),
     "url", "--place-url"),
    (click.option("--emoji", "kind_emoji", metavar="EMOJI",
                  help="reaction: the emoji; '' removes the reaction."), "emoji", "--emoji"),
    (click.option("--status", "kind_status", type=click.Choice(STATUSES),
                  help="status: which status of the brand's message.  [default: sent]"),
     "status", "--status"),
    (click.option("--error", "kind_error", type=click.Choice([str(c) for c in ERRORS]),
                  help="status failed: Meta's error code.  [default: 131026]"),
     "error", "--error"),
    (click.option("--no-contacts", "kind_no_contacts", is_flag=True,
                  help="status: without the 2026 contacts entry."),
     "contacts", "--no-contacts"),
]
KIND_OPTION = click.option(
    "--kind", "-k", "kind", metavar="KIND", default=None, callback=check_not_empty,
    help="What to send: button (the default), text, button_reply, list_reply, image, video, "
         "audio, voice, document, sticker, location, contacts, reaction, unsupported, status; "
         "'--kind list' prints them with their options.")


def kind_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--kind` and every kind's options (render and fire)."""
    for option, _, _ in reversed(_OPTIONS):
        command = option(command)
    return KIND_OPTION(command)


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
    if name != BUTTON:
        get_kind(name)
    given = {field: flag for _, field, flag in _OPTIONS
             if options.get(f"kind_{'no_contacts' if field == 'contacts' else field}")
             not in (None, False)}
    allowed = set(KIND_SPECS[name].options) if name in KIND_SPECS else set()
    for flag in given.values():
        if flag not in allowed and not (flag == "--media" and name in MEDIA):
            raise WasimError(f"not an option of kind {name}", where=flag,
                             hint=_which_kinds(flag))
    if name != BUTTON and (options.get("button") is not None
                           or options.get("payload") is not None):
        raise WasimError(f"--button is for quick-reply taps, not kind {name}",
                         where="--button", hint="Drop --button, or use --kind button.")
    error = options.get("kind_error")
    args = KindArgs(
        text=options.get("kind_text"), forwarded=options.get("kind_forwarded"),
        reply_id=options.get("kind_reply_id"), reply_title=options.get("kind_reply_title"),
        reply_description=options.get("kind_reply_description"),
        media=options.get("kind_media"), caption=options.get("kind_caption"),
        lat=options.get("kind_lat"), lng=options.get("kind_lng"),
        place_name=options.get("kind_place_name"), address=options.get("kind_address"),
        url=options.get("kind_url"), emoji=options.get("kind_emoji"),
        status=options.get("kind_status"), error=int(error) if error is not None else None,
        contacts=not options.get("kind_no_contacts"))
    if args.error is not None and args.status != "failed":
        raise WasimError("--error needs --status failed", where="--error",
                         hint="Add --status failed.")
    return name, args


def _which_kinds(flag: str) -> str:
    kinds = [spec.name for spec in KIND_SPECS.values() if flag in spec.options]
    return f"It is for {', '.join(kinds)}." if kinds else "See `wasim render --kind list`."
