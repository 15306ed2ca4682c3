"""Delivery settings: one table (key, flag, env variable, help, type, bounds, default), one
resolve.

Every delivering command (fire, run, replay, load, tui) gets its click options from SETTINGS;
the scenario loader's `target:`, `wasim.target(...)` and `delivery_options_from` accept the
table's keys and check each value's type and bounds here (`Setting.check`), once. Every source
of settings (flags, a scenario step's `target:`, the scenario's `target:`, `wasim.target(...)`,
the TUI's dialog) goes through `resolve`, with one precedence rule: the layer given last wins,
a value of None (or an empty list) is "not given", and what no layer gives takes the table's
default. `delivery.delivery_options_from` turns the result into typed `DeliveryOptions`; a
setting it has no field for rides in `DeliveryOptions.extra`. To add a setting, add one row
here and read it where it acts (docs/guides/extending.md).

The person's permission to send off this machine (`--allow-remote`) is not a setting: files
fill settings, and a file must never lift the remote guard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from simulator.inputs import MAX_RETRIES, MAX_WAIT


@dataclass(frozen=True)
class Setting:
    """One delivery setting: its key in a `target:` block and how the command line spells it."""

    key: str
    """The name in a scenario's `target:`, in `wasim.target(...)` and in resolved settings."""
    flag: str
    """The long command-line flag, e.g. `--timeout`."""
    help: str
    """The help text of the flag."""
    default: Any = None
    """The value when no source gives one (None: not set)."""
    param: str | None = None
    """The click parameter name when it is not the key (`app_spec` for `app`)."""
    envvar: str | None = None
    """The environment variable that stands in for the flag."""
    metavar: str | None = None
    """How the help names the flag's value."""
    short: str | None = None
    """A one-letter alias, e.g. `-H`."""
    multiple: bool = False
    """Whether the flag repeats (its value is then a tuple)."""
    kind: str = "text"
    """The value's type: text, url, seconds, positive_seconds, retries, method, envelope,
    signature, headers (see KINDS); with `low`/`high` its bounds, `choices` its values."""
    low: float | None = None
    """The least number allowed (a number kind's own bound when None)."""
    high: float | None = None
    """The greatest number allowed (a number kind's own bound when None)."""
    choices: tuple[str, ...] = ()
    """The values allowed (any case), for a choice kind's own when empty."""

    @property
    def name(self) -> str:
        """The click parameter name."""
        return self.param or self.key

    @property
    def value_kind(self) -> ValueKind:
        """Its type, with this setting's bounds and choices over the type's own."""
        base = KINDS[self.kind]
        return ValueKind(base.type, self.low if self.low is not None else base.low,
                         self.high if self.high is not None else base.high, base.low_open,
                         self.choices or base.choices)

    def check(self, value: Any) -> Any:
        """`value` from a file or the Python API as this setting's type, within its bounds;
        ValueError says what is wrong (the face says where)."""
        return self.value_kind.check(value)


@dataclass(frozen=True)
class ValueKind:
    """A setting's type: text, a number (`whole` or not) within bounds, one of `choices`, or
    the headers' mapping of name: value."""

    type: Literal["text", "number", "whole", "choice", "headers"]
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low bound itself is refused (a timeout of 0)
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> Any:
        """`value` as this type; ValueError with the one-line reason."""
        if self.type == "headers":
            entries = list(value.values()) if isinstance(value, Mapping) else value
            if not isinstance(entries, list | tuple):
                raise ValueError(f"expected a mapping of name: value, got {_shown(value)}")
            for entry in entries:
                if isinstance(entry, bool) or not isinstance(entry, str | int | float):
                    raise ValueError(f"expected text header values, got {_shown(entry)}")
            return dict(value) if isinstance(value, Mapping) else tuple(map(str, value))
        if self.type in ("number", "whole"):
            low = self.low if self.low is not None else 0.0
            high = self.high if self.high is not None else MAX_WAIT
            whole = self.type == "whole"
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or (whole and not isinstance(value, int)):
                raise ValueError(f"expected {'a whole number' if whole else 'a number'}, got "
                                 f"{_shown(value)}")
            # `not low <= value` is also true for NaN; infinity is above any high.
            if not low <= value <= high or (self.low_open and value == low):
                above = f"more than {low:g}" if self.low_open else f"from {low:g}"
                raise ValueError(f"expected {'a whole number' if whole else 'a number'} "
                                 f"{above} to {high:g}, got {_shown(value)}")
            return int(value) if whole else float(value)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected text, got {_shown(value)}")
        text = str(value)
        if self.choices and text.lower() not in {c.lower() for c in self.choices}:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {_shown(value)}")
        return text


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:60]


# Every type a setting may have, with its own bounds (a row may narrow them).
KINDS: dict[str, ValueKind] = {
    "text": ValueKind("text"),
    "url": ValueKind("text"),
    "seconds": ValueKind("number", 0, MAX_WAIT),
    "positive_seconds": ValueKind("number", 0, MAX_WAIT, low_open=True),
    "retries": ValueKind("whole", 0, MAX_RETRIES),
    "method": ValueKind("choice", choices=("POST", "PUT", "PATCH")),
    "envelope": ValueKind("choice", choices=("kaleyra", "meta")),
    "signature": ValueKind("choice", choices=("valid", "missing", "wrong-secret",
                                              "reserialized", "bad-format")),
    "headers": ValueKind("headers"),
}


SETTINGS: tuple[Setting, ...] = (
    Setting("url", "--url", "Your webhook, e.g. http://127.0.0.1:8000/webhook.",
            envvar="WASIM_URL", metavar="URL", kind="url"),
    Setting("app", "--app", "Call your ASGI (FastAPI, Starlette) or WSGI (Flask, Django) app "
            "in-process: no server, no port. Imported from the current folder.",
            param="app_spec", metavar="[asgi:|wsgi:]MODULE:APP"),
    Setting("path", "--path", "The webhook's path inside --app.", default="/",
            param="app_path"),
    Setting("method", "--method", "HTTP method of the callback profile.", default="POST",
            kind="method"),
    Setting("headers", "--header", "A custom static header of the callback profile; "
            "repeatable. The variable holds one per line, so a token stays out of the process "
            "list.", default=(), short="-H", metavar='"NAME: VALUE"', multiple=True,
            envvar="WASIM_HEADERS", kind="headers"),
    Setting("basic_auth", "--basic-auth", "HTTP Basic auth.", envvar="WASIM_BASIC_AUTH",
            metavar="USER:PASSWORD"),
    Setting("token_url", "--token-url", "Advanced Authentication: fetch a bearer token here "
            "first (client-credentials form POST) and reuse it until it expires.",
            metavar="URL", kind="url"),
    Setting("client_id", "--client-id", "Client id for --token-url.", metavar="ID"),
    Setting("client_secret", "--client-secret", "Client secret for --token-url.",
            envvar="WASIM_CLIENT_SECRET", metavar="SECRET"),
    Setting("timeout", "--timeout", "Seconds to wait for the handler's answer.", default=10.0,
            kind="positive_seconds"),
    Setting("success", "--success", "Statuses that count as delivered: 2xx, 200,202 or "
            "200-299.", default="2xx", metavar="CODES"),
    Setting("retries", "--retries", "Retries after a failed attempt (error status, timeout, "
            "refused); at most 100.", default=0, kind="retries"),
    Setting("backoff", "--backoff", "Seconds before the first retry; each next wait doubles.",
            default=1.0, kind="seconds"),
    Setting("retry_schedule", "--retry-schedule", "Explicit waits before each retry, e.g. "
            "1,5,30; 'platform' is a compressed at-least-once schedule "
            "(1,5,30,120,600,1800). Overrides --retries/--backoff.",
            metavar="SECONDS,...|platform"),
    Setting("envelope", "--envelope", "Body envelope: kaleyra, or meta (Meta's webhook: object, "
            "entry[].changes[]).", default="kaleyra", kind="envelope"),
    Setting("app_secret", "--app-secret", "Sign every request with X-Hub-Signature-256 "
            "(HMAC-SHA256 of the exact body bytes), as Meta does.", envvar="WASIM_APP_SECRET",
            metavar="SECRET"),
    Setting("signature", "--signature", "A negative case: send no signature, one under a wrong "
            "secret, one over a re-serialized body, or a sha1= one (the legacy format). The "
            "handler must refuse: 401/403 count as delivered unless --success is given.",
            default="valid", kind="signature"),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
KEYS: tuple[str, ...] = tuple(BY_KEY)
DEFAULTS: dict[str, Any] = {s.key: s.default for s in SETTINGS if s.default is not None}
TARGET_KEYS = ("url", "app", "path")
"""Where to deliver; the rest says how."""
RETRY_KEYS = ("retries", "backoff", "retry_schedule")
"""Settings of the retry policy (`wasim load` sends each callback once)."""


def table() -> dict[str, Setting]:
    """The settings by key, read from SETTINGS now: the one place a setting is declared."""
    return {s.key: s for s in SETTINGS}


def default(key: str, fallback: Any = None) -> Any:
    """The table's default of `key`."""
    setting = table().get(key)
    return fallback if setting is None or setting.default is None else setting.default


def check_settings(values: Mapping[str, Any], where: Callable[[str], str]) -> dict[str, Any]:
    """Each given setting checked against the table and typed (None is "not given"); a key
    the table does not have, or a value of the wrong type or out of bounds, is a WasimError
    at `where(key)`, naming the field."""
    from simulator.errors import WasimError, did_you_mean

    known = table()
    checked: dict[str, Any] = {}
    for key, value in values.items():
        setting = known.get(key)
        if setting is None:
            raise WasimError("not a delivery setting", where=where(key), field=key,
                             hint=did_you_mean(key, known) or f"Settings: {', '.join(known)}.")
        if value is None:
            continue
        try:
            checked[key] = setting.check(value)
        except ValueError as exc:
            raise WasimError(str(exc), where=where(key), field=key) from None
    return checked


def flag_of(key: str) -> str:
    """The command-line flag of a setting (`timeout` -> `--timeout`)."""
    setting = table().get(key)
    return setting.flag if setting else "--" + key.replace("_", "-")


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a source actually gives: None and empty lists are "not given"."""
    return {k: v for k, v in values.items() if v is not None and v != ()}


def from_params(params: Mapping[str, Any], keys: Iterable[str] = KEYS) -> dict[str, Any]:
    """The settings given on the command line, from click's parameters (named as in SETTINGS)."""
    return given({key: params.get(BY_KEY[key].name) for key in keys})


Layer = tuple[Mapping[str, Any], Callable[[str], str]]
"""Settings from one source and how to name where each came from (`--timeout`, `file:line`)."""


def resolve(*layers: Layer) -> tuple[dict[str, Any], Callable[[str], str]]:
    """Merge sources, lowest precedence first: (scenario, step, flags or API or dialog).

    A source that names a target (url or app) replaces the target of the sources below it:
    `--url` over a file's `app:` sends to the URL. Returns the merged settings (defaults are
    left to `delivery_options_from`, from this table) and `where(key)`: the place the winning
    value of `key` came from, for errors.
    """
    merged: dict[str, Any] = {}
    origin: dict[str, Callable[[str], str]] = {}
    for values, named in layers:
        values = given(values)
        if "url" in values or "app" in values:
            for key in ("url", "app"):
                merged.pop(key, None)
        for key, value in values.items():
            merged[key] = value
            origin[key] = named
    last = layers[-1][1] if layers else str

    def where(key: str) -> str:
        return origin.get(key, last)(key)

    return merged, where
