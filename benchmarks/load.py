"""Load throughput: unique callbacks/s delivered by `wasim load`, against baselines in one run.

Starts a minimal fast receiver (an asyncio server answering 200 to every request), then
measures, one after another on the same machine:
  - `wasim load` as fast as possible (every request a new, valid callback);
  - a plain httpx.AsyncClient loop posting one fixed body (what a hand-written script does);
  - wrk posting one fixed body, when wrk is installed (the ceiling: C, no payload work);
  - `wasim load` at a moderate open-loop rate, for its latency when the receiver is fast.
Prints each figure and the ratios.

    python benchmarks/load.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

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

HTTPX_LOOP = r'''
import asyncio, sys, time, httpx
url, seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
body = open(sys.argv[4], "rb").read()
async def main():
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        deadline = time.perf_counter() + seconds
        async def worker():
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.post(url, content=body,
                                             headers={"Content-Type": "application/json"})
                assert response.status_code == 200
                done += 1
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(done / (time.perf_counter() - started))
asyncio.run(main())
'''

WRK_POST = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' \
           'wrk.body = io.open("{body}"):read("*a")\n'


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wasim_load(url: str, *args: str) -> dict[str, object]:
    """Run `wasim load` in its own process; its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "load.json"
        subprocess.run([sys.executable, "-m", "simulator", "load", "--url", url, "--seed", "1",
                        "--report", str(report), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(report.read_text())


def main() -> None:
    """Measure each client against the same receiver and print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook"
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        body = subprocess.run([sys.executable, "-m", "simulator", "render", "--seed", "1"],
                              check=True, capture_output=True).stdout.rstrip(b"\n")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            handle.write(body)
        seconds, concurrency = f"{args.seconds:g}s", str(args.concurrency)

        flat_out = wasim_load(url, "--duration", seconds, "--concurrency", concurrency)
        wasim_rate = float(flat_out["rate_per_s"])  # type: ignore[arg-type]
        # httpx's pool does worse with many tasks than with one: the baseline gets its best.
        httpx_rates = {c: float(subprocess.run(
            [sys.executable, "-c", HTTPX_LOOP, url, str(args.seconds), c, handle.name],
            check=True, capture_output=True, text=True).stdout) for c in ("1", concurrency)}
        httpx_best = max(httpx_rates, key=lambda c: httpx_rates[c])
        httpx_rate = httpx_rates[httpx_best]
        wrk_rate = None
        if shutil.which("wrk"):
            script = Path(handle.name).with_suffix(".lua")
            script.write_text(WRK_POST.format(body=handle.name))
            out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}", "-s",
                                  str(script), url], check=True, capture_output=True,
                                 text=True).stdout
            match = re.search(r"Requests/sec:\s*([\d.]+)", out)
            wrk_rate = float(match.group(1)) if match else None
        paced = wasim_load(url, "--duration", seconds, "--rate", "2000", "--concurrency", "16")
        latency = paced["latency_ms"]
        assert isinstance(latency, dict)
    finally:
        receiver.terminate()
        receiver.wait()

    print(f"load benchmark: {args.seconds:g} s per client, {args.concurrency} connections, "
          f"against a minimal asyncio receiver on this machine")
    print(f"  wasim load (unique, valid callbacks)     {wasim_rate:>10,.0f} req/s "
          f"({int(flat_out['failed'])} failed)")  # type: ignore[call-overload]
    print(f"  httpx.AsyncClient loop (one fixed body)  {httpx_rate:>10,.0f} req/s "
          f"(best of 1 and {args.concurrency} tasks: "
          + ", ".join(f"{c} -> {r:,.0f}/s" for c, r in httpx_rates.items()) + ")")
    if wrk_rate is not None:
        print(f"  wrk (one fixed body)                     {wrk_rate:>10,.0f} req/s")
    else:
        print("  wrk                                      not installed (apt-get install wrk)")
    print(f"  ratio wasim load / httpx loop            {wasim_rate / httpx_rate:>10.1f}x")
    if wrk_rate:
        print(f"  ratio wasim load / wrk                   {wasim_rate / wrk_rate:>10.2f}x")
    print(f"  wasim load at 2,000 req/s: p50 {latency['p50']:.2f} ms, p95 {latency['p95']:.2f} "
          f"ms, p99 {latency['p99']:.2f} ms (receiver included)")


if __name__ == "__main__":
    main()
