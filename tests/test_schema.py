"""The scenario files' JSON Schema (`wasim schema`) and the loader agree: every built-in
scenario, the starter and the docs' example pass both; each broken file is refused by both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.scenario_format import BLOCKS, keys
from simulator.scenarios import STARTER, builtin_scenarios, parse_scenario, render_scenario_text
from simulator.schema import scenario_schema

ROOT = Path(__file__).parents[1]
HEAD = "name: t\ntemplate:\n  buttons: [Shop now, Stop]\n"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator of the schema `wasim schema` prints, itself checked against the draft."""
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema == scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def rendered(text: str) -> Any:
    """What the schema sees: the file after its Jinja, read as YAML."""
    return yaml.safe_load(render_scenario_text(text, "t.yaml", env={}))


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_every_built_in_scenario_passes_the_schema(
        path: Path, validator: jsonschema.Draft202012Validator) -> None:
    text = path.read_text(encoding="utf-8")
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in
              validator.iter_errors(rendered(text))]
    assert not errors


def test_the_starter_passes_before_and_after_its_jinja(
        validator: jsonschema.Draft202012Validator) -> None:
    text = STARTER.replace("NAME", "demo")
    assert text.startswith("# yaml-language-server: $schema=../wasim-schema.json\n")
    validator.validate(rendered(text))
    validator.validate(yaml.safe_load(text))  # as an editor sees it, Jinja unrendered


def test_the_docs_annotated_example_passes(validator: jsonschema.Draft202012Validator) -> None:
    page = (ROOT / "docs" / "guides" / "scenarios.md").read_text(encoding="utf-8")
    section = page[page.index("## The format"):]
    start = section.index("```yaml\n") + 8
    text = section[start:section.index("```\n", start)]
    validator.validate(rendered(text))


# Files both must accept: the shapes the loader reads besides the plain ones.
GOOD = [
    HEAD + "chaos:\n",  # a block given no value is left out
    HEAD + "steps:\n  - who: '60%'\n    choices: {Shop now: 3, Stop: 1}\n",
    HEAD + "steps:\n  - who: 5\n    tap: Stop\n    duplicate: concurrently\n",
    HEAD + "expect: {reply: true, status: [200, 2xx], body_contains: ok}\n",
    HEAD + "steps:\n  - send: [{text: hi}, {kind: image, caption: c}, {contacts: }]\n",
    HEAD + "steps:\n  - statuses: [sent, {failed: 131047}]\n",
    HEAD + "steps:\n  - tap_reply: BUY\n",
    HEAD + "cast: {identity: phone, quirks: {mx521: 0.5}, countries: {IN: 2}}\n",
    HEAD + "target: {url: 'http://127.0.0.1:9/', headers: {X-A: b}, timeout: 2, retries: 1}\n",
    HEAD + "steps:\n  - verify: {verify_token: tok, expect: refused}\n",
    HEAD + "seed: 7\nsteps:\n  - spread: 2m\n    after: 500ms\n",
    # delivery reads these in any case
    HEAD + "target: {envelope: Meta, signature: Wrong-Secret, method: put}\n",
    HEAD + "cast: {countries: {IN: , US: 2}}\nsteps:\n  - choices: {Stop: }\n    no_tap: 1\n",
    HEAD + "messages: [a, 7]\nsteps:\n  - message: 7\n    send: {text: {text: hi, quote: true}}\n",
]

# (what is wrong, the file): each must be refused by the loader and by the schema.
BROKEN = [
    ("unknown top-level key", HEAD + "nmae: x\n"),
    ("unknown key in a block", HEAD + "chaos: {duplicat: 0.1}\n"),
    ("unknown key in a step", HEAD + "steps:\n  - tapp: Stop\n"),
    ("unknown key in target", HEAD + "target: {urll: 'http://127.0.0.1/'}\n"),
    ("allow_remote in a file", HEAD + "target: {allow_remote: true}\n"),
    ("seed of the wrong type", HEAD + "seed: abc\n"),
    ("share of the wrong type", HEAD + "chaos: {duplicate: lots}\n"),
    ("share out of range", HEAD + "chaos: {duplicate: 1.5}\n"),
    ("flag of the wrong type", HEAD + "chaos: {duplicate_concurrently: 3}\n"),
    ("bad enum: platform", HEAD + "cast: {platform: symbian}\n"),
    ("bad enum: batch shape", HEAD + "chaos: {batch_shape: pyramid}\n"),
    ("bad enum: reply type", HEAD + "expect: {reply: {type: telegram}}\n"),
    ("bad enum: identity", HEAD + "cast: {identity: {martian: 1}}\n"),
    ("missing required: button text", "template:\n  buttons: [{payload: X}]\n"),
    ("missing required: listed user's number", HEAD + "cast: {users: [{name: Asha}]}\n"),
    ("missing required: verify token", HEAD + "steps:\n  - verify: {expect: pass}\n"),
    ("empty list of steps", HEAD + "steps: []\n"),
    ("empty list of buttons", "template: {buttons: []}\n"),
    ("unreadable duration", HEAD + "steps:\n  - spread: soon\n"),
    ("concurrency below 1", HEAD + "steps:\n  - concurrency: 0\n"),
    ("batch size below 2", HEAD + "chaos: {batch: 0.5, batch_size: 1}\n"),
    ("who below 0", HEAD + "steps:\n  - who: -3\n"),
    ("duplicate: twice", HEAD + "steps:\n  - duplicate: twice\n"),
    ("JSON rule without $", HEAD + "expect: {json: {status: ok}}\n"),
    ("unknown kind to send", HEAD + "steps:\n  - send: {telegram: hi}\n"),
    ("unknown status", HEAD + "steps:\n  - statuses: [seen]\n"),
    ("templates as a mapping", HEAD + "templates: {a: 1}\n"),
    ("steps as a mapping", HEAD + "steps: {tap: Stop}\n"),
    ("timeout as text", HEAD + "target: {timeout: soon}\n"),
    ("messages as a mapping", HEAD + "messages: {a: 1}\n"),
    ("the same message twice", HEAD + "messages: [a, a]\n"),
    ("quote not a flag", HEAD + "steps:\n  - send: {image: {quote: 3}}\n"),

    ("a scenario that is a list", "- tap: Stop\n"),
]


@pytest.mark.parametrize("text", GOOD)
def test_both_accept_each_shape_the_loader_reads(
        text: str, validator: jsonschema.Draft202012Validator) -> None:
    parse_scenario(text, "t.yaml", env={})
    validator.validate(rendered(text))


@pytest.mark.parametrize(("what", "text"), BROKEN, ids=[w for w, _ in BROKEN])
def test_both_refuse_each_broken_file(what: str, text: str,
                                      validator: jsonschema.Draft202012Validator) -> None:
    with pytest.raises(WasimError):
        parse_scenario(text, "t.yaml", env={})
    assert not validator.is_valid(rendered(text)), what


# Every declared key of every block gets each of these values, in a file that is otherwise
# valid: whatever the loader accepts, the schema must accept (an editor never flags a file
# wasim runs). The schema may be more lenient: rules across keys (a `tap` that is one of the
# template's buttons) are the loader's alone.
VALUES = [None, True, 0, 1, 0.5, -1, "x", "2s", "50%", [], {}, ["x"], {"a": 1}, ""]
SWEEP_BASE: dict[str, Any] = {
    "name": "t", "template": {"buttons": ["Shop now", {"text": "Stop", "payload": "S"}]},
    "cast": {"countries": {"IN": 2}, "users": [{"wa_id": "919845012345", "name": "Asha"}]},
    "steps": [{"tap": "Stop"}, {"tap_reply": {"button": "B"}}, {"verify": {"verify_token": "t"}}],
    "expect": {"reply": {"within": "1s"}}, "business": {}, "chaos": {}}
SWEEP_PLACES = {
    "scenario": (), "business": ("business",), "template": ("template",),
    "button": ("template", "buttons", 1), "cast": ("cast",), "user": ("cast", "users", 0),
    "step": ("steps", 0), "chaos": ("chaos",), "expect": ("expect",),
    "reply": ("expect", "reply"), "tap_reply": ("steps", 1, "tap_reply"),
    "verify": ("steps", 2, "verify"),
}


def test_whatever_the_loader_accepts_the_schema_accepts(
        validator: jsonschema.Draft202012Validator) -> None:
    import copy

    assert set(SWEEP_PLACES) == set(BLOCKS)
    wrong = []
    for block, declared in BLOCKS.items():
        for key in declared:
            for value in VALUES:
                document = copy.deepcopy(SWEEP_BASE)
                place: Any = document
                for step in SWEEP_PLACES[block]:
                    place = place[step]
                place[key.name] = value
                try:
                    parse_scenario(yaml.safe_dump(document), "t.yaml", env={})
                except WasimError:
                    continue
                if not validator.is_valid(document):
                    wrong.append(f"{block}.{key.name}: {value!r}")
    assert wrong == []


def test_the_schema_has_every_declared_key_and_every_delivery_setting() -> None:
    schema = scenario_schema()
    assert set(schema["properties"]) == set(keys("scenario"))
    for block, declared in BLOCKS.items():
        if block != "scenario":
            assert list(schema["$defs"][block]["properties"]) == [k.name for k in declared]
    assert set(schema["$defs"]["target"]["properties"]) == set(keys("target"))
    assert "allow_remote" not in schema["$defs"]["target"]["properties"]


# Where each declared block sits in a file, to put a mistyped key in it.
PLACES = {
    "business": "business: {%s: 1}\n", "template": "template: {%s: 1}\n",
    "cast": "cast: {%s: 1}\n", "chaos": "chaos: {%s: 1}\n", "expect": "expect: {%s: 1}\n",
    "reply": "expect: {reply: {%s: 1}}\n", "step": "steps:\n  - {%s: 1}\n",
    "tap_reply": "steps:\n  - {tap_reply: {button: B, %s: 1}}\n",
    "verify": "steps:\n  - {verify: {verify_token: t, %s: 1}}\n",
    "user": "cast: {users: [{wa_id: '919845012345', %s: 1}]}\n",
    "button": "template: {buttons: [{text: A, %s: 1}]}\n",
}


@pytest.mark.parametrize("block", sorted(PLACES))
def test_a_mistyped_key_of_any_block_is_named_with_the_declared_one(
        block: str, validator: jsonschema.Draft202012Validator) -> None:
    name = keys(block)[-1]
    typo = name[:-1] + "q" + name[-1]
    text = ("name: t\n" if block in ("template", "button") else HEAD) + PLACES[block] % typo
    with pytest.raises(WasimError) as caught:
        parse_scenario(text, "t.yaml", env={})
    assert caught.value.what.endswith(f"{typo}: unknown key")
    assert name in (caught.value.hint or "")
    assert not validator.is_valid(rendered(text))


def test_wasim_new_points_editors_at_the_schema(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["new", "promo"])
    assert result.exit_code == 0
    assert "wasim schema > wasim-schema.json" in result.stderr
    first = (tmp_path / "scenarios" / "promo.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../wasim-schema.json"
