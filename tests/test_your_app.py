"""Wiring your own app: `fire --app` shows what a handler raised and where, leaves as soon
as it has reported, and the examples `wasim new --example` writes pass the built-in scenario."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from simulator.cli import cli

ROOT = Path(__file__).resolve().parent.parent

RAISING = '''
from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, str]:
    payload = await request.json()
    return {"order": payload["no_such_field"]}
'''


def test_a_raising_handler_is_shown_under_its_attempt_with_its_own_frame(
        runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "shop_webhook.py").write_text(RAISING)
    sys.path.insert(0, str(tmp_path))
    try:
        result = runner.invoke(cli, ["fire", "--app", "shop_webhook:app", "--path", "/webhook",
                                     "--no-history", "--seed", "3"])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("shop_webhook", None)
    assert result.exit_code == 1
    attempt, under = result.stdout.splitlines()[:2]
    assert "500 FAILED" in attempt
    # Before: the handler never answered; FastAPI's error middleware answered 500 for it.
    assert under.startswith("    ↳ the app raised before answering: KeyError: 'no_such_field'")
    assert f"{tmp_path / 'shop_webhook.py'}:10 in webhook" in under


def test_fire_leaves_once_reported_though_the_apps_worker_thread_is_stuck() -> None:
    """A plain `def` handler stuck for good on FastAPI's worker thread: without leaving at
    once, Python would join that thread at exit and the process would never end."""
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "fire", "--app", "tests.apps.stuck_sync_app:app",
         "--path", "/webhook", "--no-history", "--timeout", "1", "--seed", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "no answer within 1 s" in done.stdout
    assert "0 delivered, 1 failed" in done.stderr
