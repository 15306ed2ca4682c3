"""Click parameter types for what people type: bounded finite numbers and URLs with real ports."""

from __future__ import annotations

from collections.abc import Callable
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
    "SPEED",
    "TEMPLATE_ENV_OPTION",
    "FilePath",
    "HeaderLines",
    "Number",
    "check_not_empty",
    "check_paths",
    "check_url",
    "flag_of",
    "not_empty",
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
