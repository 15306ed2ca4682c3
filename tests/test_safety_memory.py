"""What one rendering may allocate in total: hostile templates end in a one-line error.

Each case runs `wasim` in a child process whose address space is capped at its own size
after start-up plus 100 MB, so a template that takes more is a MemoryError (or a kill) there,
not a slow machine here. A correct bound ends each case with exit 2 and one line naming the
file and line, the same as on an unlimited machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import sandbox
from tests.helpers.limited import CHILD  # wasim under RLIMIT_AS

ROOT = Path(__file__).resolve().parent.parent
HEADROOM = 100 << 20  # the yardstick: within 100 MB of wasim's own size



def wasim_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`wasim ARGS` from this tree, its address space capped at its size plus HEADROOM."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def one_line_limit(result: subprocess.CompletedProcess[str], where: str) -> str:
    """The single error line of a run stopped by a rendering limit (not by the memory cap)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    line = lines[0]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert "out of memory" not in line, line  # the cap caught it: the bound did not
    assert where in line and "limit" in line, line
    return line


# The cases first, then other ways to grow a list, a dict or a text.
HOSTILE = [
    # list growth through methods and operators
    "{% set x = [1] %}{% for i in range(40) %}{% set _ = x.extend(x) %}{% endfor %}",
    "{% set x = [] %}{% for i in range(1000) %}{% set _ = x.extend(range(100000)) %}"
    "{% endfor %}",
    "{% set x = [1] %}{% for i in range(60) %}{% set _ = x.extend(x|list) %}{% endfor %}",
    "{% set x = [1] %}{% for i in range(60) %}{% set _ = x.extend(x|map('string')) %}"
    "{% endfor %}",
    "{% set x = [] %}{% for a in range(1000) %}{% for b in range(1000) %}"
    "{% set _ = x.append('ab' ~ b) %}{% endfor %}{% endfor %}",
    "{% set x = [] %}{% for a in range(100) %}{% for b in range(100000) %}"
    "{% set _ = x.insert(-1, a ~ 'x' ~ b) %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}"
    "{% endfor %}",
    "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = ns.x * 2 %}"
    "{% endfor %}",
    "{% set x = [1] * 1000000 %}{% set l = [] %}{% for i in range(100) %}"
    "{% set _ = l.append(x[:]) %}{% endfor %}",
    "{% set x = [1] * 1000000 %}{% set l = [] %}{% for i in range(100) %}"
    "{% set _ = l.append(x.copy()) %}{% endfor %}",
    "{% set l = [] %}{% for i in range(100) %}{% set _ = l.append('x' * 4000000) %}"
    "{% endfor %}",
    "{{ ([[]] * 4000000)|length }}",
    # dict growth
    "{% set d = {} %}{% for a in range(1000) %}{% for b in range(1000) %}"
    "{% set _ = d.update({(a ~ '-' ~ b): b}) %}{% endfor %}{% endfor %}",
    "{% set d = {} %}{% for a in range(1000) %}{% for b in range(1000) %}"
    "{% set _ = d.setdefault(a * 1000 + b, []) %}{% endfor %}{% endfor %}",
    "{% set l = [] %}{% for i in range(1000) %}"
    "{% set _ = l.append({}.fromkeys(range(100000))) %}{% endfor %}",
    "{% set l = [] %}{% for i in range(1000) %}"
    "{% set _ = l.append(dict(a=range(100000)|list)) %}{% endfor %}",
    # string width arguments, alone and over many items
    "{% set s = 'a\\n' * 1000000 %}{{ s|indent(10000)|length }}",
    "{% set s = 'a\\n' * 1000000 %}{{ s|indent('y' * 10000)|length }}",
    "{{ ('\\t' * 1000000).expandtabs(10000)|length }}",
    "{% set l = [[[[1]]]] * 100000 %}{{ l|tojson(indent=10000)|length }}",
    "{{ ('x' * 1000000)|map('center', 10000)|list|length }}",
    "{{ ('x' * 1000000)|map('truncate', 10000)|list|length }}",
    "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append('x'.ljust(10000)) %}"
    "{% endfor %}",
    "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append('x'.zfill(10000)) %}"
    "{% endfor %}",
    "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append(i|string|center(9000)) %}"
    "{% endfor %}",
    "{{ ('x ' * 2000000)|wordwrap(1)|length }}",
    "{{ ('ab ' * 1300000).split()|length }}",
    "{{ ('ab\\n' * 1300000).splitlines()|length }}",
    "{{ ('ab ' * 1300000)|wordcount }}",
    "{{ ('€' * 4000000)|list|length }}",
    "{{ ('€' * 4000000)|urlencode|length }}",
    "{{ ('&' * 4000000)|e|length }}",
    "{{ ('x' * 4000000).translate({120: 'y' * 1000})|length }}",
    # format specs and % widths, and many fields of a width each
    "{{ '{:>99999999}'.format(1) }}",
    "{{ '%99999999s' % 1 }}",
    "{{ '%(a)99999999s' % {'a': 1} }}",
    "{{ ('{0:10000}' * 1000).format(1) }}",
    "{{ ('%(a)10000s' * 1000) % {'a': 1} }}",
    "{{ ('%(a)s' * 100000) % {'a': 'x' * 1000} }}",
    "{{ ('{0}' * 100000).format('x' * 1000) }}",
    "{{ ('%10000s' * 400)|format(*range(400)) }}",
    # repetition, joins and replaces
    "{{ ('x'.encode() * 10**9)|length }}",
    "{{ (1).to_bytes(10**9, 'big')|length }}",
    "{{ range(100000)|join('x' * 1000) }}",
    "{{ ('x' * 1000000)|replace('x', 'y' * 100) }}",
    "{% set x = [1] * 1000000 %}{{ ([x] * 8)|sum(start=[])|length }}",
    # range sizes, nested loops, loop.length, and printing into blocks
    "{{ range(10**9)|length }}",
    "{% for c in ('€' * 1000000) %}{{ loop.length if loop.first }}{% endfor %}",
    "{% set b %}{% for a in range(1000) %}{% for i in range(1000) %}"
    "{{ '' }}{{ '' }}{{ '' }}{{ '' }}{% endfor %}{% endfor %}{% endset %}",
    "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append(fake.words(1000)) %}"
    "{% endfor %}",
    "{% set big = range(100000)|list %}{% set l = [] %}{% for i in range(1000) %}"
    "{% set _ = l.append(big|string) %}{% endfor %}",
    "{% set big = 'x' * 1000000 %}{% set l = [] %}{% for i in range(1000) %}"
    "{% set _ = l.append(big|safe) %}{% endfor %}",
    "{% set big = 'x' * 1000000 %}{% set l = [] %}{% for i in range(1000) %}"
    "{% set _ = l.append(big|upper) %}{% endfor %}",
    "{% macro m() %}{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}"
    "{% set l = [] %}{% for i in range(1000) %}{% set _ = l.append(m()) %}{% endfor %}",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_a_hostile_template_ends_in_a_one_line_error_within_100_mb(tmp_path: Path,
                                                                    body: str) -> None:
    (tmp_path / "t.json.j2").write_text('{"v": 1}\n' + body + "\n")
    result = wasim_limited("render", "--template", "t.json.j2", cwd=tmp_path)
    one_line_limit(result, "t.json.j2:2")


SCENARIO_CASES = [HOSTILE[0], HOSTILE[16], HOSTILE[19], HOSTILE[20], HOSTILE[12]]


@pytest.mark.parametrize("body", SCENARIO_CASES)
def test_a_hostile_scenario_ends_in_a_one_line_error_within_100_mb(tmp_path: Path,
                                                                    body: str) -> None:
    (tmp_path / "s.yaml").write_text("name: s\n# " + body + "\n")
    result = wasim_limited("run", "s.yaml", "--dry-run", cwd=tmp_path)
    one_line_limit(result, "s.yaml:2")


def test_the_cap_is_real_a_render_without_the_budget_runs_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The control: with the budget lifted, the first case breaks the cap, so the tests above
    # could not pass on a kernel or a Python that ignored RLIMIT_AS.
    (tmp_path / "t.json.j2").write_text('{"v": 1}\n' + HOSTILE[0] + "\n")
    (tmp_path / "sitecustomize.py").write_text(
        "import simulator.sandbox as s\ns.MAX_RENDER_BYTES = 1 << 40\n")
    env_path = f"{tmp_path}{os.pathsep}{ROOT}"
    result = subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), "render",
                             "--template", "t.json.j2"], capture_output=True, text=True,
                            cwd=tmp_path, env=os.environ | {"PYTHONPATH": env_path},
                            timeout=120)
    assert result.returncode != 0
    assert "out of memory" in result.stderr or "MemoryError" in result.stderr, result.stderr


def test_a_real_template_renders_under_the_same_cap(tmp_path: Path) -> None:
    # And a correct template is not refused: loops, lists, dicts and widths in moderation.
    (tmp_path / "ok.json.j2").write_text(
        "{% set l = [] %}{% set d = {} %}{% for i in range(1000) %}"
        "{% set _ = l.append(i|string|center(20)) %}{% set _ = d.update({i|string: i}) %}"
        "{% endfor %}{% set ns = namespace(x=[]) %}{% for i in range(200) %}"
        "{% set ns.x = ns.x + [i] %}{% endfor %}"
        '{"n": {{ l|length }}, "d": {{ d|length }}, "x": {{ ns.x|sum }}, '
        '"j": {{ d|tojson(indent=2)|length }}, "w": {{ "%-30s"|format("a")|length }}}\n')
    result = wasim_limited("render", "--template", "ok.json.j2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"n":1000' in result.stdout.replace(" ", "") and '"x":19900' in result.stdout


def test_the_memory_budget_counts_what_is_kept_not_just_each_value() -> None:
    # Each value here is small; together they are not.
    from simulator.render import make_environment
    env = make_environment(None)
    template = env.from_string("{% set l = [] %}{% for i in range(1000) %}"
                               "{% set _ = l.append('x' * 100000) %}{% endfor %}")
    with pytest.raises(sandbox.RenderLimit, match="32 MB of memory"):
        sandbox.render_bounded(lambda: template.root_render_func(template.new_context({})))
