"""Render throughput: unique callbacks per second, against a hand-written baseline in one run.

The baseline makes the same provider calls (the same TapFactory) and fills a plain dict
literal, serialized the same way; the ratio is what the template costs. Rounds alternate so
machine noise hits both sides alike.

    python benchmarks/render.py [--count 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from simulator.models import Tap
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.taps import TapFactory, TapOptions
from simulator.wire import to_wire


def by_hand(tap: Tap) -> bytes:
    """The button-tap callback as a dict literal: what a hand-written generator would do."""
    return to_wire({
        "meta_object": {
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": tap.business.display_phone_number,
                             "phone_number_id": tap.business.phone_number_id},
                "contacts": [{"profile": {"name": tap.user.name}, "wa_id": tap.user.wa_id,
                              "user_id": tap.user.user_id, "country_code": tap.user.country}],
                "messages": [{
                    "context": {"from": tap.business.display_phone_number,
                                "id": tap.template.wamid},
                    "from": tap.user.wa_id,
                    "from_user_id": tap.user.user_id,
                    "id": tap.message_id,
                    "timestamp": tap.timestamp,
                    "type": "button",
                    "button": {"payload": tap.button.payload, "text": tap.button.text},
                }],
            },
            "field": "messages",
        },
        "extra_info": {
            "media_url": tap.media_url, "ref": tap.template.ref, "ref1": tap.template.ref1,
            "ref2": tap.template.ref2, "reply_to": tap.template.reply_to,
            "trace_id": tap.trace_id, "waba_id": tap.business.waba_id,
        },
    })


def rate(count: int, seed: int, make_body: Callable[[TapFactory], Callable[[Tap], bytes]]) -> float:
    """Callbacks per second for `count` unique taps turned into bytes by `make_body`."""
    factory = TapFactory(TapOptions(seed=seed, countries=("IN", "US", "GB", "BR", "DE", "AE")))
    body = make_body(factory)
    started = time.perf_counter()
    total = 0
    for tap in factory.taps(count):
        total += len(body(tap))
    elapsed = time.perf_counter() - started
    assert total > 0
    return count / elapsed


def with_template(factory: TapFactory) -> Callable[[Tap], bytes]:
    template = CallbackTemplate(find_template("button_tap"), fake=factory.fake)
    return lambda tap: render_tap(template, tap)


def jinja_every_time(factory: TapFactory) -> Callable[[Tap], bytes]:
    """The path a template with logic takes: Jinja renders, then parse and serialize."""
    template = CallbackTemplate(find_template("button_tap"), fake=factory.fake)
    return lambda tap: to_wire(template.document(tap))


def without_template(factory: TapFactory) -> Callable[[Tap], bytes]:
    return by_hand


def main() -> None:
    """Run both sides in alternating rounds and print the best rate of each and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="callbacks per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side")
    args = parser.parse_args()
    rate(2_000, 0, with_template)  # warm-up: Faker locales, Jinja compilation
    wasim, jinja, baseline = [], [], []
    for round_no in range(args.rounds):
        wasim.append(rate(args.count, round_no, with_template))
        jinja.append(rate(args.count, round_no, jinja_every_time))
        baseline.append(rate(args.count, round_no, without_template))
    best_wasim, best_jinja, best_baseline = max(wasim), max(jinja), max(baseline)
    print(f"render benchmark: {args.count:,} unique callbacks x {args.rounds} rounds, best round")
    print(f"  wasim render_tap (built-in template)          {best_wasim:>10,.0f} callbacks/s")
    print(f"  Jinja every time (a template with logic)      {best_jinja:>10,.0f} callbacks/s")
    print(f"  baseline (same provider calls, dict literal)  {best_baseline:>10,.0f} callbacks/s")
    print(f"  ratio wasim / baseline                        {best_wasim / best_baseline:>10.2f}x")
    print(f"  ratio Jinja every time / baseline             {best_jinja / best_baseline:>10.2f}x")


if __name__ == "__main__":
    main()
