"""The click commands of the terminal UI: `wasim tui`, `wasim demo`, and bare `wasim`.

Textual is imported inside the command bodies only: `wasim --help` and every other command
must not pay for it (benchmarks/startup.py measures this).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from simulator.errors import ExitCode, WasimError
from simulator.inputs import MAX_WAIT
from simulator.params import (
    FILE_PATH,
    PORT,
    SEED,
    SPEED,
    TEMPLATE_ENV_OPTION,
    Number,
    api_port_option,
    check_not_empty,
    check_paths,
    send_api_options,
)
from simulator.tui.web import under_web_driver, web_options

_HISTORY_DEFAULT = ".wasim/history.jsonl"


def is_terminal() -> bool:
    """Whether a person is at a terminal (both ends), so a full-screen UI makes sense."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def check_can_draw(command: str) -> None:
    """Refuse (exit 2) where a full-screen UI cannot be drawn: no terminal, or TERM=dumb."""
    if under_web_driver():
        return  # served to a browser (--web): stdin and stdout are textual-serve's pipes
    if not is_terminal():
        raise WasimError("the terminal UI needs a terminal", where=command,
                         hint="Use `wasim fire` or `wasim run` in scripts, or `wasim demo "
                              "--headless` for a demo without a terminal.")
    if os.environ.get("TERM", "") == "dumb":
        raise WasimError("a dumb terminal cannot draw the terminal UI", where="TERM=dumb",
                         hint="Use `wasim fire`, `wasim run` or `wasim demo --headless`, "
                              "or a terminal that sets TERM (xterm-256color).")


def _history(history_path: str, no_history: bool) -> Path | None:
    if no_history:
        return None
    from simulator.history import HistoryWriter

    # Checked now: an unwritable history is an error before the UI sends anything.
    HistoryWriter(Path(history_path)).check()
    return Path(history_path)


def _scenario(name: str | None, seed: int | None, allowed: tuple[str, ...] = ()) -> Any:
    """The named scenario, or the default one; a bad file is a WasimError (exit 2).

    Its Jinja reads only the environment variables `allowed` (--template-env).
    """
    from simulator.scenarios import load_scenario, template_env
    from simulator.tui.session import default_scenario

    if name is None:
        return default_scenario()
    return load_scenario(name, seed=seed, env=template_env(allowed))


def _run_app(app: Any) -> int:
    """Run a Textual app in this terminal; its exit code."""
    check_can_draw("wasim tui")
    app.run()
    return int(app.return_code or 0)


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


_TARGET_OPTIONS: list[Decorator] = [
    click.option("--url", envvar="WASIM_URL", metavar="URL", callback=check_not_empty,
                 help="Your webhook, e.g. http://127.0.0.1:8000/webhook.  [env: WASIM_URL]"),
    click.option("--app", "app_spec", metavar="[asgi:|wsgi:]MODULE:APP",
                 help="Call your ASGI or WSGI app in-process: no server, no port."),
    click.option("--path", "app_path", default="/", show_default=True,
                 help="The webhook's path inside --app."),
    click.option("--allow-remote", is_flag=True,
                 help="Allow a target that is not this machine."),
]
_COMMON_OPTIONS: list[Decorator] = [
    click.option("--seed", type=SEED,
                 help="Seed for the cast and every tap.  [default: the scenario's, else random]"),
    click.option("--history", "history_path", envvar="WASIM_HISTORY", type=FILE_PATH,
                 default=_HISTORY_DEFAULT, show_default=True,
                 help="JSON Lines file every attempt is appended to.  [env: WASIM_HISTORY]"),
    click.option("--no-history", is_flag=True, help="Record nothing."),
    TEMPLATE_ENV_OPTION,
]


# The run panel's wait for the app's last replies, as `wasim load --replies --reply-wait`.
_REPLY_WAIT = click.option(
    "--reply-wait", type=Number(0, MAX_WAIT, what="seconds"), default=10.0, show_default=True,
    help="After a run's last tap (s), seconds the run panel waits for the app's last replies "
         "through the send API, e.g. --reply-wait 30 for a slow bot; x stops the wait.")


def _options(options: list[Decorator]) -> Decorator:
    """Apply a shared list of click options, in order."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@click.command("tui")
@click.argument("scenario", required=False, metavar="[SCENARIO]", callback=check_paths)
@_options(_TARGET_OPTIONS)
@_options(_COMMON_OPTIONS)
@click.option("--speed", type=SPEED, default=10.0,
              show_default=True, help="The run dialog's default speed (s runs the scenario).")
@click.option("--identity", metavar="MODE[=SHARE],...",
              help="How the cast is identified: bsuid, phone or username, or shares such as "
                   "bsuid=90,username=10.  [default: the scenario's cast, else bsuid]")
@api_port_option("Also run the local Kaleyra send API (`wasim api`) on this port (0: any "
                 "free one): the app's replies show on the phone, their statuses go to the "
                 "target; KALEYRA_BASE_URL, KALEYRA_SID and KALEYRA_API_KEY are set for an "
                 "--app.")
@send_api_options
@click.option("--status-delays", metavar="D,D,D",
              help="With --api-port: world time before sent, delivered and read, e.g. "
                   "1s,2s,5s (the default, stamped; given, they are also waited in real time).")
@_REPLY_WAIT
@web_options
def tui(scenario: str | None, url: str | None, app_spec: str | None, app_path: str,
        allow_remote: bool, seed: int | None, history_path: str, no_history: bool,
        speed: float, identity: str | None, api_port: int | None = None,
        status_delays: str | None = None, template_env: tuple[str, ...] = (),
        web: bool = False, web_port: int | None = None, reply_wait: float = 10.0,
        **delivery: Any) -> int:
    """Open the terminal UI: a phone that taps the template's buttons.

    SCENARIO (a file, or a name from ./scenarios or the built-in library) gives the template,
    its buttons and the cast; without it, the built-in summer-sale. Press 1-9 to tap, ? for
    every key. The scenario's `target:` applies unless --url or --app is given; with neither,
    set the target inside with t. Auth, header, timeout and retry flags are `wasim fire`'s
    and replace the scenario's settings.
    """
    from dataclasses import replace

    from simulator.taps import IDENTITIES, parse_shares
    from simulator.tui.app import make_app
    from simulator.tui.feed import ApiFeed
    from simulator.world import parse_status_delays

    delays = parse_status_delays(status_delays) if status_delays else ()
    account = _account(delivery)
    loaded = _scenario(scenario, seed, template_env)
    if identity is not None:
        shares = parse_shares(identity, IDENTITIES, "--identity")
        loaded = replace(loaded, cast=replace(loaded.cast, identity=shares))
    if web:
        return _serve(f"wasim tui · {loaded.name}")
    feed = ApiFeed() if api_port is not None else None
    app = make_app(scenario=loaded, url=url, app=app_spec, path=app_path,
                   allow_remote=allow_remote, seed=seed,
                   history=_history(history_path, no_history), speed=speed,
                   settings=_given({"url": url, "app_spec": app_spec, "app_path": app_path,
                                    "allow_remote": allow_remote, **delivery}), api=feed,
                   reply_wait=reply_wait)
    if feed is None or api_port is None:
        return _run_app(app)
    check_can_draw("wasim tui")  # before a port is taken
    # Its statuses go where the taps go (the target's delivery settings, loopback guard).
    # --templates names the account's templates, the scenario's beside them; without it,
    # any template name is accepted, as before.
    with send_api(api_port, app.delivery, feed, "wasim tui", seed=loaded.seed,
                  status_delays=delays, speed=1.0 if delays else math.inf,
                  **{**account, "templates": (*loaded.template_names, *account["templates"])
                     if account["templates"] else None}):
        return _run_app(app)


def _account(options: dict[str, Any]) -> dict[str, Any]:
    """The send API's account flags (SEND_API_OPTIONS), taken out of `options`."""
    return {"sid": options.pop("api_sid", None), "api_key": options.pop("api_key", None),
            "templates": options.pop("api_templates", None) or (),
            "fail": options.pop("api_fail", ()), "v1_id": options.pop("api_v1_id", "bare")}


def _serve(title: str) -> int:
    """--web: this command, with its options, served to browsers (simulator.tui.web)."""
    from simulator.tui.web import serve

    return serve(click.get_current_context(), title)


def _given(delivery: dict[str, Any]) -> dict[str, Any]:
    """The delivery flags (`wasim fire`'s, added by simulator.cli) that were actually given."""
    if "timeout" not in delivery:
        return {}  # simulator.cli did not add them (the command used on its own)
    from simulator.settings import from_params  # below simulator.cli, which imports this module

    given = from_params(delivery)
    for target in ("url", "app", "path", "allow_remote"):  # this command's own, handled above
        given.pop(target, None)
    return given


@click.command("demo")
@click.argument("scenario", required=False, metavar="[SCENARIO]", callback=check_paths)
@click.option("--headless", is_flag=True,
              help="No terminal UI: run the scenario against the built-in receiver, print the "
                   "summary, exit 0 when everything was delivered and held.")
@click.option("--port", type=PORT, default=0, show_default=True,
              help="Port of the built-in receiver; 0 picks a free one.")
@_options(_COMMON_OPTIONS)
@click.option("--speed", type=SPEED, default=None,
              help="Timeline speed: the run dialog's default, or --headless's pace.  "
                   "[default: 10 in the UI, as fast as allowed headless]")
@api_port_option("Port of the local Kaleyra send API (`wasim api`) the demo bot replies "
                 "through; its statuses go to the built-in receiver.  [default: any free one]")
@send_api_options
@_REPLY_WAIT
@web_options
def demo(scenario: str | None, headless: bool, port: int, seed: int | None, history_path: str,
         no_history: bool, speed: float | None, api_port: int | None = None,
         template_env: tuple[str, ...] = (), web: bool = False, web_port: int | None = None,
         reply_wait: float = 10.0, **options: Any) -> int:
    """Start a built-in webhook and open the terminal UI aimed at it.

    Nothing to write first: tap a button (1-9) and watch the callback arrive, validated, in
    the receiver pane. --headless runs the scenario against it instead and prints the summary
    (for machines without a terminal, such as CI).
    """
    from simulator.receiver import Receiver, ReceiverOptions
    from simulator.tui.feed import ArrivalFeed

    if web and headless:
        raise WasimError("--web and --headless ask for opposite things", where="--web",
                         hint="Drop --headless to serve the UI to a browser, or --web to run "
                              "without a UI.")
    account = _account(options)
    loaded = _scenario(scenario, seed, template_env)
    history = _history(history_path, no_history)
    if web:
        return _serve(f"wasim demo · {loaded.name}")  # each browser tab runs its own demo
    if not headless:
        check_can_draw("wasim demo")
    from simulator.demo_bot import DemoBot

    feed = ArrivalFeed()
    bot = DemoBot(then=feed)  # answers each tap through the send API, then feeds the UI
    with Receiver(ReceiverOptions(port=port), on_arrival=bot) as receiver, \
            contextlib.ExitStack() as stack:
        stack.callback(bot.close)
        click.echo(f"wasim demo: built-in receiver listening on {receiver.url}", err=True)
        from simulator.delivery import delivery_options_from
        from simulator.demo_bot import TEMPLATES
        from simulator.tui.feed import ApiFeed

        # The demo always runs the send API: the bot answers through it, and the phone shows
        # what it recorded. It knows the scenario's templates and the bot's.
        api_feed = ApiFeed()
        webhook = delivery_options_from({"url": receiver.url}, lambda key: "--api-port")
        bot.api = stack.enter_context(send_api(
            0 if api_port is None else api_port, webhook, api_feed, "wasim demo",
            seed=loaded.seed, **{**account, "templates": (
                *loaded.template_names, *TEMPLATES, *account["templates"])}))
        if headless:
            return run_headless(loaded, receiver, seed=seed, history=history,
                                speed=math.inf if speed is None else speed, bot=bot)
        from simulator.tui.app import make_app

        app = make_app(scenario=loaded, url=receiver.url, seed=seed, history=history,
                       speed=10.0 if speed is None else speed, receiver=receiver,
                       arrivals=feed, api=api_feed, reply_wait=reply_wait)
        try:
            return _run_app(app)
        finally:
            bot.drain()  # it answers on its own thread: the last taps' replies, while the API runs
            if history is not None:  # the bot's replies, beside the taps (as --headless)
                from simulator.history import HistoryWriter

                with HistoryWriter(history) as writer:
                    for message in bot.replies:
                        writer.append_sent(message)


@contextlib.contextmanager
def send_api(port: int, webhook: Any, feed: Any, command: str, *,
             templates: Sequence[str] | None = None,
             seed: int | None = None, status_delays: Sequence[float] = (),
             speed: float = math.inf, sid: str | None = None, api_key: str | None = None,
             fail: Sequence[Any] = (), v1_id: str = "bare") -> Iterator[Any]:
    """The local send API (simulator.sendapi) while the block runs: its record fed to `feed`
    (an ApiFeed), its statuses sent to `webhook` (DeliveryOptions, or None: no statuses), and
    its base URL, SID and key in the environment (KALEYRA_*, as `MockApi.env()` names them)
    for an in-process app to read, restored afterwards. With `templates`, a template send
    naming none of them is treated as Kaleyra treats an unknown template."""
    from simulator.sendapi import MockApi, api_options, start_on_flag

    api = MockApi(api_options(port=port, templates=templates, status_delays=status_delays,
                              speed=speed, sid=sid, api_key=api_key, fail=fail, v1_id=v1_id),
                  webhook=webhook,
                  on_sent=feed, on_status=feed, seed=seed)
    start_on_flag(api, "--api-port")
    with api:
        feed.base_url, feed.sid, feed.api_key = api.base_url, api.options.sid, \
            api.options.api_key
        feed.mock = api  # scenario runs in the UI check the app's replies against it
        click.echo(f"{command}: send API on {api.base_url} (SID {api.options.sid}, api-key "
                   f"{api.options.api_key})", err=True)
        api.export_env()  # KALEYRA_* for an --app; put back when the block ends (stop)
        try:
            yield api
        finally:
            feed.mock = None


def run_headless(scenario: Any, receiver: Any, *, seed: int | None, history: Path | None,
                 speed: float, bot: Any = None) -> int:
    """Play `scenario` against the demo receiver through the runner; print the summary."""
    import asyncio

    from simulator.history import HistoryWriter
    from simulator.play import Play
    from simulator.runner import plan_scenario
    from simulator.world import new_run_id

    plan = plan_scenario(scenario, seed=seed, run=new_run_id())  # a new run: new traffic
    running = Play(plan, ({"url": receiver.url, "app": None}, lambda key: f"wasim demo ({key})"),
                   replies=bot.api if bot is not None else None)
    pace = "as fast as allowed" if math.isinf(speed) else f"at {speed:g}x"
    click.echo(f"wasim demo: running {plan.scenario.name} (seed {plan.seed}), "
               f"{len(plan.sends)} sends {pace}", err=True)
    writer = HistoryWriter(history) if history is not None else None
    summary = running.summary
    try:
        asyncio.run(running.run(speed=speed, on_attempt=writer.append if writer else None))
    finally:
        if bot is not None:
            bot.drain()  # it answers on its own thread: the last taps' replies, before counting
        if writer is not None:
            for message in bot.replies if bot is not None else ():
                writer.append_sent(message)  # the bot's replies, beside the taps
            writer.close()
    for line in summary.lines():
        click.echo(line)
    if bot is not None:
        from simulator.demo_bot import conversation_lines

        for line in conversation_lines(bot, plan):
            click.echo(line)
    arrivals = receiver.arrivals
    invalid = [a for a in arrivals if a.problems]
    click.echo(f"receiver: {len(arrivals)} callback(s), "
               + (f"{len(invalid)} invalid: #{invalid[0].number} {invalid[0].problems[0]}"
                  if invalid else "all valid"))
    bot_failed = bot is not None and bool(bot.errors)
    return ExitCode.OK if summary.ok and not invalid and not bot_failed else ExitCode.FAILED


def open_tui_or_help(ctx: click.Context) -> int:
    """Bare `wasim`: the terminal UI on a terminal, the help text anywhere else."""
    if not is_terminal() or os.environ.get("TERM", "") == "dumb":
        click.echo(ctx.get_help())
        return ExitCode.OK
    # make_context applies the command's defaults and environment (WASIM_URL) as if typed.
    with tui.make_context("wasim", [], parent=ctx) as sub:
        return int(tui.invoke(sub) or 0)
