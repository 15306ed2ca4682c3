"""Shared fixtures: the CLI runner and freshly rendered callbacks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.receiver import Receiver, ReceiverOptions
from simulator.render import RenderOptions, render_callbacks
from simulator.taps import TapOptions

TESTS = Path(__file__).parent


@pytest.fixture
def runner() -> CliRunner:
    """A click runner that keeps stderr apart from stdout."""
    return CliRunner()


@pytest.fixture
def callback() -> dict[str, Any]:
    """One valid button-tap callback, as a parsed document."""
    rendered = next(render_callbacks(RenderOptions(TapOptions(seed=11))))
    return json.loads(rendered.body)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop wasim itself uses."""
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The built-in webhook, a real HTTP server on a free port."""
    with Receiver(ReceiverOptions(port=0)) as running:
        yield running



@pytest.fixture
def without_latency_limit(tmp_path: Path) -> Callable[[str], Path]:
    """A maker of copies of a built-in scenario, less its `max_latency` rule.

    How fast a busy machine answers is not behaviour: tests that play a built-in scenario end
    to end check every other rule (test_slow_answers_break_max_latency covers this one).
    """
    import re

    def copy_of(name: str) -> Path:
        source = Path(__file__).parents[1] / "scenarios" / f"{name}.yaml"
        text = source.read_text(encoding="utf-8")
        lean, dropped = re.subn(r"(?m)^[ \t]*max_latency:[^\n]*\n", "", text)
        assert dropped, f"{name} has no max_latency rule to drop"
        copy = tmp_path / source.name
        copy.write_text(lean, encoding="utf-8")
        return copy

    return copy_of
