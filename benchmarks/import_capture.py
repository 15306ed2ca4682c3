"""`wasim import` throughput: callbacks per second, against reading the same capture in one run.

The capture is rendered by wasim itself (text messages from one user in five, each with an
email and an order number, as JSON Lines); the baseline only reads it (read_captures: JSON
parsing and batch splitting), so the ratio is what anonymising, building the scenario and
scanning every output for every original cost. Rounds alternate so machine noise hits both
sides alike. Peak memory (ru_maxrss) is printed last.

    python benchmarks/import_capture.py [--count 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from simulator.capture import read_captures
from simulator.importer import import_capture
from simulator.providers import make_faker, whatsapp_provider


def write_capture(path: Path, count: int) -> None:
    """`count` Kaleyra text callbacks from count/5 Indian users."""
    fake = make_faker(1, "en_IN")
    wa = whatsapp_provider(fake)
    rnd = random.Random(1)
    users = [(wa.whatsapp_number("IN"), fake.first_name() + " " + fake.last_name())
             for _ in range(max(1, count // 5))]
    with path.open("w", encoding="utf-8") as file:
        for index in range(count):
            number, name = rnd.choice(users)
            text = f"{fake.sentence(nb_words=10)} order {rnd.randrange(10**6)} {fake.email()}"
            body = {"meta_object": {"value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "918068177179",
                             "phone_number_id": "104605889412733"},
                "contacts": [{"profile": {"name": name}, "wa_id": number}],
                "messages": [{"from": number, "id": wa.whatsapp_user_wamid(number),
                              "timestamp": str(1779372805 + index), "type": "text",
                              "text": {"body": text}}]}, "field": "messages"},
                "extra_info": {"media_url": "", "ref": "", "ref1": "", "ref2": "",
                               "reply_to": "", "trace_id": fake.uuid4(),
                               "waba_id": "102290129340398"}}
            file.write(json.dumps(body) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "capture.jsonl"
        write_capture(capture, args.count)
        size = capture.stat().st_size
        read_times, import_times = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            read_captures([capture])
            read_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            imported = import_capture([capture], "bench", seed=1)
            import_times.append(time.perf_counter() - start)
    read_best, import_best = min(read_times), min(import_times)
    print(f"capture: {args.count:,} callbacks, {size / 1e6:.1f} MB, "
          f"{imported.users:,} users; best of {args.rounds}")
    print(f"read only (baseline): {read_best:.2f} s, {args.count / read_best:,.0f} callbacks/s")
    print(f"wasim import:         {import_best:.2f} s, {args.count / import_best:,.0f} "
          f"callbacks/s ({import_best / read_best:.1f}x the reading)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
