"""Startup time: `wasim --help`, and `wasim tui` to its first interactive screen, with baselines.

Each figure is measured in fresh processes (best of --rounds), next to a baseline taken in
the same run, so the ratios hold on any machine:

  * `wasim --help` against `python -c pass` (the interpreter alone) and `import click`;
  * the TUI's first interactive screen (Textual's App.Ready, headless) against a bare Textual
    app with one line of text, and the phone ready (cast planned) after it.

Budgets (this project's machine): --help at most 0.3 s, first screen at most 1 s. The exit
code is 1 when a budget is exceeded.

    python benchmarks/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HELP_BUDGET = 0.3
SCREEN_BUDGET = 1.0

# A child that starts like `wasim tui`: the CLI module, the default scenario, make_app. It runs
# headless (no terminal needed) and prints the wall clock when the first screen is ready, and
# again when the phone's cast is planned, then quits.
_WASIM_TUI = """
import time, simulator.cli
from simulator.tui.session import default_scenario
from simulator.tui.app import make_app
app = make_app(scenario=default_scenario(), url="http://127.0.0.1:9/", history=None)
async def ready(pilot):
    print(time.time(), flush=True)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    print(time.time(), flush=True)
    pilot.app.exit()
app.run(headless=True, size=(100, 32), auto_pilot=ready)
"""

_BARE_TEXTUAL = """
import time
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("hello")
async def ready(pilot):
    print(time.time(), flush=True)
    pilot.app.exit()
Bare().run(headless=True, size=(100, 32), auto_pilot=ready)
"""


def wall(args: list[str]) -> float:
    """Seconds from spawning `args` to its exit."""
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def marks(code: str) -> list[float]:
    """Seconds from spawning a child running `code` to each time it prints."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return [float(line) - started for line in out.split()]


def best(samples: list[float]) -> str:
    """Best and median of samples, for printing."""
    return f"{min(samples):6.3f} s (median {statistics.median(samples):.3f})"


def main() -> int:
    """Measure, print figures and ratios, and check the budgets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per figure")
    args = parser.parse_args()
    py = sys.executable
    rows: dict[str, list[float]] = {name: [] for name in
                                     ("pass", "click", "help", "bare", "screen", "phone")}
    marks(_BARE_TEXTUAL)  # warm-up: the OS file cache, .pyc files
    for _ in range(args.rounds):  # alternate, so machine noise hits every side alike
        rows["pass"].append(wall([py, "-c", "pass"]))
        rows["click"].append(wall([py, "-c", "import click"]))
        rows["help"].append(wall([py, "-m", "simulator", "--help"]))
        rows["bare"].append(marks(_BARE_TEXTUAL)[0])
        screen, phone = marks(_WASIM_TUI)
        rows["screen"].append(screen)
        rows["phone"].append(phone)
    help_s, pass_s, click_s = min(rows["help"]), min(rows["pass"]), min(rows["click"])
    screen_s, bare_s, phone_s = min(rows["screen"]), min(rows["bare"]), min(rows["phone"])
    print(f"startup benchmark: best of {args.rounds} fresh processes")
    print(f"  python -c pass                      {best(rows['pass'])}")
    print(f"  python -c 'import click'            {best(rows['click'])}")
    print(f"  wasim --help                        {best(rows['help'])}"
          f"   {help_s / pass_s:5.1f}x pass, {help_s / click_s:4.1f}x click")
    print(f"  bare Textual app, first screen      {best(rows['bare'])}")
    print(f"  wasim tui, first screen             {best(rows['screen'])}"
          f"   {screen_s / bare_s:5.2f}x bare Textual")
    print(f"  wasim tui, phone ready (cast)       {best(rows['phone'])}"
          f"   {phone_s / bare_s:5.2f}x bare Textual")
    over = []
    if help_s > HELP_BUDGET:
        over.append(f"--help {help_s:.3f} s > {HELP_BUDGET} s")
    if screen_s > SCREEN_BUDGET:
        over.append(f"first screen {screen_s:.3f} s > {SCREEN_BUDGET} s")
    print("  budgets: " + ("; ".join(over) if over else
                           f"met (--help <= {HELP_BUDGET} s, first screen <= {SCREEN_BUDGET} s)"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
