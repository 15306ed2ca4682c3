"""The transports a callback travels by, public for every module that sends one: an ASGI app
called in-process with its lifespan (`LifespanASGITransport`), a WSGI app on a thread
(`AsyncWSGITransport`), and the network through the loopback guard at each connection
(`LoopbackOnlyTransport`); `make_client` picks one for a `Target`. Each keeps at most
RESPONSE_BODY_LIMIT + 1 bytes of an answer (`read_bounded`). Below simulator.delivery and
simulator.meta, which both send through it; imports neither."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import re
import sys
import threading
import traceback
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator.errors import WasimError, named
from simulator.loopback import Resolver, host_key, refuse_remote, resolve_off_loop

TargetKind = Literal["url", "asgi", "wsgi"]
DEFAULT_TIMEOUT = 10.0
RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of each response body kept in the history
APP_BASE_URL = "http://app.wasim.local"  # what httpx sees when calling an app in-process


@dataclass(frozen=True)
class Target:
    """Where callbacks go: a URL over the network, or an ASGI/WSGI app called in-process."""

    kind: TargetKind
    url: str  # the full URL; for an app, APP_BASE_URL + the path inside the app
    app_spec: str | None = None  # "module:attribute" for app targets
    app: Any = field(default=None, compare=False, repr=False)

    # user:password from the URL, moved out of it (sent as Basic auth) so that the URL can be
    # shown and recorded as it is.
    userinfo: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How the target is shown and recorded: the URL, or `asgi:module:app/path`."""
        if self.kind == "url":
            return hide_userinfo(self.url)
        return f"{self.kind}:{self.app_spec}{httpx.URL(self.url).raw_path.decode()}"


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def hide_userinfo(text: str) -> str:
    """`text` with the `user:password@` of every URL in it removed, for output and records."""
    return _USERINFO.sub(r"\1", text)


def is_asgi(app: Any) -> bool:
    """Whether `app` is an ASGI app (its call is a coroutine function) rather than WSGI."""
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    return inspect.iscoroutinefunction(type(app).__call__)


APP_FAILURE = "wasim.app_failure"  # response extension: what went wrong inside an app
CUT_OFF = "wasim.cut_off"  # response extension: the transport stopped reading the app's body
_TRACEBACK_LIMIT = 16 * 1024  # characters of an app's traceback kept in the history
AppStage = Literal["before", "during", "after"]


@dataclass(frozen=True)
class AppFailure:
    """Why an in-process app did not answer properly, and when: before its answer began,
    during its body (a broken answer), or after it had answered in full (its status stands)."""

    error: str
    traceback: str | None = None
    stage: AppStage = "before"


def _own_frame(exc: BaseException) -> str:
    """Where in the person's own code `exc` was raised: the innermost frame outside the
    standard library, installed packages and wasim (`webhook.py:41 in webhook`), or ""."""
    import sysconfig

    places = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib",
                                                     "platlib")}
    foreign = (*(str(Path(p).resolve()) for p in places if p),
               str(Path(__file__).resolve().parent))
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        where = str(Path(frame.filename).resolve()) if frame.filename else ""
        if where and not where.startswith(foreign) and not frame.filename.startswith("<"):
            found = f"{frame.filename}:{frame.lineno} in {frame.name}"
    return found


def _app_failure(exc: BaseException, stage: AppStage) -> AppFailure:
    """An app's exception as data: one line for the attempt (what, and where in the app's own
    code), the traceback for the history."""
    text = "".join(traceback.format_exception(exc))
    if len(text) > _TRACEBACK_LIMIT:
        # The end of a traceback says what failed and where; its start is wasim's own frames.
        text = f"[... {len(text) - _TRACEBACK_LIMIT} characters cut ...]\n" \
               + text[-_TRACEBACK_LIMIT:]
    last = " ".join(traceback.format_exception_only(exc)[-1].split())
    if len(last) > 300:
        last = last[:300] + "..."
    when = {"before": " before answering", "during": " while sending its body",
            "after": " after answering"}[stage]
    frame = _own_frame(exc)
    where = f" (at {frame})" if frame else ""
    return AppFailure(f"the app raised{when}: {last}{where}", text, stage)


def _app_response(status: int | None, headers: list[tuple[bytes, bytes]], body: bytes,
                  failure: AppFailure | None, cut_off: bool) -> httpx.Response:
    """What the Deliverer reads back from an in-process app; no status means a 500."""
    extensions: dict[str, Any] = {}
    if failure is not None:
        extensions[APP_FAILURE] = failure
    if cut_off:
        extensions[CUT_OFF] = True
    if status is None:  # the app never answered: a server answers 500 for it
        status, headers, body = 500, [], b""
    return httpx.Response(status, headers=headers, stream=_KeptBody(body),
                          extensions=extensions)


class _KeptBody(httpx.AsyncByteStream):
    """What a transport kept of an app's body, read by the Deliverer as if from a socket
    (httpx reads a plain bytes `content` at once, leaving nothing to stream)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body


class AsyncWSGITransport(httpx.AsyncBaseTransport):
    """Runs a WSGI app as a threaded server does, one thread per request, keeping at most
    RESPONSE_BODY_LIMIT + 1 bytes of its answer; an app that raises answers 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        environ = _wsgi_environ(request, await request.aread())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[httpx.Response] = loop.create_future()

        def settle(response: httpx.Response) -> None:
            if not answer.done():  # the attempt may have timed out and stopped waiting
                answer.set_result(response)

        def work() -> None:
            response = _call_wsgi(self.app, environ)
            # An abandoned thread can outlive the loop; then nobody is waiting for the answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, response)

        # A daemon thread of its own, not asyncio.to_thread: the default executor's threads are
        # joined when the interpreter exits, so an app sleeping past --timeout kept wasim alive
        # until it woke. On timeout this thread is abandoned, and exit does not wait for it.
        threading.Thread(target=work, name="wasim-wsgi-app", daemon=True).start()
        return await answer


def _wsgi_environ(request: httpx.Request, body: bytes) -> dict[str, Any]:
    """The WSGI environ for a request, as httpx's own WSGITransport builds it."""
    url = request.url
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query.decode("ascii"),
        "SERVER_NAME": url.host,
        "SERVER_PORT": str(url.port or {"http": 80, "https": 443}[url.scheme]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for raw_name, raw_value in request.headers.raw:
        key = raw_name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = raw_value.decode("latin-1")
    return environ


def _call_wsgi(app: Any, environ: dict[str, Any]) -> httpx.Response:
    """Call a WSGI app and read at most RESPONSE_BODY_LIMIT + 1 bytes; never raises."""
    limit = RESPONSE_BODY_LIMIT + 1
    started: list[tuple[Any, Any]] = []
    kept = bytearray()

    def keep(data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError(f"a WSGI body is bytes, not {type(data).__name__}")
        kept.extend(data[:limit - len(kept)])

    def start_response(status: Any, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
        if started and exc_info is None:
            raise RuntimeError("start_response was called twice without exc_info")
        started[:] = [(status, headers)]
        return keep

    cut_off = False
    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                keep(chunk)
                if len(kept) >= limit:  # heard enough: drop the rest, as a client hanging up
                    cut_off = True
                    break
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()
        if not started:
            return _app_response(None, [], b"", AppFailure(
                "the app returned without calling start_response"), False)
        status, headers = _wsgi_answer(*started[-1])
    except BaseException as exc:  # a WSGI server turns whatever the app raises into a 500
        return _app_response(None, [], b"", _app_failure(exc, "before"), False)
    return _app_response(status, headers, bytes(kept), None, cut_off)


def _wsgi_answer(status: Any, headers: Any) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status code and raw headers a WSGI app gave start_response; ValueError if bad."""
    code = str(status).split(" ", 1)[0]
    if not isinstance(status, str) or not re.fullmatch(r"[1-9]\d\d", code):
        raise ValueError(f"the app's status {status!r} is not like '200 OK'")
    raw = []
    for pair in headers:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"the app's header {pair!r} is not two strings")
        raw.append((name.encode("latin-1"), value.encode("latin-1")))
    return int(code), raw


class LifespanASGITransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in-process the way a server does: its lifespan startup before the
    first request, shutdown when the client closes, and each request bounded (see _ASGIExchange).

    Real handlers open their database or queue in a lifespan handler; without it, a FastAPI
    app answers every callback with a 500 that no real deployment would give.
    """

    def __init__(self, app: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.app = app
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._lifespan: _Lifespan | None = None

    async def start_lifespan(self) -> None:
        """Run the app's startup once (bounded by the timeout); raises WasimError if it fails."""
        if self._lifespan is None:
            async with self._lock:
                if self._lifespan is None:
                    self._lifespan = await _Lifespan.start(self.app, self.timeout)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.start_lifespan()
        assert self._lifespan is not None
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
            # As servers do: each request sees a copy of what the lifespan put in its state.
            "state": dict(self._lifespan.state),
        }
        return await _ASGIExchange(self.app, scope, await request.aread()).run()

    async def aclose(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.stop()
            self._lifespan = None


class _ASGIExchange:
    """One request into an ASGI app, read as a client reads a server: at most
    RESPONSE_BODY_LIMIT + 1 bytes of the answer are kept, then the client hangs up.

    Every `send` is a checkpoint (it yields to the loop), so the attempt's deadline can
    cancel an app that streams forever; after the hang-up `send` raises, as a closed socket
    does, so even an app that ignores its cancellation stops there.
    """

    def __init__(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        self.app = app
        self.scope = scope
        self.request_body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.kept = bytearray()
        self.complete = False  # the app sent its last body message
        self.hung_up = False  # we stopped listening: enough kept, or the attempt gave up
        self.failure: AppFailure | None = None
        self.settled = asyncio.Event()  # complete, hung up, or the app returned
        self.listening = asyncio.Event()  # set when the client goes: receive() says disconnect

    async def run(self) -> httpx.Response:
        """Call the app; its answer (a 500 if it never gave one), or cancelled by the deadline."""
        task = asyncio.ensure_future(self._call())
        try:
            await self.settled.wait()
            if not self.hung_up:
                # A complete answer: let the app return (its background work runs after the
                # answer), as httpx's own transport did; the deadline still bounds it. Not
                # `await task`: that would pass our cancellation into the app before we hang up.
                await asyncio.wait({task})
        finally:
            if not task.done():
                self._hang_up()
                task.cancel()  # not awaited: an app that ignores cancellation must not hang us
        return _app_response(self.status, self.headers, bytes(self.kept), self.failure,
                             self.hung_up)

    def _hang_up(self) -> None:
        self.hung_up = True
        self.listening.set()
        self.settled.set()

    async def _call(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except asyncio.CancelledError as exc:
            if self.hung_up:
                raise  # ours: the attempt gave up, or has heard enough
            self.failure = _app_failure(exc, "before" if self.status is None else "during")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the app's failure is its answer, not our crash
            if not self.hung_up:
                stage: AppStage = "before" if self.status is None else \
                    "after" if self.complete else "during"
                if stage == "after" and self.status is not None and self.status >= 500:
                    # Starlette's ServerErrorMiddleware answers 500 for a handler that raised,
                    # then raises again: the handler itself never answered.
                    stage = "before"
                self.failure = _app_failure(exc, stage)
        else:
            if self.status is None:
                self.failure = AppFailure("the app returned without sending a response")
            elif not self.complete and not self.hung_up:
                self.failure = AppFailure("the app returned before finishing its body",
                                           stage="during")
        finally:
            self.settled.set()

    async def _receive(self) -> dict[str, Any]:
        await asyncio.sleep(0)  # a checkpoint, so an app polling receive() can be cancelled
        if self.request_body is not None:
            body, self.request_body = self.request_body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.listening.wait()  # as a server does: the next message is the client leaving
        return {"type": "http.disconnect"}

    async def _send(self, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)  # a checkpoint: see the class docstring
        if self.hung_up:
            raise OSError("the client closed the connection")
        kind = message.get("type")
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("http.response.start was sent twice")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) \
                    or not 100 <= status <= 999:
                raise RuntimeError(f"status {status!r} is not an HTTP status")
            headers = []
            for pair in message.get("headers", ()):
                name, value = pair
                if not isinstance(name, bytes) or not isinstance(value, bytes):
                    raise RuntimeError(f"the header {pair!r} is not two byte strings")
                headers.append((name, value))
            self.status, self.headers = status, headers
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("http.response.body was sent before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body was sent after the last one")
            body = message.get("body", b"")
            if not isinstance(body, bytes):
                raise RuntimeError(f"a body is bytes, not {type(body).__name__}")
            self.kept += body[:RESPONSE_BODY_LIMIT + 1 - len(self.kept)]
            if not message.get("more_body", False):
                self.complete = True
                self.listening.set()
                self.settled.set()
            elif len(self.kept) > RESPONSE_BODY_LIMIT:
                self._hang_up()  # heard enough: the rest is dropped, not buffered
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")


class _Lifespan:
    """One run of an ASGI app's lifespan protocol (ASGI 3.0, lifespan 2.0)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}

    @classmethod
    async def start(cls, app: Any, timeout: float = DEFAULT_TIMEOUT) -> _Lifespan:
        """Send lifespan.startup and wait (at most `timeout`) for the app to finish starting."""
        lifespan = cls()
        task = lifespan.task = asyncio.ensure_future(lifespan._run(app))
        lifespan.inbox.put_nowait({"type": "lifespan.startup"})
        try:
            await asyncio.wait_for(asyncio.shield(lifespan.started), timeout)
        except TimeoutError:
            task.cancel()
            raise WasimError(f"the app's startup did not finish within {timeout:g} s",
                             field="app",
                             hint="Fix the app's lifespan (startup) handler, or give it more "
                                  f"time with {named('timeout')}.") from None
        except BaseException:
            task.cancel()  # a failed startup, or the run was stopped while it waited
            raise
        return lifespan

    async def stop(self) -> None:
        """Send lifespan.shutdown and wait (briefly) for the app to finish."""
        if self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self.stopped), 5)
        except TimeoutError:
            self.task.cancel()

    async def _run(self, app: Any) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await app(scope, self.inbox.get, self._send)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # the ASGI spec: an app that raises here has no lifespan
            del exc  # nothing to report: requests go ahead without one, as servers do
            if not self.started.done():
                self.started.set_result(None)
        finally:
            for future in (self.started, self.stopped):
                if not future.done():
                    future.set_result(None)

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and not self.started.done():
            self.started.set_result(None)
        elif kind == "lifespan.startup.failed" and not self.started.done():
            # Starlette sends the whole traceback; its last line is the error itself.
            lines = [line for line in str(message.get("message", "")).splitlines()
                     if line.strip()]
            self.started.set_exception(WasimError(
                f"the app's startup failed: {lines[-1].strip() if lines else 'no reason given'}",
                field="app", hint="Fix the app's lifespan (startup) handler."))
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") \
                and not self.stopped.done():
            self.stopped.set_result(None)


class LoopbackOnlyTransport(httpx.AsyncBaseTransport):
    """Connects only to this machine, deciding at send time on the address it connects to.

    A name checked when the target was set can resolve elsewhere by the time a request leaves
    (DNS rebinding, an edited /etc/hosts). So each request resolves its host again, off the
    event loop, refuses unless every address is loopback, and then connects to the checked
    address itself (the URL's host swapped for it; Host header and TLS SNI keep the name), so
    the check and the connection cannot see two different answers.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, resolver: Resolver | None,
                 allowed: frozenset[str] = frozenset()) -> None:
        self._inner = inner
        self._resolver = resolver
        self._allowed = allowed  # the hosts the person named with --allow-remote

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host_key(host) in self._allowed:
            return await self._inner.handle_async_request(request)
        try:
            addresses = await resolve_off_loop(host, request.url.port, self._resolver)
        except WasimError as exc:
            raise httpx.ConnectError(exc.what, request=request) from None
        refusal = refuse_remote(host, addresses)
        if refusal:
            raise RemoteRefused(refusal, request=request)
        if addresses[0] == host:  # an IP literal: nothing to pin
            return await self._inner.handle_async_request(request)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions.setdefault("sni_hostname", host)
        pinned = httpx.Request(request.method, request.url.copy_with(host=addresses[0]),
                               headers=request.headers, stream=request.stream,
                               extensions=extensions)
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RemoteRefused(httpx.ConnectError):
    """A request's host resolved to an address that is not this machine; nothing was sent."""


def make_client(target: Target, timeout: float, *, allow_remote: bool = False,
                resolver: Resolver | None = None,
                remote_hosts: frozenset[str] | None = None) -> httpx.AsyncClient:
    """The httpx client for a target: the network, or the app's in-process transport.

    Over the network, unless `allow_remote`, every connection is to this machine only; with
    it and `remote_hosts`, to this machine or those hosts.
    """
    return client_for(target, timeout, transport_for(target, timeout, allow_remote, resolver,
                                                     remote_hosts))


def transport_for(target: Target, timeout: float, allow_remote: bool = False,
                  resolver: Resolver | None = None,
                  remote_hosts: frozenset[str] | None = None
                  ) -> httpx.AsyncBaseTransport | None:
    """The transport for `target`: its app's, the loopback guard's, or None (httpx's own)."""
    if target.kind == "asgi":
        return LifespanASGITransport(target.app, timeout)
    if target.kind == "wsgi":
        return AsyncWSGITransport(target.app)
    if allow_remote and remote_hosts is None:
        return None
    # Checked as each request leaves, the token fetch's included: a host the person did not
    # name must be this machine, whatever a file or a redirect of settings says.
    return LoopbackOnlyTransport(httpx.AsyncHTTPTransport(), resolver,
                                 remote_hosts if allow_remote and remote_hosts else frozenset())


def client_for(target: Target, timeout: float,
               transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """An httpx client over `transport` that sends only the headers wasim sets."""
    base = APP_BASE_URL if target.kind != "url" else ""
    client = httpx.AsyncClient(transport=transport, base_url=base, timeout=timeout,
                               follow_redirects=False, trust_env=False)
    # httpx's defaults (Accept, Accept-Encoding, its User-Agent...) are not in BASE_HEADERS:
    # every face sends the same set. Asking for no coding also keeps compressed answers rare;
    # _BodyDecoder still bounds the gzip or deflate a target sends unasked.
    for name in list(client.headers):
        del client.headers[name]
    return client


class _BodyDecoder:
    """Undoes gzip or deflate without ever producing more than asked: a few kB can inflate
    to gigabytes. Any other coding is kept as it was sent."""

    def __init__(self, coding: str) -> None:
        coding = coding.strip().lower()
        # 32 + MAX_WBITS reads a zlib or a gzip header, whichever is there.
        self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS) \
            if coding in ("gzip", "x-gzip", "deflate") else None
        self.broken = False  # the coded stream is corrupt: nothing more can be read from it

    def decode(self, data: bytes, room: int) -> bytes:
        """At most `room` bytes of what `data` decodes to."""
        if self._zlib is None:
            return data[:room]
        try:
            return self._zlib.decompress(data, room)
        except zlib.error:
            self.broken = True
            return b""


async def read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a streamed response's (decoded) body, and whether there was
    more; reading stops there, so the rest is never received into memory."""
    if response.is_stream_consumed:  # read already (a test's MockTransport): in memory anyway
        return response.content[:limit], len(response.content) > limit
    decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += decoder.decode(chunk, limit + 1 - len(kept))
        if len(kept) > limit:
            return bytes(kept[:limit]), True
        if decoder.broken:
            break
    return bytes(kept), bool(response.extensions.get(CUT_OFF))
