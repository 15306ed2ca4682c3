"""Testing a Flask webhook for Kaleyra button taps with wasim's `wasim` fixture."""

import flask_handler as handler
import pytest

from simulator.testing import Simulator


@pytest.fixture(autouse=True)
def webhook(wasim: Simulator) -> None:
    """Each test starts with empty stores and delivers into the app's /webhook, in-process."""
    for store in (handler.handled, handler.opted_out, handler.replies_sent):
        store.clear()
    wasim.target(app=handler.app, path="/webhook")


def test_a_tap_gets_one_reply(wasim: Simulator) -> None:
    tap = wasim.tap("Shop now")
    wasim.deliver(tap).assert_status(200)
    assert handler.replies_sent == [tap.user.wa_id]


def test_stop_opts_the_shopper_out(wasim: Simulator) -> None:
    shopper = wasim.user()  # the same user taps twice, under the same template message
    wasim.deliver(wasim.tap("Shop now", user=shopper)).assert_delivered()
    wasim.deliver(wasim.tap("Stop promotions", payload="STOP", user=shopper)).assert_delivered()
    assert handler.opted_out == {shopper.wa_id}


def test_a_duplicate_delivery_is_acted_on_once(wasim: Simulator) -> None:
    tap = wasim.tap("Shop now")
    copies = wasim.duplicate(tap)  # the same bytes twice, as an at-least-once platform sends
    copies.assert_delivered()
    copies.assert_acted_once(handler.replies_sent)


def test_the_idempotency_scenario_is_acted_on_once_per_tap(wasim: Simulator) -> None:
    run = wasim.run_scenario("idempotency-check")  # 10 taps, each delivered twice
    run.assert_ok()
    run.assert_acted_once(handler.replies_sent)
