"""How much of a scenario run's measured latency is wasim's own: the end-to-end latency of
every answer against the handler's answer time (latency less wasim's queueing and loop lag),
in one run against the built-in receiver, so the ratio is what `max_latency` no longer counts.

    python benchmarks/answer_time.py [--scenario burst-1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math

from simulator.receiver import Receiver, ReceiverOptions
from simulator.runner import percentile, plan_scenario, run_plan, scenario_delivery
from simulator.scenarios import load_scenario


async def one_round(name: str, url: str) -> tuple[list[float], list[float]]:
    """Every answer's end-to-end latency and the handler's answer time, in ms."""
    plan = plan_scenario(load_scenario(name))
    delivery = scenario_delivery(plan, {"url": url}, str)
    measured: list[float] = []
    answers: list[float] = []
    async for outcome in run_plan(plan, delivery, speed=math.inf):
        last = outcome.result.attempts[-1]
        measured.append(last.latency_ms)
        answers.append(last.answer_ms)
    return measured, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="burst-1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Receiver(ReceiverOptions(port=0)) as receiver:
        for number in range(1, args.rounds + 1):
            measured, answers = asyncio.run(one_round(args.scenario, receiver.url))
            figures = []
            for p in (50, 99):
                whole, own = percentile(measured, p) or 0.0, percentile(answers, p) or 0.0
                figures.append(f"p{p} measured {whole:7.1f} ms  handler {own:7.1f} ms  "
                               f"ratio {whole / own if own else math.inf:5.1f}x")
            print(f"round {number} ({len(measured)} answers): " + " | ".join(figures))


if __name__ == "__main__":
    main()
