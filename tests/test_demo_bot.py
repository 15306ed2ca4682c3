"""`wasim demo`'s example bot: every tap answered once through the send API, ids lined up."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from simulator.demo_bot import CATALOGUE, DemoBot
from simulator.history import read_history
from simulator.meta import batch
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.sendapi import ApiOptions, MockApi, reply_tap
from simulator.taps import DEFAULT_BUTTONS, TapFactory, TapOptions
from simulator.tui.commands import demo

SCENARIO = """\
name: chat
seed: 12
template:
  buttons:
    - {text: Shop now, payload: SHOP_NOW}
    - {text: Stop promotions, payload: STOP_PROMO}
cast: {countries: {IN: 8}}
steps:
  - name: wave
    choices: {Shop now: 50, Stop promotions: 50}
chaos: {duplicate: 0.5}
expect:
  status: [200]
  reply: {count: 1}
"""


def test_headless_demo_answers_every_tap_exactly_once_with_ids_that_line_up(
        tmp_path: Path) -> None:
    scenario, history = tmp_path / "chat.yaml", tmp_path / "h.jsonl"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(demo, [str(scenario), "--headless", "--history", str(history)],
                                standalone_mode=False)
    assert result.return_value == 0, result.output
    assert "expectations: all held" in result.stdout
    assert "demo bot: 8 replies to 8 of 8 tap(s) through the send API" in result.stdout
    assert re.search(r"send API on http://127\.0\.0\.1:\d+", result.stderr)
    recorded = read_history(history)
    taps = {a.event.message_id: a.event.user for a in recorded.attempts}
    assert len(taps) == 8 and len(recorded.attempts) > 8  # duplicates went too
    by_tap = {s.context_id: s for s in recorded.sent}
    assert len(recorded.sent) == 8 and set(by_tap) == set(taps)
    for tap_id, sent in by_tap.items():
        assert sent.to == taps[tap_id] and sent.wamid.startswith("wamid.")
    assert {s.template or s.type for s in recorded.sent} == {CATALOGUE, "text"}


def test_the_tui_demo_keeps_the_bots_replies_in_the_history_as_headless_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.tui.commands

    history = tmp_path / "h.jsonl"
    factory = TapFactory(TapOptions(seed=5))
    user = factory.new_user("IN")
    stop = factory.tap(user, factory.send_template(user), DEFAULT_BUTTONS[1])
    body = render_tap(CallbackTemplate(find_template("button_tap")), stop)

    def tap_once(app: Any) -> int:  # the UI, reduced to one tap on Stop promotions
        assert httpx.post(app.delivery.target.url, content=body,
                          headers={"Content-Type": "application/json"}).status_code == 200
        return 0

    monkeypatch.setattr(simulator.tui.commands, "is_terminal", lambda: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(simulator.tui.commands, "_run_app", tap_once)
    result = CliRunner().invoke(demo, ["--history", str(history)], standalone_mode=False)
    assert result.return_value == 0, result.output
    [sent] = read_history(history).sent
    assert (sent.to, sent.type, sent.context_id) == (user.wa_id, "text", stop.message_id)


def test_the_bot_answers_a_tap_on_its_own_catalogue_and_every_message_of_a_batch() -> None:
    factory = TapFactory(TapOptions(seed=3))
    template = CallbackTemplate(find_template("button_tap"))
    bot = DemoBot()
    with MockApi(ApiOptions(port=0)) as api:
        bot.api = api
        user = factory.new_user("IN")
        shop = factory.tap(user, factory.send_template(user), DEFAULT_BUTTONS[0])
        assert bot.answer(render_tap(template, shop)) == 1
        [catalogue] = api.sent
        assert catalogue.template == CATALOGUE and catalogue.context_id == shop.message_id
        sizes = reply_tap(factory, catalogue, "See sizes")
        assert bot.answer(render_tap(template, sizes)) == 1
        assert "in stock" in api.sent[-1].text and api.sent[-1].context_id == sizes.message_id
        assert bot.answer(render_tap(template, sizes)) == 0  # a duplicate: answered already
        others = [factory.new_user("IN") for _ in range(3)]
        bodies = [render_tap(template, factory.tap(u, factory.send_template(u),
                                                   DEFAULT_BUTTONS[-1])) for u in others]
        assert bot.answer(batch(bodies)) == 3
        assert {m.to for m in api.sent[-3:]} == {u.wa_id for u in others}
    bot.close()
    assert bot.errors == []


def test_the_bot_answers_a_username_only_user_at_their_bsuid() -> None:
    factory = TapFactory(TapOptions(seed=4))
    bot = DemoBot()
    with MockApi(ApiOptions(port=0)) as api:
        bot.api = api
        user = factory.with_identity(factory.new_user("IN"), "username")
        stop = factory.tap(user, factory.send_template(user), DEFAULT_BUTTONS[1])
        body = render_tap(CallbackTemplate(find_template("button_tap")), stop)
        assert "from" not in json.loads(body)["meta_object"]["value"]["messages"][0]
        assert bot.answer(body) == 1
        [sent] = api.sent
    bot.close()
    assert (sent.to, sent.to_kind) == (user.user_id, "bsuid") and bot.errors == []


def test_a_reply_the_send_api_refuses_is_reported_not_raised() -> None:
    factory = TapFactory(TapOptions(seed=4))
    template = CallbackTemplate(find_template("button_tap"))
    bot = DemoBot()
    with MockApi(ApiOptions(port=0)) as api:
        api.set_fault("E110", count=1)  # low balance: Kaleyra refuses the send at once
        bot.api = api
        user = factory.new_user("IN")
        shop = factory.tap(user, factory.send_template(user), DEFAULT_BUTTONS[0])
        assert json.loads(render_tap(template, shop))  # a valid tap on Shop now
        assert bot.answer(render_tap(template, shop)) == 0
    bot.close()
    assert len(bot.errors) == 1 and "answered 400" in bot.errors[0]


def test_the_tap_is_handed_on_before_its_reply_goes_out_and_drain_waits_for_it() -> None:
    # The bot acknowledges first and replies after, on its own thread: the receiver's answer
    # (and the UI's feed) never waits for the send API. Causal: the send API is held open.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    from simulator.receiver import Arrival

    release, posted = threading.Event(), threading.Event()

    class HeldApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            posted.set()
            release.wait(30)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), HeldApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handed: list[Arrival] = []
    bot = DemoBot(then=handed.append)
    bot.api = SimpleNamespace(  # type: ignore[assignment]
        v2_url=lambda business: f"http://127.0.0.1:{server.server_address[1]}/v2",
        options=SimpleNamespace(api_key="k"), sent=[])
    factory = TapFactory(TapOptions(seed=3))
    user = factory.new_user("IN")
    tap = factory.tap(user, factory.send_template(user), DEFAULT_BUTTONS[1])
    body = render_tap(CallbackTemplate(find_template("button_tap")), tap)
    arrival = Arrival(number=1, received_at=0.0, method="POST", path="/", headers=(),
                      body=body, status=200, summary="", problems=())
    try:
        bot(arrival)
        assert handed == [arrival]  # handed on while the reply is still to go
        assert posted.wait(30)  # the reply is on its way, held by the send API
        assert not bot.drain(timeout=0.05)
        release.set()
        assert bot.drain(timeout=30) and not bot.errors
    finally:
        release.set()
        bot.close()
        server.shutdown()
