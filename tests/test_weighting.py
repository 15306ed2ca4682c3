"""Button weighting lives on the step: `wasim run` and `wasim load` draw from one rule."""

from __future__ import annotations

import random
from collections import Counter

from simulator.load import CallbackSource
from simulator.models import Button
from simulator.scenarios import StepSpec, parse_scenario

SCENARIO = """
name: weights
seed: 1
template:
  name: t
  body: hi
  buttons: [{text: "Yes", payload: Y}, {text: "No", payload: N}, {text: "Later", payload: L}]
cast: {countries: {IN: 5}}
steps:
  - choices: {"Yes": 3, "Later": 1}
    no_tap: 50
"""
BUTTONS = {text: Button(text, text.upper()) for text in ("Yes", "No", "Later")}


def test_a_step_never_draws_a_button_it_does_not_list() -> None:
    step = StepSpec("s", 1, choices=(("Yes", 3.0), ("Later", 1.0)), no_tap=1.0)
    rnd = random.Random(5)
    drawn = Counter(step.pick_button(BUTTONS, rnd) for _ in range(400))
    assert BUTTONS["No"] not in drawn and None in drawn
    assert drawn[BUTTONS["Yes"]] > drawn[BUTTONS["Later"]]


def test_load_draws_the_scenario_step_s_buttons_and_always_taps() -> None:
    source = CallbackSource.from_scenario(parse_scenario(SCENARIO, "w.yaml"), seed=3)
    labels = Counter(source.next()[0].button.text for _ in range(200))
    assert set(labels) <= {"Yes", "Later"} and labels["Yes"] > labels["Later"]
