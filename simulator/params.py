"""Click parameter types for what people type: bounded finite numbers and URLs with real ports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import click

from simulator.inputs import (
    MAX_RETRIES,
    MAX_SEED,
    MAX_WAIT,
    check_path,
    parse_number,
    port_of_url,
)

__all__ = [
    "FILE_PATH",
    "MAX_CONCURRENCY",
    "MAX_COUNT",
    "MAX_RETRIES",
    "MAX_WAIT",
    "PORT",
    "SEED",
    "SEND_API_OPTIONS",
    "SPEED",
    "TEMPLATE_ENV_OPTION",
    "FilePath",
    "HeaderLines",
    "Number",
    "api_port_option",
    "check_not_empty",
    "check_paths",
    "check_url",
    "click_options",
    "default_api_port",
    "flag_of",
    "not_empty",
    "send_api_options",
]


def flag_of(param: click.Parameter | None) -> str:
    """The long spelling of an option (`--count`, not `-n`), for error messages."""
    return max(param.opts, key=len) if param is not None and param.opts else "value"


class Number(click.ParamType[float, Any]):
    """A click type for a bounded, finite number; errors are one line naming the flag."""

    def __init__(self, low: float | None = None, high: float | None = None, *,
                 integer: bool = False, low_open: bool = False, what: str | None = None) -> None:
        self.low, self.high, self.integer = low, high, integer
        self.low_open, self.what = low_open, what
        self.name = "integer" if integer else "float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        """Parse `value` with inputs.parse_number (which raises a WasimError)."""
        number = parse_number(value, flag_of(param), low=self.low, high=self.high,
                              integer=self.integer, low_open=self.low_open, what=self.what)
        return int(number) if self.integer else float(number)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        """INTEGER or FLOAT in help, as click's own types show."""
        return self.name.upper()


def check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback for URL options: port 99999 is an error here, not a crash later."""
    if value is None:
        return None
    return port_of_url(value, flag_of(param))


class FilePath(click.ParamType[str, Any]):
    """A click type for a file to read or write: empty, NUL or over-long is a one-line error.

    Checked while parsing, so no command meets an OSError (or ValueError) for the name alone.
    """

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        """The path as given, once its shape is checked."""
        return check_path(str(value), flag_of(param))


def check_paths(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback for file options and arguments: an over-long name is a one-line error."""
    for text in value if isinstance(value, tuple) else (value,):
        if isinstance(text, str) and text != "-":
            # An argument is named by its metavar: [SCENARIO] and FILE|- read SCENARIO, FILE.
            check_path(text, flag_of(param) if isinstance(param, click.Option)
                       else param.human_readable_name.strip("[]").split("|")[0])
    return value


def _templates(ctx: click.Context, param: click.Parameter, value: str | None
               ) -> tuple[str, ...] | None:
    from simulator.sendapi import parse_templates

    return None if value is None else parse_templates(value, flag_of(param))


def _fails(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[Any, ...]:
    from simulator.sendapi import parse_fail

    return tuple(parse_fail(text, flag_of(param)) for text in value)


def _account(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--sid / --api-key, checked as the send API checks them, the flag named on error."""
    if value is None:
        return None
    check_not_empty(ctx, param, value)  # '' must not mean "the published default"
    from simulator.errors import WasimError
    from simulator.sendapi import ApiOptions

    try:
        ApiOptions(sid=value) if param.name == "api_sid" else ApiOptions(api_key=value)
    except WasimError as exc:
        from_env = ctx.get_parameter_source(param.name or "") == \
            click.core.ParameterSource.ENVIRONMENT
        envvar = param.envvar if isinstance(param.envvar, str) else \
            next((name for name in param.envvar or () if name in os.environ), None)
        exc.where = (envvar or flag_of(param)) if from_env else flag_of(param)
        raise
    return value


# The send API's account, shared by `wasim api`, `run`, `tui`, `demo` and `fire`: the approved
# templates, failure rules, and the SID and key an app already running with KALEYRA_* set uses.
SEND_API_OPTIONS: list[Any] = [
    click.option("--templates", "api_templates", metavar="NAME,...", callback=_templates,
                 help="The send API's approved templates: a template send naming another "
                      "fails with 132001 (a FAILED status), e.g. --templates "
                      "order_update,catalogue.  [default: any name; a scenario's own]"),
    click.option("--fail", "api_fail", multiple=True, metavar="NUMBER=CODE|SHARE%=CODE",
                 callback=_fails,
                 help="Messages to NUMBER (or a seeded SHARE of recipients) fail with Meta's "
                      "error CODE (131026 undeliverable, 131047 24 h window, 132001, 130429, "
                      "131051), e.g. --fail 919876543210=131026 --fail 5%=131047; repeatable."),
    click.option("--v1-id", "api_v1_id", type=click.Choice(["bare", "suffixed"]),
                 default="bare", show_default=True,
                 help="The V1 send answer's top-level id: the bare UUID, or <uuid>:0 as V1 "
                      "statuses carry it (clients that key statuses on it, such as courier, "
                      "need suffixed)."),
    click.option("--sid", "api_sid", envvar="KALEYRA_SID", metavar="SID", callback=_account,
                 help="The send API's SID (in its paths).  [env: KALEYRA_SID; default: "
                      "HXIN2026000001IN]"),
    click.option("--api-key", "api_key", envvar=["KALEYRA_API_KEY", "WASIM_API_KEY"],
                 metavar="KEY", callback=_account,
                 help="The api-key the send API accepts; the variables keep it out of the "
                      "process list.  [env: KALEYRA_API_KEY or WASIM_API_KEY; default: "
                      "printed at start]"),
]


def default_api_port() -> int:
    """The send API's port when `--api-port` is given bare: that of $KALEYRA_BASE_URL when it
    names this machine (an app already running with KALEYRA_* set), else `wasim api`'s 8700."""
    import os
    from urllib.parse import urlsplit

    from simulator.sendapi import DEFAULT_PORT

    try:
        parts = urlsplit(os.environ.get("KALEYRA_BASE_URL", ""))
        port = parts.port
    except ValueError:
        return DEFAULT_PORT
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and port:
        return port
    return DEFAULT_PORT


def _api_port(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    if value == "\0default":
        return default_api_port()
    return int(PORT.convert(value, param, ctx))


def api_port_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--api-port [PORT]`: a port (0: any free one), or bare: default_api_port()."""
    return click.option("--api-port", metavar="[PORT]", default=None, is_flag=False,
                        flag_value="\0default", callback=_api_port,
                        help=help_text + "  --api-port alone: the port of $KALEYRA_BASE_URL "
                                         "on this machine, else 8700.")


def send_api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command with SEND_API_OPTIONS, in order."""
    for option in reversed(SEND_API_OPTIONS):
        command = option(command)
    return command


# Callbacks are rendered and sent one at a time, so this only keeps a typo from running for days.
MAX_COUNT = 10**9
MAX_CONCURRENCY = 10_000  # connections of `wasim load`; each is a socket and a task
FILE_PATH = FilePath()
PORT = Number(0, 65535, integer=True, what="a TCP port")
SPEED = Number(0.001, 1e6, what="a speed factor")
SEED = Number(0, MAX_SEED, integer=True, what="a seed (a whole number)")


def check_env_names(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback for --template-env: each value must be a variable name."""
    import re

    from simulator.errors import WasimError
    from simulator.inputs import shown

    for name in value:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
            raise WasimError(f"{shown(name)[:80]} is not an environment variable name",
                             where="--template-env", hint="Name one variable, e.g. "
                             "--template-env WEBHOOK_URL; repeat the flag for more.")
    return value


TEMPLATE_ENV_OPTION = click.option(
    "--template-env", "template_env", multiple=True, metavar="NAME", callback=check_env_names,
    help="Let the scenario's Jinja read this environment variable as env.NAME; repeatable. "
         "It sees no other: wasim's own secrets live in the environment too.")


def check_not_empty(ctx: click.Context | None, param: click.Parameter | None,
                    value: Any) -> Any:
    """A click callback refusing an empty value: `--api-key ''` must not mean "the default",
    nor `--host ''` "every interface"."""
    from simulator.errors import WasimError

    for text in value if isinstance(value, tuple) else (value,):
        if isinstance(text, str) and not text.strip():
            raise WasimError("the value is empty", where=flag_of(param),
                             hint="Give a value, or leave the flag out for the default.")
    return value


def not_empty(then: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """check_not_empty, followed by another click callback (`then`) if any."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        value = check_not_empty(ctx, param, value)
        return then(ctx, param, value) if then is not None else value
    return callback


class HeaderLines(click.ParamType[str, Any]):
    """Text whose environment variable holds one value per line (`WASIM_HEADERS`: one
    "Name: value" per line), blank lines skipped."""

    name = "text"
    envvar_list_splitter = "\n"

    def split_envvar_value(self, rv: str) -> list[str]:
        """The variable's non-blank lines."""
        return [line.strip() for line in rv.splitlines() if line.strip()]

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        """The value as text."""
        return str(value)


def click_options(keys: Iterable[str] | None = None) -> Callable[[Any], Any]:
    """A decorator adding the click options of `keys` (all: None), generated from the
    settings table (simulator.settings); a face's, so it lives with the click types.

    Options carry no click default (None means "not given", so a file's value is not
    overridden by a default); the help shows the table's default instead.
    """
    import click

    from simulator.settings import BY_KEY, KEYS

    kinds: dict[str, dict[str, Any]] = {
        "text": {},
        "url": {"callback": check_url},
        "method": {"type": click.Choice(["POST", "PUT", "PATCH"], case_sensitive=False)},
        "seconds": {"type": Number(0, MAX_WAIT, what="seconds")},
        "positive_seconds": {"type": Number(0, MAX_WAIT, low_open=True, what="seconds")},
        "retries": {"type": Number(0, MAX_RETRIES, integer=True)},
        "envelope": {"type": click.Choice(["kaleyra", "meta"], case_sensitive=False)},
        "signature": {"type": click.Choice(["valid", "missing", "wrong-secret",
                                            "reserialized", "bad-format"])},
        "headers": {},
    }
    chosen = [BY_KEY[key] for key in (KEYS if keys is None else keys)]

    def decorate(command: Any) -> Any:
        for setting in reversed(chosen):
            help_text = setting.help
            if setting.envvar:
                help_text += f"  [env: {setting.envvar}]"
            decls = [setting.flag] + ([setting.short] if setting.short else [])
            extra: dict[str, Any] = dict(kinds[setting.kind])
            if setting.kind in ("text", "url", "headers"):
                # An empty value is a mistake, never "not given" (then a default applies).
                extra["callback"] = not_empty(extra.get("callback"))
            if setting.multiple and setting.envvar:
                extra["type"] = HeaderLines()
            if setting.default not in (None, ()):
                help_text += f"  [default: {setting.default}]"
            command = click.option(*decls, setting.name, envvar=setting.envvar,
                                   metavar=setting.metavar, multiple=setting.multiple,
                                   help=help_text, **extra)(command)
        return command

    return decorate
