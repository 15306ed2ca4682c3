"""`wasim load`: unique valid callbacks, the fast client's parsing, thresholds, flat memory."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import DeliveryOptions, app_target, url_target
from simulator.load import (
    CallbackSource,
    LatencyHistogram,
    LoadOptions,
    _Slots,
    run_load,
)
from simulator.rawhttp import _AnswerReader
from simulator.receiver import Receiver, ReceiverOptions
from simulator.scenarios import load_scenario
from simulator.taps import TapOptions
from simulator.validate import validate_callback


def test_the_histogram_percentiles_are_within_one_percent() -> None:
    rnd = random.Random(3)
    samples = [rnd.lognormvariate(6, 1) for _ in range(20_000)]  # microseconds
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.record(sample)
    ordered = sorted(samples)
    for p in (50, 95, 99):
        exact = ordered[int(p / 100 * len(ordered)) - 1] / 1000
        assert histogram.percentile(p) == pytest.approx(exact, rel=0.012)
    assert len(histogram.counts) < 1500  # bounded, however many samples


@pytest.mark.parametrize(("raw", "expected"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", (200, b"ok", False)),
    (b"HTTP/1.1 500 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", (500, b"", True)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n",
     (200, b"ok!", False)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=1\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
     (200, b"ok", False)),
    (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"", False)),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", (200, b"ok", True)),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
     (200, b"ok", False)),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!",
     (201, b"!", False)),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\n\r\n",
     None),  # no length: the body runs until the server closes
])
def test_the_fast_client_reads_answers_whole_or_byte_by_byte(
        raw: bytes, expected: tuple[int, bytes, bool] | None) -> None:
    assert _AnswerReader().feed(raw) == expected
    reader = _AnswerReader()
    answers = [reader.feed(raw[i:i + 1]) for i in range(len(raw))]
    assert answers[:-1] == [None] * (len(raw) - 1)
    assert answers[-1] == expected


def test_an_answer_without_a_length_ends_when_the_server_closes() -> None:
    reader = _AnswerReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\n\r\nall of") is None
    assert reader.feed(b" it") is None
    assert reader.finish() == (200, b"all of it", True)


def test_bytes_past_an_answer_end_the_connection_instead_of_shifting_the_next() -> None:
    reader = _AnswerReader()
    answer = reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 X\r\n")
    assert answer == (200, b"ok", True)


def test_the_fast_client_waits_for_a_whole_answer() -> None:
    assert _AnswerReader().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok") is None
    assert _AnswerReader().feed(b"HTTP/1.1 200 OK\r\nContent-Le") is None
    assert _AnswerReader().feed(b"HTTP/1.1 100 Continue\r\n\r\n") is None


@pytest.mark.parametrize("raw", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
])
def test_a_garbled_answer_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        _AnswerReader().feed(raw)


def load_at(url: str, count: int, concurrency: int = 4, **taps: object) -> object:
    source = CallbackSource.from_taps(TapOptions(seed=9, **taps))  # type: ignore[arg-type]
    return asyncio.run(run_load(source, DeliveryOptions(target=url_target(url)),
                                LoadOptions(count=count, duration=None,
                                            concurrency=concurrency)))


def test_every_request_is_a_unique_valid_callback(receiver: Receiver) -> None:
    stats = load_at(receiver.url, 300, countries=("IN", "BR", "AE"))
    assert (stats.sent, stats.ok, stats.failed) == (300, 300, 0)  # type: ignore[attr-defined]
    arrivals = receiver.wait_for(300)
    assert len({a.body for a in arrivals}) == 300
    ids = {json.loads(a.body)["meta_object"]["value"]["messages"][0]["id"] for a in arrivals}
    assert len(ids) == 300
    assert [a.problems for a in arrivals if a.problems] == []


def test_load_into_an_app_in_process() -> None:
    from tests.apps import fastapi_app

    fastapi_app.received.clear()
    source = CallbackSource.from_taps(TapOptions(seed=2))
    target = app_target("tests.apps.fastapi_app:app", "/webhook")
    stats = asyncio.run(run_load(source, DeliveryOptions(target=target),
                                 LoadOptions(count=40, duration=None, concurrency=4)))
    assert (stats.sent, stats.ok) == (40, 40)
    assert len(set(fastapi_app.received)) == 40


def test_a_failing_receiver_shows_in_the_error_rate_not_as_a_crash() -> None:
    with Receiver(ReceiverOptions(port=0, fail_rate=0.5, seed=1)) as flaky:
        stats = load_at(flaky.url, 200)
    assert stats.sent == 200  # type: ignore[attr-defined]
    assert 0.3 < stats.error_rate < 0.7  # type: ignore[attr-defined]
    assert stats.statuses[500] == stats.failed  # type: ignore[attr-defined]


def test_a_rate_is_held_open_loop(receiver: Receiver) -> None:
    source = CallbackSource.from_taps(TapOptions(seed=1))
    stats = asyncio.run(run_load(source, DeliveryOptions(target=url_target(receiver.url)),
                                 LoadOptions(rate=200, duration=1.0, concurrency=8)))
    # Never more than the rate allows; how many fewer depends on the machine, so unchecked.
    assert 0 < stats.sent <= 200


def test_the_rate_hands_out_one_slot_per_period_until_the_duration() -> None:
    now = [100.0]
    slots = _Slots(LoadOptions(rate=200, duration=1.0), lambda: now[0], 100.0)
    due = []
    while (slot := slots.take()) is not None:
        due.append(slot)
        now[0] = slot  # the clock only moves when a slot is taken: no machine speed in it
    assert len(due) == 200
    assert due == [pytest.approx(100.0 + k / 200) for k in range(200)]


def test_a_scenario_drives_the_load_with_its_cast_and_buttons(receiver: Receiver) -> None:
    scenario = load_scenario("opt-out-storm")
    source = CallbackSource.from_scenario(scenario)
    asyncio.run(run_load(source, DeliveryOptions(target=url_target(receiver.url)),
                         LoadOptions(count=50, duration=None, concurrency=2)))
    documents = [json.loads(a.body) for a in receiver.wait_for(50)]
    buttons = {d["meta_object"]["value"]["messages"][0]["button"]["text"] for d in documents}
    assert buttons == {"Stop promotions"}
    assert all(validate_callback(d) == [] for d in documents)


def test_thresholds_set_the_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    report = tmp_path / "load.json"
    with Receiver(ReceiverOptions(port=0, fail_rate=0.5, seed=2)) as flaky:
        broken = runner.invoke(cli, ["load", "--url", flaky.url, "--count", "100", "-c", "4",
                                     "--max-error-rate", "0.1", "--report", str(report)])
        assert broken.exit_code == 1, broken.output
        assert "threshold broken: error rate" in broken.stdout
        figures = json.loads(report.read_text())
        assert figures["sent"] == 100 and figures["thresholds"]["breached"]
        lenient = runner.invoke(cli, ["load", "--url", flaky.url, "--count", "50",
                                      "--max-error-rate", "0.9", "--max-p99", "5000"])
        assert lenient.exit_code == 0, lenient.output
    with Receiver(ReceiverOptions(port=0, delay=0.02)) as slow:
        late = runner.invoke(cli, ["load", "--url", slow.url, "--count", "20", "-c", "2",
                                   "--max-p99", "1"])
    assert late.exit_code == 1 and "threshold broken: p99" in late.stdout


def _all_fail_scenario(tmp_path: Path) -> Path:
    """A scenario whose success is "500": a receiver answering 200 fails every request."""
    path = tmp_path / "strict.yaml"
    path.write_text(
        "name: strict\nseed: 7\ntarget:\n  success: \"500\"\n"
        "template: {name: t, body: hi, buttons: [{text: 'Yes', payload: Y}]}\n"
        "cast: {countries: {IN: 2}}\nsteps: [{who: all, tap: 'Yes'}]\n")
    return path


def test_any_failed_request_fails_a_load_run_by_default(tmp_path: Path,
                                                        receiver: Receiver) -> None:
    result = CliRunner().invoke(cli, ["load", str(_all_fail_scenario(tmp_path)), "--url",
                                      receiver.url, "--count", "5", "-c", "1"])
    assert "5 sent, 0 ok, 5 failed" in result.stdout, result.output
    assert result.exit_code == 1, result.output
    assert "threshold broken: 5 of 5 requests failed" in result.stdout
    assert "--max-error-rate" in result.stdout  # says how to allow a share


def test_failures_within_the_allowed_share_pass_and_beyond_it_fail(
        tmp_path: Path, receiver: Receiver) -> None:
    strict = str(_all_fail_scenario(tmp_path))
    runner = CliRunner()
    allowed = runner.invoke(cli, ["load", strict, "--url", receiver.url, "--count", "4",
                                  "-c", "1", "--max-error-rate", "1"])
    assert allowed.exit_code == 0, allowed.output
    assert "4 sent, 0 ok, 4 failed" in allowed.stdout
    too_many = runner.invoke(cli, ["load", strict, "--url", receiver.url, "--count", "4",
                                   "-c", "1", "--max-error-rate", "0.5"])
    assert too_many.exit_code == 1, too_many.output
    assert "threshold broken: error rate 100.00% > --max-error-rate 50.00%" in too_many.stdout


def test_a_run_where_every_request_succeeds_exits_0(receiver: Receiver) -> None:
    result = CliRunner().invoke(cli, ["load", "--url", receiver.url, "--count", "5", "-c", "1"])
    assert result.exit_code == 0, result.output
    assert "5 sent, 5 ok, 0 failed" in result.stdout


def test_history_is_off_in_load_mode_unless_sampled(tmp_path: Path, receiver: Receiver) -> None:
    history = tmp_path / "h.jsonl"
    runner = CliRunner()
    off = runner.invoke(cli, ["load", "--url", receiver.url, "--count", "30",
                              "--history", str(history)])
    assert off.exit_code == 0 and "history: off in load mode" in off.stderr
    assert not history.exists()
    sampled = runner.invoke(cli, ["load", "--url", receiver.url, "--count", "100",
                                  "--history", str(history), "--history-sample", "10"])
    assert sampled.exit_code == 0, sampled.output
    assert len(history.read_text().splitlines()) == 10


def test_nothing_listening_is_exit_3() -> None:
    result = CliRunner().invoke(cli, ["load", "--url", "http://127.0.0.1:9/", "--count", "5",
                                      "-c", "1"])
    assert result.exit_code == 3
    assert "Nothing is listening on 127.0.0.1:9" in result.stderr


def test_bad_load_options_are_one_line_errors() -> None:
    runner = CliRunner()
    for args, fragment in ((["--duration", "soon"], "--duration"),
                           (["--url", "https://203.0.113.5/"], "not this machine"),
                           ([], "no target")):
        result = runner.invoke(cli, ["load", *args])
        assert result.exit_code == 2, result.output
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
