"""Distributed load with Locust: `WasimUser` sends wasim's unique, valid callbacks.

`pip install 'wasim[locust]'`, then a locustfile subclasses WasimUser (it is abstract, as
Locust's own HttpUser is)::

    from simulator.locust import WasimUser

    class Callbacks(WasimUser):
        host = "http://127.0.0.1:8000/webhook"  # or --host; the full webhook URL
        seed = 7

and `locust -f locustfile.py` runs it, alone or as `--master` with `--worker`s on many
machines, with Locust's UI, statistics and reports (see "Distributed load with Locust" in the
README). It is configured like `wasim load`; each setting is a class attribute, and a Locust
command-line option (or its environment variable) given to the run overrides it:

    ====================  ==========================  ==================================
    class attribute       option (environment)        what
    ====================  ==========================  ==================================
    host                  --host (LOCUST_HOST)        the webhook URL (else WASIM_URL)
    seed                  --wasim-seed                seed of the callbacks (else random,
                                                      drawn once by the master)
    countries             --wasim-country             users' countries, comma-separated
    buttons               --wasim-button              buttons tapped, comma-separated
    scenario              --wasim-scenario            a scenario: its business, template,
                                                      cast, first step's buttons and target
    envelope              --wasim-envelope            kaleyra, or meta
    app_secret            --wasim-app-secret          sign X-Hub-Signature-256
                          (WASIM_APP_SECRET)
    basic_auth            --wasim-basic-auth          USER:PASSWORD
                          (WASIM_BASIC_AUTH)
    count                 --wasim-count               callbacks per process; then its run
                                                      ends (headless: it quits; a worker
                                                      given no users quits at once)
    allow_remote          --wasim-allow-remote        send off this machine (see below)
    replies               --wasim-replies             run the send API in this process and
                                                      match every tap to the app's reply
    api_port              --wasim-api-port            its port (default 8700; 0: any)
    headers, method, timeout, success, signature       as the settings of the same name
    ====================  ==========================  ==================================

Callbacks come from the same seeded source as `wasim load` (`simulator.load.CallbackSource`),
partitioned per Locust worker: worker k draws its own users and message ids from partition k
of the seed (`TapOptions.partition`) while every worker shares the business and campaign, so
ids stay unique across workers and machines; a run without workers is partition 0, the plain
seed, and gives the callbacks `wasim load --seed N` gives. The master draws the seed when
none is given and hands it to the workers with the rest of the options. All users of one
process share its source (greenlets take turns, so no lock is needed), each with its own
kept-alive connection, sending the exact bytes and headers of every other face
(`delivery.callback_headers`). Each request is named in Locust's statistics by kind and button
(`button_tap: Shop now`); an answer outside `success` (2xx by default), a timeout, a refused
or reset connection and a garbled answer are failures. Answers are read in bounded memory (the
fast client's reader of `simulator.load`); redirects are not followed.

The loopback guard: like the rest of wasim, WasimUser sends only to this machine (a host that
resolves to 127.0.0.0/8 or ::1 only) and connects to the address checked, not the name. To
send elsewhere, the person running each process says so: `--wasim-allow-remote` on that
process's command line (a config file or the master's options cannot lift it: a worker needs
its own), or `allow_remote = True` in the locustfile's class.

With `replies`, the process runs wasim's send API (its settings in KALEYRA_BASE_URL,
KALEYRA_SID and KALEYRA_API_KEY, as `wasim load --replies` sets them) and matches every tap
to the app's reply: each reply is a Locust request of type REPLY (its response time is the
reply latency, tap sent to reply received); a duplicate reply, a reply to the wrong user and,
once the process has sent its count and waited for the last replies, each missing reply is a
REPLY failure. One send API per process: run one process per machine with it (or give each
its own --wasim-api-port), since the app replies to one URL.

Not yet: token authentication (`token_url`; give a static Authorization header instead) and
in-process apps (`--app`).
"""

from __future__ import annotations

import logging
import secrets
import select
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

try:
    # gevent is locust's own dependency; it ships no types (types-gevent would be for this alone).
    import gevent  # type: ignore[import-untyped]
    from locust import User, events, task
    from locust.exception import StopUser
    from locust.runners import WorkerRunner
except ImportError as exc:  # installed without the extra: say how to get it
    raise ImportError(f"simulator.locust needs Locust ({exc.name} is missing): "
                      "pip install 'wasim[locust]'") from None

from simulator.delivery import (
    DeliveryOptions,
    callback_headers,
    default_port,
    delivery_options_from,
    host_key,
    is_loopback_address,
    resolve_host,
)
from simulator.errors import WasimError
from simulator.load import CallbackSource
from simulator.meta import SIGNATURE_HEADER, signature_for
from simulator.rawhttp import _AnswerReader
from simulator.terminal import visible

logger = logging.getLogger("wasim")

ALLOW_REMOTE_FLAG = "--wasim-allow-remote"
# Locust options of WasimUser's settings: (option, attribute, environment variable, help).
OPTIONS: tuple[tuple[str, str, str | None, str], ...] = (
    ("--wasim-seed", "seed", None, "Seed of the callbacks (default: random, drawn by the "
     "master)."),
    ("--wasim-country", "countries", None, "Users' countries, comma-separated (default: IN)."),
    ("--wasim-button", "buttons", None, "Buttons tapped, comma-separated (default: the demo "
     "three)."),
    ("--wasim-scenario", "scenario", None, "A scenario file or name: its business, template, "
     "cast, first step's buttons and target."),
    ("--wasim-envelope", "envelope", None, "Body envelope: kaleyra or meta."),
    ("--wasim-app-secret", "app_secret", "WASIM_APP_SECRET", "Sign X-Hub-Signature-256."),
    ("--wasim-basic-auth", "basic_auth", "WASIM_BASIC_AUTH", "HTTP Basic auth, USER:PASSWORD."),
    ("--wasim-count", "count", None, "Callbacks each process sends before it quits."),
    ("--wasim-api-port", "api_port", None, "With --wasim-replies: the send API's port "
     "(default 8700; 0: any free one)."),
)
REPLIES_FLAG = "--wasim-replies"
REPLY_WAIT = 10.0  # seconds a process past its count waits for the last replies
_SECRETS = {"app_secret", "basic_auth"}
# The delivery settings a class attribute may give (the names of simulator.settings).
_DELIVERY_KEYS = ("method", "headers", "basic_auth", "timeout", "success", "envelope",
                  "app_secret", "signature")
# The core's field names of WasimUser's own settings, for errors.
_FIELDS = {"seed": "seed", "country": "countries", "countries": "countries",
           "button": "buttons", "buttons": "buttons", "scenario": "scenario"}
_NAME_CAP = 60  # characters of a button label in a request's name in Locust's statistics


def _flag(field: str) -> str:
    """How this face names an input an error's text names: its Locust option, or the class
    attribute a WasimUser sets."""
    if field == "allow_remote":
        return ALLOW_REMOTE_FLAG
    if field == "url":
        return "--host"
    option = next((o for o, attribute, _, _ in OPTIONS if attribute == field), None)
    return option or f"WasimUser.{field}"

# This process's own permission to send off the machine, read from its command line at init
# (a worker's options are replaced by the master's when a run starts).
_allowed_here = False
_idle: dict[str, bool] = {}  # a worker given no users, ending (see _done_if_idle)


# locust's EventHook.add_listener has no annotations: the listeners keep their own types.
@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_options(parser: Any) -> None:
    """Add WasimUser's options to Locust's command line (and web UI)."""
    # On the parser itself: only its add_argument takes Locust's web UI keywords.
    for flag, key, envvar, text in OPTIONS:
        kind = int if key in ("seed", "count", "api_port") else str
        parser.add_argument(flag, type=kind, default=None, env_var=envvar, help=text,
                            is_secret=key in _SECRETS)
    parser.add_argument(REPLIES_FLAG, action="store_true", default=False,
                        help="Run the send API in this process and match every tap to the "
                             "app's reply: 'REPLY' rows in the statistics (latency; missing, "
                             "duplicate and wrong-user replies as failures).")
    parser.add_argument(ALLOW_REMOTE_FLAG, action="store_true", default=False,
                        include_in_web_ui=False,
                        help="Allow a host that is not this machine (this process only).")


@events.init.add_listener  # type: ignore[untyped-decorator]
def on_init(environment: Any, **_: Any) -> None:
    """Check the options before the run: a one-line error and exit 2, never a traceback."""
    global _allowed_here
    options = environment.parsed_options
    # Only the command line itself lifts the guard: configargparse also reads locust.conf
    # and pyproject.toml, and a shared file must never send callbacks off this machine.
    _allowed_here = bool(options is not None and getattr(options, "wasim_allow_remote", False)
                         and ALLOW_REMOTE_FLAG in sys.argv)
    if isinstance(environment.runner, WorkerRunner):
        environment.events.spawning_complete.add_listener(
            lambda **_: gevent.spawn(_done_if_idle, environment))
        return  # a worker's settings come with the run, from the master
    if options is None:
        return
    # Sent to the workers with the options (Locust sends them only its custom ones): a
    # worker past its count quits only when no one watches the run in the UI.
    options.wasim_headless = bool(options.headless)
    try:
        for user_class in environment.user_classes:
            if not issubclass(user_class, WasimUser):
                continue
            shared = _Shared.build(user_class, environment, partition=0, connect=False)
            if getattr(options, "wasim_seed", None) is None and user_class.seed is None:
                # Drawn (or the scenario's) once here and sent to every worker with the
                # options: one business, disjoint partitions.
                options.wasim_seed = shared.source.factory.options.seed
    except WasimError as exc:
        print(visible(f"wasim: {exc.one_line(_flag)}"), file=sys.stderr)
        sys.exit(int(exc.exit_code))


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def on_test_start(environment: Any, **_: Any) -> None:
    """A new run (another start in the web UI): counts start again, ids go on unique."""
    for shared in _Shared._by_class.values():
        shared.issued, shared.quitting = 0, False
    _idle.clear()


class CallbackFailed(Exception):
    """A callback that was not delivered; the message is a bounded kind (Locust groups by it)."""


class WasimUser(User):
    """A Locust user that sends unique, valid callbacks like `wasim load` (see the module)."""

    abstract = True
    seed: ClassVar[int | None] = None
    countries: ClassVar[tuple[str, ...] | str] = ("IN",)
    buttons: ClassVar[tuple[str, ...] | str] = ()
    scenario: ClassVar[str | None] = None
    method: ClassVar[str | None] = None
    headers: ClassVar[Mapping[str, str] | tuple[str, ...] | None] = None  # "Name: value"s
    basic_auth: ClassVar[str | None] = None
    timeout: ClassVar[float | None] = None
    success: ClassVar[str | None] = None
    envelope: ClassVar[str | None] = None
    app_secret: ClassVar[str | None] = None
    signature: ClassVar[str | None] = None
    count: ClassVar[int | None] = None
    allow_remote: ClassVar[bool] = False
    replies: ClassVar[bool] = False
    api_port: ClassVar[int | None] = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._shared: _Shared | None = None
        self._sock: socket.socket | None = None
        self._reader = _AnswerReader()

    def on_start(self) -> None:
        """Join this process's share of the seeded source (built by its first user)."""
        runner = self.environment.runner
        partition = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        try:
            self._shared = _Shared.get(type(self), self.environment, partition)
        except WasimError:  # said once by _Shared.get
            options = self.environment.parsed_options
            if not isinstance(runner, WorkerRunner) and options is not None \
                    and options.headless:
                # A run no one watches ends, with the exit code of bad input. A worker only
                # stops its users: the master and the other workers may be fine.
                self.environment.process_exit_code = 2
                _quit(self.environment)
            raise StopUser() from None
        self._shared.active += 1
        options = self.environment.parsed_options
        if self._shared.replies is None and (type(self).replies or bool(
                getattr(options, "wasim_replies", False))):
            port = getattr(options, "wasim_api_port", None)
            port = type(self).api_port if port is None else port
            # Set before it starts: another user's on_start runs while the API binds.
            replies = self._shared.replies = _Replies()
            try:
                replies.start(self.environment, self._shared,
                              8700 if port is None else int(port))
            except WasimError as exc:
                logger.error("wasim: %s", exc.one_line())
                self.environment.process_exit_code = 2
                _quit(self.environment)
                raise StopUser() from None

    def on_stop(self) -> None:
        """Close this user's connection; the last user of a process past its count ends it."""
        self._close()
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.active -= 1
        if shared.finished and shared.active <= 0 and not shared.quitting:
            shared.quitting = True
            if shared.replies is not None:
                shared.replies.finish(self.environment)  # before the figures are final
            _quit(self.environment)

    @task
    def send_callback(self) -> None:
        """Send the next callback of this process's partition and report it to Locust."""
        shared = self._shared
        assert shared is not None
        if shared.finished or _idle.get("quitting"):
            # on_stop ends the process once its last user is here; a worker ending idle
            # sends nothing for users spread to it meanwhile (a worker that quit had them)
            raise StopUser()
        shared.issued += 1
        tap, body = shared.source.next()
        if shared.replies is not None:
            shared.replies.tracker.tap(body)
        began = time.perf_counter()
        failure: CallbackFailed | None = None
        length = 0
        try:
            status, length = self._exchange(shared, shared.request(body))
            if not shared.delivery.is_success(status):
                failure = CallbackFailed(f"status {status}")
        except CallbackFailed as exc:
            failure = exc
        self.environment.events.request.fire(
            request_type=shared.delivery.method,
            name=f"{shared.kind}: {tap.button.text[:_NAME_CAP]}",
            response_time=(time.perf_counter() - began) * 1000, response_length=length,
            response=None, context=self.context(), exception=failure, url=shared.label)

    def _exchange(self, shared: _Shared, request: bytes) -> tuple[int, int]:
        """One request on this user's kept-alive connection: the status and body length.

        The timeout bounds the whole request (connecting, sending, the whole answer), as in
        `wasim load`; failures are CallbackFailed with a bounded message.
        """
        timeout = shared.delivery.timeout
        deadline = time.monotonic() + timeout
        if self._sock is not None and _stale(self._sock):
            # Closed by the server while this user waited (a paced user outlives keep-alive
            # timeouts of a few seconds): a new connection, not a failed callback.
            self._close()
        if self._sock is None:
            self._sock = self._connect(shared)
        sock = self._sock
        try:
            sock.settimeout(timeout)  # a kept connection keeps the last request's leftover
            sock.sendall(request)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                data = sock.recv(65536)
                answer = self._reader.feed(data) if data else self._reader.finish()
                if answer is not None:
                    break
                if not data:
                    raise CallbackFailed("reset: the connection was closed mid-request")
        except CallbackFailed:
            self._close()
            raise
        except TimeoutError:
            self._close()
            raise CallbackFailed(f"timeout: no answer within {timeout:g} s") from None
        except ssl.SSLError:
            self._close()
            raise CallbackFailed("tls: the TLS session failed") from None
        except OSError:
            self._close()
            raise CallbackFailed("reset: the connection was reset mid-request") from None
        except ValueError:  # the reader's: not HTTP/1.x; the connection is unusable
            self._close()
            raise CallbackFailed("protocol: a garbled answer") from None
        if answer.close:
            self._close()
        return answer.status, len(answer.body)

    @staticmethod
    def _connect(shared: _Shared) -> socket.socket:
        """A new connection, or CallbackFailed saying why there is none."""
        try:
            return shared.connect()
        except TimeoutError:
            raise CallbackFailed(f"connect: no connection within {shared.delivery.timeout:g} s") \
                from None
        except ssl.SSLError:
            raise CallbackFailed("tls: the TLS handshake failed") from None
        except OSError as exc:
            # Refused (or unresolvable, with --wasim-allow-remote): it answers at once, so
            # wait a little instead of spinning, as `wasim load` does.
            gevent.sleep(0.05)
            if isinstance(exc, ConnectionRefusedError):
                raise CallbackFailed("connect: connection refused") from None
            raise CallbackFailed("connect: cannot connect") from None

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._reader = _AnswerReader()


def _done_if_idle(environment: Any) -> None:
    """On a worker, once the master has spread the run's users: with none here and a count
    per process, this worker has sent all it ever will, so it ends as a finished one does.

    Otherwise `-u 1` on two workers never ends headless: the master waits for every worker
    to quit, and only a worker's last user quits it (`WasimUser.on_stop`).
    """
    runner = environment.runner
    spawning = getattr(runner, "spawning_greenlet", None)
    if spawning is not None:
        spawning.join()  # the master's share for this worker, applied
    if runner.target_user_count or runner.user_count:
        return
    counted = False
    for user_class in environment.user_classes:
        if issubclass(user_class, WasimUser):
            try:
                counted = counted or _values(user_class, environment)[0].get("count") is not None
            except WasimError:
                return  # a bad count is said by the users that read it, not here
    if counted and not _idle.get("quitting"):
        _idle["quitting"] = True  # a later spread of users (a worker quit) finds it going
        logger.info("wasim: no users on this worker: nothing to send, done")
        _quit(environment)


def _stale(sock: socket.socket) -> bool:
    """Whether a kept connection spoke since its last answer: closed (or garbage), unusable."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _quit(environment: Any) -> None:
    """End the run of this process, its users being done.

    Headless (for a worker: its master is), the process quits, a worker sending its last
    figures first, and a headless master ends with its last worker. With the web UI, a
    local run stops and the UI stays; a worker's users have stopped and the master shows it.
    """
    runner = environment.runner
    options = environment.parsed_options
    worker = isinstance(runner, WorkerRunner)
    headless = bool(getattr(options, "wasim_headless" if worker else "headless", False))
    if not headless:
        if not worker:
            gevent.spawn_later(0.1, runner.stop)
        return
    if worker:
        # The figures since the last periodic report would be lost otherwise (the master
        # takes a worker's quit as final). Locust has no public call for this.
        runner._send_stats()
    # In a greenlet of its own: quitting kills the users, the caller included.
    gevent.spawn_later(0.1, runner.quit)


class _Shared:
    """One process's share of a WasimUser class: its source, delivery and checked address."""

    _by_class: ClassVar[dict[type, _Shared]] = {}
    _said: ClassVar[set[str]] = set()  # the errors this process has logged

    def __init__(self, key: tuple[Any, ...], source: CallbackSource, kind: str,
                 delivery: DeliveryOptions, count: int | None, allow_remote: bool) -> None:
        self.key = key
        self.source = source
        self.kind = kind
        self.delivery = delivery
        self.count = count
        self.issued = 0
        self.active = 0  # users of this process using this share now
        self.quitting = False
        url = httpx.URL(delivery.target.url)
        self.label = delivery.target.label
        self.host, self.port, self.tls = url.host, default_port(url), url.scheme == "https"
        self.address = url.host
        self.allow_remote = allow_remote
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in callback_headers(delivery).raw]
        # The request up to its length, as `wasim load` sends it: one splice per request.
        self.prefix = (f"{delivery.method} {url.raw_path.decode()} HTTP/1.1\r\n"
                       f"Host: {url.netloc.decode()}\r\n"
                       + "".join(f"{k}: {v}\r\n" for k, v in headers)
                       + "Content-Length: ").encode("latin-1")
        self.context = ssl.create_default_context() if self.tls else None
        self.replies: _Replies | None = None

    @classmethod
    def get(cls, user_class: type[WasimUser], environment: Any, partition: int) -> _Shared:
        """The process's share for `user_class`, rebuilt only when the run's options change."""
        shared = cls._by_class.get(user_class)
        try:
            key = _settings_key(user_class, environment, partition)
            if shared is None or shared.key != key:
                shared = cls._by_class[user_class] = cls.build(user_class, environment,
                                                               partition)
                logger.info("wasim: %s sends to %s, seed %s, partition %s",
                            user_class.__name__, shared.label,
                            shared.source.factory.options.seed, partition)
        except WasimError as exc:
            line = exc.one_line(_flag)
            if line not in cls._said:  # once, not once per user: they share one mistake
                cls._said.add(line)
                logger.error("wasim: %s", line)
            raise
        return shared

    @classmethod
    def build(cls, user_class: type[WasimUser], environment: Any, partition: int,
              connect: bool = True) -> _Shared:
        """Check the settings and draw the source; with `connect`, check the address too."""
        from simulator.runner import scenario_settings
        from simulator.scenarios import load_scenario
        from simulator.settings import resolve
        from simulator.taps import DEFAULT_BUTTONS, TapOptions, buttons_from_labels

        values, origin = _values(user_class, environment)

        def where(key: str) -> str:
            return origin.get(key, f"{user_class.__name__}.{key}")

        allow_remote = bool(user_class.allow_remote) or _allowed_here
        given = {k: values[k] for k in ("url", *_DELIVERY_KEYS) if values.get(k) is not None}
        if isinstance(given.get("headers"), Mapping):
            given["headers"] = tuple(f"{k}: {v}" for k, v in given["headers"].items())
        seed = values.get("seed")
        try:
            if values.get("scenario"):
                from simulator.scenarios import template_env

                # Without a seed, the scenario's own (as `wasim load SCENARIO`). Its Jinja
                # reads no environment variable: a file must not copy secrets into payloads.
                scenario = load_scenario(str(values["scenario"]), seed=seed,
                                         env=template_env())
                settings, named = scenario_settings(scenario, 0, given, where)
                source = CallbackSource.from_scenario(scenario, seed=seed, partition=partition)
                kind = scenario.template.callback
            else:
                settings, named = resolve((given, where))
                labels = _split(values.get("buttons"))
                source = CallbackSource.from_taps(TapOptions(
                    seed=secrets.randbelow(1_000_000) if seed is None else seed,
                    countries=tuple(c.upper() for c in _split(values.get("countries")))
                    or ("IN",),
                    buttons=buttons_from_labels(labels) if labels else DEFAULT_BUTTONS,
                    wall_clock=True, partition=partition))
                kind = "button_tap"
        except WasimError as exc:
            # The core names the field (country, seed...); this face says where it was given.
            key = _FIELDS.get(exc.field or "")
            if exc.where is None and key is not None:
                exc.where = where(key)
            raise
        for key in ("token_url", "app"):
            if settings.get(key):
                raise WasimError(f"WasimUser cannot use {key} yet", where=named(key),
                                 hint="Give a URL (--host) and a static Authorization header.")
        settings = {k: v for k, v in settings.items()
                    if k not in ("retries", "backoff", "retry_schedule")}  # sent once
        if not settings.get("url"):
            raise WasimError("no target", where="--host",
                             hint="Give the webhook's URL: --host http://127.0.0.1:8000/webhook, "
                                  "`host = ...` in the class, or WASIM_URL.")
        delivery = delivery_options_from(settings, named, allow_remote=allow_remote,
                                         person=given.keys())
        source.envelope = delivery.envelope
        count = values.get("count")
        if count is not None and count < 1:
            raise WasimError(f"expected a whole number of at least 1, got {count}",
                             where=named("count"))
        shared = cls(_settings_key(user_class, environment, partition), source, kind, delivery,
                     count, allow_remote)
        if connect:
            shared.address = shared.checked_address()
        return shared

    @property
    def finished(self) -> bool:
        """Whether this process has sent its count."""
        return self.count is not None and self.issued >= self.count

    def checked_address(self) -> str:
        """The address to connect to: the host itself if allowed, else its loopback address."""
        hosts = self.delivery.remote_hosts
        if self.allow_remote and (hosts is None or host_key(self.host) in hosts):
            return self.host
        addresses = resolve_host(self.host, self.port)
        for address in addresses:
            if not is_loopback_address(address):
                shown = self.host if self.host.strip("[]") == address \
                    else f"{self.host} ({address})"
                raise WasimError(f"refusing to send callbacks to {shown}, which is not this "
                                 f"machine", where="--host",
                                 hint=f"Add {ALLOW_REMOTE_FLAG} if you mean it.")
        return addresses[0]

    def connect(self) -> socket.socket:
        """A new connection to the checked address (TLS for https, verified against the name)."""
        sock = socket.create_connection((self.address, self.port), self.delivery.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_hostname=self.host)
        return sock

    def request(self, body: bytes) -> bytes:
        """The whole request for `body`: the prefix, its length, its signature, the body."""
        delivery = self.delivery
        signature = signature_for(delivery.app_secret, body, delivery.signature)
        end = b"\r\n\r\n" if signature is None \
            else f"\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n".encode("latin-1")
        return b"".join((self.prefix, str(len(body)).encode(), end, body))


class _Replies:
    """`--wasim-replies`: the send API in this process and the taps matched to replies.

    Each matched reply is a Locust request of type REPLY (its latency: tap sent -> reply
    received by the send API); a duplicate reply, one to the wrong user and, once the
    process has sent its count and waited for the last replies, each missing one is a
    REPLY failure. The matching runs on the send API's threads; a greenlet hands the
    figures to Locust's events, which must be fired from the hub's greenlets.
    """

    def __init__(self) -> None:
        from collections import deque

        from simulator.reply_tracking import ReplyTracker

        self.tracker = ReplyTracker()
        self.tracker.matches = deque(maxlen=100_000)
        self._told = {"duplicate reply": 0, "reply to the wrong user": 0}
        self.api: Any = None
        self._drainer: Any = None

    def start(self, environment: Any, shared: _Shared, port: int) -> None:
        """Start the send API (its statuses to the users' target) and the reporting."""
        from simulator.reply_tracking import start_load_api

        self.api = start_load_api(self.tracker, shared.delivery, port=port,
                                  seed=shared.source.factory.options.seed)
        logger.info("wasim: send API on %s (SID %s, api-key %s); every tap's reply is matched",
                    self.api.base_url, self.api.options.sid, self.api.options.api_key)
        self._drainer = gevent.spawn(self._drain_forever, environment)

    def _fire(self, environment: Any, milliseconds: float, failure: str | None) -> None:
        environment.events.request.fire(
            request_type="REPLY", name="reply", response_time=milliseconds,
            response_length=0, response=None, context={},
            exception=CallbackFailed(failure) if failure else None,
            url=self.api.base_url if self.api is not None else "")

    def drain(self, environment: Any) -> None:
        """Hand what the send API matched so far to Locust."""
        matches = self.tracker.matches
        assert matches is not None
        while matches:
            self._fire(environment, matches.popleft(), None)
        for what, total in (("duplicate reply", self.tracker.duplicates),
                            ("reply to the wrong user", self.tracker.wrong_user)):
            for _ in range(total - self._told[what]):
                self._fire(environment, 0.0, what)
            self._told[what] = total

    def _drain_forever(self, environment: Any) -> None:
        while True:
            gevent.sleep(0.25)
            self.drain(environment)

    def finish(self, environment: Any, wait: float = REPLY_WAIT) -> None:
        """Wait for the last replies, report every one and each missing, stop the API."""
        deadline = time.monotonic() + wait
        while not self.tracker.settled and time.monotonic() < deadline:
            gevent.sleep(0.05)  # the send API's threads are greenlets here: let them run
        if self._drainer is not None:
            self._drainer.kill()
        self.drain(environment)
        for _ in range(self.tracker.missing):
            self._fire(environment, 0.0, "missing reply")
        logger.info("wasim: %s", self.tracker.line().replace("\n", "; "))
        if self.api is not None:
            self.api.stop()


def _values(user_class: type[WasimUser], environment: Any) -> tuple[dict[str, Any],
                                                                   dict[str, str]]:
    """The class's settings, overridden by the run's options; and where each came from."""
    import os

    values: dict[str, Any] = {key: getattr(user_class, key, None)
                              for key in ("seed", "countries", "buttons", "scenario", "count",
                                          *_DELIVERY_KEYS)}
    origin = {key: f"{user_class.__name__}.{key}" for key in values}
    options = environment.parsed_options
    for flag, key, _, _ in OPTIONS:
        given: Any = getattr(options, flag[2:].replace("-", "_"), None) if options else None
        if isinstance(given, str) and not given.strip():
            given = None  # an empty field of the web UI: not given
        if isinstance(given, str) and key in ("seed", "count"):
            # The web UI gives text for options without a default: read it as the flag would.
            try:
                given = int(given)
            except ValueError:
                raise WasimError(f"expected a whole number, got {given[:30]!r}",
                                 where=flag) from None
        if given is not None:
            values[key], origin[key] = given, flag
    values["url"] = environment.host or user_class.host or os.environ.get("WASIM_URL")
    origin["url"] = "--host" if environment.host or user_class.host else "WASIM_URL"
    return values, origin


def _settings_key(user_class: type[WasimUser], environment: Any,
                  partition: int) -> tuple[Any, ...]:
    values, _ = _values(user_class, environment)
    return (partition, *(repr(values[k]) for k in sorted(values)))


def _split(value: Any) -> tuple[str, ...]:
    """A comma-separated option or a sequence of strings, as a tuple of non-empty items."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(item.strip() for item in items if item.strip())
