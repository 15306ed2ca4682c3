"""End to end: `wasim fire`, `history`, `replay` and `export` against real receivers and apps."""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.receiver import Receiver, ReceiverOptions
from tests.apps import fastapi_app, flask_app

SEED = ["--seed", "21", "--count", "3", "--clock", "seeded"]  # fire sends render's bytes


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history.jsonl"


@pytest.fixture(autouse=True)
def fresh_apps() -> None:
    for store in (fastapi_app.received, fastapi_app.authorizations, fastapi_app.statuses,
                  fastapi_app.tokens_issued, flask_app.received):
        store.clear()


def rendered(runner: CliRunner, *args: str) -> list[bytes]:
    return runner.invoke(cli, ["render", *args]).stdout_bytes.splitlines()


def fire(runner: CliRunner, history: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["fire", "--history", str(history), *args])


def records(history: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in history.read_text().splitlines()]


def test_the_receiver_gets_exactly_the_bytes_render_printed(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    result = fire(runner, history, "--url", receiver.url, *SEED)
    assert result.exit_code == 0, result.output
    assert [a.body for a in receiver.arrivals] == rendered(runner, *SEED)
    assert len(result.stdout.splitlines()) == 3
    assert "3 delivered, 0 failed" in result.stderr
    assert all(not a.problems for a in receiver.arrivals)


@pytest.mark.parametrize(("spec", "label"), [
    ("tests.apps.fastapi_app:app", "asgi:tests.apps.fastapi_app:app/webhook"),
    ("tests.apps.flask_app:app", "wsgi:tests.apps.flask_app:app/webhook"),
])
def test_an_app_in_process_gets_exactly_the_bytes_render_printed(
        runner: CliRunner, history: Path, spec: str, label: str) -> None:
    result = fire(runner, history, "--app", spec, "--path", "/webhook", *SEED)
    assert result.exit_code == 0, result.output
    app = fastapi_app if "fastapi" in spec else flask_app
    assert app.received == rendered(runner, *SEED)
    assert {r["target"] for r in records(history)} == {label}


def test_headers_and_basic_auth_arrive_at_the_receiver_and_stay_secret(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    result = fire(runner, history, "--url", receiver.url, "-H", "X-Brand: acme",
                  "--basic-auth", "kaleyra:pa55-SECRET")
    assert result.exit_code == 0, result.output
    headers = dict((k.lower(), v) for k, v in receiver.arrivals[0].headers)
    assert headers["x-brand"] == "acme"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"kaleyra:pa55-SECRET").decode()
    for text in (result.stdout, result.stderr, history.read_text()):
        assert "pa55-SECRET" not in text
        assert headers["authorization"].split()[1] not in text


def test_a_token_is_fetched_once_reused_and_never_written_down(
        runner: CliRunner, history: Path) -> None:
    fastapi_app.statuses.extend([200, 200, 401])  # the third call finds the token revoked
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--token-url", "/token", "--client-id", "brand",
                  "--client-secret", "s3cr3t-XYZ", *SEED)
    assert result.exit_code == 0, result.output
    assert fastapi_app.tokens_issued == ["tok-1-QWERTY", "tok-2-QWERTY"]
    assert fastapi_app.authorizations == ["Bearer tok-1-QWERTY"] * 3 + ["Bearer tok-2-QWERTY"]
    for text in (result.stdout, result.stderr, history.read_text()):
        assert "s3cr3t-XYZ" not in text and "QWERTY" not in text


def test_a_handler_failing_twice_is_retried_and_the_history_keeps_all_attempts(
        runner: CliRunner, history: Path) -> None:
    fastapi_app.statuses.extend([500, 500, 200])
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--seed", "1", "--retries", "3", "--backoff", "0.01")
    assert result.exit_code == 0, result.output
    stored = records(history)
    assert [(r["attempt"], r["status"], r["final"]) for r in stored] == \
        [(1, 500, False), (2, 500, False), (3, 200, True)]
    assert len({r["event"] for r in stored}) == 1
    assert "(will retry)" in result.stdout.splitlines()[0]


def test_a_failure_after_retries_exits_1(runner: CliRunner, history: Path) -> None:
    fastapi_app.statuses.extend([503, 503])
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--retries", "1", "--backoff", "0")
    assert result.exit_code == 1
    assert "0 delivered, 1 failed, 2 attempt(s)" in result.stderr


def test_replay_sends_bytes_identical_to_the_original(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    assert fire(runner, history, "--url", receiver.url, *SEED).exit_code == 0
    original = [a.body for a in receiver.arrivals]
    event_id = records(history)[1]["event"]
    result = runner.invoke(cli, ["replay", str(event_id)[:10], "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert receiver.arrivals[-1].body == original[1]
    assert records(history)[-1]["replay_of"] == records(history)[1]["delivery"]
    again = runner.invoke(cli, ["replay", "--last", "3", "--history", str(history)])
    assert again.exit_code == 0
    # The last three events by their latest delivery: the replayed one moved to the end.
    assert [a.body for a in receiver.arrivals[-3:]] == [original[0], original[2], original[1]]


def test_replay_to_another_target_and_of_failures_only(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    fire(runner, history, "--url", "http://127.0.0.1:9/hook", "--seed", "5", "--clock", "seeded")
    result = runner.invoke(cli, ["replay", "--failed", "--url", receiver.url,
                                 "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert [a.body for a in receiver.arrivals] == rendered(runner, "--seed", "5")


def test_export_curl_reproduces_the_request_exactly(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    fire(runner, history, "--url", receiver.url, "--seed", "8", "-H", "X-Request-Id: acme",
         "-H", "X-Brand: acme", "--name", "José 😂 O'Neil / Co")
    event_id = records(history)[0]["event"]
    result = runner.invoke(cli, ["export", "--curl", str(event_id), "--history", str(history)])
    assert result.exit_code == 0, result.output
    # Headers outside the harmless allow-list (X-Brand) were redacted: a comment says so.
    comment, command = result.stdout.strip().split("\n")
    assert comment == "# x-brand was redacted in the history; add -H 'x-brand: ...'"
    args = shlex.split(command)
    assert args[:5] == ["curl", "-sS", "-X", "POST", receiver.url]
    body = args[args.index("--data-binary") + 1].encode()
    assert body == receiver.arrivals[0].body
    assert args[args.index("x-request-id: acme") - 1] == "-H"


def test_history_lists_filters_and_prints_json(runner: CliRunner, receiver: Receiver,
                                               history: Path) -> None:
    fire(runner, history, "--url", receiver.url, *SEED)
    fire(runner, history, "--url", "http://127.0.0.1:9/", "--seed", "2")
    listing = runner.invoke(cli, ["history", "--history", str(history)])
    assert listing.exit_code == 0 and len(listing.stdout.splitlines()) == 1 + 4
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["TIME", "EVENT", "TRY", "USER", "BUTTON", "RESULT", "LATENCY",
                              "TARGET"]
    assert rows[-1].endswith("http://127.0.0.1:9/") and "unreachable" in rows[-1]
    failed = runner.invoke(cli, ["history", "--failed", "--json", "--history", str(history)])
    assert [json.loads(line)["outcome"] for line in failed.stdout.splitlines()] == \
        ["unreachable"]


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--url", "http://127.0.0.1:9/hook"], 3,
     "Nothing is listening on 127.0.0.1:9. Is your webhook running? `wasim receive` starts a "
     "test one."),
    (["--url", "not a url"], 2, "--url: invalid URL"),
    (["--url", "https://203.0.113.5/x"], 2, "not this machine"),
    (["--app", "tests.apps.nope:app"], 2, "--app: cannot import 'tests.apps.nope'"),
    (["--app", "tests.apps.flask_app:ap"], 2, "has no attribute 'ap'"),
    ([], 2, "no target"),
    (["--url", "http://127.0.0.1:9/", "--header", "oops"], 2, "--header"),
    (["--url", "http://127.0.0.1:9/", "--retry-schedule", "1,x"], 2, "--retry-schedule"),
])
def test_bad_targets_get_one_line_errors_and_their_exit_code(
        runner: CliRunner, history: Path, args: list[str], code: int, fragment: str) -> None:
    result = fire(runner, history, *args)
    assert result.exit_code == code, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("wasim: error: ") and fragment in last
    assert "Traceback" not in result.stderr


def test_a_slow_handler_times_out_with_the_limit_named(runner: CliRunner, history: Path) -> None:
    with Receiver(ReceiverOptions(port=0, delay=2)) as slow:
        result = fire(runner, history, "--url", slow.url, "--timeout", "0.2")
    assert result.exit_code == 1
    assert "no answer within 0.2 s (the timeout)" in result.stdout


def test_a_corrupt_history_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\x00\x01 garbage\nmore garbage\n")
    for command in (["history"], ["replay", "--last", "1"], ["export", "evt_1"]):
        result = runner.invoke(cli, [*command, "--history", str(path)])
        assert result.exit_code == 2, result.output
        assert "not a wasim history file" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_run_killed_mid_way_leaves_a_history_that_reads_and_replays(
        tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    with Receiver(ReceiverOptions(port=0, delay=0.3)) as slow:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "fire", "--url", slow.url, "--count", "50",
             "--seed", "4", "--history", str(history)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[1])
        try:
            # The 5th callback is being held by the receiver's delay: 4 have been answered.
            slow.wait_for(5, timeout=30)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        answered = slow.arrivals[:4]
        runner = CliRunner()
        listing = runner.invoke(cli, ["history", "--history", str(history), "--json"])
        assert listing.exit_code == 0, listing.output
        stored = [json.loads(line) for line in listing.stdout.splitlines()]
        assert [r["body"].encode() for r in stored][:4] == [a.body for a in answered]
        assert all(r["status"] == 200 for r in stored)
        before = len(slow.arrivals)
        replayed = runner.invoke(cli, ["replay", "--last", "2", "--history", str(history),
                                       "--timeout", "5"])
        assert replayed.exit_code == 0, replayed.output
        deadline = time.monotonic() + 5
        while len(slow.arrivals) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.body for a in slow.arrivals[before:]] == [a.body for a in answered[2:4]]


def test_fire_streams_the_first_callback_leaves_before_the_second_is_rendered(
        runner: CliRunner, history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.render
    from simulator.errors import WasimError

    real_render_tap = simulator.render.render_tap
    delivered_before_render: list[int] = []

    def render_tap(*args: Any, **kwargs: Any) -> bytes:
        # The app's count of arrivals when each callback is rendered: causality, not timing.
        delivered_before_render.append(len(fastapi_app.received))
        if len(delivered_before_render) == 3:
            raise WasimError("enough", where="the test")  # -n 100000000 need not finish
        return real_render_tap(*args, **kwargs)

    monkeypatch.setattr(simulator.render, "render_tap", render_tap)
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--seed", "5", "--count", "100000000")
    assert delivered_before_render == [0, 1, 2]
    assert len(fastapi_app.received) == 2
    assert result.exit_code == 2 and "the test: enough" in result.stderr
    assert len(records(history)) == 2  # what was sent before the error is kept


def test_fire_keeps_no_delivered_event_alive_so_memory_stays_flat(
        runner: CliRunner, history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import weakref

    from simulator.delivery import Event

    real_from_body = Event.from_body.__func__  # type: ignore[attr-defined]
    made: list[weakref.ref[Event]] = []
    alive_at_each_render: list[int] = []

    def from_body(cls: type[Event], body: bytes, seed: int | None = None) -> Event:
        gc.collect()
        alive_at_each_render.append(sum(ref() is not None for ref in made))
        event: Event = real_from_body(cls, body, seed)
        made.append(weakref.ref(event))
        return event

    monkeypatch.setattr(Event, "from_body", classmethod(from_body))
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--seed", "5", "--count", "30")
    assert result.exit_code == 0, result.output
    assert len(fastapi_app.received) == 30
    # The event being delivered may still be referenced; none of the earlier ones are.
    assert max(alive_at_each_render) <= 2, alive_at_each_render


def test_a_template_error_on_the_first_callback_sends_nothing_and_writes_no_history(
        runner: CliRunner, history: Path, tmp_path: Path) -> None:
    template = tmp_path / "broken.json.j2"
    template.write_text('{"a": {{ tap.nope | json }}}')
    result = fire(runner, history, "--app", "tests.apps.fastapi_app:app", "--path", "/webhook",
                  "--template", str(template), "--count", "100000000")
    assert result.exit_code == 2
    assert fastapi_app.received == []
    assert not history.exists()
