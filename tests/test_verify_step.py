"""`verify:` as a scenario step: Meta's GET handshake between the taps, with its own rule."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from simulator.testing import Simulator

TOKEN = "s3cret-token"
SCENARIO = f"""
name: registered
seed: 1
cast: {{countries: {{IN: 2}}}}
steps:
  - name: register
    verify: {{verify_token: {TOKEN}}}
  - name: guessed token
    verify: {{verify_token: guess, expect: refused}}
  - name: taps
expect:
  status: [200]
"""


def webhook(echo_any: bool = False) -> tuple[FastAPI, list[str]]:
    """A handler that answers Meta's handshake (for TOKEN, or any token) and takes taps."""
    app = FastAPI()
    taps: list[str] = []

    @app.get("/webhook")
    async def verify(request: Request) -> Response:
        query = request.query_params
        if query.get("hub.mode") == "subscribe" and (
                echo_any or query.get("hub.verify_token") == TOKEN):
            return PlainTextResponse(query.get("hub.challenge", ""))
        return PlainTextResponse("Forbidden", status_code=403)

    @app.post("/webhook")
    async def tap(request: Request) -> dict[str, str]:
        taps.append((await request.body()).decode())
        return {"status": "ok"}

    return app, taps


def test_a_handler_that_registers_properly_passes_the_verify_steps_and_gets_its_taps() -> None:
    app, taps = webhook()
    run = Simulator(1).run_scenario(SCENARIO, app=app, path="/webhook")
    run.assert_ok()
    verifies = [r for r in run.results if r.planned.kind == "verify"]
    assert [r.planned.step for r in verifies] == ["register", "guessed token"]
    assert [[a.method for a in r.result.attempts] for r in verifies] == [["GET", "GET"]] * 2
    assert [a.status for a in verifies[0].result.attempts] == [200, 403]
    assert len(taps) == 2  # the taps still went; the handshake sends no body


def test_a_handler_that_echoes_any_token_breaks_both_verify_rules() -> None:
    app, _ = webhook(echo_any=True)
    run = Simulator(1).run_scenario(SCENARIO, app=app, path="/webhook")
    broken = {f.step: f for f in run.summary.failures}
    assert set(broken) == {"register", "guessed token"}
    assert all(f.rule == "verify" for f in broken.values())
    assert "FAIL wrong token: HTTP 200, echoed the challenge" in broken["register"].message
    assert "'guess'" in broken["guessed token"].message
    assert not run.ok
