"""A load run's figures over time, for charts: requests, failures and latencies per interval.

Memory is bounded however long the run: at most MAX_POINTS intervals of one second, and when
a run outlasts them, neighbouring intervals are merged (two seconds each, then four...).
Each interval's latencies go into a small log-scale histogram (about 5% wide buckets: enough
for a chart's p50/p95/p99, and a few dozen buckets an interval).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_POINTS = 600  # ten minutes at one a second; an hour's run has six seconds a point
_BUCKETS_PER_E = 20


@dataclass
class Point:
    """One interval of the run: how many requests ended in it, failed, and their latencies."""

    count: int = 0
    failed: int = 0
    buckets: Counter[int] = field(default_factory=Counter)

    def merge(self, other: Point) -> None:
        """Add `other`'s requests to these."""
        self.count += other.count
        self.failed += other.failed
        self.buckets.update(other.buckets)

    def percentile(self, p: float) -> float | None:
        """The p-th percentile latency in milliseconds (within about 5%), None when empty."""
        total = sum(self.buckets.values())
        if not total:
            return None
        rank = max(1, math.ceil(p / 100 * total))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                break
        return math.exp((bucket + 0.5) / _BUCKETS_PER_E) / 1000


class Timeline:
    """Requests by the interval they ended in, from the first one on; bounded in memory."""

    def __init__(self, width: float = 1.0) -> None:
        self.width = width  # seconds an interval covers: 1, doubled as the run goes on
        self.origin: float | None = None  # the clock reading interval 0 starts at
        self.points: dict[int, Point] = {}
        self._index, self._point = -1, Point()  # the interval written last (most requests)

    def record(self, ended: float, microseconds: float, failed: bool) -> None:
        """Count one request that ended at clock reading `ended` after `microseconds`."""
        origin = self.origin
        if origin is None:
            origin = self.origin = ended
        index = int((ended - origin) / self.width) if ended > origin else 0
        if index == self._index:
            point = self._point
        else:
            while index >= MAX_POINTS:
                self._coarsen()
                index //= 2
            point = self.points.get(index) or self.points.setdefault(index, Point())
            self._index, self._point = index, point
        point.count += 1
        if failed:
            point.failed += 1
        point.buckets[int(math.log(microseconds if microseconds > 1 else 1.0)
                          * _BUCKETS_PER_E)] += 1

    def _coarsen(self) -> None:
        """Twice as wide intervals: each pair of neighbours becomes one."""
        merged: dict[int, Point] = {}
        for index, point in self.points.items():
            into = merged.setdefault(index // 2, Point())
            into.merge(point)
        self.points = merged
        self.width *= 2
        self._index = -1

    def merge(self, other: Timeline) -> None:
        """Add another process's timeline (same clock, as perf_counter is on one machine)."""
        if other.origin is None:
            return
        while self.width < other.width:
            self._coarsen()
        other = other.copy()
        while other.width < self.width:
            other._coarsen()
        assert other.origin is not None
        mine = other.origin if self.origin is None else self.origin
        origin = min(mine, other.origin)
        shift_self = int((mine - origin) / self.width)
        shift_other = int((other.origin - origin) / self.width)
        points: dict[int, Point] = {}
        for shift, source in ((shift_self, self.points), (shift_other, other.points)):
            for index, point in source.items():
                points.setdefault(index + shift, Point()).merge(point)
        self.points, self.origin, self._index = points, origin, -1
        while self.points and max(self.points) >= MAX_POINTS:
            self._coarsen()

    def copy(self) -> Timeline:
        """An independent copy."""
        return Timeline.from_data(self.as_data())

    def series(self) -> list[tuple[float, Point]]:
        """(seconds since the start, point) for every interval, empty ones included."""
        if not self.points:
            return []
        return [(index * self.width, self.points.get(index, Point()))
                for index in range(max(self.points) + 1)]

    def as_data(self) -> dict[str, Any]:
        """Plain, picklable data (a worker process sends its timeline this way)."""
        return {"width": self.width, "origin": self.origin,
                "points": {index: [p.count, p.failed, dict(p.buckets)]
                           for index, p in self.points.items()}}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Timeline:
        """The timeline `as_data` described."""
        timeline = cls(float(data["width"]))
        timeline.origin = None if data["origin"] is None else float(data["origin"])
        for index, (count, failed, buckets) in data["points"].items():
            timeline.points[int(index)] = Point(
                int(count), int(failed), Counter({int(k): int(v) for k, v in buckets.items()}))
        return timeline
