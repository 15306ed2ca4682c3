"""The send API under load: `wasim api` against wrk posting a valid V2 text send, in one run.

Measured one after another on the same machine, with wrk (one thread) at 1 and 8
connections, each run `--seconds` long:
  - the baseline: nginx answering the same POST (`return 202`, one worker process, no access
    log): what wrk and the loopback cost on their own;
  - `wasim api` without --webhook: a send is parsed, checked, recorded and answered;
  - `wasim api --webhook` at a second nginx (which logs each status to count them): each
    send is also followed by sent, delivered and read status callbacks. Printed: the
    statuses delivered during the run and after a drain, against three per send.
Each `wasim api` runs in its own process with its output thrown away; its resident memory is
printed after each run. The issue's targets: 5,000 sends/s without statuses, 2,000 with
three statuses each, p99 under 5 ms.

    apt-get install -y wrk nginx
    python benchmarks/sendapi.py [--seconds 5]
    python benchmarks/sendapi.py --soak 600 [--every 30]   # memory over a long run

Without nginx the baseline is skipped (python -m http.server is far too slow to be one);
without wrk nothing can be measured and the script says so.
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
import time
from pathlib import Path
from typing import Any

from common import free_port, nginx, run_wrk, wait_for_port

SID = "HXIN2026000001IN"
KEY = "A0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BUSINESS = "918600853878"
SEND = {"messaging_object": {"messaging_product": "whatsapp", "recipient_type": "individual",
                             "to": "+919876543210", "type": "text",
                             "text": {"preview_url": "false", "body": "Your order shipped."}},
        "extra_info": {"ref": "order-1", "ref1": "", "ref2": "", "wa_source": "api"}}

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["api-key"] = "{key}"
wrk.body = io.open("{body}"):read("*a")
"""


def wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, float]:
    """wrk's requests/s, p50 and p99 (ms) and non-2xx count posting the script's body."""
    return run_wrk(url, connections, seconds, script)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time `pid` and its children (nginx's worker) used so far."""
    pids = [pid] + [int(child) for child in
                    Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = 0
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(url: str, connections: int, seconds: float, script: Path,
             pid: int) -> dict[str, float]:
    """wrk's figures, and the CPU the server `pid` spent per request (microseconds): on a
    shared machine, throughput moves with the neighbours; CPU per request much less."""
    before = cpu_seconds(pid)
    figures = wrk(url, connections, seconds, script)
    spent = cpu_seconds(pid) - before
    figures["cpu_us"] = spent / figures["requests"] * 1e6 if figures["requests"] else 0.0
    return figures


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MB (Linux /proc)."""
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def lines(path: Path) -> int:
    """Lines in `path` (the webhook's access log: one per status delivered)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def start_api(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    """`wasim api` on a free port in its own process, its output thrown away.

    Statuses are due at once (--status-delays 0s,0s,0s): the benchmark measures what the mock
    can send, not the realistic 1 s, 2 s, 5 s timeline, which would leave most statuses of a
    short run still waiting for their time."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "simulator", "api", "--port", str(port),
                                "--status-delays", "0s,0s,0s", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, port


def show(name: str, figures: dict[str, float], base: dict[str, float] | None,
         extra: str = "") -> None:
    """One line of figures, with the ratio to the baseline at the same connections."""
    ratio = f" ({figures['rate'] / base['rate']:.2f}x nginx)" if base and base["rate"] else ""
    bad = f" [{figures['bad']:,.0f} not 2xx]" if figures["bad"] else ""
    cpu = f", CPU {figures['cpu_us']:,.0f} us/send" if "cpu_us" in figures else ""
    print(f"    {name:<34} {figures['rate']:>8,.0f} sends/s{ratio}, p50 {figures['p50']:.2f} ms,"
          f" p99 {figures['p99']:.2f} ms{cpu}{bad}{extra}", flush=True)


def machine() -> str:
    """How busy the machine is: cores and load averages."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min), {five:.2f} (5 min)"


def soak(seconds: float, every: float, folder: Path, script: Path, path: str) -> None:
    """`wasim api --webhook` (at nginx) under wrk for `seconds`: its RSS every `every` s."""
    webhook = nginx(folder / "soak", 200)
    if webhook is None:
        raise SystemExit("the soak needs nginx as the webhook: apt-get install -y nginx")
    api, port = start_api("--webhook", f"http://127.0.0.1:{webhook[1]}/webhook")
    print(f"soak: wasim api --webhook under wrk (8 connections) for {seconds:g} s; {machine()}")
    load = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{seconds:g}s", "-s", str(script),
                             f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE,
                            text=True)
    started = time.monotonic()
    readings = []
    try:
        while load.poll() is None:
            time.sleep(min(every, max(0.1, seconds - (time.monotonic() - started))))
            if load.poll() is not None:
                break
            readings.append(rss_mb(api.pid))
            print(f"  {time.monotonic() - started:5.0f}s  RSS {readings[-1]:6.1f} MB",
                  flush=True)
        out = load.communicate()[0]
        rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
        print(f"  done: {float(rate.group(1)) if rate else 0:,.0f} sends/s; RSS from the first "
              f"reading to the last: {readings[0] if readings else 0:.1f} -> "
              f"{readings[-1] if readings else 0:.1f} MB (bounded: the last 10,000 messages "
              "and statuses are kept)")
    finally:
        for process in (api, webhook[0]):
            process.terminate()
            process.wait()


def main() -> None:
    """Measure nginx, `wasim api` and `wasim api --webhook` with wrk; print them side by side."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds to wait, after a --webhook run, for its statuses")
    parser.add_argument("--paced-delay", type=float, default=3.0, metavar="MS",
                        help="the paced run's wait before each send, per connection")
    parser.add_argument("--soak", type=float, metavar="SECONDS",
                        help="only a soak: `wasim api --webhook` under wrk, RSS as it goes")
    parser.add_argument("--every", type=float, default=10.0, help="the soak's print interval")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print(f"send API benchmark: {args.seconds:g} s a run, wrk -t1 posting a V2 text send")
    print(f"  before: {machine()}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        body = folder / "send.json"
        body.write_text(json.dumps(SEND))
        script = folder / "send.lua"
        script.write_text(WRK_SCRIPT.format(key=KEY, body=body))
        path = f"/v2/{SID}/whatsapp/{BUSINESS}/messages"
        if args.soak:
            soak(args.soak, args.every, folder, script, path)
            return
        baseline = nginx(folder / "baseline", 202)
        log = folder / "webhook" / "access.log"
        webhook = nginx(folder / "webhook", 200, log)
        try:
            bases: dict[int, dict[str, float]] = {}
            if baseline is None:
                print("    nginx is not installed: no baseline (apt-get install -y nginx)")
            for connections in (1, 8):
                print(f"  {connections} connection{'s' if connections > 1 else ''}:")
                if baseline is not None:
                    bases[connections] = measured(f"http://127.0.0.1:{baseline[1]}{path}",
                                                  connections, args.seconds, script,
                                                  baseline[0].pid)
                    show("nginx (baseline)", bases[connections], None)
                api, port = start_api()
                try:
                    figures = measured(f"http://127.0.0.1:{port}{path}", connections,
                                       args.seconds, script, api.pid)
                    show("wasim api", figures, bases.get(connections),
                         f", RSS {rss_mb(api.pid):.0f} MB")
                    results[f"api_c{connections}"] = figures
                finally:
                    api.terminate()
                    api.wait()
                if webhook is None:
                    continue
                before = lines(log)
                api, port = start_api("--webhook", f"http://127.0.0.1:{webhook[1]}/webhook")
                try:
                    figures = measured(f"http://127.0.0.1:{port}{path}", connections,
                                       args.seconds, script, api.pid)
                    during = lines(log) - before
                    expected = 3 * figures["requests"]
                    deadline = time.monotonic() + args.drain
                    while lines(log) - before < expected and time.monotonic() < deadline:
                        time.sleep(0.5)
                    after = lines(log) - before
                    show("wasim api --webhook (3 statuses)", figures, bases.get(connections),
                         f"; statuses {during / max(expected, 1):.0%} delivered during the "
                         f"run, {after / max(expected, 1):.0%} after the drain; RSS "
                         f"{rss_mb(api.pid):.0f} MB")
                    results[f"webhook_c{connections}"] = figures | {
                        "statuses_during": during, "statuses_after": after}
                finally:
                    api.terminate()
                    api.wait()
            if webhook is not None:
                # The second target: 2,000 sends/s, three statuses each. wrk paces
                # each of 8 connections with a delay before every request (wrk has no rate).
                paced = folder / "paced.lua"
                paced.write_text(script.read_text() + f"function delay() return "
                                 f"{args.paced_delay:g} end\n")
                print(f"  8 connections, each waiting {args.paced_delay:g} ms before a send:")
                before = lines(log)
                api, port = start_api("--webhook", f"http://127.0.0.1:{webhook[1]}/webhook")
                try:
                    figures = measured(f"http://127.0.0.1:{port}{path}", 8, args.seconds,
                                       paced, api.pid)
                    during = lines(log) - before
                    expected = 3 * figures["requests"]
                    deadline = time.monotonic() + args.drain
                    while lines(log) - before < expected and time.monotonic() < deadline:
                        time.sleep(0.5)
                    show("wasim api --webhook, paced", figures, None,
                         f"; statuses {during / max(expected, 1):.0%} delivered during the "
                         f"run, {(lines(log) - before) / max(expected, 1):.0%} after the "
                         f"drain; RSS {rss_mb(api.pid):.0f} MB")
                finally:
                    api.terminate()
                    api.wait()
        finally:
            for started in (baseline, webhook):
                if started is not None:
                    started[0].terminate()
                    started[0].wait()
    print(f"  after: {machine()}")
    print("  targets: >= 5,000 sends/s without statuses, >= 2,000 with three each, p99 < 5 ms")


if __name__ == "__main__":
    main()
