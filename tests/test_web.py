"""`wasim tui --web` in a real headless browser (Playwright driving the system's Chromium).

The browser is installed by this file's fixture when it is missing and the suite runs as root
with apt-get (as CI does: `.ci/run` on a clean Debian machine); elsewhere the browser tests
are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from simulator.receiver import Receiver
from simulator.tui.web import local_page, served_args

CHROMIUM = "/usr/bin/chromium"
DEADLINE = 120.0  # seconds: generous, for a busy two-core machine; never a measurement


def _install_chromium() -> str | None:
    """Install Debian's chromium (as root with apt-get); None, or why it could not be."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"no browser at {CHROMIUM}, and it can only be installed as root with apt-get "
                "(run `apt-get install -y chromium`)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800,
                              check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"`{' '.join(command)}` failed: {last}"
    return None if Path(CHROMIUM).exists() else f"apt-get installed no {CHROMIUM}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a Chromium Playwright can drive: the system's, installed when missing."""
    pytest.importorskip("playwright.sync_api", reason="Playwright is in the test extra: "
                        "pip install -e '.[test]'")
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = _install_chromium()
    if why is not None:
        pytest.skip(why)
    return CHROMIUM


@pytest.fixture
def browser_page(chromium: str) -> Iterator[Any]:
    """A page of a fresh headless Chromium, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            # Containers often run as root with a small /dev/shm.
            args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            yield page
        finally:
            browser.close()


def wait_for(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll `check` until it returns something true; fail naming `what` after the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def children(pid: int) -> set[int]:
    """Every live descendant of `pid` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Served:
    """A `wasim ... --web` process, its stderr read on a thread, and the URL it serves."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", *args], cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CI": "true"},
            start_new_session=True)  # its own process group, as a terminal's foreground job
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def url(self) -> str:
        """The served page's address, once it is printed."""
        def printed() -> str | None:
            if self.process.poll() is not None:
                pytest.fail("the server exited: " + "".join(self.lines))
            for line in self.lines:
                match = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
                if match:
                    return match.group(1)
            return None
        url: str = wait_for(printed, "the served address")
        return url

    def stop(self) -> int:
        """Ctrl+C, as a person stops it: SIGINT to the whole process group; its exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def history_records(path: Path) -> list[dict[str, Any]]:
    """The history's attempt records (not the app's sent messages)."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "attempt" in r]


def test_a_key_or_a_click_in_the_browser_taps_and_the_history_records_it(
        browser_page: Any, receiver: Receiver, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    served = Served(["tui", "--web", "--web-port", "0", "--url", receiver.url,
                     "--history", str(history), "--seed", "7"], tmp_path)
    try:
        url = served.url()
        page = browser_page
        page.goto(url)
        assert page.title() == "wasim tui · summer-sale"  # the tab names the scenario
        # The app has drawn in the browser's terminal once it has sent its first screen.
        page.wait_for_selector("body.-first-byte", timeout=DEADLINE * 1000)
        page.click(".xterm-screen")
        wait_for(lambda: children(served.process.pid), "the app's process")

        def tapped() -> bool:
            if receiver.arrivals:
                return True
            page.keyboard.press("1")  # the first button, as on a terminal
            time.sleep(1.0)
            return bool(receiver.arrivals)

        wait_for(tapped, "a tap at the receiver")

        def recorded() -> bool:
            records = history_records(history)
            bodies = [json.dumps(json.loads(a.body)) for a in receiver.arrivals]
            # Every tap that arrived is in the history, and every delivered record arrived.
            return bool(records) and all(
                any(r["message_id"] in body for r in records) for body in bodies) and all(
                any(r["message_id"] in body for body in bodies)
                for r in records if r["status"] == 200)

        wait_for(recorded, "the history to hold the taps that arrived")
        # A click taps too: the footer's "1-9 Fire" (the screen's last row, at its left)
        # is the first button's key.
        keyed = len(receiver.arrivals)
        screen = page.locator(".xterm-screen").bounding_box()
        page.mouse.click(screen["x"] + 20, screen["y"] + screen["height"] - 6)
        wait_for(lambda: len(receiver.arrivals) > keyed, "a tap from a click")
        wait_for(recorded, "the history to hold the clicked tap")
        assert all(not a.problems for a in receiver.arrivals)
        app_processes = children(served.process.pid)
        assert app_processes
    finally:
        code = served.stop()
    assert code == 0, "".join(served.lines)
    # Ctrl+C stopped the app the browser was driving too.
    wait_for(lambda: not any(alive(pid) for pid in app_processes), "the app's process to end")


def test_the_demo_in_a_browser_taps_its_receiver_and_records_the_bots_replies(
        browser_page: Any, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    served = Served(["demo", "--web", "--web-port", "0", "--history", str(history),
                     "--seed", "11"], tmp_path)
    try:
        page = browser_page
        page.goto(served.url())
        assert page.title() == "wasim demo · summer-sale"
        page.wait_for_selector("body.-first-byte", timeout=DEADLINE * 1000)
        page.click(".xterm-screen")

        def delivered() -> bool:
            if any(r["status"] == 200 for r in history_records(history)):
                return True
            page.keyboard.press("1")
            time.sleep(1.0)
            return False

        wait_for(delivered, "a tap delivered to the demo's receiver")
    finally:
        code = served.stop()
    assert code == 0, "".join(served.lines)
    records = [json.loads(line) for line in history.read_text().splitlines()]
    # The demo's bot answered the tap through the send API; quitting recorded its replies.
    assert any("attempt" not in r for r in records), records


def test_the_served_command_repeats_every_option_given() -> None:
    @click.command("tui")
    @click.argument("scenario", required=False)
    @click.option("--url")
    @click.option("--speed", type=float, default=10.0)
    @click.option("--header", "headers", multiple=True)
    @click.option("--no-history", is_flag=True)
    @click.option("--verify/--no-verify", default=True)
    @click.option("--web", is_flag=True)
    @click.option("--web-port", type=int, default=8765)
    def command(**options: Any) -> None:
        """A command shaped as `wasim tui`."""

    ctx = command.make_context("wasim tui", [
        "--url", "http://127.0.0.1:9/", "--header", "A: 1", "--header", "B: 2",
        "--no-history", "--no-verify", "--web", "--web-port", "9000", "--", "-x.yaml"])
    assert served_args(ctx) == ["tui",
        "--url", "http://127.0.0.1:9/", "--header", "A: 1", "--header", "B: 2",
        "--no-history", "--no-verify", "--", "-x.yaml"]  # no --web, no defaults


@pytest.mark.parametrize("name, args", [
    ("tui", ["summer-sale", "--url", "http://127.0.0.1:9/hook", "--seed", "3", "--speed", "2.5",
             "--identity", "bsuid=90,username=10", "--history", "h.jsonl", "--api-port", "0",
             "--method", "put", "-H", "X-A: 1", "-H", "X-B: 2", "--basic-auth", "u:p",
             "--timeout", "3", "--success", "2xx", "--retries", "2", "--backoff", "0.5",
             "--envelope", "meta", "--app-secret", "s3cret", "--signature", "wrong-secret",
             "--allow-remote", "--web", "--web-port", "0"]),
    ("demo", ["--port", "0", "--seed", "4", "--no-history", "--speed", "3", "--api-port",
              "0", "--web"]),
])
def test_the_served_wasim_command_parses_to_the_same_options(
        name: str, args: list[str]) -> None:
    from simulator.cli import cli

    command = cli.commands[name]
    given = command.make_context(f"wasim {name}", list(args))
    served = served_args(given)
    assert served[0] == name and "--web" not in served and "--web-port" not in served
    again = command.make_context(f"wasim {name}", served[1:])
    expected = {**given.params, "web": False, "web_port": again.params["web_port"]}
    assert again.params == expected


def test_the_page_names_the_scenario_and_fetches_nothing_from_outside() -> None:
    page = ('<html>\n  <head>\n    <link\n      rel="stylesheet"\n      '
            'href="https://fonts.googleapis.com/css?family=Roboto%20Mono"\n    />\n'
            '</head></html>')
    local = local_page(page, "wasim demo · <sale>", "http://127.0.0.1:8765/")
    assert "<title>wasim demo · &lt;sale&gt;</title>" in local
    assert "googleapis" not in local
    assert "http://127.0.0.1:8765/static/fonts/" in local


def test_web_port_taken_uses_a_free_one_and_says_so(tmp_path: Path) -> None:
    import socket

    from simulator.tui.web import _listen

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        from click.testing import CliRunner

        seen: list[int] = []

        @click.command()
        def probe() -> None:
            sock = _listen(port, "wasim demo")
            seen.append(sock.getsockname()[1])
            sock.close()

        result = CliRunner().invoke(probe, [])
        assert result.exit_code == 0, result.output
        assert seen and seen[0] != port
        assert f"port {port} is taken; using {seen[0]}" in result.output
    finally:
        taken.close()


def test_demo_web_serves_its_page_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import httpx

    served = Served(["demo", "--web", "--web-port", "0", "--seed", "3", "--no-history"],
                    tmp_path)
    try:
        page = httpx.get(served.url(), timeout=DEADLINE).text
        assert "<title>wasim demo · summer-sale</title>" in page
        assert "https://" not in page  # nothing fetched from outside 127.0.0.1
    finally:
        code = served.stop()
    assert code == 0, "".join(served.lines)


def test_without_web_a_pipe_is_still_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "simulator", "demo", "--no-history"],
                          cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.PIPE,
                          timeout=DEADLINE, check=False,
                          env={k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"})
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr


def test_the_html_load_report_renders_offline_in_a_browser(
        browser_page: Any, receiver: Receiver, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    report = tmp_path / "load.html"
    results: list[Any] = []
    # On a thread of its own: Playwright's sync API keeps an event loop running on this one.
    load = threading.Thread(target=lambda: results.append(CliRunner().invoke(cli, [
        "load", "--url", receiver.url, "--count", "200", "--max-p99", "60000",
        "--report", str(report)])))
    load.start()
    load.join()
    assert results[0].exit_code == 0, results[0].output
    page = browser_page
    page.context.set_offline(True)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    assert asked == [report.as_uri()]  # nothing but the file itself
    for chart in ("rate", "latency", "histogram", "errors"):
        box = page.locator(f"#chart-{chart} svg").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, chart
    shot = page.screenshot(full_page=True)
    from io import BytesIO

    from PIL import Image  # matplotlib's own dependency (the `report` extra)

    image = Image.open(BytesIO(shot)).convert("L")
    low, high = image.getextrema()
    assert image.size[0] > 0 and high - low > 100  # drawn: dark lines on a light page


def test_web_without_textual_serve_is_one_line_naming_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # not installed
    result = CliRunner().invoke(cli, ["tui", "--web", "--web-port", "0", "--no-history"])
    assert result.exit_code == 2
    assert result.stderr == ("wasim: error: --web: serving to a browser needs textual-serve, "
                             "which is not installed. Install it: pip install 'wasim[web]'.\n")


def test_demo_web_and_headless_together_is_bad_input(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--web", "--headless", "--no-history"])
    assert result.exit_code == 2
    assert result.stderr.startswith("wasim: error: --web: --web and --headless ask for opposite")
