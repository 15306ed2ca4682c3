"""`wasim load --replies`: every tap matched to the app's reply through the send API, and
Meta's throughput per business number (--throughput)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import DeliveryOptions, url_target
from simulator.receiver import Receiver
from simulator.render import RenderOptions, render_callbacks
from simulator.reply_tracking import ReplyTracker, tap_of
from simulator.sendapi import ApiOptions, MockApi, SentMessage
from simulator.taps import TapOptions
from simulator.throughput import RATE_LIMITED, ThroughputLimiter
from tests.apps.load_replier import LoadReplier

TAPS = 60


@pytest.fixture(autouse=True)
def _kaleyra_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The load sets KALEYRA_* for the app: put them back afterwards."""
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.setenv(name, "unset")
    yield


def load_replies(app: LoadReplier, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any],
                                                                          str]:
    """`wasim load --replies` at a steady rate into `app`; exit code, report, output."""
    report = tmp_path / "load.json"
    result = CliRunner().invoke(cli, [
        "load", "--url", app.url, "--rate", "50", "--count", str(TAPS), "-c", "4",
        "--seed", "7", "--replies", "--api-port", "0", "--report", str(report), *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(report.read_text()), result.output


def test_a_replying_app_gets_a_reply_latency_and_no_missing_replies(tmp_path: Path) -> None:
    with LoadReplier("every") as app:
        code, report, output = load_replies(app, tmp_path, "--max-missing-replies", "0",
                                            "--reply-wait", "60")
    replies = report["replies"]
    assert code == 0, output
    assert (replies["taps"], replies["matched"], replies["missing"]) == (TAPS, TAPS, 0)
    assert (replies["wrong_user"], replies["duplicates"]) == (0, 0)
    latency = replies["latency_ms"]
    assert latency["p50"] is not None and 0 < latency["p50"] <= latency["p99"]
    # Each reply's sent, delivered and read came back to the app, as the taps did.
    assert replies["statuses"] == {"delivered": TAPS, "read": TAPS, "sent": TAPS}
    assert app.statuses == {"delivered": TAPS, "read": TAPS, "sent": TAPS}
    assert f"replies: {TAPS} of {TAPS} taps answered, 0 missing" in output
    assert report["latency_ms"]["p99"] is not None  # the webhook's own, beside it


def test_an_app_that_drops_every_tenth_reply_breaks_max_missing_replies(tmp_path: Path) -> None:
    with LoadReplier("drop10") as app:
        code, report, output = load_replies(app, tmp_path, "--max-missing-replies", "0",
                                            "--reply-wait", "0")
    assert code == 1
    assert report["replies"]["missing"] == TAPS // 10
    assert report["replies"]["matched"] == TAPS - TAPS // 10
    assert "threshold broken: missing replies 10.00% > --max-missing-replies 0.00%" in output


def test_an_app_that_replies_twice_is_reported(tmp_path: Path) -> None:
    with LoadReplier("twice") as app:
        code, report, output = load_replies(app, tmp_path, "--reply-wait", "0")
    replies = report["replies"]
    assert (replies["matched"], replies["duplicates"], replies["missing"]) == (TAPS, TAPS, 0)
    assert code == 0  # no threshold asked about duplicates: reported, not judged
    assert f"{TAPS} duplicate" in output


def test_replies_to_someone_else_are_to_the_wrong_user(tmp_path: Path) -> None:
    with LoadReplier("wrong") as app:
        code, report, _ = load_replies(app, tmp_path, "--reply-wait", "0",
                                       "--max-reply-p99", "100000")
    replies = report["replies"]
    assert (replies["wrong_user"], replies["missing"], replies["matched"]) == (TAPS, TAPS, 0)
    assert code == 1  # no reply at all: its p99 cannot be within any threshold


def test_send_api_flags_without_replies_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["load", "--url", "http://127.0.0.1:9/", "--count", "1",
                                      "--throughput", "80"])
    assert result.exit_code == 2
    assert "--throughput" in result.output and "--replies" in result.output


# --- matching, unit by unit ----------------------------------------------------------------


def _taps(count: int) -> list[bytes]:
    return [r.body for r in render_callbacks(RenderOptions(TapOptions(seed=3), count=count))]


def _reply(to: str, context: str = "") -> SentMessage:
    return SentMessage(0, "v2", 0.0, "918600853878", to, "text", "hi", context_id=context)


def test_a_reply_without_context_answers_its_recipients_oldest_tap() -> None:
    now = [0.0]
    tracker = ReplyTracker(clock=lambda: now[0])
    bodies = _taps(2)
    (first, users), (second, _) = tap_of(bodies[0]), tap_of(bodies[1])  # type: ignore[misc]
    tracker.tap(bodies[0])
    now[0] = 0.5
    tracker.tap(bodies[1])
    now[0] = 0.75
    tracker.reply(_reply(users[0]))
    assert (tracker.matched, tracker.missing) == (1, 1)
    assert tracker.latency.percentile(50) == pytest.approx(750, rel=0.01)
    tracker.reply(_reply(users[0]))  # that user has nothing left to answer
    assert tracker.duplicates == 1
    tracker.reply(_reply("919000000001"))  # nobody of this run
    assert tracker.wrong_user == 1
    assert first != second


def test_a_context_naming_another_users_tap_is_the_wrong_user() -> None:
    tracker = ReplyTracker(clock=lambda: 0.0)
    bodies = _taps(2)
    tap_id, _ = tap_of(bodies[0])  # type: ignore[misc]
    _, other = tap_of(bodies[1])  # type: ignore[misc]
    tracker.tap(bodies[0])
    tracker.tap(bodies[1])
    tracker.reply(_reply(other[0], tap_id))
    assert (tracker.wrong_user, tracker.matched, tracker.missing) == (1, 0, 2)


def test_open_taps_are_bounded_and_the_forgotten_count_as_missing() -> None:
    tracker = ReplyTracker(clock=lambda: 0.0, max_open=3)
    for body in _taps(5):
        tracker.tap(body)
    assert (tracker.taps, tracker.missing, len(tracker._open)) == (5, 5, 3)


def test_a_body_without_a_user_message_is_not_a_tap() -> None:
    assert tap_of(b'{"statuses":[{"id":"wamid.x"}]}') is None


# --- Meta's throughput ---------------------------------------------------------------------


def test_the_limiter_lets_the_tier_through_in_any_one_second_window() -> None:
    now = [100.0]
    limiter = ThroughputLimiter(80, clock=lambda: now[0])
    allowed = []
    for _ in range(200):  # a burst of 200 within one second
        allowed.append(limiter.allow("918600853878"))
        now[0] += 0.004
    assert allowed.count(True) == 80 and allowed[:80] == [True] * 80
    assert limiter.allow("918600000000")  # another number has its own throughput
    now[0] += 1.0
    assert limiter.allow("918600853878")  # a second later there is room again


def test_throughput_80_fails_the_excess_of_a_burst_with_130429(receiver: Receiver) -> None:
    now = [0.0]
    webhook = DeliveryOptions(target=url_target(receiver.url))
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        api.throughput = ThroughputLimiter(80, clock=lambda: now[0])
        business = "918600853878"
        with httpx.Client() as client:
            answers = []
            for index in range(200):  # 200 sends within one second (the limiter's clock)
                now[0] = index * 0.004
                answers.append(client.post(
                    api.v2_url(business), headers={"api-key": api.options.api_key},
                    json={"messaging_object": {"to": "+919876543210", "type": "text",
                                               "text": {"body": f"offer {index}"}}}))
        assert {a.status_code for a in answers} == {202}  # Kaleyra accepts them all
        sent = api.sent
        assert [m.error for m in sent[:80]] == [0] * 80
        assert [m.error for m in sent[80:]] == [RATE_LIMITED] * 120
        statuses = api.wait_for_statuses(80 * 3 + 120, timeout=60)
    failed = [s for s in statuses if s.status == "failed"]
    assert len(failed) == 120 and {s.message.number for s in failed} == set(range(81, 201))
    errors = {json.loads(s.body)["meta_object"]["value"]["statuses"][0]["errors"][0]["code"]
              for s in failed}
    assert errors == {130429}
    assert all(s.delivered for s in statuses)


def test_no_failures_below_the_tier() -> None:
    now = [0.0]
    with MockApi(ApiOptions(port=0)) as api:
        api.throughput = ThroughputLimiter(80, clock=lambda: now[0])
        with httpx.Client() as client:
            for index in range(160):  # 80 a second for two seconds: at the tier, not past it
                now[0] = index / 80
                client.post(api.v2_url("918600853878"),
                            headers={"api-key": api.options.api_key},
                            json={"messaging_object": {"to": "919876543210", "type": "text",
                                                       "text": {"body": "hi"}}})
        assert [m.error for m in api.sent] == [0] * 160


def test_throughput_is_checked_on_the_command_line() -> None:
    result = CliRunner().invoke(cli, ["api", "--port", "0", "--throughput", "0"])
    assert result.exit_code == 2



def test_a_tap_delivered_again_is_owed_no_second_answer() -> None:
    """A duplicate (while the tap is out) or a later redelivery (after it was answered) is a
    copy: an idempotent handler that answers once has nothing missing, and a handler that
    answers the copy again is reported for a duplicate answer."""
    tracker = ReplyTracker(clock=lambda: 0.0)
    (body,) = _taps(1)
    tap_id, users = tap_of(body)  # type: ignore[misc]
    tracker.tap(body)
    tracker.tap(body)  # a duplicate, while the first is still out
    tracker.reply(_reply(users[0], tap_id))
    tracker.tap(body)  # redelivered after the answer
    assert (tracker.taps, tracker.copies, tracker.matched, tracker.missing) == (1, 2, 1, 0)
    assert "1 of 1 taps (and 2 copies delivered again) answered, 0 missing" in tracker.line()
    tracker.reply(_reply(users[0], tap_id))  # a careless handler answers the copy again
    assert tracker.duplicates == 1 and tracker.as_dict()["copies"] == 2
