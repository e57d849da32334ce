"""What a check leaves behind: its folder (JUnit XML, progress, output, a Markdown report,
the verdict as JSON) and one line in the history index.

Folders live under ``checks_dir()``: ``platformdirs.user_data_dir("agent-event-monitor")
/ "checks"``, or ``$AEM_CHECK_DIR`` (tests point it at a temporary folder). The history is
``history.jsonl`` there, one JSON object per finished check; reading it skips lines it cannot
use, so one corrupt line never hides the others.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from runtime.protocol import RULES_BY_ID

from .command import RunFiles
from .progress import Outcome, SuiteProgress, TestResult, read_progress
from .verdict import Verdict, VerdictKind

APP_NAME = "agent-event-monitor"
#: overrides where check folders and the history go
DIR_VARIABLE = "AEM_CHECK_DIR"
HISTORY_FILE = "history.jsonl"
#: findings listed one by one in the report (all are counted)
REPORT_FINDINGS = 200


def checks_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where check folders go: ``$AEM_CHECK_DIR``, else the user data directory's ``checks``."""
    env = os.environ if environ is None else environ
    override = env.get(DIR_VARIABLE)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "checks"


def new_run_folder(root: Path, suite_key: str, started: float) -> Path:
    """A fresh folder ``<root>/<YYYYmmdd-HHMMSS>-<suite>[-n]`` (created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = f"{stamp}-{suite_key}" + (f"-{n}" if n > 1 else "")
        folder = root / name
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"no free run folder for {stamp} under {root}")


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


class CheckHistory:
    """The index of past checks under ``root`` (``history.jsonl``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / HISTORY_FILE
        #: lines of the last ``load()`` that could not be read
        self.unreadable = 0

    def append(self, record: CheckRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record.to_dict()) + "\n")

    def load(self) -> list[CheckRecord]:
        """Every readable record, newest first."""
        self.unreadable = 0
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise TypeError("not an object")
                records.append(CheckRecord.from_dict(data))
            except (ValueError, TypeError, KeyError):
                self.unreadable += 1
        records.sort(key=lambda r: r.started, reverse=True)
        return records


@dataclass(frozen=True, slots=True)
class LoadedRun:
    """A past check read back from its folder."""

    record: CheckRecord
    verdict: Verdict
    progress: SuiteProgress


def write_verdict(files: RunFiles, record: CheckRecord, verdict: Verdict) -> None:
    data = {"record": record.to_dict(), "verdict": verdict.to_dict()}
    files.verdict.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_run(folder: Path) -> LoadedRun:
    """Read a check folder back: its record, verdict and the tests as they were reported."""
    files = RunFiles(folder)
    data = json.loads(files.verdict.read_text(encoding="utf-8"))
    record = CheckRecord.from_dict(data["record"])
    verdict = Verdict.from_dict(data["verdict"])
    texts = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in (files.collection, files.progress)
        if path.exists()
    ]
    return LoadedRun(record, verdict, read_progress(*texts))


# --- JUnit XML for runs where pytest wrote none ---------------------------------------


def write_junit(path: Path, progress: SuiteProgress, verdict: Verdict, suite_title: str) -> None:
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
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


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
