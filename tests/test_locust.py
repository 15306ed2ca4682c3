"""Locust (`simulator.locust.WasimUser`): a master and workers send unique, valid callbacks.

Locust runs in subprocesses only: importing it monkey-patches the standard library with gevent,
which would change every other test in this process. Nothing here waits on the clock: each
run is bounded by a count of callbacks per process and awaited with generous timeouts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from simulator.load import CallbackSource
from simulator.receiver import Receiver, ReceiverOptions
from simulator.taps import TapOptions
from simulator.validate import validate_callback

# Not pytest.importorskip: that imports locust (and so gevent's patches) into this process.
if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed (pip install 'wasim[locust]')", allow_module_level=True)

ROOT = Path(__file__).parents[1]
LOCUSTFILE = ROOT / "scenarios" / "locustfile.py"
RUN_TIMEOUT = 300.0  # seconds: far past a run of a few hundred callbacks on a busy machine


def free_port() -> int:
    """A port nothing listens on now (the master binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def locust(args: Sequence[str], log: Path,
           locustfile: Path = LOCUSTFILE) -> subprocess.Popen[bytes]:
    """Start `python -m locust -f LOCUSTFILE ARGS` (the example by default), no terminal.

    Its log and tables (stderr) go to `log`, its standard output (--json) to `log`.out:
    apart, so that no log line can land inside the JSON.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with log.open("wb") as err, log.with_suffix(".out").open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(locustfile), *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=log.parent, env=env)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Locust processes started by a test, killed at its end whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def finished(process: subprocess.Popen[bytes], log: Path) -> int:
    """The process's exit code, once it has ended (its log in the failure if it does not)."""
    try:
        return process.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"locust still running after {RUN_TIMEOUT:g} s:\n{log.read_text()[-3000:]}")


def summary(log: Path) -> list[dict[str, Any]]:
    """Locust's final statistics, printed by --json as a list of entries."""
    return list(json.loads(log.with_suffix(".out").read_text()))


def message_ids(documents: list[dict[str, Any]]) -> list[str]:
    """The tapped message's id of each callback."""
    return [d["meta_object"]["value"]["messages"][0]["id"] for d in documents]


def expected_ids(seed: int, partition: int, count: int) -> set[str]:
    """The ids the first `count` callbacks of a partition carry (drawn from the seed alone)."""
    source = CallbackSource.from_taps(TapOptions(seed=seed, countries=("IN", "BR"),
                                                 wall_clock=True, partition=partition))
    return {source.next()[0].message_id for _ in range(count)}


def test_a_master_and_two_workers_send_unique_valid_callbacks_from_two_partitions(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    per_worker, seed, port = 60, 41, free_port()
    with Receiver(ReceiverOptions(port=0)) as receiver:
        master_log = tmp_path / "master.log"
        processes.append(locust(
            ["--master", "--headless", "--expect-workers", "2", "-u", "4", "-r", "100",
             "--host", receiver.url, "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--wasim-seed", str(seed),
             "--wasim-country", "IN,BR", "--wasim-count", str(per_worker), "--json"],
            master_log))
        for k in (1, 2):
            processes.append(locust(["--worker", "--master-host", "127.0.0.1",
                                     "--master-port", str(port)], tmp_path / f"worker{k}.log"))
        # Each worker quits after its count; the headless master ends with its last worker.
        assert finished(processes[0], master_log) == 0, master_log.read_text()[-3000:]
        arrivals = receiver.wait_for(2 * per_worker, timeout=RUN_TIMEOUT)
        assert receiver.received == 2 * per_worker
    documents = [json.loads(a.body) for a in arrivals]
    assert [problems for d in documents if (problems := validate_callback(d))] == []
    ids = message_ids(documents)
    assert len(set(ids)) == len(ids) == 2 * per_worker
    # Worker 0 drew partition 0 (the plain seed) and worker 1 partition 1: their own users
    # and ids, one business.
    assert set(ids) == expected_ids(seed, 0, per_worker) | expected_ids(seed, 1, per_worker)
    assert len({d["meta_object"]["value"]["metadata"]["display_phone_number"]
                for d in documents}) == 1
    # Locust's own figures, gathered by the master from both workers, agree.
    entries = summary(master_log)
    assert sum(e["num_requests"] for e in entries) == 2 * per_worker
    assert sum(e["num_failures"] for e in entries) == 0
    assert all(e["method"] == "POST" and e["name"].startswith("button_tap: ") for e in entries)


def test_a_worker_given_no_users_ends_and_the_headless_run_with_it(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    count, seed, port = 5, 43, free_port()
    locustfile = tmp_path / "patient.py"
    locustfile.write_text("from simulator.locust import WasimUser\n\n\n"
                          "class Patient(WasimUser):\n"
                          "    timeout = 300.0\n")
    idle_gone = threading.Event()
    # Answers wait until a worker has ended on its own: so the worker with the user cannot
    # finish (and hand its user back to the master) first, whatever the machine's speed.
    with Receiver(ReceiverOptions(port=0),
                  on_arrival=lambda arrival: idle_gone.wait(RUN_TIMEOUT)) as receiver:
        master_log = tmp_path / "master.log"
        # One user for two workers: one of them sends, the other is given nobody.
        processes.append(locust(
            ["--master", "--headless", "--expect-workers", "2", "-u", "1", "-r", "100",
             "--host", receiver.url, "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--wasim-seed", str(seed),
             "--wasim-count", str(count), "--json"], master_log, locustfile))
        logs = [tmp_path / f"worker{k}.log" for k in (1, 2)]
        workers = [locust(["--worker", "--master-host", "127.0.0.1", "--master-port",
                           str(port)], log, locustfile) for log in logs]
        processes.extend(workers)
        for _ in range(int(RUN_TIMEOUT * 20)):
            if any(worker.poll() is not None for worker in workers):
                break
            threading.Event().wait(0.05)
        idle_gone.set()
        [idle] = [log for worker, log in zip(workers, logs, strict=True)
                  if worker.poll() is not None]
        assert "no users on this worker" in idle.read_text()
        assert finished(processes[0], master_log) == 0, master_log.read_text()[-3000:]
        for worker, log in zip(workers, logs, strict=True):
            assert finished(worker, log) == 0, log.read_text()[-3000:]
        arrivals = receiver.wait_for(count, timeout=RUN_TIMEOUT)
        assert receiver.received == count
    ids = message_ids([json.loads(a.body) for a in arrivals])
    assert len(set(ids)) == count
    assert sum(e["num_requests"] for e in summary(master_log)) == count


def test_answers_outside_success_are_locust_failures(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    log = tmp_path / "local.log"
    with Receiver(ReceiverOptions(port=0, status=503)) as receiver:
        processes.append(locust(["--headless", "-u", "2", "-r", "100", "--host", receiver.url,
                                 "--wasim-seed", "5", "--wasim-count", "10", "--json"], log))
        assert finished(processes[0], log) == 1  # Locust's exit code when requests failed
        receiver.wait_for(10, timeout=RUN_TIMEOUT)
    entries = summary(log)
    assert sum(e["num_failures"] for e in entries) == sum(e["num_requests"] for e in entries) == 10
    assert all(e["name"].startswith("button_tap: ") for e in entries)
    assert "CallbackFailed('status 503')" in log.read_text()  # Locust's error report


class OneAnswerPerConnection(socketserver.BaseRequestHandler):
    """Answers one callback 200, then closes the connection without saying so beforehand
    (as a server's keep-alive timeout does while a paced user waits)."""

    bodies: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        """Read one request (headers, then Content-Length bytes), answer, hang up."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += self.request.recv(65536)
        self.bodies.append(body)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_a_connection_the_server_closed_while_the_user_waited_is_replaced_not_failed(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    locustfile = tmp_path / "paced.py"
    # The server hangs up right after each answer, and the user waits 0.3 s before the next
    # callback: the close is on this side long before the next request would use it.
    locustfile.write_text("from locust import constant\n"
                          "from simulator.locust import WasimUser\n\n\n"
                          "class Paced(WasimUser):\n"
                          "    wait_time = constant(0.3)\n")
    log = tmp_path / "paced.log"
    OneAnswerPerConnection.bodies = []
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), OneAnswerPerConnection) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            processes.append(locust(["--headless", "-u", "1", "-r", "10", "--host", host,
                                     "--wasim-seed", "3", "--wasim-count", "4", "--json"],
                                    log, locustfile))
            assert finished(processes[0], log) == 0, log.read_text()[-3000:]
        finally:
            server.shutdown()
    entries = summary(log)
    assert sum(e["num_requests"] for e in entries) == 4
    assert sum(e["num_failures"] for e in entries) == 0
    assert len(set(OneAnswerPerConnection.bodies)) == 4


def test_a_host_that_is_not_this_machine_is_refused_before_anything_is_sent(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    log = tmp_path / "remote.log"
    # 192.0.2.1 is TEST-NET-1: an address literal, refused without a lookup or a packet.
    processes.append(locust(["--headless", "-u", "1", "--host", "http://192.0.2.1/webhook",
                             "--wasim-count", "1"], log))
    assert finished(processes[0], log) == 2
    text = log.read_text()
    assert "refusing to send callbacks to 192.0.2.1, which is not this machine" in text
    assert "--allow-remote" in text or "--wasim-allow-remote" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(("mode", "failures"), [("every", {}), ("drop10", {"missing reply": 3}),
                                                ("twice", {"duplicate reply": 30})])
def test_replies_are_matched_and_reported_as_locust_requests(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch, mode: str, failures: dict[str, int]) -> None:
    from simulator.sendapi import DEFAULT_API_KEY, DEFAULT_SID
    from tests.apps.load_replier import LoadReplier

    port, log = free_port(), tmp_path / "replies.log"
    # The app runs here and replies to the send API that the Locust process starts.
    monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KALEYRA_SID", DEFAULT_SID)
    monkeypatch.setenv("KALEYRA_API_KEY", DEFAULT_API_KEY)
    with LoadReplier(mode) as app:
        processes.append(locust(["--headless", "-u", "2", "-r", "100", "--host", app.url,
                                 "--wasim-seed", "5", "--wasim-count", "30", "--json",
                                 "--wasim-replies", "--wasim-api-port", str(port)], log))
        code = finished(processes[0], log)
    entries = summary(log)
    (reply,) = [e for e in entries if e["method"] == "REPLY"]
    taps = [e for e in entries if e["method"] == "POST"]
    matched = 30 - failures.get("missing reply", 0)
    assert reply["num_requests"] - reply["num_failures"] == matched, log.read_text()[-3000:]
    assert reply["num_failures"] == sum(failures.values())
    assert code == (1 if failures else 0)
    for what in failures:
        assert f"CallbackFailed('{what}')" in log.read_text()
    assert sum(e["num_requests"] for e in taps) == 30
    assert sum(e["num_failures"] for e in taps) == 0
