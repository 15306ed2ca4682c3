"""Shared fixtures: the CLI runner and freshly rendered callbacks."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
