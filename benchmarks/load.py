"""Load throughput and latency: `wasim load` against wrk, at one target, in one run.

The target is nginx when it is installed (a temporary config on a free loopback port, one
worker process, no access log, `return 200`), else a minimal asyncio receiver. Measured one
after another on the same machine:
  - wrk posting one fixed body at 8 and 64 connections (the ceiling: C, no payload work), and
    with one connection (the target's own answer time plus loopback, for the added latency);
  - `wasim load` as fast as possible with 1 worker and with N (the cores), 8 and 64
    connections: unique, valid callbacks per second and the ratio to wrk;
  - `wasim load` at a steady 2,000/s and 5,000/s: its p99, and the p99 it adds over wrk's
    one-connection p99 (so: over the target's own answer time).
Prints the machine's load before and after: the machine may be shared.

    python benchmarks/load.py [--seconds 5]
    python benchmarks/load.py --soak 600 [--rate 5000] [--every 30]   # memory over time
    python benchmarks/load.py --soak 120 --rate 0   # as many requests, as fast as possible

The soak prints each process's RSS (main, worker k, multiprocessing's resource tracker) at
every reading, and the growth from the first reading to the last, in MB and per million
requests: flat memory is a growth per million requests near zero. With --trace it runs what
one worker runs in its own process instead, and prints what the run allocated after the first
reading and still holds at the end, by where it was allocated:

    python benchmarks/load.py --soak 60 --rate 0 --every 10 --trace
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import free_port, nginx, run_wrk, wait_for_port

RECEIVER = r'''
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            size = int(head[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
            if len(buffer) < end + 4 + size:
                break
            buffer = buffer[end + 4 + size:]
            self.transport.write(ANSWER)
        self.buffer = buffer
async def main():
    server = await asyncio.get_running_loop().create_server(
        Answer, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
'''

WRK_POST = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' \
           'wrk.body = io.open("{body}"):read("*a")\n'


def start_target(folder: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """nginx when installed, else the asyncio receiver: the process, its URL and its name."""
    started = nginx(folder, 200, body="ok")
    if started is not None:
        return started[0], f"http://127.0.0.1:{started[1]}/webhook", \
            "nginx (1 worker process, return 200)"
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)],
                               stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}/webhook", \
        "a minimal asyncio receiver (nginx is not installed)"


def wasim_load(url: str, *args: str) -> dict[str, Any]:
    """Run `wasim load` in its own process; its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "load.json"
        subprocess.run([sys.executable, "-m", "simulator", "load", "--url", url, "--seed", "1",
                        "--report", str(report), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures: dict[str, Any] = json.loads(report.read_text())
        return figures


def wrk(url: str, connections: int, seconds: float, body: Path) -> dict[str, float] | None:
    """wrk's requests/s, p50 and p99 (ms) posting `body`, or None without wrk."""
    if not shutil.which("wrk"):
        return None
    script = body.with_suffix(".lua")
    script.write_text(WRK_POST.format(body=body))
    return run_wrk(url, connections, seconds, script)


def machine() -> str:
    """How busy the machine is: cores and load averages."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min), {five:.2f} (5 min)"


def _status(pid: int) -> dict[str, float]:
    """`pid`'s resident memory in MB from /proc: RSS and its anonymous (heap) part."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = {name: re.search(rf"{name}:\s+(\d+) kB", text) for name in ("VmRSS", "RssAnon")}
    return {name: int(match.group(1)) / 1024 if match else 0.0
            for name, match in found.items()}


def processes(pid: int) -> dict[str, int]:
    """`pid` and its descendants by role: "main", "worker 0".., "tracker" (Linux /proc).

    Workers are numbered in the order they started (their pids rise); multiprocessing's
    resource tracker is a child too, and is named apart so its flat line is not a worker's.
    """
    found: dict[str, int] = {"main": pid}
    children: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            listed = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        children += [int(child) for child in listed]
        pending += [int(child) for child in listed]
    workers = 0
    for child in sorted(children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in command:
            found["tracker"] = child
        else:
            found[f"worker {workers}"] = child
            workers += 1
    return found


def rss_by_process(pid: int) -> dict[str, dict[str, float]]:
    """Resident memory (MB, RSS and its anonymous part) of `pid` and each descendant."""
    figures = {}
    for role, current in processes(pid).items():
        try:
            figures[role] = _status(current)
        except OSError:  # it ended between listing and reading
            continue
    return figures


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB (Linux /proc)."""
    return sum(figures["VmRSS"] for figures in rss_by_process(pid).values())


class SentCounter:
    """The latest request count `wasim load` printed on stderr (a line every 5 s in a log)."""

    def __init__(self, stream: Any) -> None:
        self.sent = 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:  # read to the end, so the run never blocks on a full pipe
            found = re.search(rb"sent ([\d,]+)", line)
            if found:
                self.sent = int(found.group(1).replace(b",", b""))


def soak(url: str, seconds: float, rate: float | None, every: float, workers: int,
         connections: int = 64) -> None:
    """Run `wasim load` at `rate` (None: as fast as possible) for `seconds`, printing each
    process's memory every `every` seconds and the growth from the first reading to the last.

    The first reading is taken after `every` seconds, once the pools, caches and histograms
    have filled; growth after it, per million requests, is what a longer run would add.
    """
    pace = f"{rate:g}/s" if rate else "as fast as possible"
    print(f"soak: {pace} for {seconds:g} s, {workers} worker(s), {connections} connections; "
          f"{machine()}")
    readings: list[tuple[float, int, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "soak.json"
        command = [sys.executable, "-m", "simulator", "load", "--url", url, "--seed", "1",
                   "--duration", f"{seconds:g}s", "--workers", str(workers),
                   "--concurrency", str(connections), "--report", str(report)]
        if rate:
            command += ["--rate", f"{rate:g}"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        counter = SentCounter(process.stderr)
        started = time.monotonic()
        due = every
        while process.poll() is None:
            time.sleep(max(0.0, min(1.0, due - (time.monotonic() - started))))
            elapsed = time.monotonic() - started
            if elapsed < due or process.poll() is not None:
                continue
            due += every
            figures = rss_by_process(process.pid)
            readings.append((elapsed, counter.sent, figures))
            if len(readings) == 1:
                print("  " + f"{'time':>6}  {'sent':>11}  " + "  ".join(
                    f"{role:>9}" for role in figures) + f"  {'all':>7}   (RSS, MB)")
            print(f"  {elapsed:5.0f}s  {counter.sent:>11,}  " + "  ".join(
                f"{part['VmRSS']:9.1f}" for part in figures.values())
                + f"  {sum(part['VmRSS'] for part in figures.values()):7.1f}", flush=True)
        counter.thread.join(timeout=5)
        figures_out = json.loads(report.read_text()) if report.exists() else {}
    print(f"  done: {figures_out.get('sent', 0):,} sent, "
          f"{figures_out.get('rate_per_s', 0):,.0f}/s, "
          f"p99 {figures_out.get('latency_ms', {}).get('p99') or 0:.2f} ms; {machine()}")
    if len(readings) >= 2:
        print(growth(readings))


def growth(readings: list[tuple[float, int, dict[str, dict[str, float]]]]) -> str:
    """The memory each process gained from the first reading to the last: in MB, and in MB
    per million requests sent between them (RSS, and its anonymous part: the heap)."""
    (first_at, first_sent, first), (last_at, last_sent, last) = readings[0], readings[-1]
    requests = last_sent - first_sent
    lines = [f"  growth from {first_at:.0f} s to {last_at:.0f} s ({requests:,} requests):"]
    for role in [*first, "all"]:
        if role == "all":
            before = {name: sum(p[name] for p in first.values()) for name in ("VmRSS", "RssAnon")}
            after = {name: sum(p[name] for p in last.values()) for name in ("VmRSS", "RssAnon")}
        elif role in last:
            before, after = first[role], last[role]
        else:
            continue
        rss, anon = after["VmRSS"] - before["VmRSS"], after["RssAnon"] - before["RssAnon"]
        per = f"{rss / requests * 1e6:+.2f} MB per million requests" if requests \
            else "no requests counted"
        lines.append(f"    {role:>9}: RSS {before['VmRSS']:.1f} -> {after['VmRSS']:.1f} MB, "
                     f"{rss:+.2f} MB ({per}; heap {anon:+.2f} MB)")
    return "\n".join(lines)


def trace(url: str, seconds: float, rate: float | None, every: float,
          connections: int = 64) -> None:
    """One worker's run (run_load, in this process) with tracemalloc on from the first reading
    to the end: what was allocated after it and is still alive, by where, per request.

    Tracing slows the run several times (it may fall behind a rate); what it finds alive is
    what the run keeps, whatever the pace. Starting after the first reading leaves out the
    pool, the imports and the histograms' first buckets: only growth is traced.
    """
    import gc
    import tracemalloc

    from simulator.delivery import delivery_options_from
    from simulator.load import LoadOptions, LoadStats, SourceSpec, run_fast, run_load
    from simulator.settings import flag_of
    from simulator.taps import TapOptions

    pace = f"{rate:g}/s" if rate else "as fast as possible"
    print(f"trace: one worker's run in this process, {pace} for {seconds:g} s, {connections} "
          f"connections, allocations traced from the first reading on; {machine()}")
    print(f"  {'time':>6}  {'sent':>11}  {'RSS MB':>7}  {'heap MB':>7}  {'py blocks':>10}  "
          f"{'traced KB':>9}")
    source = SourceSpec(taps=TapOptions(seed=1)).build(0)
    delivery = delivery_options_from({"url": url}, flag_of)
    first: list[int] = []
    due = [every]

    def reading(stats: LoadStats) -> None:
        if stats.elapsed < due[0]:
            return
        due[0] += every
        figures = _status(os.getpid())
        traced = tracemalloc.get_traced_memory()[0] / 1024 if tracemalloc.is_tracing() else 0
        print(f"  {stats.elapsed:5.0f}s  {stats.sent:>11,}  {figures['VmRSS']:7.1f}  "
              f"{figures['RssAnon']:7.1f}  {sys.getallocatedblocks():>10,}  {traced:9.0f}",
              flush=True)
        if not first:
            first.append(stats.sent)
            tracemalloc.start(8)

    stats = run_fast(run_load(source, delivery, LoadOptions(
        rate=rate, duration=seconds, concurrency=connections), on_tick=reading))
    if not first:
        print("  no reading: make --every shorter than the run")
        return
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    tracemalloc.stop()
    gc.collect()
    requests = stats.sent - first[0]
    alive = sum(trace.size for trace in snapshot.traces)
    print(f"  done: {stats.sent:,} sent, {stats.rate:,.0f}/s, {stats.failed:,} failed")
    print(f"  allocated after the first reading and alive at the end: {alive / 1024:,.0f} KB "
          f"in {len(snapshot.traces):,} blocks over {requests:,} requests "
          f"({alive / max(requests, 1):.2f} bytes per request); the largest, by where:")
    for statistic in snapshot.statistics("traceback")[:6]:
        frames = [f"{Path(frame.filename).name}:{frame.lineno}"
                  for frame in statistic.traceback][-3:]
        print(f"    {statistic.size / 1024:8.1f} KB in {statistic.count:>6,} blocks  "
              + " <- ".join(reversed(frames)))


def main() -> None:
    """Measure wrk and `wasim load` against the same target and print figures and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="N for the N-worker runs  [default: the cores]")
    parser.add_argument("--soak", type=float, metavar="SECONDS",
                        help="only a soak run this long, printing memory as it goes")
    parser.add_argument("--rate", type=float, default=5000.0,
                        help="the soak's rate; 0: as fast as possible (the same requests sooner)")
    parser.add_argument("--connections", type=int, default=64, help="the soak's connections")
    parser.add_argument("--every", type=float, default=30.0, help="the soak's print interval")
    parser.add_argument("--trace", action="store_true",
                        help="with --soak: one worker's run in this process, tracing what it "
                             "keeps (tracemalloc from the first reading on)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        target, url, name = start_target(Path(folder))
        try:
            if args.soak:
                print(f"target: {name}")
                if args.trace:
                    trace(url, args.soak, args.rate or None, args.every, args.connections)
                else:
                    soak(url, args.soak, args.rate or None, args.every, args.workers,
                         args.connections)
                return
            measure(url, name, args.seconds, args.workers, Path(folder))
        finally:
            target.terminate()
            target.wait()


def measure(url: str, name: str, seconds: float, workers: int, folder: Path) -> None:
    """The throughput and latency runs, printed as they finish."""
    body = folder / "body.json"
    body.write_bytes(subprocess.run([sys.executable, "-m", "simulator", "render", "--seed", "1"],
                                    check=True, capture_output=True).stdout.rstrip(b"\n"))
    print(f"load benchmark: {seconds:g} s a run, target {name}")
    print(f"  before: {machine()}")
    span = f"{seconds:g}s"
    print("  as fast as possible (wasim: unique, valid callbacks; wrk: one fixed body)")
    for connections in (8, 64):
        ceiling = wrk(url, connections, seconds, body)
        line = f"    {connections:>2} connections: "
        line += f"wrk {ceiling['rate']:>9,.0f}/s" if ceiling else "wrk not installed"
        for count in sorted({1, workers}):
            figures = wasim_load(url, "--duration", span, "--concurrency", str(connections),
                                 "--workers", str(count))
            rate = float(figures["rate_per_s"])
            ratio = f" ({rate / ceiling['rate']:.2f}x wrk)" if ceiling and ceiling["rate"] else ""
            line += f" | wasim {count} worker{'s' if count > 1 else ''} {rate:>8,.0f}/s{ratio}"
            if figures["failed"]:
                line += f" [{figures['failed']} failed]"
        print(line, flush=True)
    own = wrk(url, 1, seconds, body)
    baseline = own["p99"] if own else None
    typical = own["p50"] if own else None
    print("  steady rate, 64 connections: wasim's p99 and what it adds over the target's own "
          "answer time, taken as wrk's with 1 connection: over its p99"
          + (f" ({baseline:.3f} ms) and, stricter, over its p50 ({typical:.3f} ms)"
             if own else " (wrk not installed)"))
    for rate in (2000, 5000):
        for count in sorted({1, workers}):
            figures = wasim_load(url, "--duration", span, "--rate", str(rate), "--concurrency",
                                 "64", "--workers", str(count))
            latency, lag = figures["latency_ms"], figures["schedule_lag_ms"]
            added = f"added p99 {latency['p99'] - baseline:.2f} ms (stricter: " \
                f"{latency['p99'] - typical:.2f} ms)" if baseline is not None \
                and typical is not None else "added p99 unknown"
            print(f"    {rate:>5,}/s, {count} worker{'s' if count > 1 else ''}: "
                  f"sent {figures['rate_per_s']:,.0f}/s, p50 {latency['p50']:.2f} ms, p99 "
                  f"{latency['p99']:.2f} ms, {added}; wasim's schedule lag p99 "
                  f"{(lag['p99'] or 0):.2f} ms, loop lag p99 "
                  f"{(figures['loop_lag_ms']['p99'] or 0):.2f} ms"
                  + (f"; {figures['verdict']}" if figures["verdict"] else ""), flush=True)
    print(f"  after: {machine()}")


if __name__ == "__main__":
    main()
