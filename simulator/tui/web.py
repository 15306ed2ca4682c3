"""`wasim tui --web` and `wasim demo --web`: the very same Textual app, served to a browser.

textual-serve runs the app as a subprocess per browser tab, speaking Textual's web driver
over the subprocess's stdin and stdout. That subprocess is `python -m simulator`, which
runs the same command with the same options: they travel in an environment variable
(WASIM_WEB_ARGS, JSON), not on its command line, so a token or secret given as a flag is not
printed by textual-serve nor shown by `ps`. Only 127.0.0.1 is served.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from simulator.errors import WasimError
from simulator.params import PORT

if TYPE_CHECKING:
    import socket

# The standard modules this needs are imported where used: `wasim --help` imports this
# module (for --web's options) and should not pay for sockets and signals.

ARGS_ENV = "WASIM_WEB_ARGS"  # the served command's arguments, a JSON list of strings
HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# The environment textual-serve gives the app it runs (textual_serve.app_service).
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"

# --web and --web-port themselves: the served command runs in the browser's process, not again.
_OWN = ("web", "web_port")


def web_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --web and --web-port (shared by `wasim tui` and `wasim demo`)."""
    command = click.option(
        "--web-port", type=PORT, default=DEFAULT_PORT, show_default=True,
        help="Port of --web's page on 127.0.0.1; when it is taken, a free one is used and "
             "printed. 0: any free one.")(command)
    return click.option(
        "--web", is_flag=True,
        help="Serve this same UI to a browser (on 127.0.0.1 only) instead of the terminal: "
             "every tab opens its own phone, with these options. Ctrl+C stops it.")(command)


def under_web_driver() -> bool:
    """Whether Textual will draw through its web driver (in a browser), not on a terminal."""
    return os.environ.get("TEXTUAL_DRIVER", "") == WEB_DRIVER


def served_args(ctx: click.Context) -> list[str]:
    """The command line that repeats `ctx`'s command with every option given, less --web.

    Rebuilt from the parsed values (defaults left out, so the served command applies the
    same defaults and environment): relative paths stay relative, as the served command runs
    in the same directory.
    """
    from click.core import ParameterSource

    args: list[str] = []
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name in _OWN or name not in ctx.params:
            continue
        source = ctx.get_parameter_source(name)
        if source in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            continue
        value = ctx.params[name]
        if isinstance(param, click.Argument):
            if value is not None:
                positional.extend(str(v) for v in value) if isinstance(value, tuple) \
                    else positional.append(str(value))
            continue
        if not isinstance(param, click.Option):
            continue
        flag = max(param.opts, key=len)
        if param.is_flag and not param.count:
            if value:
                args.append(flag)
            elif param.secondary_opts:
                args.append(max(param.secondary_opts, key=len))
            continue
        if param.count:
            args.extend([flag] * int(value or 0))
            continue
        for item in value if param.multiple else (value,):
            if item is None:
                continue
            if isinstance(item, tuple):
                args.extend([flag, *map(str, item)])
            else:
                args.extend([flag, str(item)])
    path = ctx.command_path.split()[1:]  # `wasim tui` -> ["tui"]
    # After "--", nothing is read as an option (a scenario file named "-x", say).
    return [*path, *args, "--", *positional] if positional else [*path, *args]


def _listen(port: int, command: str) -> socket.socket:
    """A listening socket on 127.0.0.1: `port`, or a free one when it is taken (said)."""
    import errno
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            sock.close()
            raise WasimError(f"cannot listen on {HOST}:{port} ({exc.strerror})",
                             where="--web-port", hint="Pick another port, or 0 for any free "
                                                      "one.") from None
        sock.bind((HOST, 0))
        click.echo(f"{command}: port {port} is taken; using {sock.getsockname()[1]}", err=True)
    sock.listen(128)
    return sock


def serve(ctx: click.Context, title: str) -> int:
    """Serve `ctx`'s command (less --web) to browsers until Ctrl+C; the exit code."""
    import contextlib
    import json
    import shlex
    import signal
    import sys

    try:
        from textual_serve.server import Server
    except ImportError:
        raise WasimError("serving to a browser needs textual-serve, which is not installed",
                         where="--web", hint="Install it: pip install 'wasim[web]'") from None
    from aiohttp import web

    # The scenario's name is outside text: its control characters shown, not obeyed.
    title = "".join(c if c.isprintable() else repr(c)[1:-1] for c in title)
    command = ctx.command_path
    sock = _listen(ctx.params["web_port"], command)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"

    class _Server(Server):
        """textual-serve's server on our socket, with a tab title and no outside fonts."""

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            response = await super().handle_index(request)
            assert isinstance(response, web.Response)  # aiohttp_jinja2 renders the whole page
            return web.Response(text=local_page(response.text or "", title, url),
                                content_type="text/html")

        async def on_startup(self, app: web.Application) -> None:
            click.echo(f"{command}: serving {title} on {url} (Ctrl+C stops)", err=True)

        def run(self) -> None:
            """Server.serve, listening on `sock` (no race for the port) and quiet."""
            self.initialize_logging()
            loop = asyncio_loop()
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGINT, self.request_exit)
                loop.add_signal_handler(signal.SIGTERM, self.request_exit)
            web.run_app(self._make_app(), sock=sock, handle_signals=False, loop=loop,
                        print=lambda *args: None, access_log=None, shutdown_timeout=5.0)

    os.environ[ARGS_ENV] = json.dumps(served_args(ctx))
    server = _Server(shlex.join([sys.executable, "-m", "simulator"]), host=HOST,
                     port=sock.getsockname()[1], title=title, public_url=url.rstrip("/"))
    try:
        server.run()
    finally:
        sock.close()
        os.environ.pop(ARGS_ENV, None)
    return 0


def asyncio_loop() -> Any:
    """A fresh event loop, set as the current one (aiohttp's run_app runs on it)."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def local_page(page: str, title: str, url: str) -> str:
    """textual-serve's page with a <title> and its own copy of the font, not Google's."""
    import html
    import re

    font = (f"<style>@font-face {{font-family: 'Roboto Mono'; src: url('{url}static/fonts/"
            "RobotoMono-VariableFont_wght.ttf');}</style>")
    page = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>", lambda _: font, page, count=1)
    return page.replace("<head>", f"<head>\n    <title>{html.escape(title)}</title>", 1)


def served_command() -> list[str] | None:
    """In the process textual-serve runs (`python -m simulator`): the arguments to run, else None.

    Ctrl+C in the terminal reaches every process of its group; the server stops this app
    itself (its "quit" message), so it is ignored here: the app ends as after q, history
    written and the demo's bot drained.
    """
    given = os.environ.pop(ARGS_ENV, None)
    if given is None:
        return None
    import json
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return [str(arg) for arg in json.loads(given)]
