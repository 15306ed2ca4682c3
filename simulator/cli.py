"""The `wasim` command line: thin commands that parse, call the core, print and exit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any, NoReturn

import click

from simulator import __version__
from simulator.errors import ExitCode, WasimError

# Heavy modules (Faker, Jinja) are imported inside the commands that need them, so
# `wasim --help` and shell completion stay instant.


class WasimGroup(click.Group):
    """A click group that turns every failure into one line on stderr and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> NoReturn:
        try:
            code = super().main(args, prog_name or "wasim", complete_var,
                                standalone_mode=False, **extra)
        except WasimError as exc:
            _error(exc.one_line())
            code = exc.exit_code
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "wasim"
            hint = f" Try '{where} --help'." if exc.ctx else ""
            _error(" ".join(f"{where}: {exc.format_message()}{hint}".split()))
            code = ExitCode.BAD_INPUT
        except click.ClickException as exc:
            _error(exc.format_message())
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            _error("interrupted")
            code = ExitCode.INTERRUPTED
        sys.exit(int(code or 0))


def _error(line: str) -> None:
    click.echo(f"wasim: error: {line}", err=True)


@click.group(name="wasim", cls=WasimGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@click.version_option(__version__, prog_name="wasim")
def cli() -> None:
    """Simulate Kaleyra's WhatsApp callbacks offline: realistic, seeded, byte-exact.

    \b
    Quick start:
      wasim render --seed 7 --pretty          one button-tap callback, for reading
      wasim render --count 100 | wasim validate -
      wasim decode wamid.HBgM...              who sent a message, and to whom
    """


def _split_codes(values: tuple[str, ...]) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())
    return codes or ("IN",)


@cli.command()
@click.option("--seed", type=int, help="Seed for every generated value; same seed and options, "
              "same bytes. [default: random, shown on a terminal]")
@click.option("--count", "-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many callbacks; more than one prints JSON Lines, a new user per line.")
@click.option("--country", "-c", "countries", multiple=True, metavar="CODE",
              help="Users' country, ISO 3166 alpha-2 (IN, US, GB, BR, ID, DE, AE, SA, MX, ES, FR, "
                   "NG); repeat or comma-separate to mix.  [default: IN]")
@click.option("--button", "-b", metavar="LABEL",
              help="The tapped button's text.  [default: one of Shop now, Remind me later, "
                   "Stop promotions]")
@click.option("--payload", "-p", metavar="VALUE",
              help="The tapped button's payload.  [default: the label, as Meta sends it when "
                   "the template set no payload]")
@click.option("--ref", help="extra_info.ref, echoed from the brand's send request.")
@click.option("--ref1", help="extra_info.ref1.")
@click.option("--ref2", help="extra_info.ref2.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Change a field: PATH=string or PATH:=json, e.g. "
                   "messages[0].button.text=Buy. Paths start at the root or at meta_object.value.")
@click.option("--add", "adds", multiple=True, metavar="PATH=VALUE",
              help="Add a field that the template does not have (same syntax as --set).")
@click.option("--remove", "removes", multiple=True, metavar="PATH",
              help="Remove a field, e.g. extra_info.ref2 (for negative tests).")
@click.option("--template", "-t", default="button_tap", show_default=True, metavar="NAME|PATH",
              help="A built-in template name or a path to a .json.j2 file.")
@click.option("--pretty", is_flag=True,
              help="Indent for reading. These are not the bytes that are sent.")
@click.option("--now", "now", metavar="TIME",
              help="Time of the first tap: unix seconds, ISO 8601, or 'now' for the wall clock. "
                   "[default: an instant drawn from the seed]")
@click.option("--platform", type=click.Choice(["android", "ios", "web"]), default="android",
              show_default=True, help="The user's phone, which sets the shape of message ids.")
@click.option("--business-number", metavar="NUMBER", help="Your business display number.")
@click.option("--phone-number-id", metavar="ID", help="Your phone_number_id (15-16 digits).")
@click.option("--waba-id", metavar="ID", help="Your WABA id (15-16 digits).")
@click.option("--user", "user_number", metavar="NUMBER", help="The tapping user's number.")
@click.option("--name", "user_name", metavar="NAME", help="The tapping user's profile name.")
@click.option("--context-id", metavar="WAMID",
              help="The wamid of the template message your app sent; the user is the one it "
                   "was sent to.")
@click.option("--reply-to", metavar="UUID", help="Kaleyra's id of your original message.")
def render(**options: Any) -> None:
    """Print button-tap callbacks exactly as Kaleyra would POST them.

    The bytes printed are the bytes `wasim fire` sends and records: compact JSON, `/` escaped
    as `\\/`, non-ASCII as lowercase `\\uXXXX`.
    """
    from simulator.render import render_callbacks
    from simulator.wire import to_pretty

    render_options = build_render_options(options)
    out = sys.stdout.buffer
    for rendered in render_callbacks(render_options):
        if options["pretty"]:
            import json

            out.write(to_pretty(json.loads(rendered.body)).encode() + b"\n")
        else:
            out.write(rendered.body + b"\n")
    out.flush()


def build_render_options(options: dict[str, Any]) -> Any:
    """Turn `render`'s command-line options into RenderOptions, checking each value."""
    import secrets

    from simulator.inputs import (
        parse_business_wamid,
        parse_meta_id,
        parse_phone,
        parse_time,
        parse_uuid4,
    )
    from simulator.overrides import parse_override
    from simulator.render import RenderOptions
    from simulator.taps import DEFAULT_BUTTONS, TapOptions, buttons_from_labels

    seed = options["seed"]
    if seed is None:
        # Any seed will do; say which, so a surprising run can be reproduced.
        seed = secrets.randbelow(1_000_000)
        if sys.stderr.isatty():
            click.echo(f"wasim: seed {seed} (pass --seed {seed} to reproduce)", err=True)
    if options["payload"] is not None and options["button"] is None:
        raise WasimError("--payload needs --button", where="--payload",
                         hint="Name the tapped button too, e.g. --button 'Shop now' "
                              "--payload SHOP_NOW.")
    buttons = DEFAULT_BUTTONS
    if options["button"] is not None:
        buttons = buttons_from_labels([options["button"]], [options["payload"]]
                                      if options["payload"] is not None else [])
    start, wall = None, False
    if options["now"] is not None:
        start = parse_time(options["now"], "--now")
        wall = start is None
    user_number = parse_phone(options["user_number"], "--user") \
        if options["user_number"] else None
    context_id = None
    if options["context_id"]:
        sent = parse_business_wamid(options["context_id"], "--context-id")
        if user_number is not None and sent.customer != user_number:
            raise WasimError(f"the wamid was sent to {sent.customer}, not to {user_number}",
                             where="--context-id", hint="Drop --user: the wamid names the user.")
        user_number, context_id = sent.customer, options["context_id"].strip()
    overrides = tuple(
        [parse_override("set", s) for s in options["sets"]]
        + [parse_override("add", s) for s in options["adds"]]
        + [parse_override("remove", s) for s in options["removes"]]
    )
    taps = TapOptions(
        seed=seed,
        countries=_split_codes(options["countries"]),
        buttons=buttons,
        ref=options["ref"],
        ref1=options["ref1"],
        ref2=options["ref2"],
        platform=options["platform"],
        start=start,
        wall_clock=wall,
        business_number=parse_phone(options["business_number"], "--business-number")
        if options["business_number"] else None,
        phone_number_id=parse_meta_id(options["phone_number_id"], "--phone-number-id")
        if options["phone_number_id"] else None,
        waba_id=parse_meta_id(options["waba_id"], "--waba-id") if options["waba_id"] else None,
        user_number=user_number,
        user_name=options["user_name"],
        context_id=context_id,
        reply_to=parse_uuid4(options["reply_to"], "--reply-to") if options["reply_to"] else None,
    )
    return RenderOptions(taps=taps, count=options["count"], template=options["template"],
                         overrides=overrides)


@cli.command()
@click.argument("source", metavar="FILE|-", default="-")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells.")
def validate(source: str, quiet: bool) -> int:
    """Check callbacks against Kaleyra's documented structure and every invariant.

    FILE holds one JSON document or JSON Lines; '-' reads stdin. Each problem is printed as
    one line with its place and JSON path. Exit 0: all valid; 1: problems; 2: not JSON.
    """
    from simulator.validate import validate_text

    name = "<stdin>" if source == "-" else source
    text = _read_text(source, name)
    total = bad = problems = 0
    for checked in validate_text(text, name):
        total += 1
        if checked.problems:
            bad += 1
            problems += len(checked.problems)
        if not quiet:
            where = f"{name}:{checked.line}" if checked.line is not None else name
            for problem in checked.problems:
                click.echo(f"{where}: {problem}")
    if not quiet:
        noun = "callback" if total == 1 else "callbacks"
        if bad:
            click.echo(f"{problems} problem(s) in {bad} of {total} {noun}", err=True)
        else:
            click.echo(f"{total} {noun}, all valid", err=True)
    return ExitCode.FAILED if bad else ExitCode.OK


def _read_text(source: str, name: str) -> str:
    stream: IO[bytes]
    try:
        if source == "-":
            stream = sys.stdin.buffer
            data = stream.read()
        else:
            with open(source, "rb") as stream:
                data = stream.read()
    except OSError as exc:
        raise WasimError(f"cannot read the file ({exc.strerror})", where=name,
                         hint="Check the path, or use '-' to read stdin.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WasimError(f"not UTF-8 text (byte {exc.start})", where=name,
                         hint="Callbacks are JSON, which is UTF-8.") from None


@cli.command()
@click.argument("wamids", nargs=-1, required=True, metavar="WAMID...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per id.")
def decode(wamids: tuple[str, ...], as_json: bool) -> int:
    """Decode wamid message ids: the customer's number, who sent it, and the message id.

    Exit 1 if any id is not a structurally valid wamid (a fabricated or truncated one).
    """
    import json

    from simulator.wamid import USER_ID_LENGTHS, InvalidWamid, decode_wamid

    platforms = {length: name for name, length in USER_ID_LENGTHS.items()}
    code = ExitCode.OK
    for i, value in enumerate(wamids):
        try:
            decoded = decode_wamid(value.strip())
        except InvalidWamid as exc:
            code = ExitCode.FAILED
            if as_json:
                click.echo(json.dumps({"wamid": value, "valid": False, "reason": str(exc)}))
            else:
                click.echo(f"{value}: not a structurally valid wamid: {exc}")
            continue
        if as_json:
            click.echo(json.dumps({"wamid": value, "valid": True, "customer": decoded.customer,
                                   "from_business": decoded.from_business,
                                   "message_id": decoded.message_id}))
            continue
        if decoded.from_business:
            shape = "the business API's 18-char id"
        else:
            platform = platforms.get(len(decoded.message_id))
            shape = f"{len(decoded.message_id)} chars" + (f", {platform}" if platform else "")
        if len(wamids) > 1:
            click.echo(("\n" if i else "") + value)
        click.echo(f"customer    {decoded.customer}")
        click.echo(f"direction   {decoded.direction} "
                   f"(fromMe {'true' if decoded.from_business else 'false'})")
        click.echo(f"message id  {decoded.message_id} ({shape})")
    return code


@cli.command()
def templates() -> None:
    """List the built-in callback templates."""
    from simulator.render import builtin_templates

    for name in builtin_templates():
        click.echo(name)


def main() -> None:
    """Entry point of the `wasim` console script."""
    cli.main()
