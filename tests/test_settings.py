"""Delivery settings: one table, one resolve, the same precedence for run, load, the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from simulator.cli import _LOAD_KEYS, cli, flag_name, given_delivery_settings
from simulator.cli import load as load_command
from simulator.cli import run as run_command
from simulator.delivery import DeliveryOptions, delivery_options_from
from simulator.errors import WasimError
from simulator.receiver import Receiver
from simulator.runner import plan_scenario, scenario_delivery, scenario_settings
from simulator.scenarios import load_scenario
from simulator.settings import KEYS, SETTINGS, from_params, resolve
from simulator.testing import Simulator

SCENARIO = {
    "name": "settings",
    "seed": 7,
    "template": {"name": "t", "body": "hi", "buttons": [{"text": "Yes", "payload": "Y"}]},
    "cast": {"countries": {"IN": 2}},
    "steps": [{"who": "all", "tap": "Yes"}],
}

HOOK = "http://127.0.0.1:9/hook"
APP = "tests.apps.fastapi_app:app"

# Per setting: the value a source gives (as a flag, as YAML), a lower layer's different value,
# what else must be set for it to make sense, and what DeliveryOptions then shows.
CASES: dict[str, tuple[list[str], Any, Any, dict[str, Any], Any]] = {
    "url": (["http://127.0.0.1:9/b"], "http://127.0.0.1:9/b", "http://127.0.0.1:9/a", {},
            lambda o: o.target.url),
    "app": ([APP], APP, None, {}, lambda o: o.target.kind),
    "path": (["/b"], "/b", "/a", {"app": APP}, lambda o: o.target.url.endswith("/b")),
    "method": (["PUT"], "PUT", "PATCH", {}, lambda o: o.method),
    "headers": (["X-B: 2"], {"X-B": "2"}, {"X-A": "1"}, {}, lambda o: o.headers),
    "basic_auth": (["u:b"], "u:b", "u:a", {}, lambda o: o.auth.basic),
    "token_url": (["http://127.0.0.1:9/t"], "http://127.0.0.1:9/t", "http://127.0.0.1:9/s",
                  {"client_id": "me"}, lambda o: o.auth.token_url),
    "client_id": (["b"], "b", "a", {"token_url": "/t"}, lambda o: o.auth.client_id),
    "client_secret": (["b"], "b", "a", {"token_url": "/t", "client_id": "me"},
                      lambda o: o.auth.client_secret),
    "timeout": (["2.5"], 2.5, 7.0, {}, lambda o: o.timeout),
    "success": (["500"], "500", "404", {}, lambda o: o.success),
    "retries": (["3"], 3, 1, {}, lambda o: len(o.retry.delays)),
    "backoff": (["0.5"], 0.5, 4.0, {"retries": 1}, lambda o: o.retry.delays),
    "retry_schedule": (["1,2"], "1,2", "9", {}, lambda o: o.retry.delays),
    "envelope": (["meta"], "meta", "kaleyra", {}, lambda o: o.envelope),
    "app_secret": (["b"], "b", "a", {}, lambda o: o.app_secret),
    "signature": (["missing"], "missing", "reserialized", {"app_secret": "s"},
                  lambda o: o.signature),
}
SOURCES = ("flag", "scenario", "step", "api")
# `wasim.target()` takes every setting of the table but these, its own app=, url= and path=.
API_TARGET_KEYS = ("url", "app", "path")


def test_every_setting_in_the_table_has_a_case() -> None:
    assert set(CASES) == set(KEYS)


def _scenario_file(tmp_path: Path, target: dict[str, Any], step: dict[str, Any]) -> Path:
    document = {**SCENARIO, "target": target,
                "steps": [{**SCENARIO["steps"][0], "target": step}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _layers(key: str, source: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(scenario target, step target, flags) with `key` given by `source`, lower ones decoys."""
    args, value, decoy, needs, _ = CASES[key]
    base: dict[str, Any] = {} if key in ("url", "app", "path") else {"url": HOOK}
    scenario: dict[str, Any] = {**base, **needs}
    step: dict[str, Any] = {}
    flags: list[str] = []
    if source in ("step", "flag", "api") and decoy is not None:
        scenario[key] = decoy
    if source == "scenario":
        scenario[key] = value
    elif source == "step":
        step[key] = value
    elif source == "flag":
        flags = [flag_name(key), *args]
    return scenario, step, flags


def _run_options(path: Path, flags: list[str]) -> DeliveryOptions:
    ctx = run_command.make_context("run", [str(path), *flags])
    with ctx:
        given = given_delivery_settings(ctx.params)
    plan = plan_scenario(load_scenario(path), seed=7)
    return scenario_delivery(plan, given, flag_name)(plan.sends[0])


def _load_settings(path: Path, flags: list[str]) -> dict[str, Any]:
    ctx = load_command.make_context("load", [str(path), *flags])
    with ctx:
        given = from_params(ctx.params, _LOAD_KEYS)
    settings, _ = scenario_settings(load_scenario(path), 0, given, flag_name)
    return settings


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("key", KEYS)
def test_run_load_and_the_api_resolve_every_setting_from_every_source_alike(
        key: str, source: str, tmp_path: Path) -> None:
    if source == "api" and key in API_TARGET_KEYS:
        pytest.skip(f"wasim.target() takes {key}= as the target itself")
    scenario, step, flags = _layers(key, source)
    path = _scenario_file(tmp_path, scenario, step)
    _args, value, _, needs, shown = CASES[key]
    alone = {} if key in ("url", "app", "path") else {"url": HOOK}
    expected = shown(delivery_options_from({**alone, **needs, key: value}, str))
    if source == "api":
        simulator = Simulator(7)
        simulator.target(url=HOOK, **{**needs, key: value})
        run = simulator._options(simulator._target, simulator._settings, "wasim.target()")
        assert shown(run) == expected
        return
    run = _run_options(path, flags)
    assert shown(run) == expected
    if key in _LOAD_KEYS:
        load_settings = _load_settings(path, flags)
        assert shown(delivery_options_from(load_settings, str)) == expected


def test_resolve_names_the_source_of_the_winning_value() -> None:
    settings, where = resolve(({"timeout": 1.0, "success": "2xx"}, lambda k: f"s.yaml:{k}"),
                              ({"timeout": None}, lambda k: "--" + k),
                              ({"timeout": 2.0, "headers": ()}, lambda k: f"--{k}!"))
    assert settings == {"timeout": 2.0, "success": "2xx"}
    assert where("timeout") == "--timeout!" and where("success") == "s.yaml:success"


def test_click_options_carry_no_default_so_a_file_is_not_overridden() -> None:
    ctx = load_command.make_context("load", [])
    with ctx:
        assert from_params(ctx.params, _LOAD_KEYS) == {}
    assert {s.flag for s in SETTINGS} <= {o for p in run_command.params for o in p.opts}


# --- the two bugs of issue 10, as regression tests ---------------------------------------------

def test_a_negative_timeout_in_target_fails_a_dry_run_at_its_line(tmp_path: Path,
                                                                   runner: CliRunner) -> None:
    path = _scenario_file(tmp_path, {"timeout": -1}, {})
    result = runner.invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "all payloads valid" not in result.output
    assert "s.yaml:" in result.stderr and "target.timeout" in result.stderr


def test_load_and_run_both_count_a_scenario_success_of_500_against_a_200(
        tmp_path: Path, runner: CliRunner, receiver: Receiver) -> None:
    path = _scenario_file(tmp_path, {"success": "500"}, {})
    ran = runner.invoke(cli, ["run", str(path), "--url", receiver.url, "--fast",
                              "--no-history"])
    loaded = runner.invoke(cli, ["load", str(path), "--url", receiver.url, "--count", "2",
                                 "-c", "1"])
    assert ran.exit_code == 1, ran.output
    assert loaded.exit_code == 1, loaded.output  # every request failed (issue 20)
    # Before, load merged its own --success default (2xx) over the file and counted 2 ok.
    assert "0 ok, 2 failed" in loaded.output


def test_load_says_a_scenario_retries_do_not_apply(tmp_path: Path, runner: CliRunner,
                                                    receiver: Receiver) -> None:
    path = _scenario_file(tmp_path, {"retries": 2}, {})
    loaded = runner.invoke(cli, ["load", str(path), "--url", receiver.url, "--count", "1"])
    assert loaded.exit_code == 0, loaded.output
    assert "retries" in loaded.stderr and "s.yaml:" in loaded.stderr


# --- the core names the field, the face says where ------------------------------------------

def test_the_core_names_the_field_and_the_command_line_names_the_flag(
        tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fire", "--url", "http://127.0.0.1:9/", "--success", "7xx",
                                 "--no-history"])
    assert result.exit_code == 2
    assert result.stderr.startswith("wasim: error: --success: cannot read the status '7xx'")


def test_a_scenario_value_is_named_by_its_line_and_an_api_value_by_the_call(
        tmp_path: Path) -> None:
    path = _scenario_file(tmp_path, {"url": HOOK, "success": "7xx"}, {})
    plan = plan_scenario(load_scenario(path), seed=7)
    with pytest.raises(WasimError) as info:
        scenario_delivery(plan, {}, flag_name)
    assert info.value.where == f"{path}:{_line_of(path, 'success')}"
    with pytest.raises(WasimError, match=r"wasim\.target\(\) success=: cannot read"):
        Simulator(7).target(url=HOOK, success="7xx")


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if key in line)
