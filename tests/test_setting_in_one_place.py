"""A setting is added in one place, a row of simulator.settings.SETTINGS (its type and bounds
included): the scenario loader's `target:`, `wasim.target()` and DeliveryOptions then all accept
it, check it the same way, and refuse it when the row is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator.settings
from simulator.delivery import delivery_options_from
from simulator.errors import WasimError
from simulator.scenarios import load_scenario
from simulator.settings import SETTINGS, Setting
from simulator.testing import Simulator

HOOK = "http://127.0.0.1:9/hook"
PAUSE = Setting("pause", "--pause", "Seconds the platform waits before a callback.",
                default=0.5, kind="seconds", high=5)


@pytest.fixture
def pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one row that adds the setting."""
    monkeypatch.setattr(simulator.settings, "SETTINGS", (*SETTINGS, PAUSE))


def _scenario(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntemplate: {name: t, body: hi, buttons: [{text: 'Yes'}]}\n"
                    f"cast: {{countries: {{IN: 1}}}}\ntarget:\n  url: {HOOK}\n  {target}\n"
                    "steps: [{who: all, tap: 'Yes'}]\n")
    return path


def test_the_loader_accepts_and_types_it(pause: None, tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, "pause: 2"))
    assert scenario.target["pause"] == 2.0 and isinstance(scenario.target["pause"], float)


@pytest.mark.parametrize(("value", "fragment"), [
    ("9", "expected a number from 0 to 5, got int 9"),
    ("soon", "expected a number, got str 'soon'"),
    ("true", "expected a number, got bool True"),
])
def test_the_loader_checks_it_at_its_line(pause: None, tmp_path: Path, value: str,
                                          fragment: str) -> None:
    with pytest.raises(WasimError) as caught:
        load_scenario(_scenario(tmp_path, f"pause: {value}"))
    line = caught.value.one_line()
    assert "s.yaml:6" in line and "target.pause" in line and fragment in line


def test_the_python_api_takes_it_as_a_keyword(pause: None) -> None:
    wasim = Simulator(seed=1)
    wasim.target(url=HOOK, pause=1.5)
    options = wasim._options(wasim._target, wasim._settings, "wasim.target()")
    assert options.setting("pause") == 1.5
    with pytest.raises(WasimError, match=r"wasim.target\(pause=...\): expected a number from "):
        wasim.target(url=HOOK, pause=10)


def test_delivery_options_carry_it_with_its_default(pause: None) -> None:
    assert delivery_options_from({"url": HOOK, "pause": 3}, str).setting("pause") == 3.0
    assert delivery_options_from({"url": HOOK}, str).setting("pause") == 0.5
    with pytest.raises(WasimError, match="expected a number from 0 to 5"):
        delivery_options_from({"url": HOOK, "pause": -1}, lambda key: f"--{key}")


def test_without_the_row_every_face_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(WasimError, match="unknown key"):
        load_scenario(_scenario(tmp_path, "pause: 2"))
    with pytest.raises(WasimError, match="not a delivery setting"):
        Simulator(seed=1).target(url=HOOK, pause=1.5)
    with pytest.raises(WasimError, match="not a delivery setting"):
        delivery_options_from({"url": HOOK, "pause": 3}, str)
