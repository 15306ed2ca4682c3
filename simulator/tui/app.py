"""The Textual app: a phone in the terminal, with the preview, the delivery log and runs around it.

A thin face over the core: the session (simulator.tui.session) renders taps, the delivery code
sends them, the runner plays scenarios and the history records every attempt. The app only
shows state, starts workers for anything that waits, and turns results into rows and ticks.

One module (about 1,250 lines) because the app's actions and the workers they start share
its state; the scenario run (its worker and summary) is the next to leave, to the shared run
lifecycle, and the chat actions to a screen of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import httpx
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from simulator.delivery import (
    Attempt,
    Deliverer,
    DeliveryOptions,
    DeliveryResult,
    Event,
    Target,
)
from simulator.errors import WasimError
from simulator.history import DEFAULT_PATH, HistoryWriter
from simulator.kinds import KindArgs, summarize
from simulator.models import Button, User
from simulator.play import Play
from simulator.receiver import Receiver
from simulator.reply_tracking import DEFAULT_REPLY_WAIT, ReplyTracker, taps_of
from simulator.runner import Plan, SendResult, Summary
from simulator.scenarios import Scenario
from simulator.sendapi import SentMessage, StatusDelivery
from simulator.tapped import read_body, who_and_what
from simulator.terminal import visible
from simulator.tui.courier import Courier
from simulator.tui.earlier import earlier_deliveries
from simulator.tui.feed import ApiFeed, ApiRecord, ArrivalFeed
from simulator.tui.replies import LABEL_CHARS, is_list, shown
from simulator.tui.screens.compose import ACTIONS, RowScreen, SendScreen
from simulator.tui.screens.detail import DetailAction, DetailScreen
from simulator.tui.screens.dialogs import RunScreen, TargetScreen, speed_label
from simulator.tui.screens.edit import EditScreen
from simulator.tui.screens.help import MOUSE, HelpScreen, Section, binding_rows
from simulator.tui.screens.resend import ResendScreen
from simulator.tui.screens.scenarios import ScenarioChoice, ScenarioScreen
from simulator.tui.screens.users import UserChoice, UserScreen
from simulator.tui.session import (
    Clock,
    EditForm,
    PhoneSession,
    Reachability,
    SendRecord,
    business_label,
    clock_text,
    default_scenario,
    delivery_for,
    display_number,
    pick_seed,
    probe_target,
)
from simulator.tui.widgets.arrivals import ArrivalsPane
from simulator.tui.widgets.log import DeliveryLog, LogFilter, LogRow
from simulator.tui.widgets.phone import AppMessage, Composer, Phone, QuickReply, Tone
from simulator.tui.widgets.preview import Preview
from simulator.tui.widgets.run_panel import RunPanel
from simulator.tui.widgets.target_bar import TargetBar

# Which UI delivery an attempt belongs to. The Deliverer reports attempts through one
# callback; each delivery runs in its own task on the courier's loop, which sees its own value.
_SENDING: ContextVar[str] = ContextVar("wasim_sending")
# App actions a dialog on top keeps: quitting, the palette, and moving the focus in the dialog.
_ALWAYS = frozenset({"quit", "command_palette", "focus_next", "focus_previous"})
_RUN_VIA = {"tap": "run", "duplicate": "run dup", "redelivery": "run late"}
_PANEL_EVERY = 0.1  # seconds between redraws of the log and the totals during a run
_BY_HAND_KEPT = 10_000  # the phone's taps during a run whose replies the run's figures skip
# Below this the phone's buttons and the log's columns no longer fit: say so instead.
MIN_SIZE = (70, 20)
_KEEP_APP_MESSAGES = 200  # the app's messages kept on the phone; the oldest go first

_PHONE_KEYS: list[Binding] = [
    Binding("1", "fire(1)", "Fire", key_display="1-9",
            tooltip="Tap button N as the selected user: the template's quick replies, then "
                    "the app's buttons (the number shown on each, newest message first)"),
    *(Binding(str(n), f"fire({n})", "Fire", show=False,
              tooltip="Tap button N as the selected user") for n in range(2, 10)),
    Binding("u", "pick_user", "User", tooltip="Pick who taps: the cast, or a new user"),
    Binding("n", "new_user", "New user", show=False,
            tooltip="Switch to a newly generated user (the next tap is theirs)"),
    Binding("e", "edit", "Edit", tooltip="Edit name, number, refs and payloads before firing"),
    Binding("c", "type_text", "Type",
            tooltip="Type a text message in the phone's box (enter sends it, esc leaves)"),
    Binding("m", "send_menu", "Send",
            tooltip="The send menu: react, un-react, a location, an image, a list row, the "
                    "template's statuses"),
]
# r and d are left out of the footer (it is full at 80 columns): the log's border says them.
_LOG_KEYS: list[Binding] = [
    Binding("r", "replay", "Replay", show=False,
            tooltip="Replay the selected delivery (same bytes)"),
    Binding("d", "duplicate", "Dup", show=False,
            tooltip="Send the selected delivery again as a duplicate, as the platform does"),
    Binding("slash", "filter_log", "Filter", key_display="/",
            tooltip="Filter the log by user, button, status or via (earlier, tap, run…)"),
]
_RUN_KEYS: list[Binding] = [
    Binding("s", "run", "Run", tooltip="Run the whole scenario, with progress and a summary"),
    Binding("x", "stop_run", "Stop", tooltip="Stop the running scenario"),
]
_VIEW_KEYS: list[Binding] = [
    Binding("o", "open_scenario", "Open", tooltip="Open another scenario or callback template"),
    Binding("t", "target", "Target", show=False, tooltip="Change where callbacks go"),
    Binding("p", "toggle_preview", "Preview", show=False, tooltip="Show or hide the preview"),
    Binding("b", "toggle_bytes", "Bytes", show=False,
            tooltip="Preview indented, the raw wire tokens spaced out, or the exact bytes"),
    Binding("a", "toggle_arrivals", "Receiver", show=False,
            tooltip="Show or hide what the demo receiver got"),
]
_APP_KEYS: list[Binding] = [
    Binding("question_mark", "help", "Help", key_display="?", tooltip="This list of keys"),
    Binding("q", "quit", "Quit", tooltip="Quit wasim"),
]


@dataclass(frozen=True)
class TuiSettings:
    """What the app starts with, built once by the CLI (or a test) and passed down."""

    scenario: Scenario
    delivery: DeliveryOptions | None  # None: no target yet (the user can set one with t)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # target settings from flags
    seed: int | None = None  # None: the scenario's seed, or a fresh one
    history: Path | None = DEFAULT_PATH
    clock: Clock = time.time
    speed: float = 10.0  # the run dialog's default speed
    receiver: Receiver | None = None  # the built-in webhook of `wasim demo`
    arrivals: ArrivalFeed | None = None
    probe_every: float = 3.0  # seconds between reachability checks
    # --allow-remote: the person's permission, kept apart from settings a scenario could fill.
    allow_remote: bool = False
    block_warn_after: float = 1.0  # seconds an in-process handler may block before a warning
    api: ApiFeed | None = None  # the local send API's record: the app's messages, statuses
    client: httpx.AsyncClient | None = None  # the client seam (runner's): None sends for real
    # After a run's last tap: seconds to wait for the app's last replies (`load --reply-wait`).
    reply_wait: float = DEFAULT_REPLY_WAIT


class CourierCall(Message):
    """Run `callback` on the UI's loop: how the delivery thread hands results to the screen."""

    def __init__(self, callback: Callable[[], object]) -> None:
        super().__init__()
        self.callback = callback


def tui_flag(key: str) -> str:
    """The flag of a delivery setting given to `wasim tui`, for error messages."""
    from simulator.settings import flag_of

    return flag_of(key)


def _dialog_flag(key: str) -> str:
    """Where a setting typed in the target dialog came from: the dialog, not a flag."""
    return "the URL" if key == "url" else tui_flag(key)


def target_overrides(url: str | None = None, app: str | None = None,
                     path: str = "/") -> dict[str, Any]:
    """The target flags as delivery settings that replace the scenario's own `target:`."""
    overrides: dict[str, Any] = {}
    if url:
        overrides = {"url": url, "app": None}  # None wins over the scenario's app
    elif app:
        overrides = {"app": app, "path": path, "url": None}
    return overrides


def make_app(*, scenario: Scenario | None = None, url: str | None = None,
             app: str | None = None, path: str = "/", allow_remote: bool = False,
             seed: int | None = None, history: Path | None = DEFAULT_PATH,
             clock: Clock = time.time, speed: float = 10.0, receiver: Receiver | None = None,
             arrivals: ArrivalFeed | None = None, probe_every: float = 3.0,
             settings: Mapping[str, Any] | None = None,
             api: ApiFeed | None = None, client: httpx.AsyncClient | None = None,
             reply_wait: float = DEFAULT_REPLY_WAIT) -> WasimApp:
    """The app for the CLI and the tests; a bad target raises WasimError before anything runs.

    `settings` are other delivery settings from flags (headers, auth, timeout, retries...):
    like the target flags, they replace the scenario's own. `client` is the seam of every
    delivery (the runner's): None sends for real, a client on httpx.MockTransport answers.
    """
    scenario = scenario or default_scenario()
    overrides = {**(settings or {}), **target_overrides(url, app, path)}
    delivery = delivery_for(scenario, overrides, tui_flag, allow_remote=allow_remote)
    return WasimApp(TuiSettings(scenario, delivery, overrides, seed, history, clock, speed,
                                receiver, arrivals, probe_every, allow_remote, api=api,
                                client=client, reply_wait=reply_wait))


class WasimApp(App[int]):
    """A phone in the terminal: tap a template's quick replies and watch the webhook answer."""

    CSS_PATH = "app.tcss"
    TITLE = "wasim"
    BINDINGS: ClassVar[list[BindingType]] = [*_PHONE_KEYS, *_LOG_KEYS, *_RUN_KEYS,
                                             *_VIEW_KEYS, *_APP_KEYS]

    def __init__(self, settings: TuiSettings) -> None:
        super().__init__()
        self.settings = settings
        self.scenario = settings.scenario
        self.seed = pick_seed(settings.seed, settings.scenario)
        self.overrides = dict(settings.overrides)
        self.delivery = settings.delivery
        self.session: PhoneSession | None = None
        self.armed = 0
        self.sends: dict[str, SendRecord] = {}
        self.running = False
        self._by_hand: set[str] = set()  # message ids of the phone's own taps during a run
        self._keys = itertools.count(1)
        self._deliverer: Deliverer | None = None
        self._history = HistoryWriter(settings.history) if settings.history else None
        # Deliveries and runs happen on the courier's thread, so a handler that blocks its
        # loop cannot freeze the screen, and latency is not inflated by drawing it.
        self._courier = Courier(self._blocked_elsewhere, settings.block_warn_after)
        self._in_process = False  # an ASGI app is being called: a stall is its handler's
        self.app_messages: dict[int, SentMessage] = {}  # what the app sent, by its number
        self.template_status: dict[str, str] = {}  # the template's last status, per user
        self.template_reaction: dict[str, str] = {}  # the user's reaction to it, per user
        self._template_when = ""
        self._quitting = False  # q pressed once: waiting for deliveries in flight

    # --- layout -----------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """A toast whose text is drawn as written: never read as markup, whatever `markup` says.

        Notices quote what came from outside (a scenario's names, an app's reply, a target's
        answer, an error): "[/b]" there would raise while the toast is drawn, and
        "[@click=...]" would be an action. Every widget's and screen's notify comes here
        (passing Textual's default, markup=True), so this is the one place to say no; and
        their control characters are made visible (an ESC there would act on the terminal).
        """
        super().notify(visible(message, newlines=True), title=visible(title),
                       severity=severity, timeout=timeout, markup=False)

    def compose(self) -> ComposeResult:
        """Target bar; phone left; preview, run panel, log (and the receiver) right; keys."""
        yield Static(id="too-small")
        yield TargetBar(id="target-bar")
        with Horizontal(id="main"):
            yield Phone(id="phone")
            with Vertical(id="side"):
                yield Preview(id="preview")
                yield RunPanel(id="run")
                yield LogFilter(placeholder="filter: user, button, status (esc clears)",
                                id="log-filter", compact=True)
                yield DeliveryLog(id="log")
                if self.settings.arrivals is not None:
                    yield ArrivalsPane(self.settings.arrivals, id="arrivals")
        yield Footer(compact=True)

    @property
    def phone(self) -> Phone:
        """The phone pane."""
        return self.query_one(Phone)

    @property
    def log_table(self) -> DeliveryLog:
        """The delivery log."""
        return self.query_one(DeliveryLog)

    @property
    def bar(self) -> TargetBar:
        """The target bar."""
        return self.query_one(TargetBar)

    def on_resize(self, event: events.Resize) -> None:
        """Too small a window gets a message saying how big it must be, not a broken layout."""
        width, height = event.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        notice = self.query_one("#too-small", Static)
        notice.display = small
        notice.update(Content.assemble(
            ("wasim needs a bigger window\n\n", "bold"),
            f"Make it at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (it is {width}x{height} now).\n",
            ("q quits", "dim")))
        for widget in (self.bar, self.query_one("#main"), self.query_one(Footer)):
            widget.display = not small
        self._show_user()

    async def on_mount(self) -> None:
        """Draw what is known at once; load the cast, probe the target, tick the clock."""
        self._courier.start()
        # Keys 1-9 fire from anywhere; starting in the log makes arrows and enter browse it.
        self.log_table.focus()
        self.phone.border_title = "Phone"
        self.log_table.border_title = "Deliveries"
        self.log_table.border_subtitle = "enter opens · r replay · d duplicate"
        self.query_one(RunPanel).display = False
        self.query_one(LogFilter).display = False
        if self.settings.history is not None:
            self.load_earlier(self.settings.history)
        if self.settings.receiver is not None:
            self.query_one(ArrivalsPane).border_title = f"Receiver · {self.settings.receiver.url}"
        await self._show_scenario()
        self.phone.show_user(Content.styled("loading the cast…", "dim"))
        self.load_session(self.scenario, None)
        self._show_target()
        self.set_interval(self.settings.probe_every, self.probe)
        self.set_interval(1.0, self._tick)
        api = self.settings.api
        if api is not None:
            # The API's threads call this; the UI's loop shows it, in the order it came.
            api.listen(partial(self._to_ui, self._from_api))
            if api.base_url:  # the command printed it, but the screen now covers that
                self.phone.border_subtitle = f"send API {api.base_url.split('//', 1)[-1]}"
                # Short and brief: at 80x24 a toast covers the log and the receiver.
                if self.settings.receiver is not None:  # the demo: its own bot replies
                    text = f"The demo bot replies through {api.base_url}."
                else:
                    text = (f"Replies go to {api.base_url} (SID {api.sid}, api-key "
                            f"{api.api_key}): KALEYRA_BASE_URL, _SID, _API_KEY.")
                self.notify(text, title="Local send API", timeout=5)

    async def on_unmount(self) -> None:
        """Close the connection pool (on the courier's loop, which owns it) and the history."""
        if self.settings.api is not None:
            self.settings.api.listen(None)
        deliverer, self._deliverer = self._deliverer, None
        await asyncio.to_thread(self._courier.stop,
                                deliverer.aclose() if deliverer is not None else None)
        if self._history is not None:
            self._history.close()

    def on_courier_call(self, message: CourierCall) -> None:
        """Something the delivery thread reported: show it."""
        message.callback()

    def _to_ui(self, callback: Callable[..., object], *args: Any) -> None:
        """From another thread: run `callback(*args)` on the UI's loop, in order."""
        self.post_message(CourierCall(partial(callback, *args)))

    def _blocked_elsewhere(self, seconds: float) -> None:
        """The watchdog (its own thread): the courier's loop has not moved for `seconds`."""
        self._to_ui(self._blocked, seconds)

    def _blocked(self, seconds: float) -> None:
        if not self._in_process:
            return  # only an in-process app runs code of its own on that loop
        self.notify(f"The app's handler has blocked its event loop for {seconds:.1f} s: a "
                    "blocking call (time.sleep, requests, a sync database driver) inside an "
                    "`async def`? The UI goes on; deliveries to the app wait for it.",
                    title="Handler blocks its loop", severity="warning", timeout=10)

    # --- the log ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="earlier", exit_on_error=False)
    def load_earlier(self, path: Path) -> None:
        """Read the history's last deliveries (a file: off the UI thread) into the log."""
        records = earlier_deliveries(path)
        if records:
            self.call_from_thread(self._show_earlier, records)

    def _show_earlier(self, records: list[SendRecord]) -> None:
        for record in records:
            self.sends[record.key] = record
        self.log_table.add_deliveries([_row(record) for record in records], earlier=True)

    def action_filter_log(self) -> None:
        """Open the log's filter box."""
        box = self.query_one(LogFilter)
        box.display = True
        box.focus()

    @on(LogFilter.Changed, "#log-filter")
    def _filter_changed(self, event: LogFilter.Changed) -> None:
        self.log_table.set_filter(event.value)

    @on(LogFilter.Submitted, "#log-filter")
    @on(LogFilter.Closed)
    def _filter_done(self) -> None:
        box = self.query_one(LogFilter)
        box.display = bool(box.value.strip())
        self.log_table.focus()

    # --- the session ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="session", exit_on_error=False)
    def load_session(self, source: Scenario | Path, callback: str | None) -> None:
        """Load a scenario and plan its cast (file reads and CPU: off the UI thread)."""
        from simulator.scenarios import load_scenario

        try:
            scenario = source if isinstance(source, Scenario) else load_scenario(source)
            delivery = self.delivery if scenario is self.scenario else \
                delivery_for(scenario, self.overrides, tui_flag,
                             allow_remote=self.settings.allow_remote)
            seed = self.seed if scenario is self.scenario else \
                pick_seed(self.settings.seed, scenario)
            session = PhoneSession(scenario, seed, self.settings.clock, callback)
        except WasimError as exc:
            self.call_from_thread(self.notify, exc.one_line(), title="Cannot open the scenario",
                                  severity="error", timeout=10)
            return
        # mypy cannot pick the result type of an async callback here (None either way).
        self.call_from_thread(self._session_ready, session, delivery)  # type: ignore[arg-type]

    async def _session_ready(self, session: PhoneSession,
                             delivery: DeliveryOptions | None) -> None:
        changed = session.scenario is not self.scenario
        self.session, self.scenario, self.seed = session, session.scenario, session.seed
        mock = self.settings.api.mock if self.settings.api is not None else None
        if mock is not None:  # the send API's statuses carry this phone's business ids
            mock.world.add_business(session.business)
        self.armed = 0
        if changed:
            # Another brand and cast: their chats and the last run's panel belonged to the old.
            self.workers.cancel_group(self, "run")
            self.query_one(RunPanel).display = False
            await self.phone.clear_chats()
            self._set_delivery(delivery)
            await self._show_scenario()
        self.phone.show_header(business_label(session.scenario, session.business),
                               session.scenario.template.name)
        self._show_user()
        self.refresh_bindings()  # the footer's 1-N: this template's number of quick replies

    async def _show_scenario(self) -> None:
        spec = self.scenario.template
        self.phone.show_header("…", spec.name)
        self._template_when = clock_text(self.settings.clock())
        await self.phone.show_template(spec.body, self._template_when, spec.buttons)
        self.template_status.clear()
        self.template_reaction.clear()
        self.bar.scenario = visible(self.scenario.name)
        self.bar.seed = self.seed

    def _show_user(self) -> None:
        session = self.session
        if session is None:
            return
        user = session.current_user
        self.phone.show_chat(user.wa_id)
        number = display_number(user.wa_id, user.country)
        # The number on a line of its own when both do not fit: never broken in the middle.
        edited = "  ✎ edited" if session.edits != type(session.edits)() else ""
        room = max(0, self.phone.content_region.width - 2)  # the line's own padding
        apart = room and len(f"as {user.name} {number}{edited}") > room
        parts: list[str | tuple[str, str]] = [
            ("as ", "dim"), (visible(user.name), "bold"), "\n" if apart else " ",
            (visible(number), "dim")]
        if edited:
            parts.append((edited, "$text-warning"))
        self.phone.show_user(Content.assemble(*parts))
        self._show_template_meta()
        self._show_preview()

    def _show_template_meta(self) -> None:
        """The template bubble's ticks and reaction: the selected user's copy of it."""
        if self.session is None:
            return
        number = self.session.current_user.wa_id
        self.phone.show_template_meta(self._template_when, self.template_status.get(number, ""),
                                      self.template_reaction.get(number, ""))

    def _show_preview(self) -> None:
        session = self.session
        if session is None or not session.buttons:
            return
        index = min(self.armed, len(session.buttons) - 1)
        caption = visible(f"{session.buttons[index].text} · {session.current_user.name}")
        self.query_one(Preview).show(session.body(index), caption)

    def _tick(self) -> None:
        # The next tap's timestamp follows the clock, so the preview stays the exact bytes.
        if self.session is not None and self.session.restamp():
            self._show_preview()

    @on(QuickReply.Armed)
    def _armed(self, message: QuickReply.Armed) -> None:
        self.armed = message.index
        self._show_preview()

    # --- the target -------------------------------------------------------------------------

    def _show_target(self) -> None:
        bar = self.bar
        if self.delivery is None:
            bar.target, bar.reach = "", "no target"
            return
        bar.target, bar.method = self.delivery.target.label, self.delivery.method
        self.probe()

    def _set_delivery(self, delivery: DeliveryOptions | None) -> None:
        if delivery == self.delivery:
            return
        self.delivery = delivery
        if self._deliverer is not None:
            self._retire(self._deliverer)
            self._deliverer = None
        self._show_target()

    def _retire(self, deliverer: Deliverer) -> None:
        """Close a deliverer the app no longer uses (its connections, on the courier's loop)."""
        self._courier.submit(deliverer.aclose())

    def probe(self) -> None:
        """Check, in the background, whether the target accepts connections."""
        if self.delivery is not None:
            self._probe(self.delivery.target)

    @work(exclusive=True, group="probe", exit_on_error=False)
    async def _probe(self, target: Target) -> None:
        hosts = self.delivery.remote_hosts if self.delivery is not None else frozenset()
        reach = await probe_target(target, allow_remote=self.settings.allow_remote,
                                   remote_hosts=hosts)
        if self.delivery is not None and self.delivery.target == target:
            self._reach(reach)

    def _reach(self, reach: Reachability) -> None:
        bar = self.bar
        if reach == "unreachable" and bar.reach == "reachable":
            self.notify(f"Nothing accepts connections at {bar.target} any more.",
                        title="Target down", severity="warning")
        bar.reach = reach

    def _apply_target(self, url: str) -> str | None:
        url = url.strip()
        if url and "://" not in url:  # 127.0.0.1:8000/webhook, as people type it: local http
            url = f"http://{url}"
        overrides = {**self.overrides, **target_overrides(url=url)}
        try:
            delivery = delivery_for(self.scenario, overrides, _dialog_flag,
                                    allow_remote=self.settings.allow_remote)
        except WasimError as exc:  # the core's hints name the CLI's flag; here it is a box
            return exc.one_line().replace("For example --url ", "For example ")
        if delivery is None:
            return "Give a URL, e.g. http://127.0.0.1:8000/webhook."
        self.overrides = overrides
        self._set_delivery(delivery)
        return None

    def _no_target(self) -> None:
        self.notify("No target: press t and give your webhook's URL, or start `wasim demo`.",
                    title="Nowhere to send", severity="error")

    @on(TargetBar.Clicked)
    def action_target(self) -> None:
        """Ask where callbacks go."""
        current = self.delivery.target.url if self.delivery is not None and \
            self.delivery.target.kind == "url" else ""
        self.push_screen(TargetScreen(current, self._apply_target))

    # --- firing, replaying, duplicating -----------------------------------------------------

    @property
    def deliverer(self) -> Deliverer:
        """The one long-lived deliverer for taps by hand (its connections are reused)."""
        assert self.delivery is not None
        if self._deliverer is None:
            self._deliverer = Deliverer(self.delivery, on_attempt=self._attempted,
                                        clock=self.settings.clock, client=self.settings.client,
                                        on_send=self._tapped_by_hand)
        return self._deliverer

    def _tapped_by_hand(self, body: bytes) -> None:
        """A tap of the phone's own leaves (the courier's thread): during a run, the app's
        reply to it is no reply to the run's taps."""
        if self.running and len(self._by_hand) < _BY_HAND_KEPT:
            self._by_hand.update(tap_id for tap_id, _ in taps_of(body))

    def _answers_by_hand(self, message: SentMessage) -> bool:
        """Whether the app's message answers a tap of the phone's own (it names it)."""
        return bool(message.context_id) and message.context_id in self._by_hand

    def action_fire(self, number: int) -> None:
        """Tap quick reply `number` as the selected user."""
        session = self.session
        if session is None:
            self.notify("Still loading the scenario's cast; try again in a moment.",
                        severity="warning")
            return
        if number > len(session.buttons):
            button = self.phone.app_keys.get(number)
            if button is not None:  # one of the app's buttons, numbered after the template's
                self._app_tapped(Phone.AppTapped(button.number, button.index))
                return
            self.bell()
            self.notify(f"No button {number}: the template's quick replies are "
                        f"1-{len(session.buttons)}, the app's buttons show their number.",
                        severity="warning", timeout=4)
            return
        if self.delivery is None:
            self._no_target()
            return
        tap, event = session.fire(number - 1)
        record = self._record(event, "tap")
        self.phone.add_reply(record.key, tap.button.text, clock_text(record.when),
                             tap.user.wa_id)
        self.deliver(record)
        self._show_preview()

    @on(Phone.Tapped)
    def _tapped(self, message: Phone.Tapped) -> None:
        self.action_fire(message.index + 1)

    # --- the composer: every other kind the user sends, and the template's statuses ---------

    def _ready_to_send(self) -> bool:
        """Whether there is a session and a target; says what is missing if not."""
        if self.session is None:
            self.notify("Still loading the scenario's cast; try again in a moment.",
                        severity="warning")
            return False
        if self.delivery is None:
            self._no_target()
            return False
        return True

    def action_type_text(self) -> None:
        """Put the focus in the phone's message box."""
        self.query_one(Composer).focus()

    @on(Composer.Send)
    def _typed(self, message: Composer.Send) -> None:
        if self.send_kind("text", KindArgs(text=message.text)):
            self.query_one(Composer).value = ""  # kept when it could not go: nothing lost

    @on(Composer.Left)
    def _left_composer(self) -> None:
        self.log_table.focus()

    def action_send_menu(self) -> None:
        """Choose what else to send: a reaction, a location, an image, a list row, statuses."""
        if self.session is None:
            return
        self.push_screen(SendScreen(self.session.current_user.name), self._menu_chosen)

    def _menu_chosen(self, action: str | None) -> None:
        if action is not None:
            self.send_action(action)

    def send_action(self, action: str) -> None:
        """One of the composer's actions (simulator.tui.screens.compose.ACTIONS)."""
        if not self._ready_to_send():
            return
        box = self.query_one(Composer)
        typed = box.value.strip()
        if action.startswith("react:") or action == "unreact":
            self._react(action.partition(":")[2])
        elif action == "location":
            lat, lng = _lat_lng(typed)
            if typed and lat is None:
                self.notify(f"{typed!r} is not lat,lng (e.g. 12.97,77.59): a drawn place is sent.",
                            severity="warning")
            elif lat is not None:
                box.value = ""
            self.send_kind("location", KindArgs(lat=lat, lng=lng))
        elif action == "image":
            box.value = ""
            self.send_kind("image", KindArgs(caption=typed or None))
        elif action == "list":
            self._pick_row()
        elif action == "statuses":
            self.send_statuses(("sent", "delivered", "read"))
        elif action.startswith("status:"):
            self.send_statuses((action.partition(":")[2],))

    def send_kind(self, kind: str, args: KindArgs, message: SentMessage | None = None) -> bool:
        """The selected user sends a callback of `kind`: a bubble on the phone, a log row.
        False when it cannot be sent (no target yet)."""
        if not self._ready_to_send():
            return False
        assert self.session is not None
        tap, event = self.session.compose(kind, args, message)
        label = _label(event.body)
        record = self._record(event, "send", label=label)
        self.phone.add_reply(record.key, label, clock_text(record.when), tap.user.wa_id)
        self.deliver(record)
        self._show_preview()
        return True

    def _react(self, emoji: str) -> None:
        """React to the chat's newest message from the brand (the app's, else the template)."""
        assert self.session is not None
        bubble = self.phone.last_app_message()
        if bubble is not None:
            bubble.show_meta(reaction=emoji)
            self.send_kind("reaction", KindArgs(emoji=emoji), bubble.message)
            return
        self.template_reaction[self.session.current_user.wa_id] = emoji
        self._show_template_meta()
        self.send_kind("reaction", KindArgs(emoji=emoji))

    def _pick_row(self) -> None:
        """A row of the app's last list message in this chat, else a drawn one."""
        lists = [b.message for b in self.phone.query(".app-message")
                 if isinstance(b, AppMessage) and b.chat == self.phone.chat
                 and is_list(b.message) and not b.message.error]
        if not lists:
            self.notify("The app has sent this user no list: a drawn row is sent, as "
                        "`wasim render --kind list_reply` draws it.", severity="information")
            self.send_kind("list_reply", KindArgs())
            return
        self._choose_row(lists[-1])

    def _choose_row(self, message: SentMessage) -> None:
        def then(index: int | None) -> None:
            """Tap the row picked, if one was."""
            if index is not None:
                self.reply_to_app(message, message.buttons[index])

        self.push_screen(RowScreen(message.text, message.buttons), then)

    def send_statuses(self, statuses: tuple[str, ...]) -> None:
        """Status callbacks of the user's template message, in order; its ticks follow."""
        if not self._ready_to_send():
            return
        assert self.session is not None
        number = self.session.current_user.wa_id
        records = []
        for status in statuses:
            _, event = self.session.compose("status", KindArgs(status=status))
            records.append(self._record(event, "status", label=_label(event.body)))
            self.template_status[number] = status
        self._show_template_meta()
        self.deliver_in_order(records)
        self._show_preview()

    # --- the app's own messages, from the local send API ------------------------------------

    def _from_api(self, item: ApiRecord) -> None:
        """Something the send API recorded (on its threads, handed over in order)."""
        if not self.query(Phone):
            return  # the app is closing: a late status has no phone left to show on
        if isinstance(item, SentMessage):
            self._app_sent(item)
        else:
            self._app_status(item)

    def _app_sent(self, message: SentMessage) -> None:
        self.app_messages[message.number] = message
        while len(self.app_messages) > _KEEP_APP_MESSAGES:
            del self.app_messages[next(iter(self.app_messages))]
        self.phone.add_app_message(message, clock_text(message.received_at),
                                   keep=_KEEP_APP_MESSAGES)
        if message.to != self.phone.chat:
            user = self.session.find_user(message.to) if self.session else None
            who = user.name if user is not None else f"+{message.to}"
            fails = f" that fails {message.error}" if message.error else ""
            self.notify(f"The app sent {who} a {message.type} message{fails} (u switches "
                        "user).", title="Reply in another chat")

    def _app_status(self, delivery: StatusDelivery) -> None:
        bubble = self.phone.app_message(delivery.message.number)
        if bubble is not None:
            bubble.show_meta(status=delivery.status)
        if delivery.result is None or not delivery.result.attempts:
            return
        attempts = delivery.result.attempts
        record = SendRecord(f"d{next(self._keys)}", attempts[0].event, "api",
                            attempts[0].started_at, None, list(attempts),
                            label=_label(attempts[0].event.body) or delivery.status)
        self.sends[record.key] = record
        self.log_table.add_deliveries([_row(record)])
        # The history has one writer, on the courier's thread (gone once the app is closing).
        for attempt in attempts:
            with contextlib.suppress(RuntimeError):
                self._courier.loop.call_soon_threadsafe(self._write_history, attempt)

    @on(Phone.AppTapped)
    def _app_tapped(self, tapped: Phone.AppTapped) -> None:
        message = self.app_messages.get(tapped.number)
        if message is None:
            return
        if tapped.index < 0:
            self._choose_row(message)
        elif tapped.index < len(message.buttons):
            self.reply_to_app(message, message.buttons[tapped.index])

    def reply_to_app(self, message: SentMessage, button: Button) -> None:
        """Tap `button` of the app's `message`: the callback carries its wamid and its id."""
        if not self._ready_to_send():
            return
        assert self.session is not None
        tap, event = self.session.reply(message, button)
        label = shown(button.text, LABEL_CHARS)
        record = self._record(event, "tap", label=label)
        self.phone.add_reply(record.key, label, clock_text(record.when), tap.user.wa_id)
        self.deliver(record)

    def _record(self, event: Any, via: str, replay_of: str | None = None,
                label: str = "") -> SendRecord:
        record = SendRecord(f"d{next(self._keys)}", event, via, self.settings.clock(), replay_of,
                            label=label)
        self.sends[record.key] = record
        self.log_table.add_deliveries([_row(record)])
        return record

    @work(group="deliveries", exit_on_error=False)
    async def deliver(self, record: SendRecord) -> None:
        """Send one event (with its retries) on the courier's loop and show how it went."""
        deliverer = self.deliverer
        self._in_process = self._in_process or deliverer.options.target.kind == "asgi"
        result = await self._courier.run(_send(deliverer, record))
        self._delivered(record, result)

    @work(group="deliveries", exit_on_error=False)
    async def deliver_in_order(self, records: list[SendRecord]) -> None:
        """Send events one after the other (a status sequence keeps its order on the wire)."""
        deliverer = self.deliverer
        for record in records:
            result = await self._courier.run(_send(deliverer, record))
            self._delivered(record, result)

    def _attempted(self, attempt: Attempt) -> None:
        """An attempt ended (on the courier's thread): record it, then show it on the UI's."""
        self._write_history(attempt)
        self._to_ui(self._show_attempt, _SENDING.get(""), attempt)

    def _show_attempt(self, key: str, attempt: Attempt) -> None:
        record = self.sends.get(key)
        if record is None or any(a.delivery_id == attempt.delivery_id and
                                 a.number == attempt.number for a in record.attempts):
            return  # shown already: the result can overtake the attempt's own message
        record.attempts.append(attempt)
        self.log_table.show_attempt(record.key, attempt, len(record.attempts) - 1)
        if not attempt.final:
            what = str(attempt.status) if attempt.status is not None else "no answer"
            self.phone.settle(record.key, f"↻ {what}, retrying", "retry")

    def _delivered(self, record: SendRecord, result: DeliveryResult) -> None:
        for attempt in result.attempts:
            self._show_attempt(record.key, attempt)
        last = result.attempts[-1]
        status, tone = _verdict(last)
        self.phone.settle(record.key, status, tone)  # nothing, if it has no bubble
        if last.outcome == "unreachable":
            self._reach("unreachable")
        elif last.status is not None and self.bar.reach == "unreachable":
            self._reach("reachable")
        if not result.delivered:
            why = last.error or f"the handler answered {last.status}"
            who, what = who_and_what(record.event.body)
            self.notify(f"{record.event.button or what or 'callback'} "
                        f"{'by' if record.event.name else 'to'} {record.event.name or who}: "
                        f"{why}", title="Not delivered", severity="error")

    def _write_history(self, attempt: Attempt) -> None:
        """Append an attempt to the history (on the courier's thread, its only writer)."""
        if self._history is None:
            return
        try:
            self._history.append(attempt)
        except WasimError as exc:
            self._history = None  # say it once, then keep going without a history
            self._to_ui(partial(self.notify, exc.one_line(), title="History off",
                                severity="warning", timeout=10))
        except OSError as exc:
            self._history = None
            self._to_ui(partial(self.notify,
                                f"cannot write the history ({exc.strerror}); recording stopped.",
                                title="History off", severity="warning", timeout=10))

    def _again(self, via: DetailAction, key: str | None = None) -> None:
        key = key or self.log_table.selected_key
        record = self.sends.get(key) if key else None
        if record is None:
            self.notify("Nothing in the log yet: fire a tap first (1-9).", severity="warning")
            return
        if self.delivery is None:
            self._no_target()
            return
        if via == "replay" and record.delivery_id is None:
            self.notify("That delivery is still in flight; replay it once it ends.",
                        severity="warning")
            return
        again = self._record(record.event, via,
                             replay_of=record.delivery_id if via == "replay" else None)
        again.source = record.delivery_id  # the history marks a duplicate as it marks a replay
        self.deliver(again)

    def edit_and_resend(self, key: str | None = None) -> None:
        """Open delivery `key`'s bytes in the editor; send what comes back as an edit of it."""
        key = key or self.log_table.selected_key
        record = self.sends.get(key) if key else None
        if record is None:
            self.notify("Nothing in the log yet: fire a tap first (1-9).", severity="warning")
            return

        def then(body: bytes | None) -> None:
            """Send the edit, recorded as an edit of the original delivery."""
            if body is None or self.delivery is None:
                if body is not None:
                    self._no_target()
                return
            edited = self._record(Event.from_body(body, record.event.seed), "edit",
                                  label=record.label)
            edited.source = record.delivery_id
            self.deliver(edited)

        title = record.label or record.event.button or "callback"
        self.push_screen(ResendScreen(record.event.body, title), then)

    def action_replay(self) -> None:
        """Replay the selected delivery: the same bytes, recorded as a replay of it."""
        self._again("replay")

    def action_duplicate(self) -> None:
        """Send the selected delivery's bytes again, as a platform duplicate would."""
        self._again("duplicate")

    @on(DeliveryLog.Opened)
    def _open_delivery(self, message: DeliveryLog.Opened) -> None:
        record = self.sends.get(message.key)
        if record is None:
            return
        key = message.key

        def then(action: DetailAction | None) -> None:
            """Replay, duplicate or edit, if the detail view was closed that way."""
            if action == "edit":
                self.edit_and_resend(key)
            elif action is not None:
                self._again(action, key)

        self.push_screen(DetailScreen(record, clock_text), then)

    # --- users and edits --------------------------------------------------------------------

    def action_pick_user(self) -> None:
        """Choose who taps."""
        if self.session is None:
            return
        self.push_screen(UserScreen(self.session.users, self.session.user), self._picked_user)

    def _picked_user(self, choice: UserChoice | None) -> None:
        session = self.session
        if choice is None or session is None:
            return
        if isinstance(choice, User):
            session.select(choice)
        else:
            session.new_user(choice)
        self._show_user()

    def action_new_user(self) -> None:
        """Tap as a newly generated user."""
        if self.session is not None:
            self.session.new_user()
            self._show_user()

    def action_edit(self) -> None:
        """Edit the next tap's fields."""
        session = self.session
        if session is None:
            return
        labels = [b.text for b in session.scenario.template.buttons]
        self.push_screen(EditScreen(session.form(), labels, self._apply_edits,
                                    session.reset_edits), lambda _: self._show_user())

    def _apply_edits(self, form: EditForm) -> str | None:
        assert self.session is not None
        try:
            self.session.edit(form)
        except WasimError as exc:
            return exc.one_line()
        return None

    # --- scenarios --------------------------------------------------------------------------

    def action_open_scenario(self) -> None:
        """Browse scenarios and callback templates."""
        callback = self.session.callback if self.session else self.scenario.template.callback
        self.push_screen(ScenarioScreen(self.scenario.path, callback), self._chosen)

    def _chosen(self, choice: ScenarioChoice | None) -> None:
        if choice is None:
            return
        if choice.path is not None:
            self.load_session(choice.path, None)
        elif choice.callback is not None:
            self.load_session(self.scenario, choice.callback)

    def action_run(self) -> None:
        """Run the whole scenario, after choosing the speed."""
        if self.session is None:
            self.notify("Still loading the scenario.", severity="warning")
            return
        if self.running:
            self.notify("A run is already going; x stops it.", severity="warning")
            return
        plan = self.session.plan

        def then(speed: float | None) -> None:
            """Start the run at the chosen speed, unless the dialog was cancelled."""
            if speed is not None:
                self.run_scenario(plan, speed)

        self.push_screen(RunScreen(plan, self.settings.speed), then)

    def action_stop_run(self) -> None:
        """Stop the running scenario; what was sent stays in the log."""
        self.workers.cancel_group(self, "run")

    @work(exclusive=True, group="run", exit_on_error=False)
    async def run_scenario(self, plan: Plan, speed: float) -> None:
        """Play the plan through the runner, a row per send, the panel kept up to date."""
        try:
            # The send API the phone shows is the one the reply expectations read.
            replies = self.settings.api.mock if self.settings.api is not None else None
            # The lifecycle is simulator.play's; the app draws rows and the panel.
            running = Play(plan, (self.overrides, tui_flag),
                           allow_remote=self.settings.allow_remote, client=self.settings.client,
                           replies=replies,
                           api_hint="`wasim tui --api-port 0` (`wasim demo` always runs one)")
        except WasimError as exc:
            self.notify(exc.one_line(), title="Cannot run", severity="error", timeout=10)
            return
        panel = self.query_one(RunPanel)
        # With a send API beside the run, each of this run's taps is matched to the app's
        # reply (simulator.reply_tracking, as `wasim load --replies` does): only from the
        # run's first tap to its end, so the phone's own taps and replies stay out of it.
        feed = self.settings.api
        tracker = ReplyTracker() if feed is not None and replies is not None else None
        panel.start(plan.scenario.name, len(plan.sends), speed_label(speed), tracker)
        delivery, summary = running.delivery, running.summary  # counted as each send ends
        # Filled on the courier's thread, drained on the UI's (deque appends are thread-safe).
        finished: deque[SendResult] = deque()
        self._in_process = self._in_process or any(
            delivery(send).target.kind == "asgi" for send in plan.sends[:1])

        async def play() -> None:
            """The run itself, on the courier's loop."""
            await running.run(speed=speed, on_attempt=self._write_history,
                              on_result=finished.append,
                              on_send=tracker.tap if tracker is not None else None)
        # Rows and totals are drawn in batches: a thousand table updates one by one would
        # keep the screen busy long after the sends themselves are done.
        timer = self.set_interval(_PANEL_EVERY, lambda: self._show_run(finished, summary))
        self.running = True
        self.refresh_bindings()
        cancelled = False
        if feed is not None and tracker is not None:
            self._by_hand.clear()
            feed.track(tracker, ignore=self._answers_by_hand)
        try:
            await self._courier.run(play())
            if tracker is not None:
                await self._last_replies(tracker, panel)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if feed is not None and tracker is not None:
                feed.track(None)  # the run is over: later messages are the phone's
            timer.stop()
            self._show_run(finished, summary)
            panel.finish(summary, cancelled=cancelled)
            self.running = False
            self.refresh_bindings()
        self.notify("\n".join(summary.lines()[:2]), title="Run finished",
                    severity="information" if summary.ok else "warning", timeout=8)

    async def _last_replies(self, tracker: ReplyTracker, panel: RunPanel) -> None:
        """After the last tap: wait (up to settings.reply_wait, x stops it) until every tap
        has its reply, as `load --replies` does."""
        wait = self.settings.reply_wait
        if tracker.missing and wait > 0:
            panel.waiting(wait)
            deadline = time.monotonic() + wait
            while tracker.missing and time.monotonic() < deadline:
                await asyncio.sleep(_PANEL_EVERY)  # the panel's timer redraws meanwhile

    def _show_run(self, finished: deque[SendResult], summary: Summary) -> None:
        """Add the sends that ended since the last call to the log; redraw the totals."""
        rows = []
        while finished:
            outcome = finished.popleft()
            planned, result = outcome.planned, outcome.result
            via = _RUN_VIA.get(planned.kind, f"run {planned.kind}")
            record = SendRecord(f"d{next(self._keys)}", planned.event, via,
                                result.attempts[0].started_at, None, list(result.attempts),
                                outcome.failures)
            self.sends[record.key] = record
            rows.append(_row(record))
        self.log_table.add_deliveries(rows)
        self.query_one(RunPanel).show(summary)

    # --- views ------------------------------------------------------------------------------

    def action_toggle_preview(self) -> None:
        """Show or hide the preview (more room for the log)."""
        preview = self.query_one(Preview)
        preview.display = not preview.display

    def action_toggle_bytes(self) -> None:
        """Preview indented, then the wire's own tokens laid out, then the exact bytes."""
        self.query_one(Preview).next_view()

    def action_toggle_arrivals(self) -> None:
        """Show or hide the demo receiver's pane."""
        for pane in self.query(ArrivalsPane):
            pane.display = not pane.display

    @on(ArrivalsPane.Received)
    def _arrived(self, message: ArrivalsPane.Received) -> None:
        arrival = message.arrival
        if arrival.problems:
            self.notify(f"#{arrival.number}: {arrival.problems[0]}",
                        title="The receiver got an invalid callback", severity="warning")

    def get_key_display(self, binding: Binding) -> str:
        """The footer's number keys say which tap something now: the template's quick
        replies, then the app's buttons (`1-5` under two of the app's)."""
        if binding.action == "fire(1)" and self.session is not None:
            shown = list(self.query(Phone).results(Phone))
            last = min(9, len(self.session.buttons) + (len(shown[0].app_keys) if shown else 0))
            if last:
                return "1" if last == 1 else f"1-{last}"
        return super().get_key_display(binding)

    async def action_quit(self) -> None:
        """Quit, once the deliveries in flight have ended and are in the history: the handler
        has them, so the record must too. A second q quits at once."""
        busy = [w for w in self.workers if w.group == "deliveries" and not w.is_finished]
        if not busy or self._quitting:
            self.exit()
            return
        self._quitting = True
        many = f"{len(busy)} deliveries" if len(busy) > 1 else "a delivery"
        self.notify(f"Waiting for {many} in flight to end, to record it (q again quits now).",
                    title="Quitting", timeout=30)
        self._quit_when_done(busy)

    @work(group="quitting", exit_on_error=False)
    async def _quit_when_done(self, busy: list[Worker[Any]]) -> None:
        for worker in busy:
            with contextlib.suppress(WorkerFailed, WorkerCancelled):
                await worker.wait()
        self.exit()

    def help_sections(self) -> list[Section]:
        """Every key, grouped, for the help screen."""
        return [
            ("Phone", binding_rows(_PHONE_KEYS)),
            ("The phone's box (c) and the send menu (m)", [
                ("enter", "in the box: send the text as the selected user"),
                ("esc", "leave the box"),
                ("m", "react or un-react to the last message, send a location (type lat,lng "
                      "first) or an image (type a caption first), pick a list row, send the "
                      "template's statuses (its ticks follow: ✓ ✓✓ blue ✓✓ ✗ ⊘)"),
                ("4-9", "tap a button of a message the app sent: the number on it, "
                        "newest message first (--api-port)"),
            ]),
            ("Delivery log", [("↑ ↓", "choose a delivery"),
                              ("enter", "open it: headers, body, response"),
                              ("↻N ⚠", "after a status: N retries; a broken expectation"),
                              ("↺ ⧉ ✎", "before a button (narrow log): a replay, a duplicate, "
                                        "an edit"),
                              *binding_rows(_LOG_KEYS)]),
            ("Scenario run", binding_rows(_RUN_KEYS)),
            ("View", binding_rows(_VIEW_KEYS)),
            ("App", [*binding_rows(_APP_KEYS), ("^p", "command palette: every action by name"),
                     ("tab", "move the focus")]),
            ("Delivery detail", binding_rows(DetailScreen.BINDINGS)),
            ("Edit and resend (e in the detail)", binding_rows(ResendScreen.BINDINGS)),
            MOUSE,
        ]

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen(self.help_sections()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that do nothing right now; a dialog on top keeps the phone's keys."""
        if isinstance(self.screen, ModalScreen) and action not in _ALWAYS:
            return False
        return self._available(action)

    def _available(self, action: str) -> bool:
        if action == "stop_run":
            return self.running
        if action == "toggle_arrivals":
            return self.settings.arrivals is not None
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: every action by name, and each quick reply."""
        yield from super().get_system_commands(screen)
        if self.session is not None:
            user = self.session.current_user.name
            for number, button in enumerate(self.session.buttons, start=1):
                yield SystemCommand(f"Fire: {button.text}", f"Tap {button.text!r} as {user}",
                                    partial(self.action_fire, number))
        # Every key's action by its tooltip, judged as if no dialog were open: the palette
        # itself is a modal screen, and hiding everything behind it hid most actions.
        for binding in [*_PHONE_KEYS[9:], *_LOG_KEYS, *_RUN_KEYS, *_VIEW_KEYS]:
            if self._available(binding.action) and binding.tooltip:
                yield SystemCommand(f"{_verb(binding)}: {binding.tooltip}",
                                    f"key {binding.key_display or binding.key}",
                                    getattr(self, f"action_{binding.action}"))
        for action, label in ACTIONS:
            yield SystemCommand(f"Send: {label}", "also in the send menu (m)",
                                partial(self.send_action, action))
        yield SystemCommand("Help: every key", "key ?", self.action_help)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that broke is a bug to show, never a crash."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{event.worker.name}: {type(error).__name__}: {error}",
                        title="Something went wrong", severity="error", timeout=15)


async def _send(deliverer: Deliverer, record: SendRecord) -> DeliveryResult:
    """One delivery, on the courier's loop; its attempts are reported as `record`'s."""
    _SENDING.set(record.key)
    if record.via == "duplicate":
        return await deliverer.deliver(record.event, duplicate_of=record.source)
    if record.via == "edit":
        return await deliverer.deliver(record.event, edit_of=record.source)
    return await deliverer.deliver(record.event, replay_of=record.replay_of)


def _verb(binding: Binding) -> str:
    """A palette entry's name: the key's footer label, so typing `run` or `replay` finds it."""
    return binding.description or binding.action.replace("_", " ").capitalize()


def _row(record: SendRecord) -> LogRow:
    """The log row of a delivery."""
    event = record.event
    who = event.name or (display_number(event.user) if event.user else "")
    if not who and record.via in ("status", "api"):  # a status names its recipient only
        recipient = read_body(event.body).recipient
        who = display_number(recipient) if recipient else ""
    last = record.attempts[-1] if record.attempts else None
    return LogRow(record.key, clock_text(record.when), who or "?",
                  record.label or event.button or "?", record.via, last,
                  max(0, len(record.attempts) - 1), bool(record.failures))


def _label(body: bytes) -> str:
    """How the phone shows a callback (its kind's summary); blank if the body is not JSON."""
    try:
        return summarize(json.loads(body))
    except (ValueError, RecursionError):  # a V1 status is a GET: its "body" is the URL
        return ""


def _lat_lng(text: str) -> tuple[float | None, float | None]:
    """`12.97,77.59` typed in the box as a latitude and longitude; (None, None) if it is not."""
    lat, comma, lng = text.partition(",")
    try:
        latitude, longitude = float(lat), float(lng)
    except ValueError:
        return None, None
    if not comma or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None, None
    return latitude, longitude


def _verdict(attempt: Attempt) -> tuple[str, Tone]:
    """The phone's status for a finished delivery: ✓✓ 200, ✗ 500, ✗ refused."""
    if attempt.delivered:
        return f"✓✓ {attempt.status}", "ok"
    if attempt.status is not None:
        return f"✗ {attempt.status}", "bad"
    return {"connect": "✗ refused", "timeout": "✗ timeout", "auth": "✗ auth failed"}.get(
        attempt.error_kind or "", "✗ error"), "bad"

