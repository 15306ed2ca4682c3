"""Scenario files: the library loads, and every malformed file is one located error."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.scenarios import (
    STARTER,
    builtin_scenarios,
    describe_file,
    load_scenario,
    parse_duration,
    parse_scenario,
)

MINIMAL = """\
name: t
template:
  buttons: [Shop now, Stop promotions]
steps:
  - tap: Shop now
"""


def test_the_library_has_the_six_promised_scenarios_and_each_loads() -> None:
    names = {p.stem for p in builtin_scenarios()}
    assert {"summer-sale", "appointment-reminder", "delivery-feedback", "opt-out-storm",
            "idempotency-check", "burst-1000"} <= names
    for path in builtin_scenarios():
        scenario = load_scenario(path)
        assert scenario.steps and scenario.description, path
        assert scenario.business.name, f"{path} names its brand for the phone's header"
        assert describe_file(path) == scenario.description
        assert path.read_text().startswith("# "), f"{path} needs a header comment"


def test_the_starter_file_is_a_valid_scenario() -> None:
    scenario = parse_scenario(STARTER.replace("NAME", "demo"), "demo.yaml")
    assert scenario.name == "demo"
    assert scenario.target["url"] == "http://127.0.0.1:8000/webhook"
    assert scenario.expect.max_latency_ms == 500


def test_the_starter_shows_every_section_and_every_step_key() -> None:
    """What `wasim new` writes is the complete example: nothing left to guess."""
    from simulator.scenario_format import keys

    _TOP, _STEP_KEYS = keys("scenario"), keys("step")  # the loader's own declared keys

    for key in _TOP:
        assert re.search(rf"(?m)^{key}:", STARTER), f"the starter has no {key}: section"
    steps = STARTER.split("\nsteps:", 1)[1].split("\nchaos:", 1)[0]
    shown = {key for key in _STEP_KEYS if re.search(rf"(?m)^\s+-? ?{key}:", steps)}
    # The conversation steps (send, react, statuses, tap_reply, verify) need the send API.
    assert shown >= set(_STEP_KEYS) - {"send", "react", "statuses", "tap_reply", "verify"}


def test_jinja_sees_a_seeded_faker_and_the_environment() -> None:
    text = MINIMAL + 'description: "{{ fake.whatsapp_number() }} {{ env.BRAND }}"\nseed: 3\n'
    first = parse_scenario(text, "t.yaml", env={"BRAND": "acme"})
    assert first.description.endswith(" acme")
    assert parse_scenario(text, "t.yaml", env={"BRAND": "acme"}).description == \
        first.description


@pytest.mark.parametrize(("value", "seconds"), [
    (30, 30.0), (2.5, 2.5), ("500ms", 0.5), ("10s", 10.0), ("10m", 600.0), ("1h", 3600.0),
    ("soon", None), (-1, None), (True, None)])
def test_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


BROKEN = [
    ("bad YAML", MINIMAL + "cast: {countries: [IN\n", 6, "not closed"),  # where [ opens
    ("Jinja syntax", MINIMAL + "description: {{ oops\n", 6, "Jinja syntax error"),
    ("undefined variable", "name: t\n\ndescription: {{ nope }}\n", 3, "undefined variable"),
    ("unknown key", MINIMAL + "targte:\n  url: http://127.0.0.1:1/\n", 6,
     "targte: unknown key. Did you mean 'target'?"),
    ("unknown step key", MINIMAL + "    spred: 10s\n", 6, "spred: unknown key"),
    ("button the template lacks", MINIMAL.replace("tap: Shop now", "tap: Shop Now"), 5,
     "the template has no button 'Shop Now'. Did you mean 'Shop now'?"),
    ("weights that do not parse",
     MINIMAL.replace("tap: Shop now", "choices: {Shop now: lots}"), 5,
     "choices.Shop now: expected a number"),
    ("weights for a missing button",
     MINIMAL.replace("tap: Shop now", "choices: {Buy: 3}"), 5, "has no button 'Buy'"),
    ("bad duration", MINIMAL + "    spread: soon\n", 6, "cannot read the duration 'soon'"),
    ("bad who", MINIMAL + "    who: most\n", 6, "who: cannot read 'most'"),
    ("unknown country", MINIMAL + "cast:\n  countries: {XX: 3}\n", 7, "unknown country 'XX'"),
    ("step names twice", MINIMAL + "    name: a\n  - tap: Shop now\n    name: a\n", 8,
     "the step name 'a' is used twice"),
    ("a list at the top", "- a\n- b\n", 1, "expected a mapping"),
    ("a duplicate key", "name: a\nname: b\n", 2, "this key appears twice"),
    ("a bad expectation", MINIMAL + "expect:\n  status: [ok]\n", 7, "cannot read the status"),
    ("a bad target", MINIMAL + "target:\n  url: ftp://x\n", 7, "invalid URL"),
]


@pytest.mark.parametrize(("case", "text", "line", "fragment"), BROKEN,
                         ids=[c[0] for c in BROKEN])
def test_malformed_scenarios_are_one_located_error(case: str, text: str, line: int,
                                                    fragment: str) -> None:
    with pytest.raises(WasimError) as info:
        scenario = parse_scenario(text, "bad.yaml")
        # Targets are checked when a run builds its delivery options.
        from simulator.runner import plan_scenario, scenario_delivery

        scenario_delivery(plan_scenario(scenario), {}, lambda k: k)
    where = info.value.where or ""
    assert where == f"bad.yaml:{line}" or where.startswith(f"bad.yaml:{line}:"), where
    assert fragment in info.value.one_line()


def test_an_unclosed_bracket_is_reported_where_it_opens_with_its_column() -> None:
    """The parser notices an unclosed { two lines later; editors want where it starts."""
    lines = ["name: t", "seed: 1", "template:", "  buttons:",
             "    - {text: Shop now, payload: SHOP_NOW", "    - {text: B, payload: B}",
             "cast:", "  countries: {IN: 2}"]
    with pytest.raises(WasimError) as info:
        parse_scenario("\n".join(lines) + "\n", "bad.yaml")
    assert info.value.where == "bad.yaml:5:7"  # the { itself: line 5, column 7
    assert "not closed" in info.value.one_line()
    with pytest.raises(WasimError) as info:  # a problem without an opener: where it is
        parse_scenario("name: t\ntemplate:\n  name: a\n   body: b\n", "bad.yaml")
    assert info.value.where == "bad.yaml:4:8"


@pytest.mark.parametrize(("case", "text", "line", "fragment"), BROKEN[:6],
                         ids=[c[0] for c in BROKEN[:6]])
def test_wasim_run_reports_a_malformed_scenario_in_one_line_with_exit_2(
        tmp_path: Path, case: str, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0]
    assert f"bad.yaml:{line}:" in lines[0]  # then a column, for YAML's own errors
    assert "Traceback" not in result.output


def test_unknown_scenario_names_suggest_the_closest() -> None:
    result = CliRunner().invoke(cli, ["run", "sumer-sale", "--dry-run"])
    assert result.exit_code == 2
    assert "Did you mean 'summer-sale'?" in result.stderr


def test_scenarios_lists_shows_and_new_writes_a_runnable_starter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    listing = runner.invoke(cli, ["scenarios"])
    assert "summer-sale" in listing.stdout and "built-in" in listing.stdout
    shown = runner.invoke(cli, ["scenarios", "show", "burst-1000"])
    assert shown.stdout.startswith("# burst-1000")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["new", "my-promo"]).exit_code == 0
    assert "my-promo" in runner.invoke(cli, ["scenarios"]).stdout
    again = runner.invoke(cli, ["new", "my-promo"])
    assert again.exit_code == 2 and "the file exists" in again.stderr
    dry = runner.invoke(cli, ["run", "my-promo", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "payload(s) valid" in dry.stdout


# --- nothing but WasimError escapes the loader, whatever it is fed --------------------------

KEYS = ["name", "description", "seed", "business", "template", "cast", "steps", "chaos",
        "expect", "target", "buttons", "text", "payload", "countries", "users", "wa_id", "who",
        "tap", "choices", "spread", "after", "repeat", "concurrency", "duplicate", "status",
        "max_latency", "json", "url", "app", "timeout", "IN", "Shop now", "$.ok"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=20), st.sampled_from(KEYS),
                    # hostile shapes: huge numbers, booleans as text, endless durations
                    st.sampled_from([10**9, 10**30, 10**400, "false", "true", "9" * 400 + "s",
                                     "1e400", "-0", "100000000"]))
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_raises_nothing_but_wasim_errors(text: str) -> None:
    with contextlib.suppress(WasimError):
        parse_scenario(text, "fuzz.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), structures, max_size=8))
def test_arbitrary_yaml_structures_raise_nothing_but_wasim_errors(document: dict) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        scenario = parse_scenario(text, "fuzz.yaml")
    except WasimError:
        return
    # Whatever loads must also plan (with a cast small enough for a test).
    from simulator.runner import plan_scenario

    if sum(n for _, n in scenario.cast.countries) <= 50:
        with contextlib.suppress(WasimError):
            plan_scenario(scenario)


def test_an_alias_bomb_is_refused_not_expanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    with pytest.raises(WasimError, match="too large"):
        parse_scenario(bomb, "bomb.yaml")


def test_the_annotated_example_in_the_docs_is_a_valid_scenario() -> None:
    readme = (Path(__file__).parents[1] / "docs" / "guides" / "scenarios.md").read_text()
    section = readme[readme.index("## The format"):]
    text = section[section.index("```yaml\n") + 8: section.index("```\n", section.index(
        "```yaml\n") + 8)]
    scenario = parse_scenario(text, "scenarios.md", env={})
    assert [s.name for s in scenario.steps] == ["first wave", "Asha taps again"]
    assert scenario.steps[1].duplicate and scenario.steps[1].repeat == 2
    from simulator.runner import plan_scenario

    assert plan_scenario(scenario).sends


def test_errors_after_jinja_that_moves_lines_say_so_and_show_rendered_prints_the_text(
        tmp_path: Path) -> None:
    path = tmp_path / "looped.yaml"
    path.write_text(MINIMAL + "cast:\n  users:\n{% for n in range(5) %}\n"
                    "    - {wa_id: '9198450123{{ n }}0'}\n{% endfor %}\n  platfrom: ios\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "platfrom: unknown key" in result.stderr
    assert "Line numbers are of the rendered scenario" in result.stderr
    shown = runner.invoke(cli, ["scenarios", "show", str(path), "--rendered"])
    assert shown.exit_code == 0
    assert "9198450123{{" not in shown.stdout and "919845012320" in shown.stdout
