"""Rendering: the documented key order, byte-identical reproduction, escaping, template errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import WasimError
from simulator.render import (
    CallbackTemplate,
    RenderOptions,
    find_template,
    render_callbacks,
    render_tap,
)
from simulator.taps import TapFactory, TapOptions, buttons_from_labels
from simulator.validate import validate_callback
from simulator.wire import to_wire

GOLDEN = Path(__file__).parent / "golden"
COUNTRIES = ("IN", "US", "GB", "BR", "ID", "DE", "AE", "SA", "MX", "ES", "FR", "NG")


def bodies(**options: Any) -> list[bytes]:
    count = options.pop("count", 1)
    return [r.body for r in render_callbacks(RenderOptions(TapOptions(**options), count=count))]


def leaves(document: Any, path: str = "$") -> dict[str, Any]:
    """Every scalar of a document by its JSON path."""
    if isinstance(document, dict):
        return {k: v for key, value in document.items()
                for k, v in leaves(value, f"{path}.{key}").items()}
    if isinstance(document, list):
        return {k: v for i, value in enumerate(document)
                for k, v in leaves(value, f"{path}[{i}]").items()}
    return {path: document}


def test_output_matches_the_pinned_golden_file() -> None:
    expected = (GOLDEN / "render_seed7_mixed.jsonl").read_bytes()
    assert b"".join(b + b"\n" for b in bodies(seed=7, count=12, countries=COUNTRIES)) == expected


def test_same_seed_gives_identical_bytes_run_after_run() -> None:
    assert bodies(seed=99, count=50) == bodies(seed=99, count=50)


def test_different_seeds_differ_in_every_generated_field() -> None:
    first, second = (leaves(json.loads(bodies(seed=s)[0])) for s in (1, 2))
    # Constants of the format, and the button and campaign names drawn from short lists.
    fixed = {"messaging_product", "field", "type", "media_url", "payload", "text", "ref1", "ref2",
             "country_code"}
    generated = [p for p in first if p.rsplit(".", 1)[-1] not in fixed]
    assert len(generated) == 15
    assert [p for p in generated if first[p] == second[p]] == []


def test_keys_come_in_the_documented_order() -> None:
    document = json.loads(bodies(seed=1)[0])
    assert list(document) == ["meta_object", "extra_info"]
    value = document["meta_object"]["value"]
    assert list(document["meta_object"]) == ["value", "field"]
    assert list(value) == ["messaging_product", "metadata", "contacts", "messages"]
    assert list(value["contacts"][0]) == ["profile", "wa_id", "user_id", "country_code"]
    assert list(value["messages"][0]) == ["context", "from", "from_user_id", "id", "timestamp",
                                          "type", "button"]
    assert list(value["messages"][0]["button"]) == ["payload", "text"]
    assert list(document["extra_info"]) == ["media_url", "ref", "ref1", "ref2", "reply_to",
                                            "trace_id", "waba_id"]


@pytest.mark.parametrize("country", COUNTRIES)
def test_a_thousand_callbacks_per_country_all_validate(country: str) -> None:
    for body in bodies(seed=3, count=1000, countries=(country,)):
        assert validate_callback(json.loads(body)) == []


def test_each_tap_is_a_new_user_on_their_own_template_message() -> None:
    documents = [json.loads(b) for b in bodies(seed=5, count=20)]
    users = {d["meta_object"]["value"]["contacts"][0]["wa_id"] for d in documents}
    contexts = {d["meta_object"]["value"]["messages"][0]["context"]["id"] for d in documents}
    businesses = {d["meta_object"]["value"]["metadata"]["display_phone_number"] for d in documents}
    assert (len(users), len(contexts), len(businesses)) == (20, 20, 1)
    stamps = [int(d["meta_object"]["value"]["messages"][0]["timestamp"]) for d in documents]
    assert stamps == sorted(stamps)


def test_accent_slash_and_emoji_in_name_and_button_are_escaped_on_the_wire() -> None:
    options = TapOptions(seed=1, user_name="José 😂", buttons=buttons_from_labels(["Buy 1/2"]))
    factory = TapFactory(options)
    template = CallbackTemplate(find_template("button_tap"), fake=factory.fake)
    body = render_tap(template, next(factory.taps(1)))
    assert b'"name":"Jos\\u00e9 \\ud83d\\ude02"' in body
    assert b'"button":{"payload":"Buy 1\\/2","text":"Buy 1\\/2"}' in body
    assert body.isascii()


def test_a_fixed_clock_stamps_the_taps() -> None:
    factory = TapFactory(TapOptions(seed=1), clock=lambda: 1_722_863_329)
    assert next(factory.taps(1)).timestamp == "1722863329"


def test_own_ids_replace_generated_ones_and_leave_the_rest_unchanged() -> None:
    plain = json.loads(bodies(seed=4)[0])
    mine = json.loads(bodies(seed=4, business_number="918068177179", waba_id="104605889412733")[0])
    assert mine["meta_object"]["value"]["metadata"]["display_phone_number"] == "918068177179"
    assert mine["meta_object"]["value"]["messages"][0]["context"]["from"] == "918068177179"
    assert mine["extra_info"]["waba_id"] == "104605889412733"
    assert mine["meta_object"]["value"]["messages"][0]["id"] == \
        plain["meta_object"]["value"]["messages"][0]["id"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.json.j2"
    path.write_text(text)
    return path


def render_with(path: Path) -> bytes:
    return bodies_from(str(path))[0]


def bodies_from(template: str) -> list[bytes]:
    options = RenderOptions(TapOptions(seed=1), template=template)
    return [r.body for r in render_callbacks(options)]


def test_a_template_file_given_by_path_renders(tmp_path: Path) -> None:
    path = write(tmp_path, '{"who": {{ tap.user.name | json }},\n "n": {{ 1 + 1 }}}\n')
    assert json.loads(render_with(path))["n"] == 2


def test_a_template_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n"a": 1,\n"b": {{ tap.user.name | json }\n}')
    with pytest.raises(WasimError, match="template syntax error") as info:
        render_with(path)
    assert info.value.where is not None and info.value.where.endswith("custom.json.j2:3")


def test_an_undefined_variable_names_the_file_line_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n"a": 1,\n\n"b": {{ tap.user.nmae | json }}\n}')
    with pytest.raises(WasimError, match="nmae") as info:
        render_with(path)
    assert info.value.where is not None and info.value.where.endswith("custom.json.j2:4")


def test_output_that_is_not_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n"a": 1,\n"b": {{ tap.user.name }}\n}')
    with pytest.raises(WasimError, match="invalid JSON") as info:
        render_with(path)
    assert info.value.where is not None and info.value.where.endswith("custom.json.j2:3")


def test_the_sandbox_blocks_reaching_into_python_internals(tmp_path: Path) -> None:
    path = write(tmp_path, '{"a": {{ tap.__class__.__mro__ | json }}}')
    with pytest.raises(WasimError):
        render_with(path)


def test_an_unknown_builtin_template_suggests_the_closest() -> None:
    with pytest.raises(WasimError, match="no built-in template named 'button_tapp'") as info:
        find_template("button_tapp")
    assert "button_tap" in (info.value.hint or "")


def test_a_missing_template_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WasimError, match="no template file"):
        find_template(str(tmp_path / "nope.json.j2"))


NASTY = ["José 😂", 'quote " and \\ backslash', "slash / and </script>", "tab\tnew\nline",
         "\u0000\u001f\u007f", "\u2133\U0001d4b6 (astral script letters)", "", "@@wasim:0@@"]


@pytest.mark.parametrize("name", NASTY)
def test_the_compiled_path_gives_the_same_bytes_as_rendering(name: str) -> None:
    factory = TapFactory(TapOptions(seed=2, user_name=name,
                                    buttons=buttons_from_labels([name or "x"])))
    template = CallbackTemplate(find_template("button_tap"), fake=factory.fake)
    for tap in factory.taps(20):
        assert template.wire(tap) == to_wire(template.document(tap))
    # The built-in template takes the fast path (one compiled splice per identity shape).
    assert template._splices and None not in template._splices.values()


def test_a_template_with_logic_renders_through_jinja_every_time(tmp_path: Path) -> None:
    path = write(tmp_path, '{"who": {% if tap.user.country == "IN" %}"desi"{% else %}'
                           '"abroad"{% endif %}, "n": {{ tap.user.name | json }}}')
    factory = TapFactory(TapOptions(seed=1, countries=("IN", "US")))
    template = CallbackTemplate(path, fake=factory.fake)
    seen = {json.loads(template.wire(tap))["who"] for tap in factory.taps(30)}
    assert seen == {"desi", "abroad"}
    assert not template._splices
