"""What `wasim load`'s per-second timeline (for --report FILE.html) costs a request.

Times Timeline.record against LatencyHistogram.record (the figure every request already
pays for, the baseline) in the same run, on a run of a million requests at 20,000/s
(50 seconds of intervals, so it coarsens nothing), and prints the memory it holds after
ten times MAX_POINTS seconds at one request a millisecond.

    python benchmarks/timeline.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc

from simulator.load import LatencyHistogram
from simulator.timeline import MAX_POINTS, Timeline


def per_call(record: object, ends: list[float], latencies: list[float]) -> float:
    """Nanoseconds a call, best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        if isinstance(record, Timeline):
            for end, us in zip(ends, latencies, strict=True):
                record.record(end, us, False)
        else:
            assert isinstance(record, LatencyHistogram)
            for us in latencies:
                record.record(us)
        best = min(best, (time.perf_counter() - started) / len(ends) * 1e9)
    return best


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    n = parser.parse_args().requests
    rnd = random.Random(1)
    ends = [i / 20_000 for i in range(n)]
    latencies = [rnd.lognormvariate(7, 1) for _ in range(n)]  # ~1 ms, a long tail
    baseline = per_call(LatencyHistogram(), ends, latencies)
    timeline = per_call(Timeline(), ends, latencies)
    print(f"LatencyHistogram.record  {baseline:7.0f} ns a request (baseline)")
    print(f"Timeline.record          {timeline:7.0f} ns a request "
          f"({timeline / baseline:.2f}x the baseline)")
    tracemalloc.start()
    long_run = Timeline()
    for i in range(10 * MAX_POINTS * 1000):  # one a millisecond for 10 x MAX_POINTS seconds
        long_run.record(i / 1000, latencies[i % n], False)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"after {10 * MAX_POINTS:,} s: {len(long_run.points)} intervals of "
          f"{long_run.width:g} s, {held / 1e6:.2f} MB held")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
