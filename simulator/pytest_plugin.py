"""wasim's pytest plugin: the `wasim` fixture, a callback simulator seeded from the test's node id.

pytest loads this module in every run of every project where wasim is installed, so at import
it touches only pytest and the standard library; the simulator (Faker, Jinja, httpx) is
imported the first time a test asks for the fixture.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pluggy

    from simulator.testing import Simulator

MARKER = "wasim"
# The marker's keywords are the Simulator's (seed, country, platform, template, wall_clock,
# now, identity), listed here so `pytest --markers` needs no import of the simulator.
MARKER_HELP = ("wasim(seed=N, country='IN', platform='mix', template='button_tap', "
               "wall_clock=True, now=None, identity='bsuid'): options of the `wasim` fixture "
               "for this test; seed= pins the seed instead of deriving it from the node id")

_SIMULATOR = pytest.StashKey["Simulator"]()
# Fakers of finished tests, for the next tests (reseeded, they draw as new ones): building one
# costs more than the rest of a test's simulator. Kept per session, on the config.
_SPARE_FAKERS = pytest.StashKey[list[Any]]()
_NOT_OPTIONS = ("origin", "faker")  # Simulator arguments no marker sets


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --wasim-seed."""
    group = parser.getgroup("wasim", "wasim: simulated Kaleyra WhatsApp callbacks")
    group.addoption(
        "--wasim-seed", type=int, metavar="N", default=None, dest="wasim_seed",
        help="mix N into every test's seed for other users, ids and taps, reproducible with "
             "the same N (default: each test's seed comes from its node id alone)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the `wasim` marker."""
    config.addinivalue_line("markers", MARKER_HELP)


def seed_from(node_id: str, base: int | None = None) -> int:
    """A 32-bit seed from a test's node id (and a --wasim-seed base): stable across runs."""
    text = node_id if base is None else f"{base}:{node_id}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def _marker_options(item: pytest.Item, allowed: list[str]) -> dict[str, Any]:
    """The `wasim` markers' keywords, the closest (function over class over module) winning."""
    options: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):
        if mark.args:
            pytest.fail(f"@pytest.mark.wasim takes keywords only ({', '.join(allowed)}), got "
                        f"{mark.args!r}", pytrace=False)
        options.update(mark.kwargs)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        from simulator.errors import did_you_mean

        hint = did_you_mean(unknown[0], allowed) or ""
        pytest.fail(f"@pytest.mark.wasim has no option {unknown[0]!r}; it takes "
                    f"{', '.join(allowed)}. {hint}".rstrip(), pytrace=False)
    return options


@pytest.fixture
def wasim(request: pytest.FixtureRequest) -> Generator[Simulator, None, None]:
    """A Simulator seeded from this test's node id: the same test sends the same callbacks.

    `@pytest.mark.wasim(seed=..., country=...)` sets its options; `--wasim-seed N` mixes N
    into every test's seed. A failing test's report shows the seed and every delivery.
    """
    from simulator.testing import Simulator  # deferred: see the module docstring

    item = request.node
    allowed = [name for name in inspect.signature(Simulator).parameters
               if name not in _NOT_OPTIONS]
    options = _marker_options(item, allowed)
    base = request.config.getoption("wasim_seed", default=None)
    if "seed" in options:
        origin = f"@pytest.mark.wasim(seed={options['seed']})"
    elif base is not None:
        options["seed"] = seed_from(item.nodeid, base)
        origin = f"--wasim-seed {base} and the node id {item.nodeid}"
    else:
        options["seed"] = seed_from(item.nodeid)
        origin = f"the node id {item.nodeid}"
    spares = request.config.stash.setdefault(_SPARE_FAKERS, [])
    simulator = Simulator(origin=origin, faker=spares.pop() if spares else None, **options)
    item.stash[_SIMULATOR] = simulator
    item.user_properties.append(("wasim_seed", simulator.seed))  # lands in JUnit XML too
    yield simulator
    spent = simulator.spent_faker()  # the test is over: its Faker serves the next one
    if spent is not None and len(spares) < 4:
        spares.append(spent)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """On failure, add a `wasim` section: the seed and every callback the test delivered."""
    outcome = yield
    report = outcome.get_result()
    simulator = item.stash.get(_SIMULATOR, None)
    if simulator is not None and report.failed:
        report.sections.append(("wasim", simulator.report()))
