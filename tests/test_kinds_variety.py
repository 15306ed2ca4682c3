"""Optional fields vary from message to message as they do on phones (wire-format.md 5):
some stickers are animated, some shared locations are named places; every variant validates,
and what the person asks for is never overridden."""

from __future__ import annotations

import json
from typing import Any

from simulator.kinds import KindArgs, kind_body
from simulator.taps import TapFactory, TapOptions
from simulator.validate import validate_callback


def bodies(kind: str, args: KindArgs, count: int = 60) -> list[dict[str, Any]]:
    factory = TapFactory(TapOptions(seed=31))
    rnd = factory.streams[f"kind:{kind}"]
    return [json.loads(kind_body(kind, tap, args, rnd)) for tap in factory.taps(count)]


def message(document: dict[str, Any]) -> dict[str, Any]:
    return document["meta_object"]["value"]["messages"][0]  # type: ignore[no-any-return]


def test_some_stickers_are_animated_and_every_one_validates() -> None:
    documents = bodies("sticker", KindArgs())
    animated = [message(d)["sticker"]["animated"] for d in documents]
    assert True in animated and False in animated
    assert all(validate_callback(d) == [] for d in documents)


def test_some_drawn_locations_are_named_places_and_every_one_validates() -> None:
    documents = bodies("location", KindArgs())
    named = [message(d)["location"] for d in documents if "name" in message(d)["location"]]
    assert 0 < len(named) < len(documents)
    assert all(list(place) == ["address", "latitude", "longitude", "name"] for place in named)
    assert all(validate_callback(d) == [] for d in documents)


def test_a_location_the_person_gave_is_never_turned_into_a_place() -> None:
    documents = bodies("location", KindArgs(lat=12.5, lng=77.5))
    assert all(message(d)["location"] == {"latitude": 12.5, "longitude": 77.5}
               for d in documents)


def test_the_variation_is_the_same_under_one_seed() -> None:
    # (and moves no other drawn value: the pinned golden files of tests/test_kinds.py hold)
    first, again = bodies("sticker", KindArgs()), bodies("sticker", KindArgs())
    assert first == again
