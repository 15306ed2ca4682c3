"""`location`: a shared pin (latitude/longitude), or a place with name, address and url."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import (
    QUOTE,
    Facts,
    Field,
    KindArgs,
    KindSpec,
    first_message,
    message_callback,
    quote_context,
    variant,
)

PLACE_SHARE = 0.3  # of drawn locations: a named place (name, address), not a bare pin
_PLACES = ((12.9467329, 77.646835, "Forum Mall", "Hosur Road, Koramangala, Bengaluru"),
           (19.0596, 72.8295, "Bandra Station", "Bandra West, Mumbai"),
           (28.6315, 77.2167, "Connaught Place", "New Delhi"))


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """A location in Meta's key order (address, latitude, longitude, name, url: alphabetical
    in Meta's sample); the pin alone unless a name, address or url is given."""
    lat, lng, name, address = facts.rnd.choice(_PLACES)
    given = (args.lat, args.lng, args.place_name, args.address, args.url)
    if all(value is None for value in given) and variant(facts).random() < PLACE_SHARE:
        # Some users share a place, not a pin (wire-format.md 5, the address variant).
        return message_callback(facts, "location", {"location": {
            "address": address, "latitude": lat, "longitude": lng, "name": name}},
            context=quote_context(facts, args))
    location: dict[str, Any] = {}
    if args.address is not None:
        location["address"] = args.address
    location["latitude"] = args.lat if args.lat is not None else lat
    location["longitude"] = args.lng if args.lng is not None else lng
    if args.place_name is not None:
        location["name"] = args.place_name
    if args.url is not None:
        location["url"] = args.url
    del name, address  # drawn all the same, so the stream stays in step
    return message_callback(facts, "location", {"location": location},
                            context=quote_context(facts, args))


def summary(document: dict[str, Any]) -> str:
    """`[location] lat,lng name` as the phone shows a shared pin."""
    location = first_message(document).get("location", {})
    place = f" {location['name']}" if location.get("name") else ""
    return f"[location] {location.get('latitude')},{location.get('longitude')}{place}"


SPEC = KindSpec("location", "a shared location (latitude, longitude; optional name, address, "
                "url)", build, summary, fields=(
                    Field("lat", "latitude.", "number", low=-90, high=90, unit="degrees",
                          metavar="FLOAT"),
                    Field("lng", "longitude.", "number", low=-180, high=180, unit="degrees",
                          metavar="FLOAT"),
                    Field("place_name", "the place's name.", metavar="NAME"),
                    Field("address", "the place's address."),
                    Field("url", "the place's url.", metavar="URL", flag="--place-url"),
                    QUOTE))
