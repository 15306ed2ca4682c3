"""HTML reports of `wasim load` and `wasim run`: one self-contained file people look at.

Charts (requests a second, latency percentiles over time, the latency histogram, errors by
kind) are drawn by matplotlib as SVG and inlined, text as paths: the file needs no network,
no script, no font. matplotlib is the `report` extra; without it the command says so before
it sends anything. Every outside text (a target, error kinds, a scenario's name) is escaped,
its control characters made visible.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import WasimError
from simulator.timeline import Point, Timeline

INSTALL_HINT = "pip install 'wasim[report]'"
HTML_SUFFIXES = (".html", ".htm")
SHOWN_KINDS = 20  # bars of the errors chart; the table lists them all


def is_html(path: Path) -> bool:
    """Whether a --report name asks for an HTML report."""
    return path.suffix.lower() in HTML_SUFFIXES


def check_html_report(flag: str = "--report") -> None:
    """Fail before a run, not after it, when the plotting library is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise WasimError("an HTML report needs matplotlib, which is not installed",
                         where=flag, hint=f"{INSTALL_HINT}, or name the report .json.") from None


@dataclass
class ReportData:
    """What an HTML report shows, as plain values (load and run fill it)."""

    title: str
    timeline: Timeline
    latency_buckets: dict[int, int]  # log-scale bucket -> count
    buckets_per_e: int  # buckets per factor e of latency (the histogram's resolution)
    errors: dict[str, int]  # kind of failure -> how many
    # (what, limit, actual, held): held None when no limit was set
    thresholds: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)


def visible(text: object) -> str:
    """`text` for the page: control characters as escapes, then HTML-escaped."""
    shown = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
    return html.escape(shown)


def _svg(figure: Any, name: str) -> str:
    """The figure as an inline <svg> element (no XML prologue, no metadata)."""
    import matplotlib

    buffer = io.StringIO()
    # A salt per chart: the ids of clip paths must differ between the SVGs of one page.
    with matplotlib.rc_context({"svg.hashsalt": f"wasim-{name}", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    return f'<figure class="chart" id="chart-{name}">{svg}</figure>'


def _figure(height: float = 3.0) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, height), dpi=96)
    figure.set_layout_engine("constrained")
    return figure


def _empty(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes,
              color="#666666")
    axes.set_xticks([])
    axes.set_yticks([])


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def rate_chart(series: Sequence[tuple[float, Point]], width: float) -> str:
    """Requests a second over the run, and failed ones."""
    figure = _figure()
    axes = figure.add_subplot()
    if not series:
        _empty(axes, "no requests")
    else:
        # One more step at the end, so the last interval is drawn as wide as the others.
        times = [t for t, _ in series] + [series[-1][0] + width]
        for values, label, color in (([p.count for _, p in series], "requests/s", "#00796b"),
                                     ([p.failed for _, p in series], "failed/s", "#c62828")):
            axes.step(times, [v / width for v in [*values, values[-1]]], where="post",
                      label=label, color=color)
        axes.set_xlabel("seconds")
        axes.set_ylabel("per second")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over
        axes.grid(alpha=0.3)
    axes.set_title("Requests per second" + (f" ({width:g} s intervals)" if width != 1 else ""))
    return _svg(figure, "rate")


def latency_chart(series: Sequence[tuple[float, Point]], width: float = 1.0) -> str:
    """p50, p95 and p99 latency of each interval, drawn at its middle."""
    figure = _figure()
    axes = figure.add_subplot()
    shown = [(t, p) for t, p in series if p.count]
    if not shown:
        _empty(axes, "no answers")
    else:
        times = [t + width / 2 for t, _ in shown]
        for p, color in ((50, "#00796b"), (95, "#f9a825"), (99, "#c62828")):
            axes.plot(times, [_nan(point.percentile(p)) for _, point in shown],
                      label=f"p{p}", color=color, marker="." if len(shown) < 30 else None)
        axes.set_xlabel("seconds")
        axes.set_ylabel("ms")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over
        axes.grid(alpha=0.3)
    axes.set_title("Latency percentiles over time")
    return _svg(figure, "latency")


def histogram_chart(buckets: dict[int, int], per_e: int) -> str:
    """How many requests took how long, on a log scale of milliseconds."""
    figure = _figure()
    axes = figure.add_subplot()
    if not buckets:
        _empty(axes, "no answers")
    else:
        # Ten bars per factor e (about 10% wide), whatever the source's resolution.
        step = max(1, per_e // 10)
        grouped: dict[int, int] = {}
        for bucket, count in buckets.items():
            grouped[bucket // step] = grouped.get(bucket // step, 0) + count
        edges = [(math.exp(b * step / per_e) / 1000, math.exp((b + 1) * step / per_e) / 1000)
                 for b in sorted(grouped)]
        axes.bar([low for low, _ in edges], [grouped[b] for b in sorted(grouped)],
                 width=[high - low for low, high in edges], align="edge", color="#00796b")
        axes.set_xscale("log")
        from matplotlib.ticker import LogFormatter

        class Plain(LogFormatter):
            """Plain numbers (0.3, 2, 10), not matplotlib's 2x10^0 or 3e-01."""

            def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
                return f"{x:g}"

        # LogFormatter picks which ticks to label (fewer as the range grows).
        axes.xaxis.set_major_formatter(Plain())
        axes.xaxis.set_minor_formatter(Plain(labelOnlyBase=False))
        axes.set_xlabel("ms")
        axes.set_ylabel("requests")
        axes.grid(alpha=0.3)
    axes.set_title("Latency histogram")
    return _svg(figure, "histogram")


def errors_chart(errors: dict[str, int]) -> str:
    """Failed requests by kind (connection errors, timeouts, HTTP statuses...)."""
    kinds = sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:SHOWN_KINDS]
    figure = _figure(max(1.6, 0.35 * len(kinds) + 1.2))
    axes = figure.add_subplot()
    if not kinds:
        _empty(axes, "no errors")
    else:
        # A `$` would start matplotlib's math text: escaped, the label reads as written.
        labels = ["".join(c if c.isprintable() else "?" for c in kind)[:40]
                  .replace("$", r"\$") for kind, _ in kinds]
        axes.barh(labels[::-1], [n for _, n in kinds][::-1], color="#c62828", height=0.6)
        axes.set_ylim(-0.8, len(kinds) - 0.2)  # one kind is a bar, not a red wall
        axes.set_xlabel("requests")
        axes.grid(alpha=0.3, axis="x")
    axes.set_title("Errors by kind")
    return _svg(figure, "errors")


def _table(rows: Sequence[Sequence[object]], head: Sequence[str], css: str = "") -> str:
    cells = "".join(f"<th>{visible(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{visible(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{css}"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 60em; padding: 0 1em; color: #1a1a1a; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
.chart { margin: 1em 0; } .chart svg { max-width: 100%; height: auto; }
.held { color: #2e7d32; font-weight: bold; } .broken { color: #c62828; font-weight: bold; }
.verdict { font-size: 1.1em; }
"""


def render(data: ReportData) -> str:
    """The whole report as one HTML document."""
    import matplotlib

    series = data.timeline.series()
    with matplotlib.rc_context({"font.size": 10}):
        width = data.timeline.width
        charts = [rate_chart(series, width), latency_chart(series, width),
                  histogram_chart(data.latency_buckets, data.buckets_per_e),
                  errors_chart(data.errors)]
    checks = []
    for what, limit, actual, held in data.thresholds:
        verdict = "not set" if held is None else ("held" if held else "BROKEN")
        css = "" if held is None else ("held" if held else "broken")
        checks.append(f"<tr><td>{visible(what)}</td><td>{visible(limit)}</td>"
                      f"<td>{visible(actual)}</td><td class=\"{css}\">{verdict}</td></tr>")
    broken = any(held is False for *_, held in data.thresholds)
    verdict = ('<p class="verdict broken">A threshold was broken.</p>' if broken else
               '<p class="verdict held">Every threshold set held.</p>'
               if any(held for *_, held in data.thresholds) else "")
    by_count = sorted(data.errors.items(), key=lambda item: (-item[1], item[0]))
    errors = _table(by_count, ("kind", "requests")) if data.errors else "<p>No errors.</p>"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{visible(data.title)}</title>", f"<style>{_STYLE}</style>", "</head>",
        "<body>", f"<h1>{visible(data.title)}</h1>", verdict,
        _table(data.figures, ("figure", "value"), "figures"),
        "<h2>Thresholds</h2>",
        '<table class="thresholds"><thead><tr><th>threshold</th><th>limit</th><th>actual</th>'
        f"<th>result</th></tr></thead><tbody>{''.join(checks)}</tbody></table>",
        "<h2>Over time</h2>", charts[0], charts[1],
        "<h2>Latency</h2>", charts[2],
        "<h2>Errors</h2>", charts[3], errors,
        "<h2>Settings</h2>", _table(data.settings, ("setting", "value"), "settings"),
        "</body>", "</html>", ""])


def write_html(path: Path, data: ReportData) -> None:
    """Write the report to `path`; an unwritable path is a one-line error."""
    page = render(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise WasimError(f"cannot write the report ({exc.strerror})", where=str(path)) from None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def load_report(figures: dict[str, Any], stats: Any, settings: list[tuple[str, str]],
                max_p99: float | None, max_error_rate: float | None,
                is_success: Callable[[int], bool]) -> ReportData:
    """The report of a `wasim load` run: its figures (LoadStats.as_dict and more), its stats;
    `is_success` tells a delivered status (the run's --success-status)."""
    latency = figures["latency_ms"]
    p99 = latency["p99"]
    errors = {f"HTTP {status}": count for status, count in stats.statuses.items()
              if count and not is_success(status)}
    errors.update(stats.errors)
    thresholds = [
        ("p99 latency (--max-p99)", "-" if max_p99 is None else f"{max_p99:g} ms", _ms(p99),
         None if max_p99 is None else p99 is not None and p99 <= max_p99),
        ("error rate (--max-error-rate)",
         "-" if max_error_rate is None else f"{max_error_rate:.2%}",
         f"{stats.error_rate:.2%}",
         None if max_error_rate is None else stats.error_rate <= max_error_rate)]
    shown = [("sent", f"{stats.sent:,}"), ("ok", f"{stats.ok:,}"),
             ("failed", f"{stats.failed:,} ({stats.error_rate:.2%})"),
             ("duration", f"{stats.elapsed:.1f} s"), ("rate", f"{stats.rate:,.1f}/s"),
             *((f"latency p{p}", _ms(latency[f"p{p}"])) for p in (50, 95, 99)),
             ("latency max", _ms(latency["max"]))]
    if figures.get("verdict"):
        shown.append(("who fell behind", figures["verdict"]))
    return ReportData(title=f"wasim load: {figures.get('target', '')}",
                      timeline=stats.timeline, latency_buckets=dict(stats.latency.counts),
                      buckets_per_e=100, errors=errors, thresholds=thresholds, figures=shown,
                      settings=settings)


def run_report(summary: Any, results: Sequence[Any], duration: float) -> ReportData:
    """The report of a `wasim run`: every attempt of every send, and its expectations."""
    timeline = Timeline()
    buckets: dict[int, int] = {}
    errors: dict[str, int] = {}
    targets: dict[str, None] = {}
    attempts = sorted((a for r in results for a in r.result.attempts),
                      key=lambda a: a.started_at + a.latency_ms / 1000)
    for attempt in attempts:
        targets.setdefault(attempt.target, None)
        timeline.record(attempt.started_at + attempt.latency_ms / 1000,
                        attempt.latency_ms * 1000, not attempt.delivered)
        if attempt.status is not None:
            bucket = int(math.log(max(attempt.latency_ms * 1000, 1.0)) * 100)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        if not attempt.delivered:
            kind = attempt.error_kind or (f"HTTP {attempt.status}"
                                          if attempt.status is not None else "failed")
            errors[kind] = errors.get(kind, 0) + 1
    for failure in summary.failures:
        errors[f"expectation {failure.rule}"] = errors.get(f"expectation {failure.rule}", 0) + 1
    broken = summary.expectation_failures
    thresholds: list[tuple[str, str, str, bool | None]] = [
        ("every send delivered", f"{summary.sent:,} sends",
         f"{summary.failed:,} not delivered", not summary.failed)]
    thresholds.extend((f"expectation {rule}", "no failure", f"{count:,} failed", False)
                      for rule, count in sorted(broken.items()))
    if not broken:
        thresholds.append(("the scenario's expectations", "no failure", "none failed", True))
    shown = [("sent", f"{summary.sent:,}"), ("delivered", f"{summary.delivered:,}"),
             ("failed", f"{summary.failed:,}"), ("attempts", f"{summary.attempts:,}"),
             ("duration", f"{duration:.1f} s"),
             *((f"latency p{p}", _ms(summary.percentile(p))) for p in (50, 95, 99))]
    settings = [("scenario", summary.scenario), ("seed", str(summary.seed)),
                ("target", ", ".join(targets) or "-")]
    return ReportData(title=f"wasim run: {summary.scenario}", timeline=timeline,
                      latency_buckets=buckets, buckets_per_e=100, errors=errors,
                      thresholds=thresholds, figures=shown, settings=settings)
