"""The pytest plugin and the API behind it: seeded callbacks, deliveries, scenarios, and
failure messages that say what was sent, what came back and the seed."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pytest

from simulator.errors import WasimError
from simulator.pytest_plugin import seed_from
from simulator.receiver import Receiver
from simulator.runner import plan_scenario
from simulator.scenarios import load_scenario
from simulator.testing import Simulator
from simulator.validate import validate_callback
from simulator.wamid import encode_wamid
from tests.apps import fastapi_app, flask_app

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]
EXAMPLES = Path(__file__).parent / "examples"
PLUGIN = ("-p", "simulator.pytest_plugin")
DUPLICATE_CHECK = 'if message["id"] in handled:'

SMALL = """\
name: small
seed: 3
template:
  buttons: [Shop now, Stop promotions]
cast:
  countries: {IN: 4}
steps:
  - name: wave
    duplicate: true
expect:
  status: [200]
"""


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Pytester whose runs load no installed plugin: only wasim's, given with -p."""
    # Runs happen in this process; an installed plugin with module-level state (the Textual
    # snapshot plugin's temp folder) would otherwise be finished by the inner run, breaking
    # the outer one. It also makes the runs the same before and after wasim's entry point.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


@pytest.fixture(autouse=True)
def fresh_apps() -> None:
    for store in (fastapi_app.received, fastapi_app.authorizations, fastapi_app.statuses,
                  fastapi_app.tokens_issued, flask_app.received):
        store.clear()


def message(document: dict[str, object]) -> dict[str, object]:
    return document["meta_object"]["value"]["messages"][0]  # type: ignore[index, no-any-return]


# --- seeds -----------------------------------------------------------------------------------


def test_the_seed_comes_from_the_node_id_and_is_the_same_on_every_machine() -> None:
    assert seed_from("tests/x.py::test_a") == 1592340141
    assert seed_from("tests/x.py::test_b") == 3598164570
    assert seed_from("tests/x.py::test_a", base=5) == 2667770686


def test_the_same_seed_builds_the_same_bytes_and_another_seed_other_bytes() -> None:
    # The seeded clock: with the live one (the default) a second may tick between the runs.
    first, again, other = (Simulator(11, wall_clock=False), Simulator(11, wall_clock=False),
                           Simulator(12, wall_clock=False))
    assert [first.tap().body for _ in range(3)] == [again.tap().body for _ in range(3)]
    assert first.tap().body != other.tap().body


# --- building callbacks ----------------------------------------------------------------------


def test_a_users_taps_reply_to_one_template_message_and_each_user_has_their_own() -> None:
    wasim = Simulator(5)
    shopper = wasim.user(country="BR")
    shop, stop = wasim.tap("Shop now", user=shopper), wasim.tap("Stop", user=shopper)
    other = wasim.tap("Shop now")
    assert shopper.wa_id.startswith("55")
    assert shop.user == stop.user == shopper
    assert shop.context_id == stop.context_id != other.context_id
    assert shop.document["extra_info"]["reply_to"] == stop.document["extra_info"]["reply_to"]
    assert shop.message_id != stop.message_id
    assert message(shop.document)["context"] == message(stop.document)["context"]


def test_a_tap_carries_the_templates_payload_for_its_button_else_the_label() -> None:
    wasim = Simulator(5)
    assert message(wasim.tap("Shop now").document)["button"] == {"payload": "SHOP_NOW",
                                                                 "text": "Shop now"}
    assert message(wasim.tap("See sizes").document)["button"] == {"payload": "See sizes",
                                                                  "text": "See sizes"}
    stop = wasim.tap("Stop promotions", payload="STOP", name="Asha Menon", country="IN")
    assert message(stop.document)["button"] == {"payload": "STOP", "text": "Stop promotions"}
    assert stop.document["meta_object"]["value"]["contacts"][0]["profile"]["name"] == \
        "Asha Menon"
    assert stop.button.payload == "STOP"
    assert all(validate_callback(cb.document) == [] for cb in (stop, wasim.tap()))


def test_a_tap_can_reply_to_the_template_message_your_app_sent() -> None:
    sent = encode_wamid("919845012345", True, "A" * 18)
    wasim = Simulator(5)
    tap = wasim.tap("Shop now", context_id=sent)
    assert (tap.user.wa_id, tap.context_id) == ("919845012345", sent)
    assert message(tap.document)["context"]["id"] == sent  # type: ignore[index]
    assert validate_callback(tap.document) == []
    with pytest.raises(WasimError, match="went to 919845012345, not to"):
        wasim.tap(context_id=sent, user=wasim.user())


def test_changes_and_remove_edit_the_callback_for_negative_tests() -> None:
    tap = Simulator(5).tap("Shop now", changes={"messages[0].button.text": "Buy"},
                           remove=["extra_info.ref2"])
    assert message(tap.document)["button"]["text"] == "Buy"  # type: ignore[index]
    assert "ref2" not in tap.document["extra_info"]
    assert "'Buy'" in tap.describe()  # described from the bytes, not from the tap
    with pytest.raises(WasimError,
                       match=r"wasim\.tap\(changes=\{'extra_info\.nope'.*has no key 'nope'"):
        Simulator(5).tap(changes={"extra_info.nope": 1})


def test_an_unknown_country_names_the_call_and_the_known_codes() -> None:
    with pytest.raises(WasimError,
                       match=r"wasim\.user\(country=\.\.\.\): unknown country 'XX'.*IN"):
        Simulator(5).user(country="XX")


# --- delivering ------------------------------------------------------------------------------


def test_a_callback_reaches_a_real_receiver_by_url_byte_for_byte(receiver: Receiver) -> None:
    wasim = Simulator(5)
    tap = wasim.tap("Shop now")
    delivery = wasim.deliver(tap, url=receiver.url).assert_status(200).assert_delivered()
    assert [a.body for a in receiver.wait_for(1)] == [tap.body]
    assert receiver.arrivals[0].problems == ()
    assert delivery.latency_ms > 0 and delivery.error is None


@pytest.mark.parametrize("app", [fastapi_app, flask_app], ids=["asgi", "wsgi"])
def test_an_app_in_process_gets_the_exact_bytes(app: ModuleType) -> None:
    wasim = Simulator(5)
    wasim.target(app=app.app, path="/webhook")
    taps = [wasim.tap() for _ in range(3)]
    for tap in taps:
        assert wasim.deliver(tap).assert_status(200).json() == {"ok": True}
    assert app.received == [tap.body for tap in taps]
    kind = "asgi" if app is fastapi_app else "wsgi"
    assert wasim.deliveries[0].last.target == f"{kind}:{type(app.app).__name__}/webhook"


@pytest.mark.parametrize("concurrently", [False, True], ids=["in-a-row", "at-once"])
def test_a_duplicate_is_the_same_bytes_again(receiver: Receiver, concurrently: bool) -> None:
    wasim = Simulator(5)
    tap = wasim.tap()
    copies = wasim.duplicate(tap, times=3, concurrently=concurrently, url=receiver.url)
    copies.assert_delivered().assert_status(200)
    assert len(copies) == 3
    assert [a.body for a in receiver.wait_for(3)] == [tap.body] * 3


def test_a_failed_status_assertion_says_what_was_sent_what_came_back_and_the_seed() -> None:
    wasim = Simulator(5, origin="the node id t.py::test_x")
    wasim.target(app=fastapi_app.app, path="/webhook")
    fastapi_app.statuses.append(500)
    tap = wasim.tap("Shop now", payload="SHOP")
    delivery = wasim.deliver(tap)
    with pytest.raises(AssertionError) as failure:
        delivery.assert_status(200)
    text = str(failure.value)
    assert text.startswith("expected status 200, got 500\n")
    for part in ("'Shop now' (payload 'SHOP')", tap.user.wa_id, tap.message_id, tap.event.id,
                 "asgi:FastAPI/webhook", '500 in', '{"ok":true}',
                 "wasim seed 5 (from the node id t.py::test_x)"):
        assert part in text
    with pytest.raises(AssertionError, match="the callback was not delivered: status 500"):
        delivery.assert_delivered()


def test_an_unreachable_url_is_a_failed_delivery_not_an_exception() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delivery = Simulator(5).deliver(Simulator(5).tap(), url=f"http://127.0.0.1:{port}/")
    assert (delivery.delivered, delivery.status) == (False, None)
    with pytest.raises(AssertionError, match=r"(?s)no answer.*connection refused"):
        delivery.assert_delivered()


def test_delivering_without_a_target_says_how_to_set_one() -> None:
    wasim = Simulator(5)
    with pytest.raises(WasimError, match=r"wasim\.deliver\(\): no target.*wasim\.target\(app="):
        wasim.deliver(wasim.tap())


def test_target_settings_are_checked_when_set_not_when_first_used() -> None:
    wasim = Simulator(5)
    with pytest.raises(WasimError, match=r"wasim\.target\(\).*cannot read the status '2yy'"):
        wasim.target(app=flask_app.app, success="2yy")
    with pytest.raises(WasimError, match=r"refusing to send callbacks to 203\.0\.113\.5"):
        wasim.target(url="https://203.0.113.5/webhook")


def test_acted_once_counts_actions_against_distinct_delivered_callbacks(
        receiver: Receiver) -> None:
    wasim = Simulator(5)
    copies = wasim.duplicate(wasim.tap(), url=receiver.url)
    copies.assert_acted_once(1)
    copies.assert_acted_once(["919845012345"])
    with pytest.raises(AssertionError, match="acted 0 times on 1 callback, delivered 2 times"):
        copies.assert_acted_once(0)
    with pytest.raises(AssertionError, match=r"(?s)sent a reply 2 times.*act once per messages"):
        copies.assert_acted_once(2, "sent a reply")


def test_sync_calls_inside_an_event_loop_point_to_the_async_variant(receiver: Receiver) -> None:
    wasim = Simulator(5)
    wasim.target(url=receiver.url)

    async def in_an_async_test() -> int | None:
        with pytest.raises(WasimError, match=r"await wasim\.adeliver"):
            wasim.deliver(wasim.tap())
        copies = await wasim.aduplicate(wasim.tap())
        run = await wasim.arun_scenario(SMALL)
        return (await wasim.adeliver(wasim.tap())).status if copies and run.ok else None

    assert asyncio.run(in_an_async_test()) == 200


# --- scenarios -------------------------------------------------------------------------------


def test_a_named_scenario_runs_with_its_own_seed_and_sends_the_planned_bytes(
        receiver: Receiver) -> None:
    # A seeded clock and exact: the run sends the seed's bytes (a live one stamps its send
    # moments; without exact a run draws its own message and trace ids).
    run = Simulator(5, wall_clock=False).run_scenario("idempotency-check", url=receiver.url,
                                                      exact=True)
    run.assert_ok().assert_acted_once(10)
    planned = plan_scenario(load_scenario("idempotency-check"))
    assert run.plan.seed == 7 and run.summary.sent == len(planned.sends) == 20
    assert sorted(a.body for a in receiver.wait_for(20)) == \
        sorted(s.event.body for s in planned.sends)
    with pytest.raises(AssertionError, match="acted 20 times on 10 callbacks, each delivered 2"):
        run.assert_acted_once(20)


def test_a_failing_scenario_lists_its_failing_sends() -> None:
    wasim = Simulator(5)
    wasim.target(app=fastapi_app.app, path="/webhook")
    fastapi_app.statuses.extend([500, 503])
    run = wasim.run_scenario(SMALL)
    assert not run.ok and run.summary.failed == 2
    with pytest.raises(AssertionError) as failure:
        run.assert_ok()
    text = str(failure.value)
    assert text.startswith("small (seed 3): 8 sent, 6 delivered, 2 failed")
    assert "#0 wave (tap)" in text and "status: expected 200, got 500" in text
    assert "got 503" in text and "scenario 'small', seed 3" in text


def test_a_scenario_without_a_seed_takes_the_simulators() -> None:
    text = SMALL.replace("seed: 3\n", "")
    run = Simulator(42).run_scenario(text, app=flask_app.app, path="/webhook")
    run.assert_ok()
    assert run.plan.seed == 42 and len(flask_app.received) == 8


# --- the plugin, run by pytest ---------------------------------------------------------------


def test_the_fixture_is_seeded_from_the_node_id_unless_a_marker_or_option_says_otherwise(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds="""
        import pytest
        from simulator.pytest_plugin import seed_from

        def expected(request):
            return seed_from(request.node.nodeid, request.config.getoption("wasim_seed"))

        def test_plain(wasim, request):
            assert wasim.seed == expected(request)

        @pytest.mark.parametrize("n", [1, 2])
        def test_each_parameter_has_its_own(wasim, request, n):
            assert wasim.seed == expected(request)
            assert request.node.user_properties == [("wasim_seed", wasim.seed)]

        @pytest.mark.wasim(seed=7, country="BR")
        def test_marked(wasim):
            assert wasim.seed == 7 and wasim.tap().user.wa_id.startswith("55")

        @pytest.mark.wasim(contry="BR")
        def test_misspelt(wasim):
            pass
    """)
    for extra in ((), ("--wasim-seed", "5")):
        result = pytester.runpytest(*PLUGIN, *extra)
        result.assert_outcomes(passed=4, errors=1)
        result.stdout.fnmatch_lines(["*has no option 'contry'; it takes seed, country, *"
                                     "Did you mean 'country'?*"])


def test_a_failing_test_reports_its_seed_and_what_it_delivered(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fails="""
        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b"queued"})

        def test_fails(wasim):
            wasim.deliver(wasim.tap("Shop now"), app=app, path="/hook")
            assert False, "the handler did something wrong"
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- wasim -*",
        "wasim seed * (from the node id test_fails.py::test_fails): the same test sends the "
        "same callbacks on every run",
        "deliveries (1):",
        "  evt_* 'Shop now' -> asgi:app/hook: 202 in * ms: queued",
    ])


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_a_handler_without_its_duplicate_check_fails_the_idempotency_examples_clearly(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, framework: str) -> None:
    handler = (EXAMPLES / f"{framework}_handler.py").read_text()
    broken = handler.replace(DUPLICATE_CHECK, "if False:  # broken on purpose")
    assert broken != handler, "the example's duplicate check changed: update DUPLICATE_CHECK"
    example = f"test_{framework}_example"
    # This process may have imported the real handler and example already: run the copies.
    for name in (f"{framework}_handler", example):
        monkeypatch.delitem(sys.modules, name, raising=False)
    pytester.makepyfile(**{f"{framework}_handler": broken,
                           example: (EXAMPLES / f"{example}.py").read_text()})
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        f"FAILED {example}.py::test_a_duplicate_delivery_is_acted_on_once*",
        f"FAILED {example}.py::test_the_idempotency_scenario_is_acted_on_once_per_tap*",
    ], consecutive=False)
    output = result.stdout.str()
    for line in (
        "AssertionError: the handler acted 2 times on 1 callback, delivered 2 times with the "
        "same bytes; expected 1 (once per callback).",
        "Kaleyra delivers at least once, so the same callback can arrive again: act once per "
        "messages[0].id.",
        f"(from the node id {example}.py::test_a_duplicate_delivery_is_acted_on_once)",
        "AssertionError: the handler acted 20 times on 10 callbacks, each delivered 2 times",
    ):
        assert line in output


def test_importing_the_plugin_loads_neither_the_simulator_nor_its_dependencies() -> None:
    code = ("import sys, simulator.pytest_plugin; print(sorted(m for m in ('faker', 'jinja2', "
            "'httpx', 'yaml', 'textual', 'simulator.testing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_an_installed_package_registers_the_plugin_with_pytest() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text()) \
        .get("project", {}).get("entry-points", {}).get("pytest11", {})
    if not declared:
        pytest.skip("pyproject.toml does not declare the pytest11 entry point yet")
    assert list(declared.values()) == ["simulator.pytest_plugin"]
    installed = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert {k: installed.get(k) for k in declared} == declared, \
        "reinstall (pip install -e .) so the entry point is in the installed metadata"


def test_the_docs_show_the_example_files_verbatim() -> None:
    from pathlib import Path

    root = Path(__file__).parents[1]
    readme = (root / "docs" / "guides" / "handler.md").read_text()
    for name in ("fastapi_handler.py", "test_fastapi_example.py", "flask_handler.py",
                 "test_flask_example.py"):
        text = (root / "tests" / "examples" / name).read_text()
        assert f"# tests/examples/{name}\n{text}```" in readme, name


def test_an_asgi_apps_lifespan_runs_around_each_deliver_call() -> None:
    from simulator.testing import Simulator
    from tests.apps import lifespan_app

    lifespan_app.events.clear()
    simulator = Simulator(seed=5)
    simulator.target(app=lifespan_app.app, path="/webhook")
    simulator.deliver(simulator.tap("Shop now")).assert_status(200)
    assert lifespan_app.events == ["startup", "callback", "shutdown"]


def test_a_finished_tests_faker_draws_for_the_next_as_a_new_one_would() -> None:
    """The fixture hands a finished test's Faker to the next test (building one is most of
    a Simulator's cost): reseeded, it must give the same bytes as a new Faker."""
    used = Simulator(5, wall_clock=False, now=1_780_000_000)
    for label in ("Shop now", "See sizes", "Stop promotions"):
        used.tap(label)
    fresh = Simulator(9, wall_clock=False, now=1_780_000_000)
    again = Simulator(9, wall_clock=False, now=1_780_000_000, faker=used.spent_faker())
    assert [fresh.tap("Shop now").body for _ in range(4)] == \
        [again.tap("Shop now").body for _ in range(4)]
    assert fresh.user("BR").name == again.user("BR").name


def test_a_failing_assertion_shows_the_tests_line_not_wasims_source(
        pytester: pytest.Pytester) -> None:
    """__tracebackhide__ in the assertion helpers: the failure is the test's line and the
    message, with no frame of wasim's own code in between."""
    pytester.makepyfile(test_hidden="""
        def test_no_reply(wasim):
            with wasim.api() as api:
                api.assert_replied(type="text")

        def test_wrong_status(wasim):
            from tests.apps import fastapi_app
            wasim.deliver(wasim.tap("Shop now"), app=fastapi_app.app,
                          path="/webhook").assert_status(418)
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "sendapi.py" not in output and "testing.py" not in output
    assert "expected exactly 1 reply" in output and "expected status 418" in output
