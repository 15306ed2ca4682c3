"""Wiring your own app: `fire --app` shows what a handler raised and where, leaves as soon
as it has reported, and the examples `wasim new --example` writes pass the built-in scenario."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.testing import Simulator

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


SECRET = "example-app-secret"


@pytest.mark.parametrize("example", ["fastapi", "flask"])
@pytest.mark.parametrize("scenario", ["summer-sale", "forged-signatures"])
def test_each_example_passes_the_built_in_scenarios(
        example: str, scenario: str, runner: CliRunner, tmp_path: Path, wasim: Simulator,
        monkeypatch: pytest.MonkeyPatch, without_latency_limit: Callable[[str], Path]) -> None:
    """What `wasim new --example` writes, run as written: signed taps answered once through
    the send API, forged ones refused and never answered."""
    monkeypatch.chdir(tmp_path)
    written = runner.invoke(cli, ["new", "--example", example, f"{example}_hook"])
    assert written.exit_code == 0, written.output
    assert f"wrote {example}_hook.py" in written.stderr
    spec = importlib.util.spec_from_file_location(f"{example}_hook", tmp_path /
                                                  f"{example}_hook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("WHATSAPP_APP_SECRET", SECRET)
    wasim.target(app=module.app, path="/webhook", app_secret=SECRET)
    with wasim.api() as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        played = without_latency_limit(scenario) if scenario == "summer-sale" else scenario
        run = wasim.run_scenario(played)
        run.assert_ok()
        assert api.sent and all(m.type == "text" and m.context_id for m in api.sent)


def test_new_without_a_name_or_an_example_says_what_to_give(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["new"])
    assert result.exit_code == 2 and "wasim new --example fastapi" in result.stderr
