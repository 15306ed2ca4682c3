"""HTML reports of `wasim load` and `wasim run`: self-contained, with charts and thresholds,
and the per-interval timeline under them, bounded in memory."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.receiver import Receiver, ReceiverOptions
from simulator.timeline import MAX_POINTS, Timeline

SCENARIO = """\
name: small-sale
seed: 5
template:
  buttons: [Shop now, Stop promotions]
cast:
  countries: {IN: 12}
steps:
  - name: wave
    spread: 10s
expect:
  status: [200]
"""


class References(HTMLParser):
    """Every address the page would load: src/href attributes, url() in styles, tags."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.tags: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.svgs += tag == "svg"
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster"):
                self.addresses.append(value)
            if name == "style":
                self.addresses.extend(re.findall(r"url\(([^)]*)\)", value))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1] == "style":
            self.addresses.extend(re.findall(r"url\(([^)]*)\)", data))
            self.addresses.extend(re.findall(r"@import\s+([^;]+)", data))


def references(page: str) -> References:
    """The page parsed for what it would fetch."""
    parser = References()
    parser.feed(page)
    return parser


def external(address: str) -> bool:
    """Whether loading `address` would leave the file (network or another file)."""
    address = address.strip().strip("'\"").lower()
    return address.startswith(("http:", "https:", "//", "file:", "ftp:")) or (
        not address.startswith(("#", "data:")) and bool(address))


def test_load_html_report_is_self_contained_with_charts_and_thresholds(
        tmp_path: Path) -> None:
    report = tmp_path / "out" / "load.html"
    with Receiver(ReceiverOptions(port=0, fail_rate=0.3, seed=2)) as flaky:
        result = CliRunner().invoke(cli, [
            "load", "--url", flaky.url, "--count", "300", "-c", "4", "--seed", "9", "-w", "2",
            "--max-error-rate", "0.05", "--max-p99", "60000", "--report", str(report)])
    assert result.exit_code == 1, result.output  # the error rate threshold broke
    page = report.read_text(encoding="utf-8")
    parsed = references(page)
    assert [a for a in parsed.addresses if external(a)] == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    assert parsed.svgs == 4
    for chart in ("rate", "latency", "histogram", "errors"):
        assert f'id="chart-{chart}"' in page
    assert "Requests per second" in page  # chart titles are paths; the alt text is not
    # The thresholds, and which held.
    assert re.search(r"p99 latency \(--max-p99\)</td><td>60000 ms</td><td>[\d.]+ ms</td>"
                     r'<td class="held">held</td>', page)
    assert re.search(r"error rate \(--max-error-rate\)</td><td>5.00%</td><td>[\d.]+%</td>"
                     r'<td class="broken">BROKEN</td>', page)
    assert "<td>HTTP 500</td>" in page  # errors by kind
    assert "<td>seed</td><td>9</td>" in page  # the run's settings
    assert "<td>sent</td><td>300</td>" in page


def test_load_html_report_says_every_threshold_held(tmp_path: Path, receiver: Receiver) -> None:
    report = tmp_path / "load.htm"
    result = CliRunner().invoke(cli, ["load", "--url", receiver.url, "--count", "50",
                                      "--max-error-rate", "0", "--report", str(report)])
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert "Every threshold set held." in page and "BROKEN" not in page
    assert "<p>No errors.</p>" in page
    assert "<td>--max-p99" not in page and "<td>-</td><td>" in page  # p99: no limit set


def test_run_html_report_has_the_timeline_and_the_expectations(tmp_path: Path) -> None:
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "run.html"
    with Receiver(ReceiverOptions(port=0, status=202)) as receiver:
        result = CliRunner().invoke(cli, ["run", str(scenario), "--url", receiver.url,
                                          "--fast", "--no-history", "--report", str(report)])
    assert result.exit_code == 1, result.output  # status 202, expected 200
    page = report.read_text(encoding="utf-8")
    parsed = references(page)
    assert [a for a in parsed.addresses if external(a)] == [] and parsed.svgs == 4
    assert "<title>wasim run: small-sale</title>" in page
    assert '<td>expectation status</td><td>no failure</td><td>12 failed</td>' \
           '<td class="broken">BROKEN</td>' in page
    assert "<td>every send delivered</td>" in page


def test_outside_text_is_escaped(tmp_path: Path) -> None:
    from simulator.html_report import ReportData, render

    page = render(ReportData(
        title="<script>x</script>", timeline=Timeline(), latency_buckets={},
        buckets_per_e=100, errors={"$\\frac{1}{0}$ <b>\x1b[31m": 3},
        settings=[("target", "http://127.0.0.1:1/<img src=x>")]))
    assert "<script>" not in page and "<img" not in page
    assert "\x1b" not in page and "\\x1b[31m" in page
    assert references(page).svgs == 4


def test_a_missing_plotting_library_is_one_line_before_anything_is_sent(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    result = CliRunner().invoke(cli, ["load", "--url", receiver.url, "--count", "5",
                                      "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "pip install 'wasim[report]'" in result.stderr and "--report" in result.stderr
    assert receiver.arrivals == []
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SCENARIO)
    run = CliRunner().invoke(cli, ["run", str(scenario), "--url", receiver.url, "--fast",
                                   "--no-history", "--report", str(tmp_path / "r.html")])
    assert run.exit_code == 2 and "pip install 'wasim[report]'" in run.stderr
    assert receiver.arrivals == []


def test_the_timeline_stays_bounded_and_keeps_every_request() -> None:
    timeline = Timeline()
    for second in range(10 * MAX_POINTS):  # ten times the points it keeps, one a second
        timeline.record(1000.0 + second + 0.5, 2000.0, failed=second % 10 == 0)
    assert len(timeline.points) <= MAX_POINTS
    assert timeline.width == 16.0  # 6,000 seconds: 1 -> 2 -> 4 -> 8 -> 16 s a point
    series = timeline.series()
    assert sum(p.count for _, p in series) == 10 * MAX_POINTS
    assert sum(p.failed for _, p in series) == MAX_POINTS
    assert all(p.percentile(50) == pytest.approx(2.0, rel=0.05) for _, p in series if p.count)


def test_timelines_of_workers_merge_on_one_clock() -> None:
    first, second = Timeline(), Timeline()
    for i in range(10):
        first.record(100.0 + i, 1000.0, failed=False)
        second.record(103.0 + i, 3000.0, failed=True)  # started 3 s later
    first.merge(second)
    counts = {t: (p.count, p.failed) for t, p in first.series()}
    assert counts[0.0] == (1, 0) and counts[3.0] == (2, 1) and counts[12.0] == (1, 1)
    assert sum(c for c, _ in counts.values()) == 20
    wide = Timeline()
    for i in range(3 * MAX_POINTS):
        wide.record(100.0 + i, 1000.0, failed=False)
    first.merge(wide)  # a coarser timeline: the merge takes its width
    assert first.width == wide.width and len(first.points) <= MAX_POINTS
    assert sum(p.count for p in first.points.values()) == 20 + 3 * MAX_POINTS
    again = Timeline.from_data(first.as_data())
    assert again.series() == first.series()


def test_load_stats_carry_the_timeline_between_processes_only_at_the_end() -> None:
    from simulator.load import LoadStats

    stats = LoadStats()
    stats.timeline.record(5.0, 1500.0, failed=True)
    assert LoadStats.from_data(stats.as_data()).timeline.series() == stats.timeline.series()
    assert LoadStats.from_data(stats.as_data(timeline=False)).timeline.points == {}


def test_a_load_without_an_html_report_keeps_no_timeline(receiver: Receiver) -> None:
    import asyncio

    from simulator.delivery import DeliveryOptions, url_target
    from simulator.load import CallbackSource, LoadOptions, run_load
    from simulator.taps import TapOptions

    def run(timeline: bool) -> int:
        source = CallbackSource.from_taps(TapOptions(seed=1))
        stats = asyncio.run(run_load(source, DeliveryOptions(target=url_target(receiver.url)),
                                     LoadOptions(count=20, duration=None, concurrency=2,
                                                 timeline=timeline)))
        return sum(p.count for p in stats.timeline.points.values())

    assert run(False) == 0
    assert run(True) == 20
