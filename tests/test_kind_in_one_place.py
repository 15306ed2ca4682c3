"""A new kind is one module plus one registry line: the `order` kind of tests/fixtures/kinds,
registered here (the registry line, made by monkeypatch), is picked up by every face: render's
and fire's options, `--kind list` and `--kind`'s help, a scenario's `send:`, `wasim.send()`
and `wasim validate`, each with the fields, bounds and check the kind declares."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.errors import WasimError
from simulator.kinds import KIND_SPECS, kind_rows, summarize
from simulator.receiver import Receiver
from simulator.runner import plan_scenario
from simulator.scenarios import load_scenario
from simulator.testing import Simulator
from simulator.validate import validate_callback
from tests.fixtures.kinds import order

ROOT = Path(__file__).resolve().parent.parent
# What an installed plugin's import does: the one registry line, before the CLI is built.
REGISTERED_CLI = (
    "import sys\n"
    "import simulator.kinds\n"
    "from tests.fixtures.kinds import order\n"
    "simulator.kinds.KIND_SPECS['order'] = order.SPEC\n"
    "from simulator.cli import cli\n"
    "cli.main(sys.argv[1:], prog_name='wasim')\n")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The `order` kind in the registry, for this test only."""
    monkeypatch.setitem(KIND_SPECS, "order", order.SPEC)
    yield


def _wasim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", REGISTERED_CLI, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _order(body: bytes) -> dict[str, object]:
    document = json.loads(body)
    found: dict[str, object] = document["meta_object"]["value"]["messages"][0]["order"]
    return found


def test_render_has_the_kinds_options_and_builds_it() -> None:
    rendered = _wasim("render", "--seed", "3", "--kind", "order", "--product", "SKU-7",
                      "--quantity", "2", "--price", "10", "--currency", "USD")
    assert rendered.returncode == 0, rendered.stderr
    document = json.loads(rendered.stdout)
    item = document["meta_object"]["value"]["messages"][0]["order"]["product_items"][0]
    assert item == {"product_retailer_id": "SKU-7", "quantity": 2, "item_price": 10.0,
                    "currency": "USD"}


def test_the_command_line_checks_the_kinds_bounds_and_its_check() -> None:
    zero = _wasim("render", "--kind", "order", "--quantity", "0")
    assert zero.returncode == 2 and "--quantity" in zero.stderr, zero.stderr
    priced = _wasim("render", "--kind", "order", "--price", "10")
    assert priced.returncode == 2, priced.stderr
    assert "--price needs --currency" in priced.stderr and "Add --currency" in priced.stderr
    foreign = _wasim("render", "--kind", "text", "--product", "SKU-7")
    assert foreign.returncode == 2 and "not an option of kind text" in foreign.stderr


def test_the_kind_list_and_the_help_name_it() -> None:
    listed = _wasim("render", "--kind", "list")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("order ") for line in listed.stdout.splitlines())
    assert "--product" in listed.stdout and "--currency" in listed.stdout
    helped = _wasim("fire", "--help")
    assert "--quantity N" in helped.stdout and "order: how many." in helped.stdout
    assert "status, order;" in " ".join(helped.stdout.split())  # --kind's help names it


def test_fire_delivers_the_new_kind(receiver: Receiver) -> None:
    fired = _wasim("fire", "--kind", "order", "--product", "SKU-9", "--url", receiver.url,
                   "--no-history")
    assert fired.returncode == 0, fired.stderr
    [arrived] = receiver.wait_for(1)
    assert _order(arrived.body)["product_items"][0]["product_retailer_id"] == "SKU-9"


def test_a_scenario_sends_it_with_its_shorthand_and_its_fields(registered: None,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text("name: orders\nseed: 4\n"
                    "template: {name: t, body: hi, buttons: [{text: 'Yes', payload: Y}]}\n"
                    "cast: {countries: {IN: 1}}\n"
                    "steps:\n"
                    "  - send: {order: SKU-1}\n"
                    "  - send: {kind: order, product: SKU-2, quantity: 3, note: gift}\n")
    plan = plan_scenario(load_scenario(str(path)))
    bodies = [_order(send.event.body) for send in plan.sends]
    assert [b["product_items"][0]["product_retailer_id"] for b in bodies] == ["SKU-1", "SKU-2"]
    assert bodies[1]["text"] == "gift" and bodies[1]["product_items"][0]["quantity"] == 3
    assert [summarize(json.loads(s.event.body)) for s in plan.sends][1] == "[order] 3 x SKU-2"


@pytest.mark.parametrize(("send", "fragment"), [
    ("{kind: order, colour: red}", "unknown field of kind order"),
    ("{kind: order, quantity: 0}", "expected an integer from 1 to 99"),
    ("{kind: order, price: 5}", "price needs currency"),
    ("{kind: order, currency: EUR}", "unknown currency 'EUR'"),
])
def test_a_scenario_gets_the_kinds_checks_at_its_line(registered: None, tmp_path: Path,
                                                      send: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ntemplate: {name: t, body: hi, buttons: [{text: 'Yes'}]}\n"
                    f"cast: {{countries: {{IN: 1}}}}\nsteps:\n  - send: {send}\n")
    with pytest.raises(WasimError) as caught:
        load_scenario(str(path))
    assert fragment in str(caught.value.one_line()) and "bad.yaml:" in caught.value.one_line()


def test_wasim_send_takes_its_fields_as_keywords(registered: None) -> None:
    wasim = Simulator(seed=5)
    callback = wasim.send("order", product="SKU-3", quantity=4)
    assert _order(callback.body)["product_items"][0]["quantity"] == 4
    assert validate_callback(json.loads(callback.body)) == []  # its own rules judge it
    with pytest.raises(WasimError, match="kind order has no field 'colour'"):
        wasim.send("order", colour="red")
    with pytest.raises(WasimError, match=r"price= needs currency="):
        wasim.send("order", price=5.0)


def test_validate_uses_the_rules_the_kind_declares(registered: None) -> None:
    document = json.loads(Simulator(seed=6).send("order").body)
    assert validate_callback(document) == []
    document["meta_object"]["value"]["messages"][0]["order"]["product_items"][0]["quantity"] = 0
    problems = [str(p) for p in validate_callback(document)]
    assert problems == ["$.meta_object.value.messages[0].order.product_items[0].quantity: "
                        "expected a whole number above 0"]


def test_the_kind_rows_have_it_only_while_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "order" not in [row[0] for row in kind_rows()]
    monkeypatch.setitem(KIND_SPECS, "order", order.SPEC)
    assert ("order", order.SPEC.description,
            "--product, --quantity, --price, --currency, --note") in kind_rows()
