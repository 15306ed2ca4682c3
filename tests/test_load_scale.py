"""`wasim load` at scale: who fell behind, the lean body path, workers, every face's settings."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from simulator.delivery import delivery_options_from
from simulator.errors import WasimError
from simulator.load import (
    CallbackSource,
    LatencyHistogram,
    LoadOptions,
    LoadStats,
    SourceSpec,
    _probe_loop,
    _Slots,
    run_load,
    run_workers,
    split_options,
)
from simulator.receiver import Receiver, ReceiverOptions
from simulator.taps import TapOptions
from simulator.validate import validate_callback


class FakeTime:
    """A clock that moves only when told: a sleep moves it by the wait plus `overshoot`."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def clock(self) -> float:
        return self.now

    def sleeper(self, overshoot: float) -> Callable[[float], Awaitable[None]]:
        async def sleep(seconds: float) -> None:
            self.now += seconds + overshoot

        return sleep


def message_id(body: bytes) -> str:
    document = json.loads(body)
    value = document["meta_object"]["value"] if "meta_object" in document \
        else document["entry"][0]["changes"][0]["value"]
    return str(value["messages"][0]["id"])


# --- who fell behind -------------------------------------------------------------------------


def test_a_request_whose_worker_woke_late_is_wasim_s_lag() -> None:
    time = FakeTime()
    slots = _Slots(LoadOptions(rate=10, duration=5), time.clock, time.now,
                   sleep=time.sleeper(overshoot=0.05))

    async def two_turns() -> None:
        assert await slots.next_turn()  # due now: leaves on time
        assert await slots.next_turn()  # due 0.1 s later; the loop wakes the worker 50 ms late

    asyncio.run(two_turns())
    stats = slots.stats
    assert (stats.late, stats.late_loop, stats.late_busy) == (1, 1, 0)
    assert stats.lag.max_us == pytest.approx(50_000, rel=0.01)


def test_a_request_whose_worker_was_still_waiting_for_the_target_is_the_target_s() -> None:
    time = FakeTime()
    slots = _Slots(LoadOptions(rate=10, duration=5), time.clock, time.now,
                   sleep=time.sleeper(overshoot=0.0))

    async def slow_answer_then_turn() -> None:
        assert await slots.next_turn()
        time.now += 0.3  # the target took 300 ms to answer the first request
        assert await slots.next_turn()

    asyncio.run(slow_answer_then_turn())
    stats = slots.stats
    assert (stats.late, stats.late_loop, stats.late_busy) == (1, 0, 1)
    assert stats.lag.max_us == pytest.approx(200_000, rel=0.01)


def test_a_punctual_loop_leaves_no_lag() -> None:
    time = FakeTime()
    slots = _Slots(LoadOptions(rate=100, duration=1), time.clock, time.now,
                   sleep=time.sleeper(overshoot=0.0))

    async def all_turns() -> int:
        turns = 0
        while await slots.next_turn():
            turns += 1
        return turns

    assert asyncio.run(all_turns()) == 100
    assert slots.stats.late == 0 and slots.stats.lag.max_us <= 1.0


def test_the_loop_probe_records_how_late_the_loop_runs_a_timer() -> None:
    time = FakeTime()
    stop = asyncio.Event()
    lag = LatencyHistogram()
    sleep = time.sleeper(overshoot=0.03)

    async def three_samples(seconds: float) -> None:
        await sleep(seconds)
        if lag.total == 2:
            stop.set()

    asyncio.run(_probe_loop(stop, time.clock, three_samples, lag, period=0.02))
    assert lag.total == 3
    assert lag.percentile(50) == pytest.approx(30, rel=0.01)


def stats_with(*, rate: float | None, late_busy: int = 0, late_loop: int = 0,
               loop_lag_ms: float = 0.5) -> LoadStats:
    stats = LoadStats(rate_asked=rate, connections=8, late=late_busy + late_loop,
                      late_busy=late_busy, late_loop=late_loop, sent=10_000)
    for _ in range(100):
        stats.loop_lag.record(loop_lag_ms * 1000)
        stats.latency.record(40_000)
    return stats


def test_late_requests_with_a_punctual_loop_blame_the_target() -> None:
    stats = stats_with(rate=5000, late_busy=900, late_loop=3)
    assert stats.behind() == "target"
    assert "the target fell behind" in (stats.verdict() or "")


def test_late_requests_with_a_late_loop_blame_wasim_not_the_target() -> None:
    stats = stats_with(rate=5000, late_busy=900, late_loop=3, loop_lag_ms=25)
    assert stats.behind() == "wasim"
    verdict = stats.verdict() or ""
    assert verdict.startswith("wasim fell behind") and "--workers" in verdict


def test_late_requests_that_found_a_free_connection_blame_wasim() -> None:
    assert stats_with(rate=5000, late_busy=2, late_loop=400).behind() == "wasim"


def test_a_few_late_requests_in_a_long_run_are_noise_not_falling_behind() -> None:
    assert stats_with(rate=2000, late_loop=30).behind() is None  # 0.3% of 10,000
    assert stats_with(rate=2000, late_loop=300).behind() == "wasim"


def test_the_first_bodies_are_drawn_before_the_clock_starts() -> None:
    source = CallbackSource.from_taps(TapOptions(seed=18, wall_clock=False, start=1_700_000_000))
    same = CallbackSource.from_taps(TapOptions(seed=18, wall_clock=False, start=1_700_000_000))
    source.pool = 16
    source.prepare(10)
    assert source._lean is not None and len(source._lean) == 10  # drawn ahead
    assert [source.body() for _ in range(12)] == [same.next()[1] for _ in range(12)]


def test_as_fast_as_possible_says_when_wasim_s_cpu_set_the_pace() -> None:
    assert stats_with(rate=None).behind() is None
    assert stats_with(rate=None, loop_lag_ms=40).behind() == "wasim"


def test_nobody_fell_behind_when_nothing_left_late() -> None:
    stats = stats_with(rate=2000)
    assert stats.behind() is None and stats.verdict() is None
    figures = stats.as_dict()
    assert figures["fell_behind"] is None and figures["loop_lag_ms"]["p99"] is not None


def test_a_real_run_reports_wasim_s_lag_apart_from_the_target_s_latency(
        receiver: Receiver) -> None:
    delivery = delivery_options_from({"url": receiver.url}, str)
    stats = asyncio.run(run_load(CallbackSource.from_taps(TapOptions(seed=3)), delivery,
                                 LoadOptions(rate=200, count=20, duration=None,
                                             concurrency=2)))
    assert stats.sent == 20
    assert stats.lag.total == 20  # one schedule lag per request, apart from its latency
    assert stats.latency.total == 20


# --- the lean path ---------------------------------------------------------------------------


def test_lean_bodies_are_unique_valid_callbacks_of_the_pooled_users() -> None:
    source = CallbackSource.from_taps(TapOptions(seed=4, countries=("IN", "BR", "US")))
    source.pool = 8
    bodies = [source.body() for _ in range(300)]
    assert source._lean is not None and len(source._lean) == 8  # the splice was trusted
    assert len({message_id(b) for b in bodies}) == 300
    assert [problem for b in bodies for problem in validate_callback(json.loads(b))] == []
    users = {json.loads(b)["meta_object"]["value"]["contacts"][0]["wa_id"] for b in bodies}
    assert len(users) == 8


def test_the_first_lean_bodies_are_the_ones_every_face_sends() -> None:
    lean = CallbackSource.from_taps(TapOptions(seed=6, wall_clock=False, start=1_700_000_000))
    full = CallbackSource.from_taps(TapOptions(seed=6, wall_clock=False, start=1_700_000_000))
    assert [lean.body() for _ in range(5)] == [full.next()[1] for _ in range(5)]


def test_lean_bodies_in_meta_s_envelope_are_valid_and_unique() -> None:
    source = CallbackSource.from_taps(TapOptions(seed=7, platform="mix"))
    source.envelope, source.pool = "meta", 4
    bodies = [source.body() for _ in range(100)]
    assert source._lean is not None
    assert all(json.loads(b)["object"] == "whatsapp_business_account" for b in bodies)
    assert len({message_id(b) for b in bodies}) == 100


def test_a_scenario_s_lean_bodies_keep_its_buttons() -> None:
    from simulator.scenarios import load_scenario

    source = CallbackSource.from_scenario(load_scenario("opt-out-storm"), seed=2)
    source.pool = 4
    bodies = [source.body() for _ in range(60)]
    texts = {json.loads(b)["meta_object"]["value"]["messages"][0]["button"]["text"]
             for b in bodies}
    assert texts == {"Stop promotions"}
    assert len({message_id(b) for b in bodies}) == 60


def test_signed_lean_bodies_each_carry_their_own_signature() -> None:
    secret = "s3cret-for-load"
    with Receiver(ReceiverOptions(port=0, app_secret=secret)) as signed:
        delivery = delivery_options_from({"url": signed.url, "envelope": "meta",
                                          "app_secret": secret}, str)
        source = CallbackSource.from_taps(TapOptions(seed=8))
        source.pool = 3
        stats = asyncio.run(run_load(source, delivery, LoadOptions(count=30, duration=None,
                                                                   concurrency=3)))
        arrivals = signed.wait_for(30)
    assert stats.ok == 30
    assert [a.problems for a in arrivals if a.problems] == []
    assert len({a.body for a in arrivals}) == 30


# --- workers ---------------------------------------------------------------------------------


def test_two_workers_send_unique_valid_callbacks_and_merge_their_figures(
        receiver: Receiver) -> None:
    spec = SourceSpec(taps=TapOptions(seed=11, countries=("IN", "BR")))
    stats = run_workers(spec, {"url": receiver.url}, LoadOptions(count=240, duration=None,
                                                                 concurrency=4), 2)
    assert (stats.sent, stats.ok, stats.failed) == (240, 240, 0)
    assert stats.latency.total == 240  # both workers' histograms, merged
    assert stats.connections == 4
    arrivals = receiver.wait_for(240)
    assert len(arrivals) == 240
    assert len({message_id(a.body) for a in arrivals}) == 240
    assert [a.problems for a in arrivals if a.problems] == []
    # Each worker drew its own users from its partition of the seed, one business for all.
    documents = [json.loads(a.body)["meta_object"]["value"] for a in arrivals]
    assert len({d["metadata"]["display_phone_number"] for d in documents}) == 1
    received = {message_id(a.body) for a in arrivals}
    firsts = [message_id(spec.build(k).body()) for k in (0, 1)]
    assert firsts[0] != firsts[1] and set(firsts) <= received


def test_the_options_are_split_between_workers_without_losing_any() -> None:
    shares = split_options(LoadOptions(rate=1000, count=101, duration=None, concurrency=7), 3)
    assert [s.concurrency for s in shares] == [3, 2, 2]
    assert [s.count for s in shares] == [34, 34, 33]
    assert [s.rate for s in shares] == [pytest.approx(1000 / 3)] * 3
    assert [s.phase for s in shares] == [0, pytest.approx(0.001), pytest.approx(0.002)]
    assert len(split_options(LoadOptions(concurrency=2), 8)) == 2  # a worker per connection


def test_a_worker_s_slots_fall_between_the_others() -> None:
    first, second = split_options(LoadOptions(rate=100, duration=1.0, concurrency=2), 2)
    due = []
    for share in (first, second):
        slots = _Slots(share, lambda: 100.0, 100.0)
        due += [slots.take() or 0.0 for _ in range(3)]
    assert sorted(due) == [pytest.approx(100.0 + k / 100) for k in range(6)]


def test_a_worker_that_dies_is_reported_and_the_run_stops(receiver: Receiver) -> None:
    import multiprocessing

    killed: list[int] = []

    def kill_one(stats: LoadStats) -> None:
        if not killed:
            victim = multiprocessing.active_children()[0]
            killed.append(victim.pid or 0)
            victim.kill()

    spec = SourceSpec(taps=TapOptions(seed=12))
    stats = run_workers(spec, {"url": receiver.url},
                        LoadOptions(rate=40, duration=600, concurrency=2), 2, on_tick=kill_one)
    assert killed
    assert len(stats.crashed) == 1 and "died (exit code -9)" in stats.crashed[0]
    assert stats.as_dict()["crashed_workers"] == stats.crashed


def test_nothing_listening_stops_every_worker_with_one_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = SourceSpec(taps=TapOptions(seed=13))
    with pytest.raises(WasimError) as raised:
        run_workers(spec, {"url": f"http://127.0.0.1:{port}/hook"},
                    LoadOptions(count=4, duration=None, concurrency=2), 2)
    assert raised.value.exit_code == 3


# --- every face's settings: token refresh, https ---------------------------------------------


class AuthWebhook:
    """A webhook behind a bearer token: /token hands out tok-1, tok-2...; after `revoke_after`
    callbacks the first token is revoked (401) while later ones still work."""

    def __init__(self, revoke_after: int, tls: Any = None) -> None:
        import http.server
        import threading

        self.tokens_issued = 0
        self.revoke_after = revoke_after
        self.seen: list[tuple[str, int]] = []  # (token, status) per callback
        self.bodies: list[bytes] = []
        lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    if self.path == "/token":
                        hook.tokens_issued += 1
                        answer = json.dumps({"access_token": f"tok-{hook.tokens_issued}",
                                             "expires_in": 3600}).encode()
                        status = 200
                    else:
                        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                        revoked = token == "tok-1" and len(hook.seen) >= hook.revoke_after
                        status = 401 if revoked or not token.startswith("tok-") else 200
                        hook.seen.append((token, status))
                        if status == 200:
                            hook.bodies.append(body)
                        answer = b"{}"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        port = self.server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{port}/webhook"
        self.token_url = f"{scheme}://127.0.0.1:{port}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AuthWebhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_revoked_token_is_fetched_again_once_and_each_refused_callback_resent() -> None:
    with AuthWebhook(revoke_after=5) as hook:
        delivery = delivery_options_from({"url": hook.url, "token_url": hook.token_url,
                                          "client_id": "me", "client_secret": "pw"}, str)
        stats = asyncio.run(run_load(CallbackSource.from_taps(TapOptions(seed=14)), delivery,
                                     LoadOptions(count=30, duration=None, concurrency=3)))
    assert (stats.sent, stats.ok) == (30, 30)  # every 401 was resent with the new token
    assert hook.tokens_issued == 2  # once before the run, once after the revocation
    refused = [token for token, status in hook.seen if status == 401]
    assert refused and set(refused) == {"tok-1"} and len(refused) <= 3  # one per connection
    assert len(set(hook.bodies)) == 30


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # httpx and the fast client trust it
    return ca


def test_https_goes_through_the_fast_client_with_the_certificate_checked(
        authority: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from simulator import load

    def no_httpx(*args: object, **kwargs: object) -> None:
        raise AssertionError("https went through httpx")

    monkeypatch.setattr(load, "_httpx_worker", no_httpx)

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    with AuthWebhook(revoke_after=10**6, tls=server_context) as hook:
        delivery = delivery_options_from({"url": hook.url, "token_url": hook.token_url,
                                          "client_id": "me", "client_secret": "pw"}, str)
        stats = asyncio.run(run_load(CallbackSource.from_taps(TapOptions(seed=15)), delivery,
                                     LoadOptions(count=40, duration=None, concurrency=4)))
    assert (stats.sent, stats.ok) == (40, 40)
    assert len(set(hook.bodies)) == 40
    assert [p for b in hook.bodies for p in validate_callback(json.loads(b))] == []


def test_an_untrusted_certificate_is_a_tls_error_not_a_delivery(
        authority: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    import trustme

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_context)  # another authority
    with AuthWebhook(revoke_after=10**6, tls=server_context) as hook:
        delivery = delivery_options_from({"url": hook.url}, str)
        stats = asyncio.run(run_load(CallbackSource.from_taps(TapOptions(seed=16)), delivery,
                                     LoadOptions(count=3, duration=None, concurrency=1)))
    assert stats.ok == 0 and stats.errors["tls"] == 3
    assert hook.bodies == []


# --- every kind ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "image", "location", "reaction", "status"])
def test_every_kind_gives_unique_valid_callbacks_of_that_kind(kind: str) -> None:
    source = CallbackSource.from_kind(TapOptions(seed=17), kind)
    source.pool = 4
    bodies = [source.body() for _ in range(80)]
    documents = [json.loads(b)["meta_object"]["value"] for b in bodies]
    assert [p for b in bodies for p in validate_callback(json.loads(b))] == []
    if kind == "status":
        ids = [d["statuses"][0]["id"] for d in documents]
    else:
        ids = [d["messages"][0]["id"] for d in documents]
        assert {d["messages"][0]["type"] for d in documents} == {kind}
    assert len(set(ids)) == 80


def test_load_kind_from_the_command_line_with_two_workers(receiver: Receiver) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["load", "--url", receiver.url, "--kind", "text",
                                      "--text", "STOP", "--count", "60", "-c", "4",
                                      "--workers", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    arrivals = receiver.wait_for(60)
    messages = [json.loads(a.body)["meta_object"]["value"]["messages"][0] for a in arrivals]
    assert {m["text"]["body"] for m in messages} == {"STOP"}
    assert len({m["id"] for m in messages}) == 60
    assert [a.problems for a in arrivals if a.problems] == []


def test_a_kind_with_a_scenario_is_one_line_error() -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["load", "opt-out-storm", "--url", "http://127.0.0.1:9/",
                                      "--kind", "text", "--count", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("wasim: error: --kind:")


def test_ctrl_c_stops_every_worker_and_exits_130(receiver: Receiver) -> None:
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "load", "--url", receiver.url, "--rate", "50",
         "--duration", "10m", "-c", "2", "--workers", "2", "--seed", "3"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        # A suite started in the background has SIGINT ignored, and a child inherits that: the
        # terminal's Ctrl+C is what this test plays, so the child gets the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stderr is not None
        banner = ""
        while not banner.startswith("load:"):
            banner = process.stderr.readline()
            assert banner, "wasim load ended before it started"
        receiver.wait_for(4)  # both workers are sending
        children = [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()]
        assert len(children) >= 2
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert all(gone(child) for child in children)  # no worker left behind


def gone(pid: int, patience: float = 30.0) -> bool:
    """Whether process `pid` has ended (or is a zombie), waiting up to `patience` seconds."""
    import time

    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as status:
                if "State:\tZ" in status.read():
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_given_httpx_client_carries_the_load_as_the_runner_s_seam() -> None:
    import httpx

    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return httpx.Response(200, stream=httpx.ByteStream(b"ok"))  # as a server streams

    async def main() -> LoadStats:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            delivery = delivery_options_from({"url": "http://127.0.0.1:9/hook"}, str)
            return await run_load(CallbackSource.from_taps(TapOptions(seed=19)), delivery,
                                  LoadOptions(count=25, duration=None, concurrency=3),
                                  client=client)

    stats = asyncio.run(main())
    assert (stats.sent, stats.ok) == (25, 25)
    assert len(set(seen)) == 25  # every request went through the given client


def test_sampled_history_from_workers_lands_in_one_file_with_distinct_ids(
        receiver: Receiver, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    history = tmp_path / "history.jsonl"
    result = CliRunner().invoke(cli, ["load", "--url", receiver.url, "--count", "40", "-c", "2",
                                      "--workers", "2", "--history-sample", "5", "--history",
                                      str(history), "--seed", "6"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(lines) == 8  # 1 in 5 of each worker's 20
    assert len({line["delivery"] for line in lines}) == 8


def test_answer_heads_are_read_once_each_and_the_cache_stays_bounded() -> None:
    from simulator import rawhttp

    reader = rawhttp._AnswerReader()
    for k in range(3 * rawhttp._HEADS_CAP):
        answer = reader.feed(b"HTTP/1.1 200 OK\r\nX-Request: %d\r\nContent-Length: 2\r\n\r\nok"
                             % k)
        assert answer is not None and answer.status == 200 and answer.body == b"ok"
    assert len(rawhttp._HEADS) <= rawhttp._HEADS_CAP
    same = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert reader.feed(same) == reader.feed(same) == (503, b"", True)  # cached: same answer


# --- memory: nothing a run keeps grows with the request count --------------------------------


class _Answer200(asyncio.Protocol):
    """A target that answers every request 200 at once (the same head each time)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            size = int(head[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
            if len(buffer) < end + 4 + size:
                break
            buffer = buffer[end + 4 + size:]
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.buffer = buffer


class _MeasuredSource(CallbackSource):
    """A source that takes the process's measure as it hands out its `at`-th body: mid-run,
    with every connection busy, when whatever the run keeps per request is all there."""

    at = 0
    calls = 0
    measure: dict[str, int] | None = None

    def body(self) -> bytes:
        self.calls += 1
        if self.calls == self.at:
            gc.collect()
            self.measure = {"blocks": sys.getallocatedblocks(), "objects": len(gc.get_objects())}
        return super().body()


def _run_measured(count: int) -> dict[str, int]:
    """`count` requests at a local target as fast as possible, on a clock that never moves
    (so every latency and lag falls in one bucket); the sizes of what the run kept."""
    from simulator import rawhttp

    async def main() -> tuple[_MeasuredSource, LoadStats]:
        server = await asyncio.get_running_loop().create_server(_Answer200, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            source = _MeasuredSource.from_taps(TapOptions(seed=4))
            assert isinstance(source, _MeasuredSource)
            source.at = count
            delivery = delivery_options_from({"url": f"http://127.0.0.1:{port}/hook"}, str)
            stats = await run_load(source, delivery,
                                   LoadOptions(count=count, duration=None, concurrency=8),
                                   clock=lambda: 100.0)
            return source, stats
        finally:
            server.close()

    source, stats = asyncio.run(main())
    assert (stats.sent, stats.ok) == (count, count) and source.measure is not None
    return source.measure | {
        "latency buckets": len(stats.latency.counts), "lag buckets": len(stats.lag.counts),
        "loop lag buckets": len(stats.loop_lag.counts), "statuses": len(stats.statuses),
        "errors": len(stats.errors), "answer heads": len(rawhttp._HEADS),
        "pooled users": len(source._lean or ()), "bodies drawn ahead": len(source._ready)}


def test_nothing_the_run_keeps_grows_with_the_request_count() -> None:
    n = 2_000
    _run_measured(n)  # once to warm the process's caches (imports, regexes, the head cache)
    small, large = _run_measured(n), _run_measured(10 * n)
    blocks, objects = small.pop("blocks"), small.pop("objects")
    grown_blocks, grown_objects = large.pop("blocks") - blocks, large.pop("objects") - objects
    assert large == small  # every histogram, cache and pool the same size after 10x
    # Anything kept per request (a list of lag values, a dict of ids) would be 9n = 18,000
    # more allocations here; a few hundred is the interpreter's own noise.
    assert grown_blocks < n // 4, grown_blocks
    assert grown_objects < n // 20, grown_objects
