"""What the HTTP benchmarks share: free ports, an nginx to measure against, wrk's figures.

The scripts beside it (load.py, sendapi.py) import it by name: `python benchmarks/x.py`
puts this folder first on the path.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

NGINX_CONF = """worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 4096; }}
http {{
  {log};
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return {status} "{body}"; }}
  }}
}}
"""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    """Return once something accepts connections on `port`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing started on port {port}")


def nginx_binary() -> str | None:
    """nginx's path, or None when it is not installed."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                     else None)


def nginx(folder: Path, status: int, log: Path | None = None,
          body: str = "{}") -> tuple[subprocess.Popen[bytes], int] | None:
    """An nginx (one worker) answering `status` and `body` to everything on a free port,
    logging each request to `log` if given; None without nginx."""
    binary = nginx_binary()
    if binary is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(folder=folder, port=port, status=status, body=body,
                                      log=f"access_log {log}" if log else "access_log off"))
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, port


def wrk_figures(out: str) -> dict[str, float]:
    """wrk's requests/s, requests, non-2xx count, p50 and p99 (ms) from its --latency output."""
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    figures = {"rate": float(rate.group(1)) if rate else 0.0,
               "requests": float(total.group(1)) if total else 0.0,
               "bad": float(bad.group(1)) if bad else 0.0}
    for name, label in (("p50", "50%"), ("p99", "99%")):
        found = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", out)
        figures[name] = float(found.group(1)) * scale[found.group(2)] if found else float("nan")
    return figures


def run_wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, float]:
    """wrk -t1 against `url` with a Lua `script`, for `seconds`: its figures."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                          "-s", str(script), url], check=True, capture_output=True,
                         text=True).stdout
    return wrk_figures(out)
