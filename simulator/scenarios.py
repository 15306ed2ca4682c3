"""Scenario files: load, render (Jinja), parse (YAML) and validate into a Scenario model.

One module (about 1,370 lines): the model, the reader and the validation of every field
walk the same document with the same located errors (`_Fields`); the model (the frozen
dataclasses) is the next to split off, so that the runner and records import only it.

A scenario says who taps what, when, how often, with what chaos, and what the handler must
answer. Every problem becomes one WasimError naming the file, the line and the field.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.exceptions import SecurityError

from simulator.delivery import parse_success
from simulator.errors import WasimError, did_you_mean, named
from simulator.models import Button
from simulator.resources import builtin_dir
from simulator.scenario_format import (
    DEFAULT_REPLY_WITHIN,
    DURATION_PATTERN,
    MAX_DURATION,
    MAX_FILE_BYTES,
    MAX_NUMBER,
    MAX_REPLIES,
    MAX_SEED,
    REPLY_TYPES,
    VERIFY_EXPECT,
    keys,
)
from simulator.scenario_format import MAX_SENDS_PER_PLAN as MAX_SENDS_PER_PLAN
from simulator.scenario_format import key as declared_key

SUFFIXES = (".yaml", ".yml")

# What `wasim new NAME` writes: the complete, annotated example of the README (every section),
# NAME replaced. It must load and pass `wasim run --dry-run` (tests/test_scenarios.py checks).
# STARTER_HEAD is written above it: the place for a first line such as an editor's
# `# yaml-language-server: $schema=...` (empty until one is added).
STARTER_HEAD = ""
STARTER = """\
# yaml-language-server: $schema=../wasim-schema.json
# NAME: what this scenario exercises, in one line (shown by `wasim scenarios`).
# Every section is here, annotated: delete what you do not need. The file is Jinja first
# (`fake` is a seeded Faker, `env` the environment variables you allow with
# --template-env NAME), then YAML: a WhatsApp placeholder is written {{ "{{1}}" }}.
# The first line lets editors check it: `wasim schema > wasim-schema.json` in the folder above.
name: NAME
description: A template goes to 20 shoppers; most tap Shop now, some opt out.
seed: 1                       # same seed, same bytes, same order

business:                     # optional; anything left out is generated
  name: Solemate Shoes        # the brand as the terminal UI's phone shows it (not on the wire)
  display_phone_number: "918068177179"
  phone_number_id: "104605889412733"
  waba_id: "347012345678969"
  country: IN

template:
  name: summer_sale_2026      # the template the brand sent
  body: "Hi! Our summer sale is live: 40% off until Sunday."   # shown in the TUI's phone
  buttons:                    # quick replies; payload defaults to the text (as Meta sends it)
    - {text: Shop now, payload: SHOP_NOW}
    - {text: Stop promotions, payload: STOP}
  ref1: summer sale campaign  # ref, ref1, ref2: echoed in extra_info
  callback: button_tap        # a built-in template (default), or a file next to this one

templates: [catalogue]        # other templates your app may send through the send API
                              # (one it does not name fails 132001, as Meta's would)
messages: [offer, reminder]   # the brand's messages each user got, each with its own wamid;
                              # a step answers the first unless it names one (`message:`)

cast:
  countries: {IN: 15, US: 5}  # generated users by country
  users:                      # and/or listed users
    - {wa_id: "919845012345", name: Asha Menon}
  platform: android           # android, ios, web or mix (default): the shape of message ids
  identity: {bsuid: 90, username: 10}  # bsuid (default), phone, username: by share
  enterprise: 0.05            # share of users with an enterprise parent_user_id
  quirks: {mx521: 0.5}        # number quirks (mx521, br8), each for a share of the users

steps:                        # run one after the other
  - name: first wave
    who: all                  # all, a number (20), a share ("60%"), or listed users [Asha Menon]
    choices: {Shop now: 70, Stop promotions: 10}   # weighted buttons (or `tap: Shop now`)
    no_tap: 20                # weight of users who tap nothing
    spread: 2m                # taps at random moments over two minutes (ms, s, m, h)
    concurrency: 4            # deliveries in flight at once (default 1)
  - name: Asha taps again
    who: [Asha Menon]
    tap: Stop promotions
    after: 30s                # wait after the previous step
    repeat: 2                 # each chosen user taps this many times
    message: reminder         # the brand's message she answers (context.id is its wamid)
    duplicate: true           # deliver every tap of this step twice (or: concurrently)
    target: {url: "http://127.0.0.1:9000/optout"}   # this step goes elsewhere
    expect: {status: [200, 202]}                     # and may expect something else

chaos:
  duplicate: 0.05             # share of taps delivered twice, same bytes
  duplicate_concurrently: false
  shuffle: 5                  # shuffle delivery order within windows of 5 sends
  redeliver: 0.02             # share of taps delivered again later...
  redeliver_after: 30s        # ...this long after

expect:                       # checked on every delivery's final answer
  status: [200]               # codes, ranges (200-299) or classes (2xx)
  max_latency: 500ms
  body_contains: ok
  json: {"$.status": "ok"}    # JSON path in the response body: expected value

target:                       # any delivery option of `wasim fire`
  url: "{{ env.WEBHOOK_URL | default('http://127.0.0.1:8000/webhook') }}"
  headers: {X-Brand: acme}
  retries: 2
  timeout: 5
"""
_SEED_LINE = re.compile(r"^seed:\s*(\d+)\s*(?:#.*)?$", re.M)
_DURATION = re.compile(DURATION_PATTERN)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_MAX_NODES = 200_000  # a scenario is small; more nodes than this is an alias bomb or a mistake
_MAX_DEPTH = 50
# The bounds on what a file may ask for (MAX_*) are declared with the format, in
# simulator.scenario_format.


@dataclass(frozen=True)
class BusinessSpec:
    """The brand's number; any field left out is generated from the seed."""

    display_phone_number: str | None = None
    phone_number_id: str | None = None
    waba_id: str | None = None
    country: str = "IN"
    name: str | None = None  # the brand's display name, as the phone shows it (not on the wire)


@dataclass(frozen=True)
class TemplateSpec:
    """The template message the brand sent: its text, its quick-reply buttons and refs."""

    name: str = "promo"
    body: str = ""
    buttons: tuple[Button, ...] = ()
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    callback: str = "button_tap"  # the callback template in templates/ that renders each tap


@dataclass(frozen=True)
class ListedUser:
    """A user named in the scenario (generated users come from `cast.countries`)."""

    wa_id: str
    name: str | None = None


@dataclass(frozen=True)
class CastSpec:
    """Who received the template: generated users by country, and listed users."""

    countries: tuple[tuple[str, int], ...] = (("IN", 1),)
    users: tuple[ListedUser, ...] = ()
    platform: str = "mix"
    identity: tuple[tuple[str, float], ...] = (("bsuid", 1.0),)  # identity modes by share
    quirks: tuple[tuple[str, float], ...] = ()  # number quirks, each with its share
    enterprise: float = 0.0  # share of users with an enterprise parent_user_id


@dataclass(frozen=True)
class ReplyExpectation:
    """What the app must send back through the send API for each tap (`expect: reply:`).

    The replies counted are the app's messages to the tapping user, recorded after the tap
    and before that user's next tap, that match every filter given.
    """

    within: float = DEFAULT_REPLY_WITHIN  # seconds from the delivery's start
    type: str | None = None  # text, template, interactive, image...
    contains: str | None = None  # text the body, caption or template name contains (any case)
    template: str | None = None  # the template's name
    count: int | None = None  # exactly this many per tap (0: none); None: at least one

    def matches(self, message: Any) -> bool:
        """Whether a SentMessage passes every filter."""
        return ((self.type is None or message.type == self.type)
                and (self.contains is None or self.contains.lower() in message.text.lower())
                and (self.template is None or message.template == self.template))

    def describe(self) -> str:
        """The filters, for messages: `text containing 'unsubscribed'`."""
        parts = [self.type or ("template" if self.template else "message")]
        if self.template:
            parts.append(repr(self.template))
        if self.contains:
            parts.append(f"containing {self.contains!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Expectations:
    """What the handler must answer; None means "not checked"."""

    status: tuple[tuple[int, int], ...] | None = None  # accepted status ranges
    max_latency_ms: float | None = None
    body_contains: tuple[str, ...] = ()
    json_equals: tuple[tuple[str, Any], ...] = ()  # ($.path, expected value)
    reply: ReplyExpectation | None = None  # what the app sends back (needs the send API)

    def merged(self, override: Expectations | None) -> Expectations:
        """These expectations with every rule that `override` sets replaced by its."""
        if override is None:
            return self
        return Expectations(
            status=override.status if override.status is not None else self.status,
            max_latency_ms=override.max_latency_ms if override.max_latency_ms is not None
            else self.max_latency_ms,
            body_contains=override.body_contains or self.body_contains,
            json_equals=override.json_equals or self.json_equals,
            reply=override.reply if override.reply is not None else self.reply,
        )


@dataclass(frozen=True)
class TapReplySpec:
    """A step that waits for the app's message to each chosen user and taps one of its
    buttons (`tap_reply:`), so the callback replies to it: context.id is its wamid."""

    button: str  # a label (title) or payload of the app's button or quick reply
    within: float = 10.0  # seconds to wait for that message


@dataclass(frozen=True)
class VerifySpec:
    """A step that performs Meta's GET verification handshake against the step's target."""

    token: str
    expect: str = "pass"  # pass: echoed for `token`, a wrong one refused; refused: refused


@dataclass(frozen=True)
class Who:
    """Which users a step's taps come from."""

    kind: str  # "all", "count", "share" or "users"
    count: int = 0
    share: float = 1.0
    users: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepSpec:
    """One step: some users tap, at some moments, with an optional target and expectations."""

    name: str
    line: int
    who: Who = Who("all")
    button: str | None = None  # a fixed button, or None for `choices`
    choices: tuple[tuple[str, float], ...] = ()  # weighted buttons
    no_tap: float = 0.0  # weight of "sees the message, taps nothing"
    after: float = 0.0  # seconds to wait after the previous step before this one starts
    spread: float = 0.0  # taps are spread at random over this many seconds
    repeat: int = 1  # each chosen user taps this many times
    concurrency: int = 1  # deliveries in flight at once
    duplicate: bool = False  # chaos: deliver every tap of this step twice
    duplicate_concurrently: bool = False  # ...with the copy sent at the same moment
    target: Mapping[str, Any] = field(default_factory=dict)
    expect: Expectations | None = None
    # Other kinds each chosen user sends, in order (simulator.kinds.steps): `send`, `react`,
    # `statuses`; a step with them taps nothing.
    sends: tuple[tuple[str, Any], ...] = ()
    tap_reply: TapReplySpec | None = None  # tap a button of the app's own message instead
    verify: VerifySpec | None = None  # the GET handshake instead of any tap
    # Which of the scenario's `messages:` the step is about (its taps' context, its
    # reactions', statuses' and quotes' message); None: the first, the template message.
    message: str | None = None

    def pick_button(self, buttons: Mapping[str, Button], rnd: Any, *,
                    may_skip: bool = True) -> Button | None:
        """The button one user taps in this step, drawn with `rnd`; None: they tap nothing.

        The one home of button weighting (`wasim run` and `wasim load` both draw here): the
        fixed button, else `choices` by weight (and `no_tap` unless not `may_skip`), else
        any button alike.
        """
        if self.button is not None:
            return buttons[self.button]
        if not self.choices:
            anyone: Button = rnd.choice(list(buttons.values()))
            return anyone
        labels: list[str | None] = [label for label, _ in self.choices]
        weights = [w for _, w in self.choices]
        if may_skip:
            labels.append(None)
            weights.append(self.no_tap)
        label: str | None = rnd.choices(labels, weights=weights)[0]
        return buttons[label] if label is not None else None


@dataclass(frozen=True)
class ChaosSpec:
    """Delivery faults declared in the file, as a real platform produces them."""

    duplicate: float = 0.0  # probability a tap is delivered twice, same bytes
    duplicate_concurrently: bool = False  # the copy goes at the same moment, in parallel
    shuffle: int = 0  # shuffle delivery order within windows of this many sends
    redeliver: float = 0.0  # probability a tap is delivered again later
    redeliver_after: float = 30.0  # seconds until that late redelivery
    # probability a user's status sequence has one of the known disorders (sent after read,
    # delivered missing, a duplicate status, failed after sent)
    status_disorder: float = 0.0
    batch: float = 0.0  # probability a tap opens a batch: it and the next go in one body
    batch_size: int = 3  # taps in a batch (fewer at the end of the run)
    batch_shape: str = "messages"  # messages in one value, several changes, or entries


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to plan and run."""

    name: str
    description: str
    path: Path
    seed: int | None
    business: BusinessSpec
    template: TemplateSpec
    cast: CastSpec
    steps: tuple[StepSpec, ...]
    chaos: ChaosSpec
    expect: Expectations
    target: Mapping[str, Any]
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    templates: tuple[str, ...] = ()  # other templates the brand may send (its replies)
    # The brand's messages each user received, by name (`messages:`); () is one, unnamed.
    messages: tuple[str, ...] = ()

    @property
    def template_names(self) -> tuple[str, ...]:
        """Every template the account has: the campaign's, then `templates:`."""
        return (self.template.name, *(t for t in self.templates if t != self.template.name))

    @property
    def needs_api(self) -> bool:
        """Whether a run must have the send API: reply expectations or tap_reply steps."""
        return self.expect.reply is not None or any(
            s.tap_reply is not None or (s.expect is not None and s.expect.reply is not None)
            for s in self.steps)

    def where(self, key_path: str) -> str:
        """`file:line` of a field (or its nearest parent), for messages."""
        return f"{self.path}:{line_of(self.lines, key_path)}"


# --- finding and reading -------------------------------------------------------------------


def builtin_scenarios() -> list[Path]:
    """The scenario files that ship with wasim."""
    return sorted(p for p in builtin_dir("scenarios").iterdir() if p.suffix in SUFFIXES)


def local_scenarios(folder: Path | None = None) -> list[Path]:
    """Scenario files in ./scenarios (the user's own)."""
    root = folder or Path.cwd() / "scenarios"
    if not root.is_dir() or root.resolve() == builtin_dir("scenarios").resolve():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in SUFFIXES)


def find_scenario(name_or_path: str) -> Path:
    """A path, a name in ./scenarios, or a built-in scenario's name."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.suffix in SUFFIXES or "/" in name_or_path:
        raise WasimError(f"no scenario file at {name_or_path}", field="scenario",
                         hint="Check the path; `wasim scenarios` lists the known ones.")
    known = {p.stem: p for p in builtin_scenarios()}
    known.update({p.stem: p for p in local_scenarios()})
    if name_or_path in known:
        return known[name_or_path]
    raise WasimError(f"no scenario named {name_or_path!r}", field="scenario",
                     hint=did_you_mean(name_or_path, known)
                     or "`wasim scenarios` lists the built-in and local ones.")


def describe_file(path: Path) -> str:
    """The one-line description of a scenario file, read without rendering it."""
    try:
        with path.open("rb") as file:
            data = file.read(65_536)  # the description is near the top; files may be huge
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(data) < 65_536 or exc.start < len(data) - 3:
                raise
            text = data[:exc.start].decode("utf-8")  # a character cut at the end of the read
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    match = re.search(r"^description:\s*(.+?)\s*$", text, re.M)
    if match:
        return match.group(1).strip("\"'")
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_scenario(name_or_path: str | Path, *, seed: int | None = None,
                  env: Mapping[str, str] | None = None) -> Scenario:
    """Find, render, parse and validate a scenario; every problem is a WasimError."""
    path = name_or_path if isinstance(name_or_path, Path) else find_scenario(name_or_path)
    display = _display(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise WasimError(f"cannot read the scenario ({exc.strerror})", where=display) from None
    if len(data) > MAX_FILE_BYTES:
        raise WasimError(f"the file is larger than {MAX_FILE_BYTES:,} bytes (the limit for a "
                         "scenario)", where=display, hint="Is this the right file?")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WasimError(f"not UTF-8 text (byte {exc.start})", where=display,
                         hint="Save the file as UTF-8.") from None
    return parse_scenario(source, display, seed=seed, env=env)


def parse_scenario(source: str, display: str, *, seed: int | None = None,
                   env: Mapping[str, str] | None = None) -> Scenario:
    """Render and validate scenario text; `display` names it in errors."""
    text = render_scenario_text(source, display, seed=seed, env=env)
    try:
        document, lines = _parse_yaml(text, display)
        return _build(document, lines, Path(display))
    except WasimError as exc:
        if text.count("\n") != source.count("\n"):
            # The file's Jinja added or removed lines, so YAML's line numbers are those of
            # the rendered text, not the file: say so, and how to see that text.
            exc.hint = " ".join(filter(None, [exc.hint, "(Line numbers are of the rendered "
                                              "scenario: `wasim scenarios show NAME "
                                              "--rendered` prints it.)"]))
        raise


def render_scenario_text(source: str, display: str, *, seed: int | None = None,
                         env: Mapping[str, str] | None = None) -> str:
    """The scenario text after Jinja, before YAML: what the line numbers of errors count."""
    if seed is None:
        # `fake` in the file must be seeded before the file is read: take the seed line.
        match = _SEED_LINE.search(source)
        digits = match.group(1).lstrip("0") if match else ""
        if len(digits) > len(str(MAX_SEED)) or int(digits or 0) > MAX_SEED:
            line = source.count("\n", 0, match.start() if match else 0) + 1
            raise WasimError(f"seed: expected a whole number from 0 to {MAX_SEED:,}",
                             where=f"{display}:{line}")
        seed = int(digits or 0)
    elif isinstance(seed, bool) or not isinstance(seed, int) or abs(seed) > MAX_SEED:
        raise WasimError(f"the seed must be a whole number from -{MAX_SEED:,} to {MAX_SEED:,}",
                         field="seed")
    return _render(source, display, seed, env if env is not None else {})


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


ENV_FLAG = "--template-env"


class EnvNotAllowed(jinja2.TemplateRuntimeError):
    """A scenario read an environment variable the person did not allow."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the environment variable {name} is not allowed")
        self.name = name


class TemplateEnv(dict[str, str]):
    """`env` as a scenario sees it: only the variables the person allowed by name.

    Any other variable set in the environment is not there, and reading it (`env.X`,
    `env["X"]`, `env.get("X")`, `"X" in env`) stops the rendering with EnvNotAllowed rather
    than falling back to a default unseen; one that is not set at all is simply missing.
    """

    def __init__(self, allowed: Mapping[str, str], hidden: frozenset[str]) -> None:
        super().__init__(allowed)
        self._hidden = hidden

    def _check(self, key: object) -> None:
        if key in self._hidden:
            raise EnvNotAllowed(str(key))

    def __getitem__(self, key: str) -> str:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._check(key)
        return super().__contains__(key)


def template_env(names: Iterable[str] = (),
                 environ: Mapping[str, str] | None = None) -> TemplateEnv:
    """The environment a scenario may read: the variables named (--template-env), no other.

    wasim's own credentials (WASIM_BASIC_AUTH, WASIM_CLIENT_SECRET...) live in the same
    environment, and whatever a scenario reads can end up in a payload and the history.
    """
    environ = os.environ if environ is None else environ
    allowed = {name: environ[name] for name in names if name in environ}
    return TemplateEnv(allowed, frozenset(environ) - frozenset(allowed))


def _render(source: str, display: str, seed: int, env: Mapping[str, str]) -> str:
    from simulator.providers import make_faker
    from simulator.render import error_line, make_environment
    from simulator.sandbox import RenderLimit, fake_facade, plain_env, render_bounded

    # No folder: a scenario file cannot include, import or extend other files.
    environment = make_environment(None)
    try:
        template = environment.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise WasimError(f"Jinja syntax error: {exc.message}", where=f"{display}:{exc.lineno}",
                         hint="Fix the {{ }} or {% %} on that line.") from None
    except (RecursionError, MemoryError):
        raise WasimError("the Jinja in the scenario is nested too deeply to compile",
                         where=display, hint="Split deep expressions into {% set %} steps."
                         ) from None
    # Plain data only: `fake` is the data-call facade (never the Faker), `env` a dict of str.
    # A TemplateEnv is the person's allow-list; a plain mapping (the Python API's `env=`) was
    # chosen whole by the caller.
    seen = env if isinstance(env, TemplateEnv) else plain_env(env)
    variables = {"fake": fake_facade(make_faker(seed)), "env": seen, "seed": seed}
    try:
        try:
            context = template.new_context(variables)
            return render_bounded(lambda: template.root_render_func(context))
        except (jinja2.TemplateError, TypeError, ValueError, LookupError, AttributeError,
                ArithmeticError, RecursionError, MemoryError):
            environment.handle_exception()  # re-raises with the file's line numbers
    except EnvNotAllowed as exc:
        line = error_line(exc, "<template>")
        raise WasimError(f"the scenario reads the environment variable {exc.name}, which "
                         "scenarios see only when you allow it",
                         where=f"{display}:{line}" if line else display,
                         hint=f"If you trust this file with it, add {ENV_FLAG} {exc.name} "
                              "(Python: run_scenario(env={...})).") from None
    except jinja2.UndefinedError as exc:
        line = error_line(exc, "<template>")
        raise WasimError(f"undefined variable: {exc.message}",
                         where=f"{display}:{line}" if line else display,
                         hint="Scenarios see `fake` (seeded data calls), `env` (environment "
                              "variables) and `seed`.") from None
    except RenderLimit as exc:
        line = error_line(exc, "<template>")
        raise WasimError(f"the Jinja in the scenario went past a rendering limit: {exc}",
                         where=f"{display}:{line}" if line else display,
                         hint="Render less: docs/guides/safety-bounds.md lists the limits."
                         ) from None
    except (RecursionError, MemoryError) as exc:
        line = error_line(exc, "<template>")
        what = "recursed too deeply" if isinstance(exc, RecursionError) else "ran out of memory"
        raise WasimError(f"the Jinja in the scenario {what}",
                         where=f"{display}:{line}" if line else display) from None
    except (SecurityError, jinja2.TemplateError, TypeError, ValueError, LookupError,
            AttributeError, ArithmeticError) as exc:
        line = error_line(exc, "<template>")
        raise WasimError(f"the Jinja in the scenario failed: {type(exc).__name__}: {exc}",
                         where=f"{display}:{line}" if line else display) from None
    raise AssertionError("handle_exception always raises")  # for the type checker


_FLOW = re.compile(r"""[\[\]{}'"#\n]""")


def _too_deep(text: str, limit: int) -> int | None:
    """The line where `[`/`{` nesting passes `limit` (outside quotes and comments), if any.

    PyYAML's scanner is quadratic in unclosed brackets and its composer recursive, so a file
    of brackets would spin or overflow the stack before the depth check on the parsed nodes.
    """
    depth, line, quote, comment = 0, 1, "", False
    for match in _FLOW.finditer(text):
        char = match.group()
        if char == "\n":
            line, comment = line + 1, False
        elif comment:
            continue
        elif quote:
            quote = "" if char == quote else quote  # an escaped quote only ends it early
        elif char in "'\"":
            quote = char
        elif char == "#":
            comment = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return line
        else:
            depth = max(depth - 1, 0)
    return None


# Contexts whose mark is where the mistake starts: a bracket or quote opened and never closed
# (the parser only notices lines later), a key whose ':' never came. A block's context mark
# is only where the enclosing block began, often far away: there the problem's mark is better.
_OPENED = ("while parsing a flow", "while scanning a quoted", "while scanning a simple key")


def _yaml_error(exc: yaml.MarkedYAMLError, display: str) -> WasimError:
    """A YAML syntax error at file:line:column where it starts, as editors expect."""
    problem = exc.problem or exc.context or "cannot parse"
    mark = exc.problem_mark or exc.context_mark
    message = f"not valid YAML: {problem}"
    if exc.context_mark is not None and (exc.context or "").startswith(_OPENED):
        opened = exc.context or ""
        what = opened.removeprefix("while parsing ").removeprefix("while scanning ")
        if exc.problem_mark is not None:
            problem += f" at {exc.problem_mark.line + 1}:{exc.problem_mark.column + 1}"
        message = f"not valid YAML: {what} starts here and is not closed ({problem})"
        mark = exc.context_mark
    where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark is not None else display
    return WasimError(message, where=where,
                      hint="Check the brackets, quotes and indentation from there.")


def _parse_yaml(text: str, display: str) -> tuple[Any, dict[str, int]]:
    deep = _too_deep(text, 4 * _MAX_DEPTH)
    if deep is not None:
        raise WasimError(f"the YAML is nested too deeply (more than {_MAX_DEPTH} levels is "
                         "refused)", where=f"{display}:{deep}",
                         hint="Look for runaway [ or { brackets.")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise WasimError(f"the YAML is nested too deeply (more than {_MAX_DEPTH} levels is "
                         "refused)", where=display,
                         hint="Look for runaway [ or { brackets.") from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, display) from None
    except yaml.YAMLError as exc:
        raise WasimError(f"not valid YAML: {' '.join(str(exc).split())}", where=display) from None
    if node is None:
        raise WasimError("the scenario is empty", where=display,
                         hint="`wasim new NAME` writes a commented starter file.")
    lines: dict[str, int] = {}
    counter = [0]
    value = _convert(node, "", lines, display, counter, 0)
    return value, lines


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(text: str, path: str, display: str, line: int) -> str:
    """`text` with each pair of surrogate escapes ("\\ud83d\\ude00", as JSON writes an
    emoji) joined into its character; a lone half, which no terminal, file or request can
    carry, is refused where it is written."""
    if not _SURROGATE.search(text):
        return text
    with contextlib.suppress(UnicodeError):
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    found = _SURROGATE.search(text)
    if found:
        raise WasimError(f"{path}: {found.group()!a} is half of a character (a lone "
                         "surrogate), not text", where=f"{display}:{line}",
                         hint="Write the character itself, or both halves of its pair.")
    return text


def _convert(node: yaml.Node, path: str, lines: dict[str, int], display: str,
             counter: list[int], depth: int) -> Any:
    """A YAML node as plain Python values, recording the line of every path."""
    counter[0] += 1
    line = node.start_mark.line + 1
    if counter[0] > _MAX_NODES or depth > _MAX_DEPTH:
        raise WasimError("the scenario is too large or too deeply nested (YAML aliases?)",
                         where=f"{display}:{line}")
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise WasimError("a key must be plain text", where=f"{display}:{line}")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise WasimError("YAML merge keys (<<) are not supported",
                                 where=f"{display}:{key_node.start_mark.line + 1}")
            key = _refuse_surrogates(str(key_node.value), path or "a key", display,
                                     key_node.start_mark.line + 1)
            child = f"{path}.{key}" if path else key
            if key in result:
                raise WasimError(f"{child}: this key appears twice",
                                 where=f"{display}:{key_node.start_mark.line + 1}")
            lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, child, lines, display, counter, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{path}[{i}]", lines, display, counter, depth + 1)
                for i, item in enumerate(node.value)]
    if isinstance(node.value, str):
        node.value = _refuse_surrogates(node.value, path or "the value", display, line)
    try:
        return yaml.SafeLoader("").construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise WasimError(f"cannot read the value {str(node.value)[:40]!r} "
                         f"({str(exc)[:100]})", where=f"{display}:{line}") from None


def line_of(lines: Mapping[str, int], key_path: str) -> int:
    """The line of `key_path`, or of its nearest parent that has one."""
    path = key_path
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("", 1)


# --- validation ------------------------------------------------------------------------------


class _Fields:
    """Reads one mapping of the document, turning each bad field into a located error."""

    def __init__(self, value: Any, path: str, lines: Mapping[str, int], file: Path,
                 allowed: tuple[str, ...] | str) -> None:
        self.path, self.lines, self.file = path, lines, file
        # A block of the declared format (scenario_format.BLOCKS) by name, or the keys of a
        # mapping whose keys are data (countries, choices).
        self.block = allowed if isinstance(allowed, str) else None
        if isinstance(allowed, str):
            allowed = keys(allowed)
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping of {', '.join(allowed)}, got "
                                   f"{_kind(value)}")
        self.value = value
        for key in value:
            if key not in allowed:
                raise self.error(self.child(key), "unknown key",
                                 hint=did_you_mean(key, allowed)
                                 or f"Known keys here: {', '.join(allowed)}.")

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, name: str) -> Any:
        """A plain value read as the format declares it: its type, bounds and default."""
        assert self.block is not None, "get() reads keys of a declared block"
        declared = declared_key(self.block, name)
        if declared.type == "text":
            return self.text(name, declared.default)
        if declared.type == "number":
            return self.number(name, declared.default, low=declared.low, high=declared.high)
        if declared.type == "whole":
            return self.whole(name, declared.default, low=int(declared.low),
                              high=int(declared.high))
        if declared.type == "flag":
            return self.flag(name, declared.default)
        if declared.type == "duration":
            return self.duration(name, declared.default or 0.0)
        if declared.type == "choice":
            value = self.text(name, declared.default)
            if value is not None and value not in declared.choices:
                raise self.error(self.child(name), f"unknown {name.replace('_', ' ')} "
                                                   f"{value!r}",
                                 hint=did_you_mean(value, declared.choices)
                                 or f"Use one of {', '.join(declared.choices)}.")
            return value
        raise AssertionError(f"{self.block}.{name} is read by its own function")

    def error(self, path: str, what: str, hint: str | None = None) -> WasimError:
        return WasimError(f"{path or 'scenario'}: {what}",
                          where=f"{self.file}:{line_of(self.lines, path)}", hint=hint)

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.value.get(key)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(self.child(key), f"expected text, got {_kind(value)}")
        return str(value)

    def number(self, key: str, default: float, *, low: float = 0.0,
               high: float = MAX_NUMBER) -> float:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(self.child(key), f"expected a number, got {_kind(value)}")
        # `not low <= value <= high` is also true for NaN; infinity is above any high.
        if not low <= value <= high:
            raise self.error(self.child(key), f"expected a number from {low:g} to {high:g}, "
                                              f"got {_kind(value)}")
        return float(value)

    def whole(self, key: str, default: int, *, low: int = 0,
              high: int = MAX_SENDS_PER_PLAN) -> int:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(self.child(key), f"expected a whole number from {low:,} to "
                                              f"{high:,}, got {_kind(value)}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.value.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(self.child(key), f"expected true or false, got {_kind(value)}")
        return value

    def duration(self, key: str, default: float = 0.0) -> float:
        value = self.value.get(key)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            raise self.error(self.child(key), f"cannot read the duration {value!r:.60}",
                             hint="Write seconds (30), or a number with ms, s, m or h "
                                  "(500ms, 10s, 10m, 1h).")
        if seconds > MAX_DURATION:
            raise self.error(self.child(key), f"{_kind(value)} is longer than a week (the limit)")
        return seconds


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:60]


def parse_duration(value: Any) -> float | None:
    """Seconds from 30, 2.5, "500ms", "10s", "10m" or "1h"; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # float() of a huge int would overflow; a float may be NaN or infinite (refused below)
        seconds = value if isinstance(value, float) else float(min(value, 10**300))
    elif isinstance(value, str) and len(value) <= 100 and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _build(document: Any, lines: Mapping[str, int], file: Path) -> Scenario:
    top = _Fields(document, "", lines, file, "scenario")
    seed = top.raw("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or abs(seed) > MAX_SEED):
        raise top.error("seed", f"expected a whole number from -{MAX_SEED:,} to {MAX_SEED:,}, "
                                f"got {_kind(seed)}")
    template = _template(top, lines, file)
    labels = [b.text for b in template.buttons]
    steps_raw = top.raw("steps")
    if steps_raw is None:
        steps_raw = [{}]
        lines = {**lines, "steps[0]": line_of(lines, "")}
    if not isinstance(steps_raw, list):
        raise top.error("steps", f"expected a list of steps, got {_kind(steps_raw)}")
    if not steps_raw:
        raise top.error("steps", "the list of steps is empty",
                        hint="Add a step, e.g. `- tap: Shop now`, or leave `steps` out for one "
                             "step where everyone taps.")
    cast = _cast(top, lines, file)
    listed = {u.wa_id for u in cast.users} | {u.name for u in cast.users if u.name}
    messages = _messages(top)
    declared = frozenset(messages)  # looked up by every step: a set, built once
    steps = tuple(_step(item, i, labels, listed, lines, file, (messages, declared))
                  for i, item in enumerate(steps_raw))
    names = [s.name for s in steps]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise top.error(f"steps[{index}].name", f"the step name {name!r} is used twice",
                            hint="Give each step its own name.")
    chaos = _chaos(top, lines, file)
    for index, total in enumerate(itertools.accumulate(_step_sends(cast, chaos, steps))):
        if total > MAX_SENDS_PER_PLAN:
            raise top.error(f"steps[{index}]", f"the plan could reach {total:,} sends by this "
                            f"step; a run plans at most {MAX_SENDS_PER_PLAN:,}",
                            hint="Lower repeat, who or the cast, or split the scenario.")
    return Scenario(
        name=top.text("name") or file.stem,
        description=top.text("description", "") or "",
        path=file,
        seed=seed,
        business=_business(top, lines, file),
        template=template,
        cast=cast,
        steps=steps,
        chaos=chaos,
        expect=_expect(top.raw("expect"), "expect", lines, file) or Expectations(),
        target=_target(top.raw("target"), "target", lines, file),
        lines=lines,
        templates=_templates(top),
        messages=messages,
    )


def _templates(top: _Fields) -> tuple[str, ...]:
    """`templates: [catalogue, order_update]`: the other templates the brand may send."""
    return _names(top, "templates", "template", "[catalogue, order_update]", unique=False)


def _messages(top: _Fields) -> tuple[str, ...]:
    """`messages: [offer, reminder]`: the brand's messages each user received, by name."""
    return _names(top, "messages", "message", "[offer, reminder]", unique=True)


def _names(top: _Fields, key: str, what: str, example: str, *, unique: bool) -> tuple[str, ...]:
    """A top-level list of names (one name alone is a list of one); with `unique`, a name
    given twice is an error, and an empty list too."""
    raw = top.raw(key)
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or (unique and not raw):
        raise top.error(key, f"expected a list of {what} names, got {_kind(raw)}",
                        hint=f"For example {key}: {example}.")
    names: dict[str, None] = {}  # in order; a dict, so a long list is checked in linear time
    for index, name in enumerate(raw):
        if isinstance(name, bool) or not isinstance(name, str | int) or not str(name).strip():
            raise top.error(f"{key}[{index}]", f"expected a {what} name, got {_kind(name)}")
        if unique and str(name) in names:
            raise top.error(f"{key}[{index}]", f"the {what} name {str(name)[:60]!r} is used "
                                               "twice", hint=f"Give each {what} its own name.")
        names[str(name)] = None
    return tuple(names)


def _message(fields: _Fields, path: str,
             known: tuple[tuple[str, ...], frozenset[str]]) -> str | None:
    """A step's `message:`: one of the scenario's `messages:` by name (`known`: the names
    in order, and as a set)."""
    name = fields.text("message")
    if name is None:
        return None
    messages, declared = known
    if name not in declared:
        listed = ", ".join(repr(m[:60]) for m in messages[:10]) + (
            f"... ({len(messages):,} in all)" if len(messages) > 10 else "")
        raise fields.error(f"{path}.message", f"no message named {name[:60]!r}" + (
            f"; the scenario's messages are {listed}" if messages else
            ": the scenario declares no messages"),
            hint=did_you_mean(name, messages[:1000]) or "Declare the brand's messages at the "
                                                        "top: messages: [offer, reminder].")
    return name


def _step_sends(cast: CastSpec, chaos: ChaosSpec, steps: tuple[StepSpec, ...]) -> list[int]:
    """The most sends each step can plan: chosen users x repeat x (tap, copy, redelivery)."""
    users = sum(n for _, n in cast.countries) + len(cast.users)
    counts = []
    for step in steps:
        who = step.who
        chosen = {"all": users, "count": min(who.count, users), "users": len(who.users),
                  "share": round(users * who.share)}[who.kind]
        copies = 1 + (step.duplicate or chaos.duplicate > 0) + (chaos.redeliver > 0)
        per_user = len(step.sends) + (chaos.status_disorder > 0) if step.sends else 1
        counts.append(chosen * step.repeat * copies * per_user)
    return counts


def plan_size(scenario: Scenario) -> int:
    """The most sends a run of `scenario` can plan (checked against MAX_SENDS_PER_PLAN)."""
    return sum(_step_sends(scenario.cast, scenario.chaos, scenario.steps))


def _business(top: _Fields, lines: Mapping[str, int], file: Path) -> BusinessSpec:
    from simulator.inputs import parse_meta_id, parse_phone

    if not top.has("business"):
        return BusinessSpec()
    fields = _Fields(top.raw("business"), "business", lines, file, "business")
    number = fields.text("display_phone_number")
    pnid, waba = fields.text("phone_number_id"), fields.text("waba_id")
    where = {k: f"{file}:{line_of(lines, 'business.' + k)}"
             for k in ("display_phone_number", "phone_number_id", "waba_id")}
    return BusinessSpec(
        parse_phone(number, where["display_phone_number"]) if number else None,
        parse_meta_id(pnid, where["phone_number_id"]) if pnid else None,
        parse_meta_id(waba, where["waba_id"]) if waba else None,
        _country(fields, "country", "IN"),
        fields.text("name"),
    )


def _country(fields: _Fields, key: str, default: str) -> str:
    return _country_code(fields, key, fields.text(key) or default)


def _country_code(fields: _Fields, key: str, code: str) -> str:
    from simulator.providers import WhatsAppProvider, make_faker, whatsapp_provider

    try:
        return whatsapp_provider(make_faker(0)).whatsapp_country(code).code
    except WasimError:
        raise fields.error(fields.child(key), f"unknown country {code!r}",
                           hint=f"Use an ISO 3166 alpha-2 code: "
                                f"{', '.join(WhatsAppProvider.countries)}.") from None


def _template(top: _Fields, lines: Mapping[str, int], file: Path) -> TemplateSpec:
    from simulator.taps import DEFAULT_BUTTONS

    if not top.has("template"):
        return TemplateSpec(buttons=DEFAULT_BUTTONS)
    fields = _Fields(top.raw("template"), "template", lines, file, "template")
    raw_buttons = fields.raw("buttons")
    buttons: list[Button] = []
    if raw_buttons is None:
        buttons = list(DEFAULT_BUTTONS)
    elif not isinstance(raw_buttons, list) or not raw_buttons:
        raise fields.error("template.buttons", "expected a list of buttons")
    else:
        for i, item in enumerate(raw_buttons):
            path = f"template.buttons[{i}]"
            if isinstance(item, str):
                buttons.append(Button(item, item))
                continue
            button = _Fields(item, path, lines, file, "button")
            text = button.text("text")
            if not text:
                raise button.error(f"{path}.text", "a button needs its text (the label)")
            buttons.append(Button(text, button.text("payload") or text))
    labels = [b.text for b in buttons]
    if len(set(labels)) != len(labels):
        raise fields.error("template.buttons", "two buttons have the same text")
    callback = _callback(fields, fields.text("callback", "button_tap") or "button_tap", file)
    return TemplateSpec(
        name=fields.text("name", "promo") or "promo",
        body=fields.text("body", "") or "",
        buttons=tuple(buttons),
        ref=fields.text("ref"),
        ref1=fields.text("ref1"),
        ref2=fields.text("ref2"),
        callback=callback,
    )


def _callback(fields: _Fields, callback: str, file: Path) -> str:
    """A built-in template name, or a template file inside the scenario's own folder."""
    from simulator.render import find_template

    if Path(callback).suffix or "/" in callback or "\\" in callback:
        # A shared scenario must not pick an arbitrary file on this machine as its template.
        folder = file.parent
        inside = folder / callback
        if not Path(os.path.realpath(inside)).is_relative_to(os.path.realpath(folder)):
            raise fields.error("template.callback", f"{callback!r} is outside the scenario's "
                               "folder", hint="Name a built-in template, or a file next to "
                                              "the scenario (links are followed).")
        callback = str(inside)
    try:
        find_template(callback)
    except WasimError as exc:
        raise fields.error("template.callback", exc.what, hint=exc.hint) from None
    return callback


def _cast(top: _Fields, lines: Mapping[str, int], file: Path) -> CastSpec:
    from simulator.inputs import parse_phone

    if not top.has("cast"):
        return CastSpec()
    fields = _Fields(top.raw("cast"), "cast", lines, file, "cast")
    countries: list[tuple[str, int]] = []
    raw = fields.raw("countries")
    if raw is not None:
        counts = _Fields(raw, "cast.countries", lines, file, tuple(str(k) for k in raw)
                         if isinstance(raw, dict) else ())
        for code in counts.value:
            countries.append((_country_code(counts, code, code), counts.whole(code, 0)))
    users: list[ListedUser] = []
    raw_users = fields.raw("users")
    if raw_users is not None:
        if not isinstance(raw_users, list):
            raise fields.error("cast.users", f"expected a list of users, got {_kind(raw_users)}")
        for i, item in enumerate(raw_users):
            path = f"cast.users[{i}]"
            user = _Fields(item, path, lines, file, "user")
            number = user.text("wa_id")
            if not number:
                raise user.error(f"{path}.wa_id", "a listed user needs a wa_id (their number)")
            users.append(ListedUser(parse_phone(number, f"{file}:{line_of(lines, path)}"),
                                    user.text("name")))
    if raw is None and not users:
        countries = [("IN", 1)]
    if not sum(n for _, n in countries) and not users:
        raise fields.error("cast", "nobody is in the cast",
                           hint="Add generated users (countries: {IN: 10}) or listed users.")
    platform = fields.get("platform") or "mix"
    from simulator.taps import IDENTITIES, QUIRKS

    shares = {}
    for key, known, high in (("identity", IDENTITIES, MAX_NUMBER), ("quirks", QUIRKS, 1.0)):
        raw_shares = fields.raw(key)
        if raw_shares is None:
            continue
        if isinstance(raw_shares, str):  # `identity: phone`: everyone
            raw_shares = {raw_shares: 1}
        named = _Fields(raw_shares, f"cast.{key}", lines, file, known)
        if not isinstance(raw_shares, dict) or not raw_shares:
            raise fields.error(f"cast.{key}", f"expected shares such as {{{known[0]}: "
                               f"{'0.5' if high == 1.0 else '90'}}}, got {_kind(raw_shares)}")
        shares[key] = tuple((str(name), named.number(str(name), 0.0, high=high))
                            for name in raw_shares)
    return CastSpec(tuple(countries), tuple(users), platform,
                    shares.get("identity", (("bsuid", 1.0),)), shares.get("quirks", ()),
                    fields.get("enterprise"))


def _step(item: Any, index: int, labels: list[str], listed: set[str],
          lines: Mapping[str, int], file: Path,
          messages: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())) -> StepSpec:
    path = f"steps[{index}]"
    fields = _Fields(item, path, lines, file, "step")
    button = fields.text("tap")
    if button is not None and button not in labels:
        raise fields.error(f"{path}.tap", f"the template has no button {button!r}",
                           hint=did_you_mean(button, labels)
                           or f"Its buttons: {', '.join(labels)}.")
    choices: list[tuple[str, float]] = []
    raw = fields.raw("choices")
    if raw is not None:
        if button is not None:
            raise fields.error(f"{path}.choices", "give `tap` or `choices`, not both")
        weights = _Fields(raw, f"{path}.choices", lines, file,
                          tuple(str(k) for k in raw) if isinstance(raw, dict) else ())
        for label in weights.value:
            if label not in labels:
                raise weights.error(f"{path}.choices.{label}",
                                    f"the template has no button {label!r}",
                                    hint=did_you_mean(label, labels)
                                    or f"Its buttons: {', '.join(labels)}.")
            choices.append((label, weights.number(label, 0.0)))
    no_tap = fields.get("no_tap")
    if choices and not sum(w for _, w in choices) + no_tap:
        raise fields.error(f"{path}.choices", "all the weights are zero")
    sends = _kind_sends(fields, path)
    if sends and (button is not None or choices):
        raise fields.error(f"{path}.tap" if button is not None else f"{path}.choices",
                           "a step that sends other kinds taps nothing",
                           hint="Put the tap in a step of its own.")
    tap_reply = _tap_reply(fields, path)
    verify = _verify(fields, path)
    for special, key in ((tap_reply, "tap_reply"), (verify, "verify")):
        if special is not None and (button is not None or choices or sends):
            raise fields.error(f"{path}.{key}", f"a {key} step taps nothing else",
                               hint="Put the other taps or sends in a step of their own.")
    if tap_reply is not None and verify is not None:
        raise fields.error(f"{path}.verify", "give `tap_reply` or `verify`, not both")
    if (tap_reply is not None or verify is not None) and fields.raw("duplicate"):
        key = "tap_reply" if tap_reply is not None else "verify"
        raise fields.error(f"{path}.duplicate", f"a {key} step cannot be duplicated",
                           hint="Duplicate the taps of a normal step.")
    message = _message(fields, path, messages)
    if message is not None and (tap_reply is not None or verify is not None):
        key = "tap_reply" if tap_reply is not None else "verify"
        raise fields.error(f"{path}.message", f"a {key} step answers no message of the "
                                              "scenario's", hint="Leave message out here.")
    return StepSpec(
        name=fields.text("name") or f"step {index + 1}",
        line=line_of(lines, path),
        who=_who(fields, path, listed),
        button=button,
        choices=tuple(choices),
        no_tap=no_tap,
        after=fields.get("after"),
        spread=fields.get("spread"),
        repeat=fields.get("repeat"),
        concurrency=fields.get("concurrency"),
        duplicate=_duplicate(fields, path) != "no",
        duplicate_concurrently=_duplicate(fields, path) == "concurrently",
        target=_target(fields.raw("target"), f"{path}.target", lines, file),
        expect=_expect(fields.raw("expect"), f"{path}.expect", lines, file),
        sends=sends,
        tap_reply=tap_reply,
        verify=verify,
        message=message,
    )


def _tap_reply(fields: _Fields, path: str) -> TapReplySpec | None:
    """`tap_reply: LABEL` or `tap_reply: {button: LABEL, within: 10s}`."""
    raw = fields.raw("tap_reply")
    key = f"{path}.tap_reply"
    if raw is None:
        return None
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        raw = {"button": raw}
    spec = _Fields(raw, key, fields.lines, fields.file, "tap_reply")
    button = spec.text("button")
    if not button:
        raise spec.error(f"{key}.button", "name the button to tap (its label or payload)",
                         hint="For example tap_reply: {button: Track order}.")
    within = spec.get("within")
    if within <= 0:
        raise spec.error(f"{key}.within", "the wait must be longer than 0")
    return TapReplySpec(button, within)


def _verify(fields: _Fields, path: str) -> VerifySpec | None:
    """`verify: {verify_token: T, expect: pass|refused}`."""
    raw = fields.raw("verify")
    key = f"{path}.verify"
    if raw is None:
        return None
    spec = _Fields(raw, key, fields.lines, fields.file, "verify")
    token = spec.text("verify_token")
    if not token or len(token) > 1024 or not token.isprintable():
        raise spec.error(f"{key}.verify_token", "the verify token must be 1 to 1024 printable "
                                                "characters",
                         hint="The token your handler compares hub.verify_token with.")
    given = spec.text("expect")
    expect = "pass" if given is None else given
    if expect not in VERIFY_EXPECT:
        raise spec.error(f"{key}.expect", f"cannot read {expect!r}",
                         hint="Use pass (the challenge is echoed for this token and a wrong "
                              "token refused) or refused (this token is refused).")
    return VerifySpec(token, expect)


def _kind_sends(fields: _Fields, path: str) -> tuple[tuple[str, Any], ...]:
    """The step's `send` (one kind or a list), `react` and `statuses`, in that order."""
    from simulator.kinds.base import KindArgs
    from simulator.kinds.steps import parse_send, parse_statuses

    def error(at: str, what: str, hint: str | None) -> WasimError:
        return fields.error(at, what, hint)

    sends: list[tuple[str, Any]] = []
    raw = fields.raw("send")
    if raw is not None:
        items = raw if isinstance(raw, list) else [raw]
        for i, item in enumerate(items):
            where = f"{path}.send[{i}]" if isinstance(raw, list) else f"{path}.send"
            sends.append(parse_send(item, where, error))
    if fields.raw("react") is not None or "react" in fields.value:
        sends.append(("reaction", KindArgs(emoji=fields.text("react", "") or "")))
    if fields.raw("statuses") is not None:
        sends.extend(parse_statuses(fields.raw("statuses"), f"{path}.statuses", error))
    return tuple(sends)


def _duplicate(fields: _Fields, path: str) -> str:
    value = fields.raw("duplicate")
    if value is None or value is False:
        return "no"
    if value is True or value == "concurrently":
        return "concurrently" if value == "concurrently" else "yes"
    raise fields.error(f"{path}.duplicate", f"cannot read {value!r}",
                       hint="Use true (a second delivery right after) or concurrently.")


def _who(fields: _Fields, path: str, listed: set[str]) -> Who:
    value = fields.raw("who")
    if value is None or value == "all":
        return Who("all")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Who("count", count=value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            share = float(value[:-1]) / 100
        except ValueError:
            share = -1
        if 0 <= share <= 1:
            return Who("share", share=share)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        wanted = [str(v) for v in value]
        unknown = [w for w in wanted if w not in listed]
        if unknown:
            raise fields.error(f"{path}.who", f"{unknown[0]!r} is not a listed user",
                               hint="Name users from cast.users by wa_id or name.")
        return Who("users", users=tuple(wanted))
    raise fields.error(f"{path}.who", f"cannot read {value!r}",
                       hint="Use all, a number of users (20), a share (\"60%\"), or a list of "
                            "listed users' numbers or names.")


def _chaos(top: _Fields, lines: Mapping[str, int], file: Path) -> ChaosSpec:
    if not top.has("chaos"):
        return ChaosSpec()
    fields = _Fields(top.raw("chaos"), "chaos", lines, file, "chaos")
    return ChaosSpec(**{name: fields.get(name) for name in keys("chaos")})


def _expect(value: Any, path: str, lines: Mapping[str, int], file: Path) -> Expectations | None:
    if value is None:
        return None
    fields = _Fields(value, path, lines, file, "expect")
    status = None
    raw_status = fields.raw("status")
    if raw_status is not None:
        text = ",".join(str(s) for s in raw_status) if isinstance(raw_status, list) \
            else str(raw_status)
        try:
            status = parse_success(text)
        except WasimError as exc:
            raise fields.error(f"{path}.status", exc.what, hint=exc.hint) from None
    latency = fields.raw("max_latency")
    max_latency_ms = None
    if latency is not None:
        seconds = parse_duration(latency)
        if seconds is None:
            raise fields.error(f"{path}.max_latency", f"cannot read the duration {latency!r}",
                               hint="For example 500ms or 2s.")
        max_latency_ms = seconds * 1000
    contains = fields.raw("body_contains")
    if contains is None:
        body_contains: tuple[str, ...] = ()
    elif isinstance(contains, str):
        body_contains = (contains,)
    elif isinstance(contains, list) and all(isinstance(c, str) for c in contains):
        body_contains = tuple(contains)
    else:
        raise fields.error(f"{path}.body_contains", "expected text or a list of texts")
    json_rules = fields.raw("json")
    json_equals: tuple[tuple[str, Any], ...] = ()
    if json_rules is not None:
        if not isinstance(json_rules, dict):
            raise fields.error(f"{path}.json", "expected a mapping of $.path: expected value")
        for key in json_rules:
            if not str(key).startswith("$"):
                raise fields.error(f"{path}.json.{key}", "a JSON path starts with $",
                                   hint="For example $.status or $.data[0].id.")
        json_equals = tuple((str(k), v) for k, v in json_rules.items())
    return Expectations(status, max_latency_ms, body_contains, json_equals,
                        _reply(fields.raw("reply"), f"{path}.reply", lines, file))


def _reply(value: Any, path: str, lines: Mapping[str, int],
           file: Path) -> ReplyExpectation | None:
    """`reply: {within: 2s, type: text, contains: ..., template: NAME, count: 1}`."""
    if value is None:
        return None
    if value is True:  # `reply: true`: at least one reply, any kind
        value = {}
    fields = _Fields(value, path, lines, file, "reply")
    within = fields.get("within")
    if within <= 0:
        raise fields.error(f"{path}.within", "the window must be longer than 0",
                           hint="For example within: 2s.")
    kind = fields.text("type")
    if kind is not None and kind not in REPLY_TYPES:
        raise fields.error(f"{path}.type", f"unknown message type {kind!r}",
                           hint=did_you_mean(kind, REPLY_TYPES)
                           or f"Use one of {', '.join(REPLY_TYPES[:8])}...")
    contains = fields.text("contains")
    if contains == "":
        raise fields.error(f"{path}.contains", "empty text matches everything",
                           hint="Leave contains out, or give some text.")
    raw_count = fields.raw("count")
    count = None if raw_count is None else fields.whole("count", 0, high=MAX_REPLIES)
    return ReplyExpectation(within, kind, contains, fields.text("template"), count)


def _target(value: Any, path: str, lines: Mapping[str, int], file: Path) -> dict[str, Any]:
    """A `target:` block: the settings table's keys (simulator.settings), each value of the
    type and within the bounds the table declares (a bool is never text), typed."""
    from simulator.settings import table

    if value is None:
        return {}
    if isinstance(value, dict) and "allow_remote" in value:
        # Only the person at the keyboard may allow remote targets: a shared file must not.
        key = f"{path}.allow_remote"
        raise WasimError(f"{key}: a scenario cannot allow remote targets",
                         where=f"{file}:{line_of(lines, key)}",
                         hint=f"Remove it, and give {named('allow_remote')} yourself if you "
                              "mean to send off this machine.")
    settings = table()
    fields = _Fields(value, path, lines, file, tuple(settings))
    checked: dict[str, Any] = {}
    for key, item in fields.value.items():
        if item is None:
            continue
        try:
            checked[key] = settings[key].check(item)
        except ValueError as exc:
            raise fields.error(fields.child(key), str(exc)) from None
    return checked


def target_where(scenario: Scenario, prefix: str) -> Callable[[str], str]:
    """Name `file:line` of a delivery setting under `prefix` (target or steps[i].target)."""
    return lambda key: scenario.where(f"{prefix}.{key}")
