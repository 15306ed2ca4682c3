"""Hostile templates and scenario files: no code runs, no outside file is read, limits hold."""

from __future__ import annotations

import contextlib
import random
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from click.testing import CliRunner
from faker import Faker, Generator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import modifies_known_mutable

from simulator import sandbox
from simulator.cli import cli
from simulator.errors import WasimError
from simulator.providers import make_faker
from simulator.render import CallbackTemplate, make_environment
from simulator.sandbox import FAKE_CALLS, Fake, fake_facade, plain_env
from simulator.scenarios import MAX_SENDS_PER_PLAN, parse_scenario
from simulator.taps import TapFactory, TapOptions

MARKER = "pwned-marker"

# Ways to reach a module's globals from what templates are given; each ends in os.system.
ESCAPES = [
    # The reported one: Faker's get_formatter looks any attribute up by name.
    "fake.get_formatter('__class__').get_formatter(fake.format, '__globals__')",
    "fake.format.__globals__",
    "fake.parse.__globals__",
    "fake.provider('faker.providers.person').__init__.__globals__",
    "fake.seed_instance.__globals__",
    "fake.random.seed.__globals__",
    "fake.name._run.__globals__",
    "fake.name.__call__.__globals__",
    "fake['name']['_run'].__globals__",
    "(fake.name|attr('_run')).__globals__",
    "fake.__class__.__init__.__globals__",
    "env.__class__.__init__.__globals__",
    "seed.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__",
    "cycler.__init__.__globals__",
    "namespace._run.__globals__",
    "lipsum._run.__globals__",
    "range._run.__globals__",
    "joiner().__init__.__globals__",
    "self.__init__.__globals__",
    "'{0.__init__.__globals__}'.format(fake)",
]
SYSTEM = "['__builtins__']['__import__']('os').system('touch {marker}')"


def _payload(escape: str, marker: Path) -> str:
    return "{{ " + escape + SYSTEM.format(marker=marker) + " }}"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file a successful escape would create; every test asserts it never appears."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / MARKER
    yield path
    assert not path.exists(), "a template ran a shell command"


def _a_tap(factory: TapFactory | None = None) -> Any:
    factory = factory or TapFactory(TapOptions(seed=1))
    return next(factory.taps(1))


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


# --- item 1: no code execution, from every way in ---------------------------------------------


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_scenario_cannot_run_code_from_run_dry_run(escape: str, marker: Path) -> None:
    path = marker.parent / "evil.yaml"
    path.write_text(f'name: evil\ndescription: "{_payload(escape, marker)}"\n')
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert "evil.yaml:2" in line


@pytest.mark.parametrize("escape", ESCAPES[:3])
def test_a_scenario_cannot_run_code_from_scenarios_show_rendered(escape: str,
                                                                 marker: Path) -> None:
    path = marker.parent / "evil.yaml"
    path.write_text(f'name: evil\ndescription: "{_payload(escape, marker)}"\n')
    _one_line_error(CliRunner().invoke(cli, ["scenarios", "show", str(path), "--rendered"]))


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_template_cannot_run_code_from_render(escape: str, marker: Path) -> None:
    path = marker.parent / "evil.json.j2"
    path.write_text('{"x": ' + _payload(escape, marker) + "}\n")
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "evil.json.j2:1" in line


def test_a_scenarios_callback_template_cannot_run_code(marker: Path) -> None:
    (marker.parent / "evil.json.j2").write_text(
        '{"x": ' + _payload(ESCAPES[0], marker) + "}\n")
    path = marker.parent / "evil.yaml"
    path.write_text("name: evil\ntemplate:\n  callback: evil.json.j2\n")
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert "evil.json.j2:1" in line and "get_formatter" in line


def test_the_plugins_run_scenario_cannot_run_code(marker: Path) -> None:
    from simulator.testing import Simulator

    text = f'name: evil\ndescription: "{_payload(ESCAPES[0], marker)}"\n'
    with pytest.raises(WasimError, match="get_formatter"):
        Simulator(seed=1).run_scenario(text)


def test_a_scenario_cannot_name_a_file_outside_its_folder_as_its_template(
        tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('{"token": "s3cret"}')
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "link.json.j2").symlink_to(tmp_path / "secret.json")
    for callback in ("../secret.json", str(tmp_path / "secret.json"), "link.json.j2"):
        (folder / "s.yaml").write_text(f"name: s\ntemplate:\n  callback: {callback}\n")
        result = CliRunner().invoke(cli, ["run", str(folder / "s.yaml"), "--dry-run"])
        line = _one_line_error(result)
        assert "outside the scenario's folder" in line and "s3cret" not in result.output


# --- item 1: includes stay inside the template's folder ---------------------------------------


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    """A template folder with a link to a secret outside it."""
    (tmp_path / "secret.txt").write_text("s3cret")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "part.txt").write_text("inside")
    return folder


@pytest.mark.parametrize("tag", [
    '{% include "leak.txt" %}', '{% include "../secret.txt" %}',
    '{% include "SECRET" %}', '{% import "leak.txt" as x %}', '{% extends "leak.txt" %}',
    '{% from "leak.txt" import y %}'])
def test_includes_imports_and_extends_cannot_leave_the_templates_folder(
        leaky: Path, tag: str) -> None:
    tag = tag.replace("SECRET", str(leaky.parent / "secret.txt"))
    path = leaky / "t.json.j2"
    if "extends" in tag:  # only at the top level
        path.write_text("{}\n" + tag + "\n")
    else:
        path.write_text('{"a": 1,\n "b": {% filter json %}' + tag + "{% endfilter %}}\n")
    result = CliRunner().invoke(cli, ["render", "--template", str(path)])
    line = _one_line_error(result)
    assert "t.json.j2:2" in line and "outside the template's folder" in line
    assert "s3cret" not in result.output


def test_an_include_inside_the_folder_still_works(leaky: Path) -> None:
    path = leaky / "t.json.j2"
    path.write_text('{"b": {% filter json %}{% include "part.txt" %}{% endfilter %}}\n')
    result = CliRunner().invoke(cli, ["render", "--template", str(path)])
    assert result.exit_code == 0 and '"b":"inside"' in result.stdout


def test_a_scenario_file_cannot_include_anything(tmp_path: Path) -> None:
    (tmp_path / "part.txt").write_text("x")
    path = tmp_path / "s.yaml"
    path.write_text('name: s\ndescription: "{% include "part.txt" %}"\n')
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert "s.yaml:2" in line and "cannot include" in line


# --- item 7: rendering limits -----------------------------------------------------------------

LIMITED = [
    ("10**(10**10)", "bits"),
    ("2**5000", "bits"),
    ("'x' * 10**9", "repeating"),
    ("[1] * 10**9", "repeating"),
    ("'%999999999d' % 1", "format width"),
    ("'%999999999d'|format(1)", "format width"),
    ("'{:999999999}'.format(1)", "format width"),
    ("'{:{}}'.format(1, 10**9)", "nested"),
    ("'x'.ljust(10**9)", "above"),
    ("'x'|center(10**9)", "above"),
    ("range(100000)|join('x' * 100000)", "join"),
    ("('x' * 100000).join(range(100000)|map('string'))", "join"),
    ("'ab'|replace('', 'x' * 3000000)", "replace"),
    ("lipsum(10**6)", "lipsum"),
    ("fake.numerify('#' * 100000)", "longer than"),
    ("fake.text(10**9)", "max_nb_chars"),
    ("fake.random_int(0, 10**30)", "max"),
    ("fake.words(10**9)", "nb"),
    ("fake.random_elements(range(10), 10**9)", "list"),
    ("['x' * 3000000, 'x' * 3000000]", "would print as more than"),
    ("(['x' * 3000000, 'x' * 3000000])|string", "string filter"),
    ("(['x' * 3000000, 'x' * 3000000])|tojson", "tojson filter"),
    ("'%s' % (['x' * 3000000, 'x' * 3000000],)", "% format's values"),
    ("'{}'.format(['x' * 3000000, 'x' * 3000000])", "format value"),
]


@pytest.mark.parametrize(("expression", "fragment"), LIMITED, ids=[c[0] for c in LIMITED])
def test_an_expression_too_big_to_compute_is_refused(tmp_path: Path, expression: str,
                                                     fragment: str) -> None:
    path = tmp_path / "big.json.j2"
    path.write_text('{\n"v": {{ (' + expression + ") | json }}}\n")
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "big.json.j2:2" in line and fragment in line


def test_nested_loops_stop_at_the_iteration_limit(tmp_path: Path) -> None:
    path = tmp_path / "loops.json.j2"
    path.write_text("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                    '{% endfor %}{"v": 1}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert f"loops ran more than {sandbox.MAX_LOOP_ITERATIONS:,} steps" in line


def test_doubling_a_string_stops_at_the_output_limit(tmp_path: Path) -> None:
    path = tmp_path / "double.json.j2"
    path.write_text('{% set ns = namespace(s="x") %}{% for i in range(64) %}'
                    '{% set ns.s = ns.s ~ ns.s %}{% endfor %}{"v": 1}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "characters (the limit)" in line


@pytest.mark.parametrize("body", [
    "{% macro big() %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endmacro %}"
    "{% set b = big() %}",
    "{% set b %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endset %}",
    "{% set b %}{% for i in range(100000) %}" + "y" * 1000 + "{% endfor %}{% endset %}",
    "{% filter upper %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endfilter %}"])
def test_text_built_inside_set_blocks_and_macros_counts_toward_the_limit(
        tmp_path: Path, body: str) -> None:
    path = tmp_path / "blocks.json.j2"
    path.write_text('{% set s = "x" * 4000000 %}' + body + '{"v": 1}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "printed more than" in line


def test_the_rendered_output_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_OUTPUT_CHARS", 1_000)
    path = tmp_path / "wide.json.j2"
    path.write_text('{"v": "{% for i in range(2000) %}x{% endfor %}"}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "the output grew past 1,000 characters" in line


def test_rendering_stops_at_the_deadline_by_the_injected_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(0, 10**6))  # every look at the clock is one second later
    monkeypatch.setattr(sandbox, "_clock", lambda: float(next(ticks)))
    path = tmp_path / "slow.yaml"
    path.write_text('name: slow\ndescription: "{% for i in range(100) %}{% endfor %}"\n')
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert "slow.yaml:2" in line and "longer than 5 s" in line


def test_a_recursive_macro_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.json.j2"
    path.write_text('{% macro f(n) %}{{ f(n) }}{% endmacro %}\n{"v": {{ f(1) }}}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "recursed too deeply" in line


def test_running_out_of_memory_in_a_template_is_one_line(tmp_path: Path) -> None:
    class Exhausted:
        def __getattr__(self, name: str) -> Any:
            def fail(**_: Any) -> str:
                raise MemoryError
            return fail

    path = tmp_path / "mem.json.j2"
    path.write_text('{\n"v": {{ fake.numerify("#") | json }}}\n')
    with pytest.raises(WasimError) as info:
        CallbackTemplate(path, fake=Exhausted()).document(_a_tap())
    assert info.value.where is not None and info.value.where.endswith("mem.json.j2:2")
    assert "ran out of memory" in info.value.what


@pytest.mark.parametrize("source", [
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "{% if 1 %}" * 3000 + "{}" + "{% endif %}" * 3000])
def test_a_template_nested_too_deeply_to_compile_is_one_line(tmp_path: Path,
                                                             source: str) -> None:
    path = tmp_path / "deep.json.j2"
    path.write_text(source)
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "nested too deeply" in line


def test_a_template_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.json.j2"
    path.write_bytes(b'{"a": "caf\xe9"}')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "latin.json.j2" in line and "not UTF-8" in line


# --- item 6: the scenario loader's numbers, booleans, nesting and size -------------------------

MINIMAL = "name: t\nsteps:\n  - tap: Shop now\n"
HOSTILE = [
    (MINIMAL + "    after: .inf\n", "steps[0].after"),
    (MINIMAL + "    spread: 1" + "0" * 400 + "\n", "steps[0].spread"),
    (MINIMAL + "    spread: " + "9" * 5000 + "s\n", "steps[0].spread"),
    (MINIMAL + "    no_tap: .nan\n", "steps[0].no_tap"),
    ("name: t\nsteps:\n  - choices: {Shop now: .inf}\n", "choices.Shop now"),
    ("name: t\nsteps:\n  - choices: {Shop now: 1e308, Stop promotions: 1e308}\n",
     "choices.Shop now"),
    ("name: t\nseed: 1e400\n", "seed"),
    ("name: t\nseed: 99999999999999999999999\n", "seed"),
    ("name: t\nseed: " + "9" * 5000 + "\n", "seed"),
    (MINIMAL + "    repeat: 100000000\n", "steps[0].repeat"),
    (MINIMAL + "    concurrency: 100000000\n", "steps[0].concurrency"),
    ("name: t\ncast: {countries: {IN: 100000000}}\n", "cast.countries.IN"),
    ("name: t\ncast: {countries: {IN: 1000}}\nsteps:\n  - tap: Shop now\n    repeat: 1000\n",
     "a run plans at most"),
    ("name: t\nchaos: {duplicate_concurrently: 'false'}\n", "expected true or false"),
    (MINIMAL + "    duplicate: 'false'\n", "steps[0].duplicate"),
    ("name: t\nchaos: {redeliver_after: .inf}\n", "chaos.redeliver_after"),
    ("name: t\nexpect: {max_latency: .inf}\n", "expect.max_latency"),
    ("name: t\nsteps: " + "[" * 10000 + "\n", "nested too deeply"),
    ("name: t\nsteps: " + "{a: " * 10000 + "\n", "nested too deeply"),
]


@pytest.mark.parametrize(("text", "fragment"), HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_scenario_value_is_a_one_line_error(tmp_path: Path, text: str,
                                                      fragment: str) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(text)
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert fragment in line and len(line) < 400


def test_a_scenario_that_is_not_utf8_says_what_and_what_next(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    line = _one_line_error(CliRunner().invoke(cli, ["run", str(path), "--dry-run"]))
    assert "latin.yaml" in line and "not UTF-8" in line and "Save the file as UTF-8" in line


def test_a_plan_is_bounded_even_for_a_scenario_built_in_code() -> None:
    from dataclasses import replace

    from simulator.runner import plan_scenario

    scenario = parse_scenario(MINIMAL, "t.yaml")
    big = replace(scenario, steps=(replace(scenario.steps[0],
                                           repeat=MAX_SENDS_PER_PLAN + 1),))
    with pytest.raises(WasimError, match="a run plans at most"):
        plan_scenario(big)


def test_env_reaches_templates_as_plain_text() -> None:
    assert plain_env({"A": 1, 2: "b"}) == {"A": "1", "2": "b"}
    text = 'name: t\ndescription: "{{ env.A }}-{{ env.__class__ is defined }}"\n'
    assert parse_scenario(text, "t.yaml", env={"A": "x"}).description == "x-False"


# --- the facade keeps every seeded byte --------------------------------------------------------


def test_every_fake_call_exists_and_gives_plain_data() -> None:
    fake = Fake(make_faker(3))
    for name in FAKE_CALLS:
        if name in ("whatsapp_hex_id", "whatsapp_business_wamid", "whatsapp_user_wamid",
                    "whatsapp_country_of"):
            continue  # they need an argument
        value = getattr(fake, name)()
        assert value is None or type(value) in (str, int, float, bool, list), name


@pytest.mark.parametrize("call", [
    ("name", (), {}), ("numerify", ("######",), {}), ("whatsapp_number", ("US",), {}),
    ("random_int", (), {"min": 5, "max": 10**9}), ("random_element", (["a", "b"],), {}),
    ("sentence", (), {"nb_words": 4}), ("uuid4", (), {}), ("bothify", ("??-##",), {})])
def test_a_fake_call_draws_exactly_what_faker_draws(call: tuple[str, tuple[Any, ...],
                                                                dict[str, Any]]) -> None:
    name, args, kwargs = call
    direct, facade = make_faker(42), Fake(make_faker(42))
    for _ in range(3):
        expected = getattr(direct, name)(*args, **kwargs)
        assert getattr(facade, name)(*args, **kwargs) == expected


def test_the_facade_refuses_unknown_and_badly_typed_arguments() -> None:
    fake = Fake(make_faker(1))
    with pytest.raises(TypeError, match="no argument 'cast_to'"):
        fake.uuid4(cast_to=str)
    with pytest.raises(TypeError, match="list of plain values"):
        fake.random_element({"a": fake})
    with pytest.raises(ValueError, match="unknown country"):
        fake.whatsapp_number("XX")
    with pytest.raises(AttributeError):
        fake.name = None  # type: ignore[misc]
    assert fake_facade(fake) is fake and fake_facade(None) is None


# --- the walker: nothing reachable from what templates are given is dangerous ------------------

_PLAIN = (str, int, float, bool, bytes, type(None))


def _dangerous(value: Any) -> str | None:
    if isinstance(value, types.ModuleType | types.CodeType | types.FrameType
                  | types.TracebackType | type | Faker | Generator | random.Random):
        return type(value).__name__
    if isinstance(value, types.FunctionType | types.MethodType):
        return "a function with __globals__"
    if isinstance(value, types.GeneratorType | types.CoroutineType):
        return "a generator (frames)"
    return None


def _walk(roots: dict[str, Any], environment: jinja2.Environment, depth: int) -> int:
    seen: set[Any] = set()
    queue: list[tuple[str, Any, int]] = [(name, obj, 0) for name, obj in roots.items()]
    visited = 0
    while queue:
        path, obj, level = queue.pop()
        if isinstance(obj, _PLAIN):
            key: Any = type(obj)  # every str offers the same attributes: walk one
        elif isinstance(obj, types.BuiltinMethodType) and isinstance(
                getattr(obj, "__self__", None), _PLAIN):
            key = (type(obj.__self__), obj.__name__)
        else:
            key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        visited += 1
        problem = _dangerous(obj)
        assert problem is None, f"a template can reach {problem} at {path}"
        if level >= depth:
            continue
        for attribute in dir(obj):  # dunder and private names included
            value = environment.getattr(obj, attribute)
            if not isinstance(value, jinja2.Undefined):
                queue.append((f"{path}.{attribute}", value, level + 1))
                if callable(value) and environment.is_safe_callable(value) and \
                        not modifies_known_mutable(obj, attribute):
                    with contextlib.suppress(Exception):
                        queue.append((f"{path}.{attribute}()", value(), level + 1))
        if isinstance(obj, dict):
            queue.extend((f"{path}[{k!r}]", v, level + 1) for k, v in obj.items())
        elif isinstance(obj, list | tuple):
            queue.extend((f"{path}[{i}]", v, level + 1) for i, v in enumerate(obj[:3]))
        if callable(obj) and environment.is_safe_callable(obj):
            with contextlib.suppress(Exception):
                queue.append((f"{path}()", obj(), level + 1))
    return visited


def test_nothing_reachable_from_what_templates_and_scenarios_see_is_dangerous(
        tmp_path: Path) -> None:
    factory = TapFactory(TapOptions(seed=5))
    path = tmp_path / "t.json.j2"
    path.write_text("{}")
    template = CallbackTemplate(path, fake=factory.fake)
    environment = template._template.environment
    # Exactly what a callback render gets (globals, tap, fake) and what a scenario gets.
    roots = {**template._globals, "tap": _a_tap(factory), "fake": template._fake,
             "env": plain_env({"HOME": "/x"}), "seed": 7}
    visited = _walk(roots, environment, depth=4)
    assert visited > 200  # the walk really went somewhere: every fake call, str, dict methods
    scenario_env = make_environment(None)
    assert _walk({**scenario_env.globals, "fake": fake_facade(make_faker(1))},
                 scenario_env, depth=3) > 100


def test_the_template_globals_are_functions_not_classes() -> None:
    environment = make_environment(None)
    assert set(environment.globals) == {"range", "dict", "lipsum", "cycler", "joiner",
                                        "namespace"}
    assert all(not isinstance(v, type) for v in environment.globals.values())


# --- fuzzing hostile scenario files ------------------------------------------------------------

JINJA = ["{{ 10**(10**10) }}", "{{ fake.get_formatter('x') }}", "{{ fake.name() }}",
         "{% for i in range(99999) %}{% endfor %}", "{{ 'x' * 10**9 }}",
         "{% include 'x' %}", "{{ env.__class__ }}", "{{ seed }}", "{{ lipsum(9999) }}",
         "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{{ fake.numerify('#' * 2000) }}"]
NUMBERS = [".inf", "-.inf", ".nan", "1e400", "9" * 30, "-1", "0", "100000000", "'false'",
           "false", "true", "'1'", "~"]
FIELDS = ["seed", "steps[0].after", "steps[0].spread", "steps[0].repeat", "steps[0].no_tap",
          "steps[0].concurrency", "steps[0].duplicate", "steps[0].who", "chaos.duplicate",
          "chaos.redeliver", "chaos.redeliver_after", "chaos.shuffle", "cast.countries.IN",
          "chaos.duplicate_concurrently", "expect.max_latency"]


def _document(assignments: list[tuple[str, str]]) -> str:
    tree: dict[str, Any] = {"name": "fuzz", "steps": [{"tap": "Shop now"}]}
    for key, value in assignments:
        node: Any = tree
        parts = key.replace("[0]", ".0").split(".")
        for part in parts[:-1]:
            node = node[0] if part == "0" else node.setdefault(part, {})
        node[parts[-1]] = f"@@{value}@@"
    text = yaml.safe_dump(tree)
    for _, value in assignments:
        text = text.replace(f"'@@{value}@@'", value, 1)
    return text


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(NUMBERS)), max_size=5,
                unique_by=lambda a: a[0]),
       st.lists(st.sampled_from(JINJA), max_size=2))
def test_hostile_numbers_and_jinja_raise_nothing_but_wasim_errors(
        assignments: list[tuple[str, str]], jinja: list[str]) -> None:
    text = _document(assignments) + "".join(f"# {j}\n" for j in jinja)
    with contextlib.suppress(WasimError):
        parse_scenario(text, "fuzz.yaml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="[]{}:,- \n'\"&*!|>%@`#", max_size=400),
       st.integers(0, 3000))
def test_bracket_soup_and_deep_nesting_raise_nothing_but_wasim_errors(text: str,
                                                                      depth: int) -> None:
    with contextlib.suppress(WasimError):
        parse_scenario("name: x\ndescription: " + "[" * depth + text, "fuzz.yaml")


def test_the_walker_finds_the_escape_when_the_raw_faker_is_given() -> None:
    # The walker must be able to fail: handed the Faker itself, it reaches the Faker.
    with pytest.raises(AssertionError, match="a template can reach"):
        _walk({"fake": make_faker(1)}, make_environment(None), depth=2)


def test_an_include_of_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe")
    path = tmp_path / "t.json.j2"
    path.write_text('{"a": {% include "pipe" %}}')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "not a regular file" in line


def test_static_text_repeated_by_an_include_in_a_loop_counts_toward_the_limit(
        tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("y" * 1_000_000)
    path = tmp_path / "t.json.j2"
    path.write_text('{% set b %}{% for i in range(100) %}{% include "big.txt" %}{% endfor %}'
                    '{% endset %}{"v": 1}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "printed more than" in line


def test_an_error_inside_a_multi_line_output_names_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "t.json.j2"
    path.write_text('{\n"a": {{ tap.user.name | json }},\n"b": {{ nope }}\n}\n')
    line = _one_line_error(CliRunner().invoke(cli, ["render", "--template", str(path)]))
    assert "t.json.j2:3" in line and "nope" in line
