"""The `wasim` command line: thin commands that parse, call the core, print and exit.

One module of about 2,100 lines because every command shares the option tables, the error ->
exit-code group and the flag names of the settings; the next to split off are `load` and the
history commands (`replay`, `history`) into modules of their own under the same group, and
the run lifecycle the run command still rebuilds around `run_plan` (issue 20, item 5).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, NoReturn

import click

from simulator import __version__
from simulator.errors import ExitCode, WasimError
from simulator.kinds.options import kind_options
from simulator.params import (
    FILE_PATH,
    MAX_CONCURRENCY,
    MAX_COUNT,
    MAX_WAIT,
    PORT,
    SEED,
    SPEED,
    TEMPLATE_ENV_OPTION,
    Number,
    api_port_option,
    check_not_empty,
    check_paths,
    check_url,
    not_empty,
    send_api_options,
)
from simulator.terminal import visible, visible_json
from simulator.tui.commands import demo, open_tui_or_help, tui  # click only; textual is lazy

# Heavy modules (Faker, Jinja) are imported inside the commands that need them, so
# `wasim --help` and shell completion stay instant.


class WasimGroup(click.Group):
    """A click group that turns every failure into one line on stderr and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> NoReturn:
        try:
            _check_utf8(sys.argv[1:] if args is None else args)
            code = super().main(args, prog_name or "wasim", complete_var,
                                standalone_mode=False, **extra)
        except WasimError as exc:
            if exc.where is None and exc.field is not None:
                exc.where = _where_given(exc.field)  # the command line supplied the value
            _error(exc.one_line(_where_given))  # fields the text names, as flags
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


def _where_given(field: str) -> str:
    """How the command line spells the input named `field` (`timeout` -> `--timeout`)."""
    from simulator.settings import flag_of

    return {"scenario": "SCENARIO"}.get(field) or flag_of(field)


def _check_utf8(args: Sequence[str]) -> None:
    """Refuse an argument that is not valid UTF-8 rather than send a lone surrogate on the wire.

    Python reads such bytes as lone surrogates, which no JSON decoder of the receiver (PHP's
    included) accepts.
    """
    for i, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            flag = args[i - 1] if i and args[i - 1].startswith("-") else f"argument {i + 1}"
            if arg.startswith("-"):
                flag = arg.partition("=")[0].encode("utf-8", "replace").decode()
            raise WasimError("the value is not valid UTF-8", where=flag,
                             hint="Give text in UTF-8 (check the terminal's or the script's "
                                  "encoding).") from None


def _error(line: str) -> None:
    # An error quotes what it was given (a file's value, a target's answer): made visible.
    click.echo(visible(f"wasim: error: {line}"), err=True)


@click.group(name="wasim", cls=WasimGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.version_option(__version__, prog_name="wasim")
@click.pass_context
def cli(ctx: click.Context) -> int | None:
    """Simulate Kaleyra's WhatsApp callbacks offline: realistic, seeded, byte-exact.

    With no command on a terminal, opens the terminal UI.

    \b
    Quick start:
      wasim demo                              a phone in the terminal, with a test webhook
      wasim render --seed 7 --pretty          one button-tap callback, for reading
      wasim render --count 100 | wasim validate -
      wasim receive                           a test webhook on 127.0.0.1:8000
      wasim fire --url http://127.0.0.1:8000/ taps delivered, one line per attempt
      wasim run summer-sale --url ...         a whole scenario, with expectations
      wasim decode wamid.HBgM...              who sent a message, and to whom
    """
    if ctx.invoked_subcommand is None:
        return open_tui_or_help(ctx)
    return None


def _split_codes(values: tuple[str, ...]) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())
    return codes or ("IN",)


IDENTITY_OPTION = click.option(
    "--identity", default="bsuid", show_default=True, metavar="MODE[=SHARE],...",
    help="How users are identified: bsuid (today's Meta wire: wa_id plus user_id), phone "
         "(the seed page's shape, no BSUID) or username (user_id and profile.username, no "
         "number); mix by share, e.g. bsuid=90,username=10.")
BUSINESS_COUNTRY_OPTION = click.option(
    "--business-country", default="IN", show_default=True, metavar="CODE",
    help="Country of the generated business number.")

_RENDER_OPTIONS = [
    click.option("--seed", type=SEED, help="Seed for every generated value; same seed and options, "
                 "same bytes. [default: random, shown on a terminal]"),
    click.option("--count", "-n", type=Number(1, MAX_COUNT, integer=True), default=1,
                 show_default=True,
                 help="How many callbacks; more than one prints JSON Lines, a new user per line."),
    click.option("--country", "-c", "countries", multiple=True, metavar="CODE",
                 callback=check_not_empty,
                 help="Users' country, ISO 3166 alpha-2 (IN, US, GB, BR, ID, DE, AE, SA, MX, "
                      "ES, FR, NG); repeat or comma-separate to mix.  [default: IN]"),
    click.option("--button", "-b", metavar="LABEL", callback=check_not_empty,
                 help="The tapped button's text.  [default: one of Shop now, Remind me later, "
                      "Stop promotions]"),
    click.option("--payload", "-p", metavar="VALUE", callback=check_not_empty,
                 help="The tapped button's payload.  [default: the label, as Meta sends it when "
                      "the template set no payload]"),
    click.option("--ref", help="extra_info.ref, echoed from the brand's send request."),
    click.option("--ref1", help="extra_info.ref1."),
    click.option("--ref2", help="extra_info.ref2."),
    click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                 help="Change a field: PATH=string or PATH:=json, e.g. "
                      "messages[0].button.text=Buy. Paths start at the root or at "
                      "meta_object.value."),
    click.option("--add", "adds", multiple=True, metavar="PATH=VALUE",
                 help="Add a field that the template does not have (same syntax as --set)."),
    click.option("--remove", "removes", multiple=True, metavar="PATH",
                 help="Remove a field, e.g. extra_info.ref2 (for negative tests)."),
    click.option("--template", "-t", default="button_tap", show_default=True, metavar="NAME|PATH",
                 callback=not_empty(check_paths),
                 help="A built-in template name or a path to a .json.j2 file."),
    click.option("--now", "now", metavar="TIME", callback=check_not_empty,
                 help="Time of the first tap: unix seconds, ISO 8601, or 'now'. Delivered taps "
                      "carry their send moment, moved so the first is TIME.  [default: render: "
                      "an instant drawn from the seed; fire: now]"),
    click.option("--clock", type=click.Choice(["live", "seeded"]),
                 help="Timestamps from the live clock (each tap's send moment) or a seeded one "
                      "(1-30 s apart, reproducible: fire sends render's exact bytes).  "
                      "[default: render seeded, fire live]"),
    click.option("--platform", type=click.Choice(["android", "ios", "web", "mix"]), default="mix",
                 show_default=True, help="The users' phone, which sets the shape of message "
                 "ids (android 32 hex, ios 3A..., web 3EB0...); mix draws one per user."),
    IDENTITY_OPTION,
    click.option("--enterprise", type=Number(0, 1, what="a share"), default=0.0, metavar="SHARE",
                 help="Share of BSUID users of an enterprise account (parent_user_id).  "
                      "[default: 0]"),
    click.option("--quirks", metavar="QUIRK=SHARE,...",
                 help="Number quirks of real traffic, each for a share of the users it fits: "
                      "mx521 (Mexican wa_id as 521 + 10 digits), br8 (Brazilian wa_id without "
                      "the ninth digit), e.g. mx521=0.5,br8=0.3."),
    BUSINESS_COUNTRY_OPTION,
    click.option("--business-number", metavar="NUMBER", callback=check_not_empty,
                 help="Your business display number."),
    click.option("--phone-number-id", metavar="ID", callback=check_not_empty,
                 help="Your phone_number_id (15-16 digits)."),
    click.option("--waba-id", metavar="ID", callback=check_not_empty,
                 help="Your WABA id (15-16 digits)."),
    click.option("--user", "user_number", metavar="NUMBER", callback=check_not_empty,
                 help="The tapping user's number."),
    click.option("--name", "user_name", metavar="NAME", help="The tapping user's profile name."),
    click.option("--context-id", metavar="WAMID", callback=check_not_empty,
                 help="The wamid of the template message your app sent; the user is the one it "
                      "was sent to."),
    click.option("--reply-to", metavar="UUID", callback=check_not_empty,
                 help="Kaleyra's id of your original message."),
]


STATUS_DELAYS_OPTION = click.option(
    "--status-delays", metavar="D,D,D",
    help="World time before sent, delivered and read, e.g. 1s,2s,5s (the default; ms and m "
         "work too). Timestamps are this far apart; the real wait is divided by --speed.")


def render_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add every option that says what to render (shared by render, fire and tui)."""
    for option in reversed(_RENDER_OPTIONS):
        command = option(command)
    return command


@cli.command()
@render_options
@kind_options
@click.option("--pretty", is_flag=True,
              help="Indent for reading. These are not the bytes that are sent.")
@click.option("--envelope", type=click.Choice(["kaleyra", "meta"], case_sensitive=False),
             default=None, help="Body envelope: kaleyra (the default) or meta (Meta's "
                                "webhook: object, entry[].changes[]).")
def render(**options: Any) -> None:
    """Print callbacks exactly as Kaleyra would POST them: button taps, or any --kind.

    The bytes printed are the bytes `wasim fire` sends and records: compact JSON, `/` escaped
    as `\\/`, non-ASCII as lowercase `\\uXXXX`.
    """
    from simulator.kinds import render_kind
    from simulator.kinds.options import kind_from, wants_kind_list
    from simulator.wire import to_pretty

    if wants_kind_list(options):
        return
    kind, kind_args = kind_from(options)
    render_options = build_render_options(options)
    out = sys.stdout.buffer
    from simulator.meta import wrap

    for rendered in render_kind(kind, render_options, kind_args):
        body = wrap(rendered.body) if options["envelope"] == "meta" else rendered.body
        if options["pretty"]:
            import json

            out.write(visible_json(to_pretty(json.loads(body))).encode() + b"\n")
        else:
            out.write(body + b"\n")
    out.flush()


def build_render_options(options: dict[str, Any], live: bool = False) -> Any:
    """Turn `render`'s command-line options into RenderOptions, checking each value.

    `live` (fire): taps carry the moment they are made, moved by --now if given.
    """
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
    from simulator.taps import (
        DEFAULT_BUTTONS,
        IDENTITIES,
        QUIRKS,
        TapOptions,
        buttons_from_labels,
        parse_shares,
    )

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
    start, wall = None, live if options["clock"] is None else options["clock"] == "live"
    if options["now"] is not None:
        start = parse_time(options["now"], "--now")
        wall = wall or start is None
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
        identity=parse_shares(options["identity"], IDENTITIES, "--identity"),
        enterprise=options["enterprise"],
        quirks=parse_shares(options["quirks"], QUIRKS, "--quirks") if options["quirks"] else (),
        business_country=options["business_country"],
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
@click.argument("source", metavar="FILE|-", default="-", callback=check_paths)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells.")
def validate(source: str, quiet: bool) -> int:
    """Check callbacks against Kaleyra's documented structure, key order, bytes and invariants.

    FILE holds one JSON document or JSON Lines; '-' reads stdin. Each problem is printed as
    one line with its place and JSON path; the summary says which kind of callback it saw.
    Exit 0: all valid; 1: problems; 2: not JSON.
    """
    from simulator.validate import validate_text

    name = "<stdin>" if source == "-" else source
    text = _read_text(source, name)
    total = bad = problems = 0
    kinds: dict[str, int] = {}  # what was seen, e.g. "a quick-reply tap (button)": 3
    for checked in validate_text(text, name):
        total += 1
        kinds[checked.kind] = kinds.get(checked.kind, 0) + 1
        if checked.problems:
            bad += 1
            problems += len(checked.problems)
        if not quiet:
            where = f"{name}:{checked.line}" if checked.line is not None else name
            for problem in checked.problems:
                click.echo(visible(f"{where}: {problem}"))
    if not quiet:
        noun = "callback" if total == 1 else "callbacks"
        seen = ", ".join(kind if n == 1 else f"{n} x {kind}" for kind, n in kinds.items())
        if bad:
            click.echo(f"{problems} problem(s) in {bad} of {total} {noun}: {seen}", err=True)
        else:
            click.echo(f"{total} {noun}, all valid: {seen}", err=True)
    return ExitCode.FAILED if bad else ExitCode.OK


# About 300,000 callbacks, and a bound for /dev/zero or an endless pipe, which would
# otherwise fill the memory.
MAX_VALIDATE_BYTES = 256 << 20


def _read_text(source: str, name: str) -> str:
    stream: IO[bytes]
    try:
        if source == "-":
            stream = sys.stdin.buffer
            data = stream.read(MAX_VALIDATE_BYTES + 1)
        else:
            with open(source, "rb") as stream:
                data = stream.read(MAX_VALIDATE_BYTES + 1)
    except OSError as exc:
        raise WasimError(f"cannot read the file ({exc.strerror})", where=name,
                         hint="Check the path, or use '-' to read stdin.") from None
    if len(data) > MAX_VALIDATE_BYTES:
        raise WasimError(f"more than {MAX_VALIDATE_BYTES:,} bytes of input", where=name,
                         hint="Validate it in parts, e.g. with split -l.")
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
                click.echo(visible(f"{value}: not a structurally valid wamid: {exc}"))
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
            click.echo(("\n" if i else "") + visible(value))
        click.echo(f"customer    {visible(decoded.customer)}")
        click.echo(f"direction   {decoded.direction} "
                   f"(fromMe {'true' if decoded.from_business else 'false'})")
        click.echo(f"message id  {decoded.message_id} ({shape})")
    return code


_DELIVERY_OPTIONS = [
    click.option("--allow-remote", is_flag=True,
                 help="Allow a target that is not this machine (off, so a typo cannot spam a "
                      "real endpoint)."),
    click.option("--history", "history_path", envvar="WASIM_HISTORY", type=FILE_PATH,
                 default=".wasim/history.jsonl", show_default=True,
                 help="JSON Lines file every attempt is appended to.  [env: WASIM_HISTORY]"),
    click.option("--no-history", is_flag=True, help="Record nothing."),
]


def delivery_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that say where and how to deliver (shared by fire, replay, run).

    The settings' options come from the one table in simulator.settings; --allow-remote and
    the history's follow them.
    """
    from simulator.params import click_options

    for option in reversed(_DELIVERY_OPTIONS):
        command = option(command)
    return click_options()(command)  # type: ignore[no-any-return]


def build_delivery_options(options: dict[str, Any], *, target: Any = None) -> Any:
    """Turn the delivery flags into DeliveryOptions; `target` stands in when none is given."""
    from simulator.delivery import delivery_options_from
    from simulator.settings import from_params

    return delivery_options_from(from_params(options), flag_name, target=target,
                                 allow_remote=options["allow_remote"])


def flag_name(key: str) -> str:
    """The command-line flag of a delivery setting, for error messages."""
    from simulator.settings import flag_of

    return flag_of(key)


def _history_writer(options: dict[str, Any]) -> Any:
    from pathlib import Path

    from simulator.history import HistoryWriter

    # Opened now, so an unwritable history stops the command before anything is sent.
    return None if options["no_history"] else HistoryWriter(Path(options["history_path"])).open()


def attempt_line(attempt: Any) -> str:
    """One line per attempt: time, event, user, button, status, latency, message id."""
    import time

    from simulator.tapped import who_and_what

    clock = time.strftime("%H:%M:%S", time.localtime(attempt.started_at))
    event = attempt.event
    who, what = who_and_what(event.body)
    who = f"{event.user} {event.name}".strip() or who or "?"
    if attempt.status is not None:
        result = f"{attempt.status} {'ok' if attempt.delivered else 'FAILED'}"
    else:
        result = f"{attempt.outcome.upper()}: {attempt.error}"
    button = event.button or what or "?"
    parts = [clock, event.id, f"#{attempt.number}", f"{who:<28}", f"{button:<16}",
             f"{result:<10}", f"{attempt.latency_ms:>7.1f} ms", event.message_id]
    if not attempt.final:
        parts.append("(will retry)")
    if attempt.replay_of:
        parts.append(f"(replay of {attempt.replay_of})")
    if attempt.edit_of:
        parts.append(f"(edit of {attempt.edit_of})")
    # Outside text (names, buttons, errors) with its control characters made visible; the
    # line break before the app's exception is this function's own.
    line = visible("  ".join(p for p in parts if p.strip()))
    if attempt.status is not None and attempt.error:
        # An answer with an error: an in-process app that raised. Under the line: what it
        # raised and where in its own code (the whole traceback is in the history).
        line += "\n    ↳ " + visible(attempt.error)
    return line


def deliver_all(events: Iterable[Any], options: Any, history: Any, *,
                replay_of: dict[str, str] | None = None,
                edit_of: dict[str, str] | None = None) -> int:
    """Deliver events one after another, printing and recording each attempt; the exit code.

    `events` may be a generator: each event is taken only when the one before has been
    delivered, and only counts are kept, so memory stays flat however many there are.
    """
    import asyncio

    from simulator.runner import deliver_events

    def on_attempt(attempt: Any) -> None:
        if history is not None:
            history.append(attempt)
        click.echo(attempt_line(attempt))

    tally = _Tally()

    async def go() -> None:
        async for result in deliver_events(events, options, replay_of=replay_of,
                                           on_attempt=on_attempt, edit_of=edit_of):
            tally.add(result)

    try:
        asyncio.run(go())
    finally:
        if history is not None:
            history.close()
    return _summarize(tally, options, history)


class _Tally:
    """What the summary line needs from every delivery, without keeping the deliveries."""

    def __init__(self) -> None:
        self.results = self.delivered = self.attempts = self.unreachable = 0
        self.last_error: str | None = None  # says why, when nothing was reachable

    def add(self, result: Any) -> None:
        self.results += 1
        self.delivered += bool(result.delivered)
        self.attempts += len(result.attempts)
        self.unreachable += bool(result.unreachable)
        self.last_error = result.attempts[-1].error if result.attempts else None


def _summarize(tally: _Tally, options: Any, history: Any) -> int:

    delivered, attempts = tally.delivered, tally.attempts
    failed = tally.results - delivered
    where = f"; history: {history.path}" if history is not None else ""
    click.echo(f"{delivered} delivered, {failed} failed, {attempts} attempt(s){where}", err=True)
    if tally.results and tally.unreachable == tally.results:
        from simulator.delivery import nothing_listening

        raise nothing_listening(options.target.url, tally.last_error)
    return ExitCode.FAILED if failed else ExitCode.OK


@cli.command()
@render_options
@kind_options
@delivery_options
@click.option("--batch", type=Number(1, 100, integer=True), default=1, show_default=True,
              metavar="N", help="Send N taps per request, batched as Meta does (--count taps "
                                "in all).")
@click.option("--batch-shape", type=click.Choice(["messages", "changes", "entries"]),
              default="messages", show_default=True,
              help="How a batch is built: every message in one value, one changes item each, "
                   "or one entry item each (these two need --envelope meta).")
@api_port_option("Also run the local Kaleyra send API on this port (0: any free one) while "
                 "firing, as `wasim run` does: an --app replies through it (KALEYRA_BASE_URL, "
                 "KALEYRA_SID, KALEYRA_API_KEY are set), its statuses go to the target.")
@send_api_options
def fire(api_port: int | None = None, **options: Any) -> int:
    """Render callbacks and deliver them to your webhook, recording every attempt.

    One line per attempt: time, event id, attempt, user, button, status, latency, message id.
    Exit 0 when every callback got a success status, 1 when any failed after its retries,
    3 when the target could not be reached at all.
    """
    import itertools

    from simulator.delivery import Event
    from simulator.kinds import render_kind
    from simulator.kinds.options import kind_from, wants_kind_list

    if wants_kind_list(options):
        return ExitCode.OK
    account = _api_account(options)
    kind, kind_args = kind_from(options)
    delivery = build_delivery_options(options)
    if options["context_id"]:
        options = _context_from_history(options)
    render_options = build_render_options(options, live=True)
    # Streamed: each callback is rendered when the one before has been delivered, so the
    # first leaves at once, memory stays flat for any --count, and every tap carries its own
    # send moment. The first is rendered here, before the history is opened, so a broken
    # template still sends nothing.
    events: Iterator[Any] = (Event.from_body(r.body, render_options.taps.seed)
                             for r in render_kind(kind, render_options, kind_args))
    if options["batch"] > 1:
        events = _batches(events, options["batch"], options["batch_shape"], delivery)
    first = next(events)
    history = _history_writer(options)
    with _fire_api(api_port, account, delivery, history):
        return deliver_all(itertools.chain([first], events), delivery, history)


@contextlib.contextmanager
def _fire_api(port: int | None, account: dict[str, Any], delivery: Any,
              history: Any) -> Iterator[Any]:
    """`fire --api-port`: the send API while the block runs, its settings in the environment
    for an --app, what the app sends printed and recorded, statuses to the fire's target."""
    if port is None:
        yield None
        return

    from simulator.sendapi import MockApi, api_options, start_on_flag

    def sent(message: Any) -> None:
        if history is not None:
            history.append_sent(message)
        click.echo(f"sent {message.describe()}", err=True)

    api = MockApi(api_options(port=port, sid=account["sid"], api_key=account["api_key"],
                              templates=account["templates"] or None, fail=account["fail"],
                              v1_id=account["v1_id"]),
                  webhook=delivery, on_sent=sent)
    start_on_flag(api, "--api-port")
    click.echo(f"send API on {api.base_url} (SID {api.options.sid}, api-key "
               f"{api.options.api_key}); KALEYRA_BASE_URL is set for --app", err=True)
    api.export_env()  # KALEYRA_* for an --app; api.stop() puts the environment back
    try:
        yield api
    finally:
        api.stop()
        if history is not None:
            history.close()  # again: a message recorded after the fire's last line reopened it


# What a tap on --context-id W takes from the message W in the history (flag: record field).
_FROM_SENT = (("business_number", "business"), ("phone_number_id", "phone_number_id"),
              ("waba_id", "waba_id"), ("reply_to", "message_id"), ("ref", "ref"),
              ("ref1", "ref1"), ("ref2", "ref2"))


def _context_from_history(options: dict[str, Any]) -> dict[str, Any]:
    """`fire --context-id W`: the tap comes from W's recipient to W's business, with its
    Kaleyra id and refs, when the history recorded W (the send API records what the app
    sent); otherwise stderr names the fields that are invented. Flags given win."""
    import contextlib
    from pathlib import Path

    from simulator.history import read_history
    from simulator.inputs import parse_business_wamid

    wamid = options["context_id"].strip()
    parse_business_wamid(wamid, "--context-id")  # a bad id is one error, before any note
    path = Path(options["history_path"])
    found = None
    if path.is_file():
        with contextlib.suppress(WasimError):  # an unreadable history: nothing recorded
            found = next((m for m in reversed(read_history(path).sent) if m.wamid == wamid),
                         None)
    flags = {"business_number": "business number", "phone_number_id": "phone_number_id",
             "waba_id": "waba_id", "reply_to": "reply_to", "ref": "ref", "ref1": "ref1",
             "ref2": "ref2"}
    if found is None:
        invented = [name for key, name in flags.items() if not options.get(key)]
        if invented:
            click.echo(f"wasim: --context-id {visible(wamid)} is not in the history "
                       f"({visible(str(path))}): invented {', '.join(invented)} and the "
                       "user's BSUID (record the app's sends with `wasim run --api-port`, or "
                       "give them as flags)", err=True)
        return options
    merged = dict(options)
    for key, field_name in _FROM_SENT:
        value = getattr(found, field_name)
        if key == "reply_to":  # V1 keeps `<uuid>:<n>` per recipient; the tap names the uuid
            value = value.split(":", 1)[0]
        if not merged.get(key) and value:
            merged[key] = value
    if found.to_kind == "number" and not merged.get("user_number"):
        merged["user_number"] = found.to
    return merged


def _batches(events: Iterator[Any], size: int, shape: str, delivery: Any) -> Iterator[Any]:
    """`fire --batch`: every `size` events as one, in Meta's batching `shape`."""
    import itertools

    from simulator.delivery import Event
    from simulator.meta import batch

    if shape != "messages" and delivery.envelope != "meta":
        raise WasimError(f"a batch of {shape} is Meta's envelope", where="--batch-shape",
                         hint="Add --envelope meta, or use --batch-shape messages.")
    while group := list(itertools.islice(events, size)):
        yield Event.from_body(batch([e.body for e in group], shape), group[0].seed)


_HISTORY_OPTION = click.option(
    "--history", "history_path", envvar="WASIM_HISTORY", type=FILE_PATH,
    default=".wasim/history.jsonl", show_default=True,
    help="The history file to read.")


def _read_history(path: str, read: Callable[[Any], Any] | None = None) -> Any:
    """The history at `path`, read by `read` (else whole), its skipped lines warned about."""
    from pathlib import Path

    from simulator.history import read_history

    history = (read or read_history)(Path(path))
    for warning in history.warnings[:5]:
        click.echo(visible(f"wasim: warning: {warning}"), err=True)
    if len(history.warnings) > 5:
        click.echo(f"wasim: warning: {len(history.warnings) - 5} more line(s) skipped", err=True)
    return history


@cli.command("history")
@_HISTORY_OPTION
@click.option("--failed", is_flag=True, help="Only attempts that did not deliver.")
@click.option("--status", "statuses", multiple=True, type=Number(100, 599, integer=True),
              metavar="CODE",
              help="Only attempts answered with this status; repeatable.")
@click.option("--event", "event_id", metavar="ID", help="Only this event (an id prefix).")
@click.option("--limit", "-n", type=Number(0, MAX_COUNT, integer=True), default=20,
              show_default=True,
              help="How many of the most recent attempts to show (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the full records as JSON Lines.")
def history_command(history_path: str, failed: bool, statuses: tuple[int, ...],
                    event_id: str | None, limit: int, as_json: bool) -> None:
    """Show recent delivery attempts, newest last."""
    import json

    from simulator.delivery import Attempt
    from simulator.history import matches, read_history_tail, to_record

    filtered = bool(event_id or failed or statuses)

    def wanted(row: Any) -> bool:
        if not isinstance(row, Attempt):  # what the app sent back, among the attempts
            return not filtered
        return ((not event_id or matches(row, event_id)) and not (failed and row.delivered)
                and (not statuses or row.status in statuses))

    # The newest `limit` rows, read from the end: a history of any size takes no more memory.
    history = _read_history(history_path, lambda path: read_history_tail(
        path, limit or sys.maxsize, wanted))
    rows = history.attempts if filtered else \
        sorted([*history.attempts, *history.sent], key=_history_time)
    if limit:
        rows = rows[-limit:]
    if not rows:
        click.echo("no matching attempts", err=True)
        return
    if as_json:
        for row in rows:
            record = row.as_record() if hasattr(row, "wamid") else to_record(row)
            click.echo(visible_json(json.dumps(record, ensure_ascii=False)))
        return
    for line in history_table(rows, sys.stdout):  # its cells are made visible in the table
        click.echo(line)


def _until_interrupted() -> None:
    """Wait for Ctrl+C (a server runs in its own thread meanwhile)."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _history_time(row: Any) -> float:
    return float(row.at if hasattr(row, "wamid") else row.started_at)


def history_table(attempts: list[Any], stream: IO[Any]) -> list[str]:
    """Attempts (and messages the app sent: kind "sent") as an aligned table with a header,
    one row each, fitted to `stream`."""
    import time

    from simulator.tapped import who_and_what
    from simulator.terminal import Col, table_lines

    # Ids, times and numbers never break; names, buttons and targets wrap at words, and move
    # under their row when the columns cannot all fit the width with words whole (80 columns).
    columns = [Col("TIME"), Col("EVENT"), Col("TRY", right=True),
               Col("USER", wrap=True, spill=True), Col("BUTTON", wrap=True, spill=True),
               Col("RESULT", wrap=True), Col("LATENCY", right=True),
               Col("TARGET", wrap=True, spill=True)]
    rows = []
    for attempt in attempts:
        if hasattr(attempt, "wamid"):  # a SentRecord: the app's message to the user
            what = f"template {attempt.template}" if attempt.template else attempt.type
            rows.append((time.strftime("%m-%d %H:%M:%S", time.localtime(attempt.at)),
                         attempt.message_id[:36] or "?", "-", attempt.to,
                         visible(attempt.text[:30]),
                         f"sent {what}" + (f", fails {attempt.error}" if attempt.error else ""),
                         "-",
                         f"send API {attempt.version}"))
            continue
        event = attempt.event
        if attempt.status is not None:
            result = f"{attempt.status} {'ok' if attempt.delivered else 'failed'}"
        else:
            result = attempt.outcome
        if not attempt.final:
            result += ", retried"
        who, what = who_and_what(event.body)  # a status names its recipient and status only
        if attempt.replay_of:
            result += ", replay"
        if attempt.duplicate_of:
            result += ", duplicate"
        if attempt.edit_of:
            result += ", edit"
        rows.append((time.strftime("%m-%d %H:%M:%S", time.localtime(attempt.started_at)),
                     event.id, str(attempt.number),
                     f"{event.user} {event.name}".strip() or who or "?",
                     event.button or what or "?", result, f"{attempt.latency_ms:.1f} ms",
                     attempt.target))
    return table_lines(columns, rows, stream)


@cli.command()
@click.argument("ids", nargs=-1, metavar="[EVENT_ID]...")
@click.option("--last", type=Number(1, MAX_COUNT, integer=True), help="Replay the last N events.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Edit the event before sending: PATH=string or PATH:=json, as `render`.")
@click.option("--add", "adds", multiple=True, metavar="PATH=VALUE",
              help="Edit: add a field the event does not have (same syntax as --set).")
@click.option("--remove", "removes", multiple=True, metavar="PATH",
              help="Edit: remove a field, e.g. extra_info.ref2.")
@click.option("--edit", "by_hand", is_flag=True,
              help="Open the event's bytes in $EDITOR and send what is saved.")
@click.option("--force", is_flag=True,
              help="Send an edit even when it breaks the callback contract (negative tests).")
@click.option("--failed", "only_failed", is_flag=True,
              help="Replay every event whose latest delivery failed.")
@delivery_options
def replay(ids: tuple[str, ...], last: int | None, only_failed: bool, sets: tuple[str, ...],
           adds: tuple[str, ...], removes: tuple[str, ...], by_hand: bool, force: bool,
           **options: Any) -> int:
    """Resend recorded events byte for byte (to their original target unless told otherwise).

    Replaying an event that was delivered is how a duplicate delivery is made on purpose.
    Secrets are never recorded: pass --basic-auth or --token-url again if the target needs them.

    --set/--add/--remove or --edit send one event edited instead, recorded as an edit of the
    original; an edit that breaks the callback contract is refused unless --force.
    """
    from simulator.delivery import REDACTED, url_target
    from simulator.history import select_in_file

    if not ids and last is None and not only_failed:
        raise WasimError("say which events to replay", where="wasim replay",
                         hint="Give event ids, --last N or --failed (`wasim history` lists them).")
    # Read as a stream (--last from the end): memory for the chosen events, not the file.
    chosen = _read_history(options["history_path"], lambda path: select_in_file(
        path, ids, last, only_failed)).attempts
    if not chosen:
        click.echo("nothing to replay", err=True)
        return ExitCode.OK
    editing = bool(sets or adds or removes or by_hand)
    if editing and len(chosen) != 1:
        raise WasimError(f"an edit is of one event, and {len(chosen)} are chosen",
                         where="wasim replay", hint="Give one EVENT_ID with --set/--edit.")
    edit_of: dict[str, str] = {}
    if editing:
        from dataclasses import replace

        original = chosen[0]
        edited = _edited_event(original.event, sets, adds, removes, by_hand, force)
        edit_of[edited.id] = original.delivery_id
        chosen = [replace(original, event=edited)]
    # Without a target on the command line, each event goes back where it went before.
    groups: dict[str, list[Any]] = {}
    for attempt in chosen:
        groups.setdefault(attempt.target, []).append(attempt)
    # Every target is checked (and the history opened) before the first event is sent.
    deliveries = {}
    for label in groups:
        target = None
        if not options["url"] and not options["app_spec"]:
            if not label.startswith(("http://", "https://")):
                # Replay imports only what the person names: a record cannot pick a module.
                raise WasimError(f"{label[:80]!r} was delivered in-process; say where to "
                                 "replay it", where="wasim replay",
                                 hint="Give --app MODULE:APP (and --path), or --url.")
            if REDACTED in label:
                raise WasimError(f"the recorded URL {label[:120]!r} had a credential in its "
                                 "query, which the history does not keep",
                                 where="wasim replay", hint="Give --url with it to replay.")
            # A history is a file: --allow-remote covers a recorded host only via --url.
            target = url_target(label, options["allow_remote"], hosts=frozenset())
        deliveries[label] = build_delivery_options(options, target=target)
    code: int = ExitCode.OK
    writer = _history_writer(options)  # deliver_all closes it; the next append reopens it
    for label, attempts in groups.items():
        delivery = deliveries[label]
        events = [a.event for a in attempts]
        origins = {a.event.id: a.delivery_id for a in attempts if a.event.id not in edit_of}
        code = max(code, deliver_all(events, delivery, writer, replay_of=origins,
                                     edit_of=edit_of))
    return code


def _edited_event(event: Any, sets: tuple[str, ...], adds: tuple[str, ...],
                  removes: tuple[str, ...], by_hand: bool, force: bool) -> Any:
    """The recorded event edited by path or in $EDITOR, refused if it breaks the contract."""
    from simulator.delivery import Event
    from simulator.edits import edit_by_path, new_problems, trimmed
    from simulator.overrides import parse_override

    body: bytes = event.body
    overrides = tuple([parse_override("set", s) for s in sets]
                      + [parse_override("add", s) for s in adds]
                      + [parse_override("remove", s) for s in removes])
    if overrides:
        body = edit_by_path(body, overrides, "wasim replay")
    if by_hand:
        # click.edit runs $EDITOR (or VISUAL) on a temporary file and returns what was saved.
        saved = click.edit(body, extension=".json", require_save=True)
        if saved is None:
            raise WasimError("the editor closed without saving: nothing sent",
                             where="wasim replay --edit", hint="Save the file to send it.")
        body = trimmed(event.body, saved if isinstance(saved, bytes) else saved.encode())
    if body == event.body:
        click.echo("the edit changed nothing: sending the same bytes", err=True)
    problems = new_problems(event.body, body)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise WasimError(f"the edit breaks the callback contract: {problems[0]}{more}",
                         where="wasim replay",
                         hint="Fix the edit, or add --force to send it anyway (a negative test).")
    for problem in problems:
        click.echo(f"sending despite --force: {problem}", err=True)
    return Event.from_body(body, event.seed)


@cli.command()
@click.argument("ident", metavar="EVENT_ID")
@click.option("--curl", "as_curl", is_flag=True, default=True,
              help="A curl command that reproduces the request exactly (the default).")
@_HISTORY_OPTION
def export(ident: str, as_curl: bool, history_path: str) -> None:
    """Print a command that reproduces a recorded request exactly."""
    from simulator.history import curl_command, select_in_file

    attempt = _read_history(history_path,
                            lambda path: select_in_file(path, [ident])).attempts[-1]
    click.echo(visible(curl_command(attempt), newlines=True))


def given_delivery_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The delivery flags the user actually gave (or set in the environment), as settings."""
    from simulator.settings import from_params

    return from_params(options)


@cli.command()
@click.argument("scenario", metavar="SCENARIO", callback=check_paths)
@click.option("--seed", type=SEED, help="Override the scenario's seed.")
@click.option("--speed", type=SPEED, default=1.0,
              show_default=True, help="Play the scenario's timeline this many times faster.")
@click.option("--fast", is_flag=True, help="Send as fast as possible, ignoring the timeline.")
@click.option("--now", "now", metavar="TIME", callback=check_not_empty,
              help="Time of the run's start in the payloads (unix seconds, ISO 8601 or 'now'); "
                   "the taps keep the timeline's spacing.  [default: now]")
@click.option("--business-number", metavar="NUMBER", callback=check_not_empty,
              help="Your business display number (overrides the scenario's).")
@click.option("--phone-number-id", metavar="ID", callback=check_not_empty,
              help="Your phone_number_id: frameworks drop callbacks for another one.")
@click.option("--waba-id", metavar="ID", callback=check_not_empty,
              help="Your WABA id (15-16 digits).")
@IDENTITY_OPTION
@click.option("--dry-run", is_flag=True,
              help="Render and validate every payload, print the plan, send nothing.")
@click.option("--report", "reports", multiple=True, type=FILE_PATH, metavar="FILE",
              help="Write a report: FILE.xml is JUnit, FILE.json is JSON, FILE.html a page of "
                   "charts that opens offline (the `report` extra); repeatable.")
@click.option("--wait-for-url", is_flag=True,
              help="First wait until the target accepts connections (for CI starting the app "
                   "and the run together).")
@click.option("--wait-timeout", type=Number(0, MAX_WAIT, what="seconds"), default=30.0,
              show_default=True,
              help="Seconds --wait-for-url waits before giving up.")
@api_port_option("Also run the local Kaleyra send API on this port (0: any free one): the "
                 "app replies through it and `expect: reply` is checked. Its base URL is "
                 "printed and set as KALEYRA_BASE_URL (SID, key) for an --app.")
@send_api_options
@STATUS_DELAYS_OPTION
@click.option("--exact", is_flag=True,
              help="Reproduce the seed's run byte for byte: its message, trace and Kaleyra "
                   "ids and its seeded clock. Without it every run is new traffic (new ids, "
                   "now), with the same users, names and choices.")
@TEMPLATE_ENV_OPTION
@delivery_options
def run(scenario: str, seed: int | None, speed: float, fast: bool, now: str | None,
        business_number: str | None, phone_number_id: str | None, waba_id: str | None,
        identity: str, dry_run: bool, reports: tuple[str, ...], wait_for_url: bool,
        wait_timeout: float, api_port: int | None = None, status_delays: str | None = None,
        exact: bool = False, template_env: tuple[str, ...] = (), **options: Any) -> int:
    """Run a scenario: its users tap, with its chaos, and its expectations are checked.

    SCENARIO is a file, or a name from ./scenarios or the built-in library (`wasim
    scenarios`). Target and delivery flags override the scenario's `target:`.
    Exit 0 when everything was delivered and held, 1 on a failed delivery or expectation,
    2 on a bad scenario, 3 when the target could not be reached at all.
    """
    from pathlib import Path

    from simulator.inputs import parse_time
    from simulator.reports import check_report_path
    from simulator.runner import plan_scenario
    from simulator.scenarios import load_scenario
    from simulator.scenarios import template_env as allowed

    for report in reports:
        check_report_path(Path(report))
    loaded = load_scenario(scenario, seed=seed, env=allowed(template_env))
    loaded = _with_business(loaded, business_number, phone_number_id, waba_id)
    if _given("identity"):
        from simulator.taps import IDENTITIES, parse_shares

        loaded = _with_identity(loaded, parse_shares(identity, IDENTITIES, "--identity"))
    from simulator.world import new_run_id, parse_status_delays

    delays = parse_status_delays(status_delays) if status_delays else ()
    start = parse_time(now, "--now") if now else None
    if start is None and not exact:  # the run's taps carry their send moments: now
        import time

        start = int(time.time())
    # A new run is new traffic (new ids); --exact reproduces the seed's ids and clock.
    plan = plan_scenario(loaded, seed=seed, start=start, run="" if exact else new_run_id())
    if dry_run:
        return _dry_run(plan)
    from simulator.play import Play

    # The run's lifecycle (settings layers, the send API check, summary, verdict) is Play's;
    # this command keeps the waiting, the progress bar, the reports and the printing.
    running = Play(plan, (given_delivery_settings(options), flag_name),
                   allow_remote=options["allow_remote"])
    delivery = running.delivery
    if wait_for_url:
        _wait_for(delivery(plan.sends[0]) if plan.sends else None, wait_timeout)
    from simulator.replies import require_api

    require_api(plan.scenario, api_port, "--api-port 0")
    account = _api_account(options)
    history = _history_writer(options)
    api = _run_api(plan, delivery, api_port, history, float("inf") if fast else speed,
                   delays, account) if api_port is not None else None
    running.replies = api
    try:
        code = _run_plan(running, float("inf") if fast else speed, history,
                         [Path(r) for r in reports])
        if api is not None:  # the statuses of the app's last replies still go out
            api.drain(api.pending_wait() + _STATUS_GRACE)
        return code
    finally:
        if api is not None:
            api.stop()


# Seconds past their due time a run waits for the last statuses to be delivered.
_STATUS_GRACE = 5.0


def _api_account(options: dict[str, Any]) -> dict[str, Any]:
    """The send API's account from SEND_API_OPTIONS (taken out of `options`): sid, api_key,
    extra templates and failure rules, as start_scenario_api takes them."""
    return {"sid": options.pop("api_sid", None), "api_key": options.pop("api_key", None),
            "templates": options.pop("api_templates", None) or (),
            "fail": options.pop("api_fail", ()), "v1_id": options.pop("api_v1_id", "bare")}


def _run_api(plan: Any, delivery: Any, port: int, history: Any, speed: float,
             delays: tuple[float, ...], account: dict[str, Any]) -> Any:
    """The send API for `wasim run --api-port`: statuses to the first step's target."""
    import sys

    from simulator.replies import start_scenario_api

    live = sys.stderr.isatty()  # the progress bar owns the line there

    def sent(message: Any) -> None:
        if history is not None:
            history.append_sent(message)
        if not live:
            click.echo(visible(f"sent {message.describe()}"), err=True)

    api = start_scenario_api(plan.scenario, port,
                             delivery(plan.sends[0]) if plan.sends else None, on_sent=sent,
                             plan=plan, speed=speed, status_delays=delays, **account)
    click.echo(f"send API on {api.base_url} (SID {api.options.sid}, api-key "
               f"{api.options.api_key}); KALEYRA_BASE_URL is set for --app", err=True)
    return api


def _with_business(loaded: Any, number: str | None, phone_number_id: str | None,
                   waba_id: str | None) -> Any:
    """The scenario with the business ids given on the command line in place of its own."""
    from dataclasses import replace

    from simulator.inputs import parse_meta_id, parse_phone

    business = loaded.business
    changes = {}
    if number:
        changes["display_phone_number"] = parse_phone(number, "--business-number")
    if phone_number_id:
        changes["phone_number_id"] = parse_meta_id(phone_number_id, "--phone-number-id")
    if waba_id:
        changes["waba_id"] = parse_meta_id(waba_id, "--waba-id")
    return replace(loaded, business=replace(business, **changes)) if changes else loaded


def _dry_run(plan: Any) -> int:
    import json
    from collections import Counter

    from simulator.kinds import BUTTON, kind_name
    from simulator.validate import validate_callback

    def what(send: Any) -> str:
        # A first send is counted by the kind of callback it is (a tap, a text, a status...);
        # copies (duplicate, redelivery) by why they are sent again.
        if send.kind != "tap":
            return str(send.kind)
        name = kind_name(json.loads(send.event.body))
        return "tap" if name == BUTTON else name

    kinds: Counter[tuple[str, str]] = Counter((s.step, what(s)) for s in plan.sends)
    click.echo(visible(f"{plan.scenario.name} (seed {plan.seed}): {len(plan.sends)} send(s) "
                       f"from {len(plan.users)} user(s) over {plan.duration:.1f} s"))
    for step in plan.scenario.steps:
        counts = ", ".join(f"{n} {k}{'(es)' if k.endswith('s') else '(s)'}"
                           for (name, k), n in kinds.items() if name == step.name)
        click.echo(visible(f"  {step.name}: {counts or 'no sends'}"))
    bad = 0
    for send in plan.sends:
        if send.kind == "verify":  # a GET handshake: no body to check
            continue
        problems = validate_callback(json.loads(send.event.body))
        for problem in problems:
            click.echo(visible(f"  #{send.index} {send.step}: {problem}"))
        bad += bool(problems)
    if bad:
        click.echo(f"{bad} payload(s) invalid", err=True)
        return ExitCode.FAILED
    click.echo(f"all {len(plan.sends)} payload(s) valid; nothing sent (--dry-run)")
    return ExitCode.OK


def _wait_for(delivery: Any, timeout: float) -> None:
    import asyncio
    import socket
    import time

    import httpx

    from simulator.delivery import checked_address, default_port

    if delivery is None or delivery.target.kind != "url":
        return  # an app in-process is always ready
    url = httpx.URL(delivery.target.url)
    port = default_port(url)
    deadline = time.monotonic() + timeout
    click.echo(f"waiting for {url.host}:{port} to accept connections...", err=True)
    while True:
        # Checked again each time, and connected to at the checked address (DNS rebinding).
        host = asyncio.run(checked_address(url.host, port, delivery.allow_remote,
                                           delivery.resolver, delivery.remote_hosts))
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise WasimError(f"{url.host}:{port} did not accept connections within "
                                 f"{timeout:g} s", where="--wait-for-url",
                                 hint="Is your webhook starting? Raise --wait-timeout if it "
                                      "is slow.", exit_code=ExitCode.UNREACHABLE) from None
            time.sleep(0.2)


def _run_plan(running: Any, speed: float, history: Any, reports: list[Any]) -> int:
    """Play the run (simulator.play) with a progress bar or attempt lines; print the summary."""
    import asyncio
    import sys

    from simulator.reports import write_report
    from simulator.terminal import is_plain

    live = not is_plain(sys.stderr)  # a CI log gets one line per attempt, not a bar
    progress = _Progress(len(running.plan.sends)) if live else None

    def on_attempt(attempt: Any) -> None:
        if history is not None:
            history.append(attempt)
        if not live:
            click.echo(attempt_line(attempt))

    def on_result(_: Any) -> None:
        if progress is not None:
            progress.update(running.summary)

    try:
        asyncio.run(running.run(speed=speed, on_attempt=on_attempt, on_result=on_result))
    finally:
        if progress is not None:
            progress.close()
        if history is not None:
            history.close()
        # Even an interrupted run keeps what it learned.
        for path in reports:
            write_report(path, running.summary, running.results, running.duration)
    for line in running.summary.lines():
        click.echo(visible(line))
    if running.verdict == ExitCode.UNREACHABLE:
        from simulator.delivery import nothing_listening

        last = running.results[0].result.attempts[-1]
        raise nothing_listening(last.url, last.error)
    return int(running.verdict)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int) -> None:
        from simulator.terminal import ProgressBar

        self.total = max(total, 1)
        self.shown = 0.0
        self.bar = ProgressBar(sys.stderr, self.total)

    def update(self, summary: Any, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and now - self.shown < 0.1 and summary.sent < self.total:
            return
        self.shown = now
        p95 = summary.percentile(95)
        latency = f"  p95 {p95:.1f} ms" if p95 is not None else ""
        bad = sum(summary.expectation_failures.values())
        # rich fits the bar to the terminal's width (a long \r line used to wrap and smear).
        self.bar.update(summary.sent, f"delivered {summary.delivered}  failed {summary.failed}"
                                      f"  expectations {bad}{latency}")

    def close(self) -> None:
        self.bar.close()


def _given(param: str) -> bool:
    """Whether the option was given (not its default)."""
    source = click.get_current_context().get_parameter_source(param)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _with_identity(loaded: Any, identity: tuple[tuple[str, float], ...]) -> Any:
    """The scenario with its cast's identity modes replaced by --identity."""
    from dataclasses import replace

    return replace(loaded, cast=replace(loaded.cast, identity=identity))


@cli.group(invoke_without_command=True)
@click.pass_context
def scenarios(ctx: click.Context) -> None:
    """List the built-in scenarios and yours (./scenarios), with what each exercises."""
    if ctx.invoked_subcommand is not None:
        return
    from simulator.scenarios import builtin_scenarios, describe_file, local_scenarios
    from simulator.terminal import Col, table_lines

    rows = [(path.stem, kind, describe_file(path))
            for kind, paths in (("built-in", builtin_scenarios()), ("local", local_scenarios()))
            for path in paths]
    for line in table_lines([Col("SCENARIO"), Col("FROM"), Col("WHAT", wrap=True)], rows,
                            sys.stdout):  # cells made visible there; lines may be styled
        click.echo(line)


@scenarios.command("show")
@click.argument("name", callback=check_paths)
@click.option("--rendered", is_flag=True,
              help="Print it after Jinja (what the YAML reader, and error line numbers, see).")
@click.option("--seed", type=SEED, help="Seed for `fake` in the file, with --rendered.")
@TEMPLATE_ENV_OPTION
def scenarios_show(name: str, rendered: bool, seed: int | None,
                   template_env: tuple[str, ...] = ()) -> None:
    """Print a scenario file as written, or rendered by its Jinja."""
    from simulator.scenarios import find_scenario, render_scenario_text
    from simulator.scenarios import template_env as allowed

    path = find_scenario(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WasimError(f"cannot read the scenario ({exc})", where=str(path)) from None
    if rendered:
        text = render_scenario_text(text, str(path), seed=seed, env=allowed(template_env))
    click.echo(visible(text, newlines=True), nl=False)


@cli.command()
@click.argument("name", required=False)
@click.option("--example", type=click.Choice(["fastapi", "flask"]),
              help="Write a runnable webhook to copy instead (NAME.py, default webhook.py): it "
                   "checks the signature, answers each tap once and replies through the V2 "
                   "send API.")
@click.option("--force", is_flag=True, help="Overwrite a file that exists.")
def new(name: str | None, example: str | None, force: bool) -> None:
    """Write a commented starter scenario to ./scenarios/NAME.yaml (or, with --example, a
    webhook to start from)."""
    import re
    from pathlib import Path

    from simulator.inputs import shown
    from simulator.safefiles import write_file
    from simulator.scenarios import STARTER, STARTER_HEAD

    if name is None and example is None:
        raise WasimError("say what to call the scenario", where="wasim new",
                         hint="e.g. `wasim new summer-sale`, or `wasim new --example fastapi`.")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", name):
        raise WasimError(f"{shown(name)} is not a usable name", where="NAME",
                         hint="Use up to 100 letters, digits, - and _, e.g. summer-sale.")
    if example is not None:
        source = Path(__file__).resolve().parent / "examples" / f"{example}_webhook.py"
        path = Path(f"{(name or 'webhook').replace('-', '_')}.py")
        text = source.read_text(encoding="utf-8")
        next_step = (f"try: wasim fire --app {path.stem}:app --path /webhook --api-port 0 "
                     f"(needs {example} and httpx)")
    else:
        path = Path("scenarios") / f"{name}.yaml"
        text = STARTER_HEAD + STARTER.replace("NAME", str(name))
        next_step = f"try: wasim run {path} --dry-run"
    try:
        # Never through a link (simulator.safefiles); without --force, never over a file.
        write_file(path, text.encode("utf-8"), "the example" if example else "the scenario",
                   exclusive=not force)
    except FileExistsError:
        raise WasimError("the file exists", where=str(path),
                         hint="Pick another name, or --force to overwrite it.") from None
    except OSError as exc:
        raise WasimError(f"cannot write the file ({exc.strerror})", where=str(path)) from None
    click.echo(f"wrote {path}; {next_step}", err=True)
    from simulator.schema import SCHEMA_FILE

    if example is None and not Path(SCHEMA_FILE).exists():
        click.echo(f"for your editor's checks and completion: wasim schema > {SCHEMA_FILE}",
                   err=True)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (draft 2020-12).

    Generated from the format the loader reads. Editors that read a
    `# yaml-language-server: $schema=...` line (VS Code's YAML extension, and others) check
    and complete scenario files against it; `wasim new` writes that line, pointing at
    wasim-schema.json in the folder above the scenario:

    \b
      wasim schema > wasim-schema.json
    """
    from simulator.schema import schema_text

    click.echo(schema_text(), nl=False)


# Meta's messaging throughput per business number (simulator/throughput.py).
THROUGHPUT_OPTION = click.option(
    "--throughput", type=Number(1, 1e6, what="messages per second"), metavar="MPS",
    help="Meta's throughput per business number: sends past it are answered 202, then fail "
         "with 130429 in a status callback (Meta's tiers: 80, upgraded 1000).  [default: "
         "no limit]")


_LOAD_KEYS = ("url", "app", "path", "method", "headers", "basic_auth", "token_url", "client_id",
              "client_secret", "timeout", "success", "envelope", "app_secret", "signature")


def _load_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """load's delivery settings, from the one table: all but retries (load sends once)."""
    from simulator.params import click_options

    return click_options(_LOAD_KEYS)(command)  # type: ignore[no-any-return]


@cli.command()
@click.argument("scenario", required=False, metavar="[SCENARIO]", callback=check_paths)
@_load_settings
@click.option("--allow-remote", is_flag=True, help="Allow a target that is not this machine.")
@click.option("--rate", type=Number(0, 1e6, low_open=True, what="requests per second"),
              help="Requests per second (open loop). Without it: as fast as --concurrency "
                   "allows.")
@click.option("--duration", default="10s", show_default=True, metavar="DURATION",
              help="How long to run: 30s, 5m...")
@click.option("--count", "-n", type=Number(1, MAX_COUNT, integer=True),
              help="Stop after N requests.")
@click.option("--concurrency", "-c", type=Number(1, MAX_CONCURRENCY, integer=True), default=64,
              show_default=True,
              help="Connections, so requests in flight at most.")
@click.option("--workers", "-w", type=Number(1, 256, integer=True), metavar="N",
              help="Processes sharing the rate and the connections, each drawing its own "
                   "users and ids from the seed.  [default: the machine's cores; one per "
                   "1,000 requests of a --count]")
@click.option("--seed", type=SEED, help="Seed of the generated callbacks.  [default: random]")
@click.option("--country", "countries", multiple=True, metavar="CODE", callback=check_not_empty,
              help="Users' countries without a scenario; repeat or comma-separate.")
@click.option("--button", "buttons", multiple=True, metavar="LABEL", callback=check_not_empty,
              help="Buttons tapped without a scenario; repeatable.  [default: the demo three]")
@IDENTITY_OPTION
@BUSINESS_COUNTRY_OPTION
@kind_options
@click.option("--report", type=FILE_PATH, metavar="FILE.json|FILE.html",
              help="Write the figures: JSON, or with .html a page of charts that opens "
                   "offline (needs the `report` extra).")
@click.option("--max-p99", type=click.FloatRange(min=0), metavar="MS",
              help="Threshold: fail (exit 1) if the p99 latency is above this.")
@click.option("--max-error-rate", type=Number(0, 1, what="a share"), metavar="SHARE",
              help="Threshold: fail (exit 1) if more than this share of requests failed, "
                   "e.g. --max-error-rate 0.01 allows 1%.  [default: 0, any failed request "
                   "fails the run, as in Locust]")
@click.option("--history", "history_path", envvar="WASIM_HISTORY", type=FILE_PATH,
              default=".wasim/history.jsonl", show_default=True,
              help="Where sampled attempts go (with --history-sample).")
@click.option("--history-sample", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N", help="Keep 1 attempt in N in the history; 0 keeps none.")
@TEMPLATE_ENV_OPTION
@click.option("--replies", is_flag=True,
              help="Load the whole conversation: run the send API beside the load and match "
                   "every tap to the app's reply (latency, missing, wrong user, duplicates, "
                   "their statuses back to the target).")
@click.option("--api-port", type=PORT, default=None,
              help="With --replies: the send API's port (0: any free one); its base URL is "
                   "printed and set as KALEYRA_BASE_URL (SID, key) for an --app.  "
                   "[default: 8700]")
@click.option("--sid", default=None, callback=check_not_empty,
              help="With --replies: the SID the send API accepts.")
@click.option("--api-key", default=None, callback=check_not_empty,
              help="With --replies: the api-key it accepts.")
@THROUGHPUT_OPTION
@click.option("--max-reply-p99", type=click.FloatRange(min=0), metavar="MS",
              help="Threshold: fail (exit 1) if the reply latency's p99 is above this.")
@click.option("--max-missing-replies", type=Number(0, 1, what="a share"), metavar="SHARE",
              help="Threshold: fail (exit 1) if more than this share of taps got no reply.")
@click.option("--reply-wait", type=Number(0, MAX_WAIT, what="seconds"), default=10.0,
              show_default=True,
              help="With --replies: seconds to wait for the last replies once the taps stop.")
def load(scenario: str | None, **options: Any) -> int:
    """Push unique, valid callbacks at a rate, or as fast as possible, and measure.

    Drives SCENARIO's business, template, cast and first step's buttons, or a plain mix of
    taps (--country, --button). Live figures on a terminal; a summary at the end; thresholds
    set the exit code as k6 does: 0 within them, 1 when one is broken, 3 if nothing listens.
    History is off in load mode (it would grow by thousands of lines a second);
    --history-sample N keeps one attempt in N.

    Any failed request (no success status) breaks the run, as in Locust, unless
    --max-error-rate allows a share of them; to allow 1%:

    \b
      wasim load --url http://127.0.0.1:8000/webhook -n 1000 --max-error-rate 0.01
    """
    import json
    import os
    import secrets
    import sys
    from dataclasses import replace
    from pathlib import Path

    from simulator.delivery import delivery_options_from
    from simulator.kinds import BUTTON
    from simulator.kinds.options import kind_from, wants_kind_list
    from simulator.load import (
        CallbackSource,
        LoadOptions,
        SourceSpec,
        check_load,
        check_number,
        run_fast,
        run_load,
        run_workers,
        split_options,
    )
    from simulator.runner import scenario_settings
    from simulator.scenarios import load_scenario, parse_duration, template_env
    from simulator.settings import RETRY_KEYS, from_params, resolve
    from simulator.taps import (
        DEFAULT_BUTTONS,
        IDENTITIES,
        TapOptions,
        buttons_from_labels,
        parse_shares,
    )

    if wants_kind_list(options):
        return ExitCode.OK
    kind, kind_args = kind_from(options)
    if kind != BUTTON and (scenario is not None or options["buttons"]):
        raise WasimError(f"--kind {kind} sends new users' callbacks of that kind",
                         where="--kind", hint="Drop the scenario and --button, or the --kind.")
    # click's ranges let NaN and infinity through (every comparison with NaN is false).
    check_number(options["max_p99"], "max_p99", low=0)
    check_number(options["max_error_rate"], "max_error_rate", low=0, high=1)
    html_report = False
    if options["report"]:
        from simulator.html_report import check_html_report, is_html

        html_report = is_html(Path(options["report"]))
        if html_report:
            check_html_report()  # before anything is sent
    identity = parse_shares(options["identity"], IDENTITIES, "--identity")
    load_options = LoadOptions(rate=options["rate"], count=options["count"],
                               concurrency=options["concurrency"],
                               history_sample=options["history_sample"],
                               timeline=html_report)
    duration = parse_duration(options["duration"])
    if duration is None:
        raise WasimError(f"cannot read the duration {options['duration']!r}",
                         where="--duration", hint="For example 30s, 2m or 90.")
    if duration <= 0:
        raise WasimError("the duration must be more than 0 seconds", where="--duration",
                         hint="For example 30s, or --count N to stop after N requests.")
    load_options = replace(load_options, duration=duration)  # checked even beside --count
    flags = from_params(options, _LOAD_KEYS)
    settings, where = resolve((flags, flag_name))
    seed = options["seed"] if options["seed"] is not None else secrets.randbelow(1_000_000)
    if scenario is not None:
        allowed = tuple(options["template_env"])
        loaded = load_scenario(scenario, seed=options["seed"], env=template_env(allowed))
        # The same layers and precedence as `wasim run` (flags > first step > scenario).
        settings, where = scenario_settings(loaded, 0, flags, flag_name)
        ignored = [key for key in RETRY_KEYS if key in settings]
        if ignored:
            click.echo(f"load: sends each callback once; the scenario's {', '.join(ignored)} "
                       f"({where(ignored[0])}) do not apply", err=True)
            settings = {k: v for k, v in settings.items() if k not in RETRY_KEYS}
        if _given("identity"):
            loaded = _with_identity(loaded, identity)
        source = CallbackSource.from_scenario(loaded, seed=options["seed"])
        # The seed drawn here, so every worker plans the same business and cast.
        spec = SourceSpec(scenario=scenario, seed=source.factory.options.seed,
                          identity=identity if _given("identity") else None,
                          template_env=allowed)
    else:
        labels = [b for v in options["buttons"] for b in v.split(",") if b.strip()]
        spec = SourceSpec(taps=TapOptions(
            seed=seed, countries=_split_codes(options["countries"]),
            buttons=buttons_from_labels(labels) if labels else DEFAULT_BUTTONS,
            identity=identity, business_country=options["business_country"],
            wall_clock=True), kind=None if kind == BUTTON else kind, kind_args=kind_args)
        source = spec.build()
    # `person`: a scenario's url or token_url is covered by --allow-remote only if named here.
    delivery = delivery_options_from(settings, where, allow_remote=options["allow_remote"],
                                     person=flags.keys())
    if options["count"]:
        load_options = replace(load_options, duration=None)
    check_load(delivery, load_options)
    from simulator.reply_tracking import check_reply_thresholds, refuse_api_flags

    refuse_api_flags(options)
    check_reply_thresholds(options["max_reply_p99"], options["max_missing_replies"],
                           options["reply_wait"])
    history = None
    if options["history_sample"]:
        from simulator.history import HistoryWriter

        history = HistoryWriter(Path(options["history_path"])).open()
    from simulator.terminal import LiveLine, is_plain

    live = not is_plain(sys.stderr)
    display: LiveLine | None = None
    pace = f"{options['rate']:g}/s" if options["rate"] else "as fast as possible"
    # An app runs inside this process, so it gets one worker; a short --count is not worth
    # starting processes for (a worker per 1,000 requests) unless --workers asks.
    workers = options["workers"] or min(os.cpu_count() or 1,
                                        -(-(options["count"] or 10**9) // 1000))
    workers = 1 if delivery.target.kind != "url" else len(split_options(load_options, workers))
    if options["replies"]:
        workers = 1  # the taps are matched to replies in this process, beside the send API

    def start() -> None:
        # Said once the run cannot be refused any more (a bad token URL is its one line).
        if history is not None:
            click.echo(f"history: 1 attempt in {options['history_sample']} goes to "
                       f"{history.path}", err=True)
        else:
            click.echo("history: off in load mode (--history-sample N keeps 1 attempt in N)",
                       err=True)
        click.echo(f"load: {delivery.target.label}, {pace}, {options['concurrency']} "
                   f"connections, {options['count'] or options['duration']}"
                   + (f", {workers} workers" if workers > 1 else ""), err=True)
        if mock is not None:
            click.echo(f"send API on {mock.base_url} (SID {mock.options.sid}, api-key "
                       f"{mock.options.api_key}); every tap's reply is matched", err=True)

    def tick(stats: Any) -> None:
        nonlocal display
        if live:
            # Fitted to the terminal: a line wider than it would wrap and redraw as a smear.
            display = display or LiveLine(sys.stderr)
            display.update(stats.line())
        elif int(stats.elapsed * 2) % 10 == 0:  # every 5 s in a log
            click.echo(visible(stats.line()), err=True)

    tracker: Any = None
    mock: Any = None
    if options["replies"]:
        from simulator.reply_tracking import ReplyTracker, start_load_api
        from simulator.sendapi import DEFAULT_PORT

        tracker = ReplyTracker()
        source.on_body = tracker.tap
        mock = start_load_api(tracker, delivery, port=DEFAULT_PORT if options["api_port"] is None
                              else options["api_port"], sid=options["sid"],
                              api_key=options["api_key"], throughput=options["throughput"],
                              seed=source.factory.options.seed)
    try:
        if workers > 1:
            stats = run_workers(spec, settings, load_options, workers,
                                allow_remote=options["allow_remote"], on_tick=tick,
                                on_attempt=history.append if history else None,
                                on_start=start)
        else:
            stats = run_fast(run_load(source, delivery, load_options, on_tick=tick,
                                      on_attempt=history.append if history else None,
                                      on_start=start))
        if tracker is not None:
            tracker.settle(options["reply_wait"])
    finally:
        if mock is not None:
            mock.stop()
        if history is not None:
            history.close()
        if display is not None:
            display.close()
    figures = stats.as_dict()
    p99 = figures["latency_ms"]["p99"]
    breaches = []
    if options["max_p99"] is not None and (p99 is None or p99 > options["max_p99"]):
        breaches.append(f"p99 {p99 if p99 is None else round(p99, 2)} ms > "
                        f"--max-p99 {options['max_p99']:g} ms")
    # As Locust does: any failed request fails the run, unless --max-error-rate allows a share.
    error_budget = options["max_error_rate"] if options["max_error_rate"] is not None else 0.0
    if stats.failed and stats.error_rate > error_budget:
        breaches.append(
            f"error rate {stats.error_rate:.2%} > --max-error-rate {error_budget:.2%}"
            if options["max_error_rate"] is not None else
            f"{stats.failed:,} of {stats.sent:,} requests failed; any failure fails a load "
            f"run unless --max-error-rate SHARE allows it")
    if tracker is not None:
        breaches += tracker.breaches(options["max_reply_p99"], options["max_missing_replies"])
        figures["replies"] = tracker.as_dict()
    figures["thresholds"] = {"max_p99_ms": options["max_p99"],
                             "max_error_rate": error_budget,
                             "max_reply_p99_ms": options["max_reply_p99"],
                             "max_missing_replies": options["max_missing_replies"],
                             "breached": breaches}
    figures["target"] = delivery.target.label
    figures["seed"] = source.factory.options.seed
    click.echo(visible(stats.line()))
    click.echo(f"{stats.sent:,} sent, {stats.ok:,} ok, {stats.failed:,} failed"
               + (f" ({', '.join(f'{k} {v}' for k, v in stats.errors.items())})"
                  if stats.errors else "")
               + (f"; {stats.late:,} left late" if stats.late else ""))
    if tracker is not None:
        click.echo(tracker.line())
    verdict = stats.verdict()
    if verdict:
        click.echo(visible(verdict))
    for crash in stats.crashed:
        click.echo(visible(f"{crash}: the run stopped early"))
    for breach in breaches:
        click.echo(visible(f"threshold broken: {breach}"))
    if options["report"]:
        path = Path(options["report"])
        settings_shown = [("scenario", scenario or "-"), ("kind", kind), ("pace", pace),
                          ("workers", str(workers))]
        if not _load_html_report(path, figures, stats, delivery, options, settings_shown):
            from simulator.safefiles import write_file

            try:
                write_file(path, (json.dumps(figures, indent=2) + "\n").encode(), "the report")
            except OSError as exc:
                raise WasimError(f"cannot write the report ({exc.strerror})",
                                 where=str(path)) from None
    return ExitCode.FAILED if breaches or stats.crashed else ExitCode.OK


def _load_html_report(path: Any, figures: dict[str, Any], stats: Any, delivery: Any,
                      options: dict[str, Any], settings: list[tuple[str, str]]) -> bool:
    """`load --report FILE.html`: the charts page (simulator.html_report); False for JSON."""
    from simulator.html_report import is_html, load_report, write_html

    if not is_html(path):
        return False
    given = [("target", figures["target"]), *settings,
             ("duration", f"{options['count']:,} requests" if options["count"]
              else str(options["duration"])),
             ("connections", str(options["concurrency"])), ("seed", str(figures["seed"])),
             ("identity", options["identity"]), ("timeout", f"{delivery.timeout:g} s")]
    write_html(path, load_report(figures, stats, given, options["max_p99"],
                                 options["max_error_rate"], delivery.is_success))
    return True


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, callback=check_not_empty,
              help="Address to listen on.")
@click.option("--port", type=PORT, default=8000,
              show_default=True, help="Port to listen on; 0 picks a free one.")
@click.option("--status", type=Number(200, 599, integer=True, what="a final HTTP status"),
              default=200, show_default=True,
              help="Fault switch: the status to answer every callback with.")
@click.option("--delay", type=Number(0, MAX_WAIT, what="seconds"), default=0.0,
              show_default=True, help="Fault switch: seconds to wait before answering.")
@click.option("--fail-rate", type=Number(0, 1, what="a share"), default=0.0, show_default=True,
              help="Fault switch: share of callbacks (0-1) answered 500 instead.")
@click.option("--seed", type=SEED, help="Seed for the --fail-rate draws, so failures reproduce.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each arrival as a JSON line (with the exact body) instead of a summary.")
@click.option("--max-body", type=Number(0, 2**40, integer=True, what="bytes"),
              default=1024 * 1024, show_default=True,
              help="Largest body accepted, in bytes; a bigger one is answered 413 unread.")
@click.option("--app-secret", envvar="WASIM_APP_SECRET", metavar="SECRET",
              help="Check X-Hub-Signature-256 of every callback: a missing or bad signature is "
                   "answered 401 and shown as a problem.  [env: WASIM_APP_SECRET]")
def receive(host: str, port: int, status: int, delay: float, fail_rate: float,
            seed: int | None, as_json: bool, max_body: int, app_secret: str | None) -> int:
    """Run a local test webhook that prints who tapped what, and checks every payload.

    A real HTTP server for demos and self-checks. One line per callback: who tapped which
    button on which campaign, and whether the payload passes `wasim validate`. Ctrl+C stops it.
    """
    import json

    from simulator.receiver import Arrival, Receiver, ReceiverOptions, describe

    def show(arrival: Arrival) -> None:
        if as_json:
            click.echo(visible_json(json.dumps({
                "number": arrival.number, "at": arrival.received_at, "method": arrival.method,
                "path": arrival.path, "status": arrival.status, "summary": arrival.summary,
                "problems": list(arrival.problems),
                "body": arrival.body.decode("utf-8", "replace"),
            }, ensure_ascii=False)))
        else:
            click.echo(visible(describe(arrival)))

    from simulator.meta import check_secret

    options = ReceiverOptions(host=host, port=port, status=status, delay=delay,
                              fail_rate=fail_rate, seed=seed, max_body=max_body,
                              app_secret=check_secret(app_secret, "--app-secret")
                              if app_secret is not None else None)
    receiver = Receiver(options, on_arrival=show)
    receiver.start()
    click.echo(f"wasim receiver listening on {receiver.url} (Ctrl+C to stop)", err=True)
    try:
        _until_interrupted()
    finally:
        receiver.stop()
    arrivals = receiver.arrivals
    click.echo(f"stopped after {arrivals[-1].number if arrivals else 0} callback(s)", err=True)
    return ExitCode.OK


def _webhook_keys() -> tuple[str, ...]:
    """`wasim api`'s delivery settings for --webhook: fire's, less where to deliver."""
    from simulator.settings import KEYS, TARGET_KEYS

    return tuple(key for key in KEYS if key not in TARGET_KEYS)


def _webhook_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `wasim api`'s delivery flags (envelope, app secret, auth...) for --webhook."""
    from simulator.params import click_options

    return click_options(_webhook_keys())(command)  # type: ignore[no-any-return]


@cli.command("api")
@click.option("--port", type=PORT, default=8700, show_default=True,
              help="Port to listen on (127.0.0.1); 0 picks a free one.")
@send_api_options
@click.option("--business-number", "business_numbers", multiple=True, metavar="N",
              help="A sender number the account owns (repeatable); with none, any is accepted.")
@click.option("--webhook", callback=not_empty(check_url), metavar="URL",
              help="Where V2 status callbacks go (this machine only); V1 uses callback_url.")
@click.option("--status-delay", "status_delays", multiple=True, metavar="SECONDS",
              type=Number(0, MAX_WAIT, what="seconds"),
              help="Seconds before sent, delivered, read (repeat; the last one repeats).")
@click.option("--status-delays", "status_delays_text", metavar="D,D,D",
              help="The same as one list, e.g. 1s,2s,5s (the default; ms and m work too).")
@click.option("--speed", "api_speed", type=SPEED, default=1.0, show_default=True,
              help="Send statuses this many times faster than their timestamps say.")
@click.option("--phone-number-id", metavar="ID",
              help="The business's phone_number_id in statuses (frameworks such as pywa drop "
                   "updates for another one).  [default: derived from the number]")
@click.option("--waba-id", metavar="ID", help="The WABA id in statuses.  [default: derived]")
@click.option("--max-body", type=Number(0, 2**31, integer=True, what="bytes"),
              default=16 * 1024 * 1024, show_default=True,
              help="Largest request body, in bytes (media uploads); a bigger one is answered "
                   "413 unread. Bodies read at once hold 64 MiB at most (or one body, if "
                   "larger); past that, 503.")
@THROUGHPUT_OPTION
@_webhook_options
def api(port: int, api_sid: str | None, api_key: str | None, api_v1_id: str,
        api_templates: tuple[str, ...] | None, api_fail: tuple[Any, ...],
        business_numbers: tuple[str, ...], webhook: str | None,
        status_delays: tuple[float, ...], max_body: int, throughput: float | None = None,
        **delivery: Any) -> int:
    """Play Kaleyra's WhatsApp send API (V1 and V2) on this machine, with status callbacks.

    Point your handler's Kaleyra base URL at the printed one. Every message is checked,
    recorded and printed; sent, delivered and read statuses follow. Ctrl+C stops it.
    The delivery flags (e.g. --envelope meta --app-secret S) shape the --webhook statuses.

    Failures without Python: `wasim api --templates order_update --fail 919876543210=131026
    --fail 5%=131047` accepts every send (202) and follows a template other than order_update
    with a FAILED 132001 status, a message to that number with 131026, and a seeded 5% of
    recipients with 131047.
    """

    from simulator.api_console import ApiConsole
    from simulator.delivery import delivery_options_from
    from simulator.sendapi import MockApi, SentMessage, StatusDelivery, api_options

    # A line per message and status; under load, one summary line a second instead.
    console = ApiConsole(click.echo)

    def shown(message: SentMessage) -> None:
        console.message(lambda: visible(message.describe()))

    def status(delivery: StatusDelivery) -> None:
        console.status(lambda: visible(f"  {delivery.describe()}"))

    from simulator.inputs import parse_meta_id
    from simulator.settings import BY_KEY, from_params
    from simulator.world import parse_status_delays

    given_delays = delivery.pop("status_delays_text", None)
    api_speed = delivery.pop("api_speed")
    phone_number_id = delivery.pop("phone_number_id", None)
    waba_id = delivery.pop("waba_id", None)
    if given_delays:
        status_delays = parse_status_delays(given_delays)
    if phone_number_id:
        phone_number_id = parse_meta_id(phone_number_id, "--phone-number-id")
    if waba_id:
        waba_id = parse_meta_id(waba_id, "--waba-id")
    options = api_options(port=port, sid=api_sid, api_key=api_key,
                          business_numbers=business_numbers, status_delays=status_delays,
                          templates=api_templates, fail=api_fail, v1_id=api_v1_id,
                          speed=api_speed, phone_number_id=phone_number_id, waba_id=waba_id,
                          max_body=max_body)
    how = from_params(delivery, _webhook_keys())
    # A flag given for nothing is a mistake; a secret in the environment is not.
    source = click.get_current_context().get_parameter_source
    stray = [key for key in how
             if source(BY_KEY[key].name) is not click.core.ParameterSource.ENVIRONMENT]
    if stray and not webhook:
        raise WasimError("this shapes the status callbacks, which go only to --webhook",
                         where=flag_name(stray[0]), hint="Add --webhook URL.")
    # The statuses follow the webhook's delivery options as taps do: with --envelope meta and
    # --app-secret they arrive in Meta's envelope, signed over the bytes that leave.
    target = delivery_options_from({"url": webhook, **how},
                                   lambda key: "--webhook" if key == "url" else flag_name(key)) \
        if webhook else None
    mock = MockApi(options, webhook=target, on_sent=shown, on_status=status)
    if throughput is not None:
        from simulator.throughput import ThroughputLimiter

        mock.throughput = ThroughputLimiter(throughput)
    from simulator.aioserver import tune_collector

    mock.start()
    # This process serves until Ctrl+C: no collection may stall the answers.
    untune = tune_collector()
    console.start()
    click.echo(f"wasim api listening on {mock.base_url} (Ctrl+C to stop)", err=True)
    click.echo(f"  SID {options.sid}  api-key {options.api_key}", err=True)
    click.echo(f"  V1 {mock.v1_url()}", err=True)
    click.echo(f"  V2 {mock.base_url}/v2/{options.sid}/whatsapp/<business number>/messages",
               err=True)
    try:
        _until_interrupted()
    finally:
        mock.stop()
        console.stop()
        untune()
    click.echo(f"stopped after {len(mock.sent)} message(s)", err=True)
    return ExitCode.OK


@cli.command()
@click.argument("url", metavar="URL", callback=check_url)
@click.option("--verify-token", envvar="WASIM_VERIFY_TOKEN", required=True, metavar="TOKEN",
              help="The verify token your handler expects.  [env: WASIM_VERIFY_TOKEN]")
@click.option("--challenge", metavar="TEXT", callback=check_not_empty,
              help="The challenge to send.  [default: random]")
@click.option("--timeout", type=Number(0, MAX_WAIT, low_open=True, what="seconds"),
              default=10.0, show_default=True, help="Seconds to wait for each answer.")
@click.option("--allow-remote", is_flag=True, help="Allow a target that is not this machine.")
def verify(url: str, verify_token: str, challenge: str | None, timeout: float,
           allow_remote: bool) -> int:
    """Perform Meta's webhook verification handshake against URL.

    GET URL?hub.mode=subscribe&hub.verify_token=TOKEN&hub.challenge=C: passes when the handler
    answers 200 with C as the body, and refuses the same request with a wrong token.
    Exit 0 when both hold, 1 when not, 3 when nothing listens.
    """
    import asyncio

    from simulator.delivery import delivery_options_from
    from simulator.meta import verify_handshake

    delivery = delivery_options_from({"url": url, "timeout": timeout}, flag_name,
                                     allow_remote=allow_remote)
    handshake = asyncio.run(verify_handshake(delivery, verify_token, challenge))
    if handshake.unreachable:
        raise WasimError(f"Nothing is listening at {handshake.url}.",
                         hint="Is your webhook running?", exit_code=ExitCode.UNREACHABLE)
    for line in handshake.lines():
        click.echo(visible(line))
    return ExitCode.OK if handshake.passed else ExitCode.FAILED


@cli.command("import")
@click.argument("files", nargs=-1, required=True, metavar="FILE...", callback=check_paths)
@click.option("--out", required=True, type=FILE_PATH, metavar="FILE",
              help="The scenario to write (scenarios/NAME.yaml); templates go beside it.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seeds the replacements: the same capture and seed give the same files.")
@click.option("--keep-text", is_flag=True,
              help="Keep what people wrote, with emails, numbers, links and names replaced "
                   "(default: fake text of the same length).")
@click.option("--report", "report_path", type=FILE_PATH, metavar="FILE",
              help="Write the report to FILE instead of printing it.")
def import_(files: tuple[str, ...], out: str, seed: int, keep_text: bool,
            report_path: str | None) -> None:
    """Turn captured callbacks (JSON Lines, JSON arrays, Meta envelopes, wasim history)
    into a shareable scenario: every personal value replaced, the brand's values kept."""
    from pathlib import Path

    from simulator.importer import import_capture, write_outputs

    target = Path(out)
    if target.suffix not in (".yaml", ".yml"):
        raise WasimError(f"{out!r} does not end in .yaml", where="--out",
                         hint="Name the scenario file, e.g. scenarios/june-traffic.yaml.")
    name = "".join(c if c.isalnum() or c in "-_." else "-"
                   for c in target.name.removesuffix(".yaml").removesuffix(".yml")) or "imported"
    imported = import_capture(files, name, seed=int(seed), keep_text=keep_text)
    outputs = {target: imported.scenario}
    outputs.update({target.parent / file: text for file, text in imported.templates.items()})
    if report_path:
        outputs[Path(report_path)] = imported.report
    write_outputs(outputs)
    if not report_path:
        click.echo(imported.report, nl=False)
    click.echo(f"wrote {out} ({imported.steps} steps, {imported.users} users)", err=True)


@cli.command()
def templates() -> None:
    """List the built-in callback templates, then every kind `--kind` renders."""
    from simulator.kinds.options import kind_table
    from simulator.render import builtin_templates

    for name in builtin_templates():
        click.echo(name)
    click.echo("\nkinds (render/fire --kind KIND):")
    for line in kind_table(sys.stdout, indent=2):
        click.echo(f"  {line}")


# `wasim tui` takes fire's auth, header, timeout and retry flags, from the same table (its own
# target flags stay: they also aim the UI's receiver pane).
def _tui_settings() -> list[click.Parameter]:
    from simulator.params import click_options
    from simulator.settings import KEYS, TARGET_KEYS

    keys = [key for key in KEYS if key not in TARGET_KEYS]
    stand_in = click_options(keys)(lambda **_: None)
    return list(reversed(stand_in.__click_params__))


tui.params.extend(_tui_settings())
cli.add_command(tui)
cli.add_command(demo)


def main() -> None:
    """Entry point of the `wasim` console script."""
    try:
        cli.main()
    except SystemExit as done:
        _leave_now_if_held(done.code)
        raise


def _leave_now_if_held(code: object) -> None:
    """Exit at once when a thread wasim does not own would hold the process open.

    An in-process app's plain `def` handler runs on its framework's worker thread (anyio's),
    which Python joins at exit: a handler stuck past --timeout kept `fire --app` alive long
    after it had reported. By now everything is printed and recorded (the history is closed),
    so nothing is lost by not waiting for it.
    """
    import os
    import threading

    held = [t for t in threading.enumerate()
            if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    if not held:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
