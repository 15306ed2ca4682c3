"""What the `wasim` fixture costs a test, against the same post through FastAPI's TestClient.

Each round is one test's worth of work, done the way the test would do it:

* wasim: the fixture's Simulator (seeded from a node id), one `tap("Shop now")`, one
  `deliver(..., app=app, path="/webhook")` into a FastAPI app, in-process, lifespan included;
* baseline: `TestClient(app).post("/webhook", content=body)` with the same bytes.

The two alternate in blocks in the same run, so a busy machine slows both alike. It prints
the median per-test cost of each and the ratio (the target: at most 1.5x).

    python benchmarks/plugin.py [--tests 200] [--blocks 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from simulator.pytest_plugin import seed_from
from simulator.testing import Simulator

app = FastAPI()


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, str]:
    """Read the tap, answer 200: the handler is not what is measured."""
    message = (await request.json())["meta_object"]["value"]["messages"][0]
    return {"status": "ok", "id": message["id"]}


SPARES: list[object] = []  # as the plugin keeps them: the Fakers of finished tests


def with_wasim(test: int) -> None:
    """One test using the `wasim` fixture, as simulator.pytest_plugin.wasim builds and ends
    it: a Simulator seeded from a node id (given a finished test's Faker), a tap, a
    delivery."""
    nodeid = f"tests/test_shop.py::test_tap_{test}"
    wasim = Simulator(seed=seed_from(nodeid), origin=f"the node id {nodeid}",
                      faker=SPARES.pop() if SPARES else None)
    wasim.deliver(wasim.tap("Shop now"), app=app, path="/webhook").assert_status(200)
    SPARES.append(wasim.spent_faker())


BODY = Simulator(seed=1).tap("Shop now").body


def with_test_client(test: int) -> None:
    """The same post through FastAPI's TestClient, made per test as a fixture would."""
    answer = TestClient(app).post("/webhook", content=BODY,
                                  headers={"content-type": "application/json"})
    assert answer.status_code == 200


def per_test_ms(work: Callable[[int], None], tests: int, start: int) -> float:
    """Milliseconds per test for `tests` tests of `work`."""
    began = time.perf_counter()
    for test in range(start, start + tests):
        work(test)
    return (time.perf_counter() - began) * 1000 / tests


def main() -> None:
    """Alternate blocks of both, then print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="tests per block")
    parser.add_argument("--blocks", type=int, default=5, help="blocks of each, alternating")
    args = parser.parse_args()
    with_wasim(-1)  # warm both: imports and first-use setup are not per-test costs
    with_test_client(-1)
    wasim_ms, client_ms = [], []
    for block in range(args.blocks):
        wasim_ms.append(per_test_ms(with_wasim, args.tests, block * args.tests))
        client_ms.append(per_test_ms(with_test_client, args.tests, block * args.tests))
    fixture, bare = statistics.median(wasim_ms), statistics.median(client_ms)
    print(f"wasim fixture + tap + deliver: {fixture:6.2f} ms per test "
          f"(blocks: {', '.join(f'{m:.2f}' for m in wasim_ms)})")
    print(f"bare TestClient post:          {bare:6.2f} ms per test "
          f"(blocks: {', '.join(f'{m:.2f}' for m in client_ms)})")
    print(f"ratio: {fixture / bare:.2f}x (target: at most 1.5x)")


if __name__ == "__main__":
    main()
