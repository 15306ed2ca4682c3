"""The mutation benchmark, small: validate catches >= 95% of single-point breaks, no false alarm."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulator.render import RenderOptions, render_callbacks
from simulator.taps import TapOptions
from simulator.validate import validate_body

BENCHMARK = Path(__file__).parent.parent / "benchmarks" / "mutations.py"
FAMILIES = {"key order", "type", "dropped key", "duplicated key", "invariant", "escaping", "ids",
            "timestamp"}


@pytest.fixture(scope="module")
def mutations() -> ModuleType:
    """benchmarks/mutations.py, loaded by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("wasim_mutations_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(mutations: ModuleType) -> Any:
    """One small run: three countries (India, Brazil, the US), every platform, every shape."""
    return mutations.run(5, 1, countries=("IN", "BR", "US"))


def test_at_least_95_percent_of_single_point_mutations_are_caught(report: Any) -> None:
    share = report.share
    missed = [f"[{m.family}] {m.name} ({label})" for label, m in report.missed]
    assert share >= 0.95, missed[:20]


def test_every_mutation_family_is_exercised(report: Any) -> None:
    assert set(report.total) == FAMILIES
    assert all(n >= 20 for n in report.total.values())


def test_no_false_alarm_on_valid_callbacks_with_every_documented_optional_field(
        report: Any) -> None:
    assert report.valid >= 50
    assert report.false_alarms == []


def test_every_kind_is_mutated_and_caught_with_no_false_alarm_on_its_baseline(
        report: Any) -> None:
    from simulator.kinds import kind_names

    assert set(report.kind_total) == set(report.kind_valid) == set(kind_names())
    for kind in kind_names():
        assert report.kind_false[kind] == 0, kind
        assert report.kind_caught[kind] >= 0.95 * report.kind_total[kind] > 0, kind


def test_the_benchmark_prints_each_kind_against_its_baseline(
        mutations: ModuleType, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    small = mutations.run(3, 1, countries=("IN",), platforms=("ios",))
    monkeypatch.setattr(mutations, "run", lambda *_args, **_kw: small)
    monkeypatch.setattr(sys, "argv", ["mutations.py"])
    mutations.main()
    lines = capsys.readouterr().out.splitlines()
    status = next(line for line in lines if line.split()[:1] == ["status"])
    assert "% caught" in status and "0 false alarm(s) on" in status


def test_the_benchmark_writes_the_same_bytes_as_the_wire(mutations: ModuleType) -> None:
    for rendered in render_callbacks(RenderOptions(TapOptions(seed=9), count=20)):
        assert mutations.php_json(json.loads(rendered.body)).encode() == rendered.body


def test_every_mutant_of_the_richest_shape_is_caught(mutations: ModuleType) -> None:
    sample = mutations.valid_samples(2, 1, countries=("IN",), platforms=("ios",))[2]
    assert sample.label.startswith("bsuid+parent+hash+username")
    assert validate_body(sample.raw, now=mutations.NOW) == []
    for mutant in mutations.mutants(sample):
        if mutant.raw != sample.raw:
            assert validate_body(mutant.raw, now=mutations.NOW), mutant.name
