"""Presenters of a scenario run's results: JUnit XML for CI systems, and JSON. The results are
values (simulator.records' Summary, Failure), whose lines for people live with them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.delivery import hide_url_secrets
from simulator.errors import WasimError
from simulator.records import SHOWN_FAILING as SHOWN_FAILING  # re-exported: moved to records
from simulator.records import Failure, SendResult, Summary, failure_line
from simulator.records import delivery_reason as delivery_reason
from simulator.records import send_line as send_line
from simulator.records import summary_lines as summary_lines
from simulator.safefiles import write_file


def junit_xml(summary: Summary, results: Sequence[SendResult], duration: float) -> bytes:
    """One testsuite for the run, one testcase per send; failures carry every broken rule."""
    suite = ET.Element("testsuite", {
        "name": summary.scenario, "tests": str(len(results)),
        "failures": str(sum(not r.ok for r in results)), "errors": "0",
        "time": f"{duration:.3f}"})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "seed", "value": str(summary.seed)})
    for outcome in sorted(results, key=lambda r: r.planned.index):
        planned, last = outcome.planned, outcome.result.attempts[-1]
        case = ET.SubElement(suite, "testcase", {
            "classname": f"{summary.scenario}.{planned.step}",
            "name": f"#{planned.index} {planned.kind} {planned.event.user} "
                    f"{planned.event.button!r} ({planned.event.id})",
            "time": f"{last.latency_ms / 1000:.4f}"})
        problems = list(outcome.broken)
        if not outcome.result.delivered:
            problems.insert(0, Failure(
                "delivery", f"{last.outcome}"
                + (f", status {last.status}" if last.status is not None else "")
                + (f", {hide_url_secrets(last.error)}" if last.error else "")
                + f" after {len(outcome.result.attempts)} attempt(s)"))
        if problems:
            failure = ET.SubElement(case, "failure", {"message": failure_line(problems[0]),
                                                      "type": problems[0].rule})
            failure.text = "\n".join([*map(failure_line, problems),
                                      f"message id: {planned.event.message_id}"])
    data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data


def json_report(summary: Summary, results: Sequence[SendResult], duration: float) -> bytes:
    """The summary and every send's outcome as one JSON document."""
    sends: list[dict[str, Any]] = []
    for outcome in sorted(results, key=lambda r: r.planned.index):
        planned, last = outcome.planned, outcome.result.attempts[-1]
        sends.append({
            "index": planned.index, "step": planned.step, "kind": planned.kind,
            "at": round(planned.at, 3), "event": planned.event.id, "user": planned.event.user,
            "button": planned.event.button, "message_id": planned.event.message_id,
            "delivered": outcome.result.delivered, "status": last.status,
            "latency_ms": round(last.latency_ms, 3), "attempts": len(outcome.result.attempts),
            "error": hide_url_secrets(last.error) if last.error else last.error,
            "failures": [failure.as_dict() for failure in outcome.broken]})
    document = {"summary": {**summary.as_dict(), "duration_s": round(duration, 3)},
                "sends": sends}
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def write_report(path: Path, summary: Summary, results: Sequence[SendResult],
                 duration: float) -> None:
    """Write a report whose format follows the file name: .xml is JUnit, .json is JSON,
    .html a page of charts (simulator.html_report)."""
    check_report_path(path)
    from simulator.html_report import is_html

    if is_html(path):
        from simulator.html_report import run_report, write_html

        write_html(path, run_report(summary, results, duration))
        return
    make = junit_xml if path.suffix == ".xml" else json_report
    data = make(summary, results, duration)
    try:
        write_file(path, data, "the report")  # never through a link (simulator.safefiles)
    except OSError as exc:
        raise WasimError(f"cannot write the report ({exc.strerror})", where=str(path)) from None


def check_report_path(path: Path) -> None:
    """Fail before a run, not after it, on a report name whose format is unknown (or on an
    HTML report without its plotting library)."""
    from simulator.html_report import check_html_report, is_html

    if is_html(path):
        check_html_report()
    elif path.suffix not in (".xml", ".json"):
        raise WasimError(f"cannot tell the report format of {path.name}", field="report",
                         hint="Name it .xml (JUnit), .json or .html.")
