"""Who tapped what is read in one place, for every envelope and every kind of user."""

from __future__ import annotations

import json

from simulator.delivery import Event
from simulator.receiver import _summarise
from simulator.tapped import read_body, read_document
from simulator.testing import Simulator


def test_the_log_the_receiver_and_the_api_read_the_same_facts_from_one_body() -> None:
    tap = Simulator(4).tap("Shop now")
    facts = read_body(tap.event.body)
    event = Event.from_body(tap.event.body)
    assert (event.user, event.name, event.button, event.message_id) == (
        facts.user, facts.name, facts.button, facts.message_id)
    assert f'tapped "{facts.button}"' in _summarise(tap.document)
    assert repr(facts.payload) in tap.describe()


def test_meta_s_own_envelope_is_read_like_kaleyra_s() -> None:
    document = Simulator(4).tap("Shop now").document
    meta = {"object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": document["meta_object"]["value"]}]}]}
    assert read_document(meta).button == read_document(document).button != ""
    assert Event.from_body(json.dumps(meta).encode()).button == "Shop now"


def test_a_body_that_is_not_a_callback_gives_blanks_and_a_reason() -> None:
    assert read_body(b"\xff").problem == "not JSON"
    assert read_document([1]).problem.startswith("the body is a JSON list")
    assert read_document({"meta_object": {"value": {}}}).message is False
