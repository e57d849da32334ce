"""What the pre-deploy check's panel says in words: a test's details, the explanation of a
GO or an ERROR, a group's outcome, the running time, and the banner's fixed phrases.

Pure; the panel (``monitor._qt.predeploy_panel``) lays them out and colours them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runtime.protocol import RULES_BY_ID
from runtime.protocol.endpoints import HEALTH_PATH

from .command import RunFiles
from .progress import Outcome, SuiteProgress, TestResult
from .verdict import ErrorCause, Verdict

#: how many of ``output.log``'s last lines an ERROR's explanation quotes
OUTPUT_TAIL_LINES = 40

#: an ERROR is no answer: said wherever one is shown
NOT_A_PASS = "The suite gave no answer: this is not a pass."
NOT_A_PASS_DETAIL = "the suite gave no answer (this is not a pass)"
#: under a GO with skipped tests
SKIPS_CHECKED_NOTHING = "Skipped tests did not check anything on this target (see Results)."
#: after the live findings' count in the banner
FINDINGS_INFORMATIONAL = " — informational (the suite injects faults on purpose); see Live findings"

#: what to try after an ERROR, by its cause
ERROR_HINTS: dict[ErrorCause, str] = {
    ErrorCause.UNREACHABLE: (
        f"Is the runtime running, and is this its address? Its {HEALTH_PATH} must answer "
        'with {"status": "ok"}.'
    ),
    ErrorCause.BAD_CREDENTIALS: (
        "The target refused the secret or token: check that it is the target's."
    ),
    ErrorCause.TIMED_OUT: (
        "A test (or the target) hung; the run was stopped and nothing is left running."
    ),
    ErrorCause.UNTESTED: (
        "No test that exercises the target passed: they were skipped (see Results for "
        "why), so nothing in this run says the runtime works."
    ),
}
ERROR_HINTS[ErrorCause.UNHEALTHY] = ERROR_HINTS[ErrorCause.UNREACHABLE]


def format_elapsed(seconds: float) -> str:
    """``0:07.3`` / ``12:04.0``: the check's running time."""
    minutes, secs = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{secs:04.1f}"


def group_outcome(tests: list[TestResult]) -> Outcome:
    """The outcome a file or class shows: the worst of its tests, else how far they got."""
    outcomes = {t.outcome for t in tests}
    for worst in (Outcome.FAILED, Outcome.ERROR, Outcome.RUNNING):
        if worst in outcomes:
            return worst
    if Outcome.PENDING in outcomes:
        return Outcome.RUNNING if len(outcomes) > 1 else Outcome.PENDING
    if Outcome.PASSED in outcomes or Outcome.XPASSED in outcomes:
        return Outcome.PASSED
    return Outcome.SKIPPED


def group_result(tests: list[TestResult]) -> str:
    """A file or class's result column: its failures, errors, passes and skips, and how
    many of its tests are done while some are not."""
    counts = {o: sum(1 for t in tests if t.outcome is o) for o in Outcome}
    parts = [
        f"{counts[o]} {o.value}"
        for o in (Outcome.FAILED, Outcome.ERROR, Outcome.PASSED, Outcome.SKIPPED)
        if counts[o]
    ]
    done = sum(1 for t in tests if t.outcome.finished)
    if done < len(tests):
        parts.append(f"{done}/{len(tests)}")
    return ", ".join(parts)


def describe_test(test: TestResult) -> str:
    """The details pane's text for one test."""
    lines = [test.nodeid, f"{test.outcome.value} in {test.duration:.3f} s"]
    if test.phase and test.outcome.bad:
        lines[-1] += f" (in {test.phase})"
    if test.reason:
        lines += ["", test.reason]
    if test.rules:
        lines += ["", "Rules:"]
        for rule_id in test.rules:
            rule = RULES_BY_ID.get(rule_id)
            lines.append(f"  {rule_id} {rule.name}: {rule.summary}" if rule else f"  {rule_id}")
    if test.message and test.outcome.bad:
        lines += ["", "— message —", test.message]
    if test.properties:
        lines += ["", "— measured —"] + [f"  {name}: {value}" for name, value in test.properties]
    for title, text in test.sections:
        if text.strip():
            lines += ["", f"— {title} —", text.rstrip()]
    if test.details and test.outcome.bad:
        lines += ["", "— traceback —", test.details]
    return "\n".join(lines)


def describe_go(verdict: Verdict, progress: SuiteProgress, folder: Path) -> str:
    """The details pane's text after a GO: what passed, what was skipped and why, where the
    report is."""
    lines = [verdict.line(), ""]
    skipped = progress.with_outcome(Outcome.SKIPPED)
    if skipped:
        lines.append(f"Skipped ({len(skipped)}): these tests checked nothing on this target.")
        lines += [f"  {t.title}\n    {t.reason}" for t in skipped]
        lines.append("")
    lines.append(verdict.findings_text() or "No live findings during the check.")
    lines += ["", f"Report: {RunFiles(folder).report}", f"JUnit XML: {RunFiles(folder).junit}"]
    return "\n".join(lines)


def describe_error(
    verdict: Verdict, folder: Path | None = None, output_tail: Sequence[str] = ()
) -> str:
    """The details pane's text for an ERROR: the reason, what to try, pytest's last words
    (``output_tail``: the last lines of the run folder's ``output.log``)."""
    lines = [f"ERROR — {NOT_A_PASS_DETAIL}:", "", verdict.reason]
    hint = ERROR_HINTS.get(verdict.cause) if verdict.cause is not None else None
    if hint:
        lines += ["", hint]
    if folder is not None:
        if output_tail:
            lines += ["", f"— last lines of {RunFiles(folder).output} —", *output_tail]
        lines += ["", f"Run folder: {folder}"]
    return "\n".join(lines)
