"""What a check leaves behind, as text: the history's records (one JSON line each), the
verdict as JSON, JUnit XML for a run pytest wrote none for, and the Markdown report.

Pure: the folders and files themselves (where they live, writing and reading them) are
``monitor.services.predeploy.run_folders``. Reading the history skips lines it cannot use,
so one corrupt line never hides the others.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.protocol import RULES_BY_ID

from .progress import Outcome, SuiteProgress, TestResult
from .verdict import Verdict, VerdictKind

#: findings listed one by one in the report (all are counted)
REPORT_FINDINGS = 200


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One finished check, as the history lists it."""

    id: str
    suite: str
    suite_title: str
    target: str
    target_kind: str
    credentials: str
    started: float
    duration: float
    verdict: str
    line: str
    counts: dict[str, int] = field(default_factory=dict)
    findings: int = 0
    exit_code: int | None = None
    command: str = ""
    folder: str = ""

    @property
    def kind(self) -> VerdictKind:
        return VerdictKind(self.verdict)

    @property
    def path(self) -> Path:
        return Path(self.folder)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRecord:
        names = set(cls.__dataclass_fields__)
        record = cls(**{k: v for k, v in data.items() if k in names})
        VerdictKind(record.verdict)  # refuse records with an unknown verdict
        return record

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))


def history_line(record: CheckRecord) -> str:
    """One line of the history index (with its newline)."""
    return json.dumps(record.to_dict()) + "\n"


def parse_history(text: str) -> tuple[list[CheckRecord], int]:
    """The readable records of a history index, newest first, and how many lines could not
    be read."""
    records = []
    unreadable = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            records.append(CheckRecord.from_dict(data))
        except (ValueError, TypeError, KeyError):
            unreadable += 1
    records.sort(key=lambda r: r.started, reverse=True)
    return records, unreadable


def verdict_json(record: CheckRecord, verdict: Verdict) -> str:
    """``verdict.json`` of a run folder: its record and verdict."""
    data = {"record": record.to_dict(), "verdict": verdict.to_dict()}
    return json.dumps(data, indent=2) + "\n"


def parse_verdict_json(text: str) -> tuple[CheckRecord, Verdict]:
    """A run folder's ``verdict.json`` read back; raises ``ValueError``/``KeyError`` if it is
    not one."""
    data = json.loads(text)
    return CheckRecord.from_dict(data["record"]), Verdict.from_dict(data["verdict"])


# --- JUnit XML for runs where pytest wrote none ---------------------------------------


def junit_xml(progress: SuiteProgress, verdict: Verdict, suite_title: str) -> bytes:
    """JUnit XML from the progress reports, plus the ERROR itself as an errored testcase.

    pytest writes its own at the end of a run; a run that was refused, cancelled, timed out
    or crashed has none, and CI must still see a file that fails.
    """
    counts = progress.counts()
    error = verdict.kind is VerdictKind.ERROR
    suite = ET.Element(
        "testsuite",
        name=suite_title,
        tests=str(counts.done + (1 if error else 0)),
        failures=str(counts.failed),
        errors=str(counts.errors + (1 if error else 0)),
        skipped=str(counts.skipped + counts.xfailed),
        time=f"{verdict.duration:.3f}",
    )
    if error:
        case = ET.SubElement(suite, "testcase", classname="predeploy", name="pre-deploy check")
        ET.SubElement(case, "error", message=verdict.reason).text = verdict.reason
    for test in progress:
        if not test.outcome.finished:
            continue
        classname = ".".join(
            (test.file.removesuffix(".py").replace("/", "."), *test.classes)
        ).strip(".")
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=test.name, time=f"{test.duration:.3f}"
        )
        if test.outcome is Outcome.FAILED:
            ET.SubElement(case, "failure", message=test.reason).text = test.details
        elif test.outcome is Outcome.ERROR:
            ET.SubElement(case, "error", message=test.reason).text = test.details
        elif test.outcome in (Outcome.SKIPPED, Outcome.XFAILED):
            ET.SubElement(case, "skipped", message=test.message)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


# --- the Markdown report --------------------------------------------------------------


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _fence(text: str, limit: int = 6000) -> str:
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters in output.log)"
    return "```text\n" + text.replace("```", "'''") + "\n```"


def _rule_names(rules: tuple[str, ...]) -> str:
    names = []
    for rule_id in rules:
        rule = RULES_BY_ID.get(rule_id)
        names.append(f"{rule_id} ({rule.name}: {rule.summary})" if rule else rule_id)
    return "; ".join(names)


def _failure_section(test: TestResult) -> list[str]:
    lines = [f"### `{test.nodeid}`", "", f"**{test.outcome.value}** in {test.phase or 'call'}: "
             f"{_md(test.reason)}", ""]  # fmt: skip
    if test.rules:
        lines += [f"Rules: {_rule_names(test.rules)}", ""]
    if test.message:
        lines += [_fence(test.message), ""]
    for title, text in test.sections:
        if text.strip():
            summary = f"<details><summary>{title}</summary>"
            lines += [summary, "", _fence(text), "", "</details>", ""]
    return lines


def render_report(
    record: CheckRecord, verdict: Verdict, progress: SuiteProgress, junit_name: str
) -> str:
    """The human-readable report of one check (Markdown)."""
    out = [
        f"# {record.suite_title}: {verdict.kind.value}",
        "",
        f"**{_md(verdict.line())}**",
        "",
        "| | |",
        "|---|---|",
        f"| target | {_md(record.target)} |",
        f"| credentials | {_md(record.credentials)} |",
        f"| suite | {_md(record.suite_title)} |",
        f"| started | {record.when()} |",
        f"| duration | {record.duration:.1f} s |",
        f"| tests | {_md(verdict.counts.describe())} of {verdict.counts.total} collected |",
        f"| pytest exit code | {'—' if record.exit_code is None else record.exit_code} |",
        f"| JUnit XML | `{junit_name}` |",
    ]
    out.append("")
    if verdict.kind is VerdictKind.ERROR:
        out += ["## Why there is no answer", "", verdict.reason, ""]
    failures = progress.failures()
    if failures:
        out += [f"## Failures ({len(failures)})", ""]
        for test in failures:
            out += _failure_section(test)
    skipped = progress.with_outcome(Outcome.SKIPPED)
    if skipped:
        out += [
            f"## Skipped ({len(skipped)})",
            "",
            "A skip is not a failure, but these tests did not check anything on this target. "
            "A GO needs at least one test that uses the target to pass.",
            "",
            "| test | uses the target | reason |",
            "|---|---|---|",
        ]
        out += [
            f"| `{_md(t.title)}` | {'yes' if t.touches_target else 'no'} | {_md(t.reason)} |"
            for t in skipped
        ]
        out.append("")
    findings = verdict.findings
    out += [f"## Live findings during the check ({len(findings)})", ""]
    if findings:
        by_rule = Counter(f.rule_id for f in findings).most_common()
        out += [
            "Raised by the monitor's live validator while the suite ran (the suite injects "
            "faults on purpose, so some are expected; they do not change the verdict).",
            "",
            "By rule: " + ", ".join(f"{rule} ×{n}" for rule, n in by_rule),
            "",
            "| time | rule | severity | message |",
            "|---|---|---|---|",
        ]
        for f in findings[:REPORT_FINDINGS]:
            at = time.strftime("%H:%M:%S", time.localtime(f.at))
            out.append(f"| {at} | {f.rule_id} | {f.severity} | {_md(f.message)} |")
        if len(findings) > REPORT_FINDINGS:
            out.append(f"\n… and {len(findings) - REPORT_FINDINGS} more.")
        out.append("")
    else:
        out += ["None (or the check did not watch the target live).", ""]
    if progress.tests:
        out += ["## All tests", "", "| test | result | time |", "|---|---|---|"]
        for test in progress:
            out.append(f"| `{_md(test.nodeid)}` | {test.outcome.value} | {test.duration:.2f} s |")
        out.append("")
    if record.command:
        out += [
            "## How it ran",
            "",
            "Credentials went to pytest in `AEM_RUNTIME_*` environment variables, never on the "
            "command line. pytest's own output is in `output.log`.",
            "",
            _fence("$ " + record.command),
            "",
        ]
    return "\n".join(out)
