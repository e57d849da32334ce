"""The go / no-go decision of a check: a pure function of what the run produced.

``decide(progress, outcome)`` returns a ``Verdict``:

- **ERROR** — the suite could not give an answer: the target was unreachable or refused the
  credentials (checked before the run), the run was cancelled or timed out, pytest crashed or
  exited 2–5 (interrupted, internal error, usage error, nothing collected), collection failed,
  the progress stream held garbage or ended early, no test ran, every test errored in its
  setup, pytest's exit code contradicts the reports, or nothing touched the runtime: no test
  that exercises the target (marked ``touches_target`` by the suite's conftest) passed. An
  ERROR is never a pass.
- **NO-GO** — the suite ran and at least one test failed (or errored): each failure is named
  with one line of why, including the sequence rule ids (``AEM005`` …) it reports.
- **GO** — the suite ran, collected tests, every test passed or was skipped, and at least one
  test that exercises the target passed (or xfailed, or xpassed).

Skips: a skipped test is not a failure, but it is never hidden either. The verdict line
counts skips and says why, grouped (``5 skipped: in-process only``; ``62 skipped: need a
secret`` when the target was given only a monitor token), so a GO with partial coverage
reads as exactly that. A run where every test that exercises the target skipped tested only
this machine, not the runtime: ERROR, saying how many were skipped, why, and which
credential would let them run (``pass --secret SECRET (AEM_RUNTIME_SECRET) or --token with a
user token``) — even when in-process unit tests passed beside them.

Widgets read the typed fields — ``kind``, ``headline`` (the short part of the line),
``counts``, ``failures``, ``skips``, ``cause`` — and never parse ``summary`` or ``line()``.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from .progress import TOUCHES_TARGET, Counts, Outcome, SuiteProgress, one_line

#: at most this many failures are named in the one-line verdict, each clipped to
LINE_FAILURES = 3
LINE_REASON = 140

#: pytest's exit codes that mean "no answer"
PYTEST_EXIT_MEANINGS = {
    2: "pytest was interrupted (often: errors during collection)",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (usage error)",
    5: "pytest collected no tests",
}


class VerdictKind(StrEnum):
    GO = "GO"
    NO_GO = "NO-GO"
    ERROR = "ERROR"


class ErrorCause(StrEnum):
    """Why an ERROR verdict has no answer, for views that advise what to do next."""

    UNREACHABLE = "unreachable"
    UNHEALTHY = "unhealthy"
    BAD_CREDENTIALS = "bad credentials"
    #: any other refusal before the run (the target's answer made no sense …)
    PREFLIGHT = "preflight"
    NOT_STARTED = "not started"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"
    CRASHED = "crashed"
    COLLECTION = "collection failed"
    PYTEST_EXIT = "pytest exit code"
    GARBAGE = "garbage"
    INCOMPLETE = "incomplete"
    NO_TESTS = "no tests ran"
    SETUP = "setup errors"
    CONTRADICTION = "contradiction"
    #: tests ran, but none that exercises the target passed
    UNTESTED = "nothing touched the runtime"


#: the kind of an ERROR told by its wording: for verdict.json files written before ``cause``
#: existed, and reasons made without one (a preflight refusal carries its own)
_CAUSE_PREFIXES: tuple[tuple[str, ErrorCause], ...] = (
    ("target unreachable", ErrorCause.UNREACHABLE),
    ("target unhealthy", ErrorCause.UNHEALTHY),
    ("bad credentials", ErrorCause.BAD_CREDENTIALS),
    ("the suite could not be started", ErrorCause.NOT_STARTED),
    ("the suite never started", ErrorCause.NOT_STARTED),
    ("timed out", ErrorCause.TIMED_OUT),
    ("cancelled", ErrorCause.CANCELLED),
    ("interrupted", ErrorCause.CANCELLED),
    ("pytest crashed", ErrorCause.CRASHED),
    ("collection failed", ErrorCause.COLLECTION),
    ("pytest's exit code", ErrorCause.CONTRADICTION),
    ("pytest", ErrorCause.PYTEST_EXIT),
    ("the progress stream had", ErrorCause.GARBAGE),
    ("the progress stream ended", ErrorCause.INCOMPLETE),
    ("no tests ran", ErrorCause.NO_TESTS),
    ("the suite could not run", ErrorCause.SETUP),
    ("nothing touched the runtime", ErrorCause.UNTESTED),
    ("nothing was tested", ErrorCause.UNTESTED),
)


def error_cause(reason: str) -> ErrorCause:
    """The kind of an ERROR known only by its reason (an old verdict.json's)."""
    for prefix, cause in _CAUSE_PREFIXES:
        if reason.startswith(prefix):
            return cause
    return ErrorCause.PREFLIGHT


#: (pattern in a skip reason, the short category shown in the verdict); first match wins
SKIP_CATEGORIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"in-process runtime", re.I), "in-process only"),
    (re.compile(r"client[_ -]faults", re.I), "need --allow-client-faults"),
    (re.compile(r"monitor-token", re.I), "need a monitor token or secret"),
    (re.compile(r"clock", re.I), "need synced clocks"),
    (re.compile(r"runtime-secret|mint", re.I), "need a secret"),
)
_TARGET_PREFIX = re.compile(r"^<RuntimeTarget [^>]*>:\s*")


#: what lets the tests of a skip category run, for the reason of a run that touched nothing
SKIP_REMEDIES: dict[str, str] = {
    "need a secret": "pass --secret SECRET (AEM_RUNTIME_SECRET) or --token with a user token "
    "(AEM_RUNTIME_TOKENS)",
    "need a monitor token or secret": "pass --token with a monitor token "
    "(AEM_RUNTIME_MONITOR_TOKEN) or --secret SECRET (AEM_RUNTIME_SECRET)",
    "need --allow-client-faults": "start the target with --allow-client-faults",
}


def skip_category(reason: str) -> str:
    """A skip reason in a few words (``need a secret``), to group skips in the verdict."""
    for pattern, category in SKIP_CATEGORIES:
        if pattern.search(reason):
            return category
    text = _TARGET_PREFIX.sub("", reason.strip()) or "no reason given"
    return one_line(text, 60)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How the run itself went, apart from what the tests reported."""

    #: the process exit code (negative: killed by that signal); None if it never started
    exit_code: int | None
    duration: float
    #: the target failed the reachability / credentials check: why
    preflight_error: str | None = None
    #: the process could not be started: why
    start_error: str | None = None
    timed_out: float | None = None  # the timeout (s) that was hit
    cancelled: str | None = None  # why it was stopped (e.g. "cancelled by the user")
    #: the last lines pytest printed (for crash and usage-error reasons)
    output_tail: str = ""
    #: the kind of the preflight's refusal (``preflight_error`` says it in words)
    preflight_cause: ErrorCause | None = None


@dataclass(frozen=True, slots=True)
class FailureLine:
    """One failing test, named and explained in one line."""

    nodeid: str
    title: str
    reason: str
    rules: tuple[str, ...] = ()
    phase: str = "call"

    def text(self) -> str:
        return f"{self.title}: {self.reason}" if self.reason else self.title


@dataclass(frozen=True, slots=True)
class FindingSummary:
    """A finding the live validator raised during the check (attached, not decisive)."""

    rule_id: str
    severity: str
    message: str
    at: float
    user_id: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "message": self.message,
            "at": self.at,
            "user_id": self.user_id,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FindingSummary:
        return cls(
            str(data["rule_id"]),
            str(data.get("severity", "")),
            str(data.get("message", "")),
            float(data.get("at", 0.0)),
            data.get("user_id"),
            data.get("run_id"),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of one check: ``line()`` is the one-line form (CLI, history, banner).

    ``headline`` is the short part of it, typed so that no view has to cut ``summary``:
    ``2 failed (71 passed, 5 skipped: in-process only)`` for a NO-GO (without the named
    failures), ``73 passed, 5 skipped: in-process only in 17.2s`` for a GO, the first sentence
    of ``reason`` for an ERROR. Built without one, it is derived from the typed fields.
    """

    kind: VerdictKind
    summary: str
    counts: Counts
    duration: float
    failures: tuple[FailureLine, ...] = ()
    #: (category, count), most first
    skips: tuple[tuple[str, int], ...] = ()
    #: for ERROR: the reason, also the start of ``summary``
    reason: str = ""
    findings: tuple[FindingSummary, ...] = field(default=())
    headline: str = ""
    #: for ERROR: which kind of "no answer" it is
    cause: ErrorCause | None = None

    def __post_init__(self) -> None:
        # frozen: fill the derived fields the way the dataclass itself would
        if not self.headline:
            object.__setattr__(self, "headline", self._derived_headline())
        if self.kind is VerdictKind.ERROR and self.cause is None:
            object.__setattr__(self, "cause", error_cause(self.reason))

    def _derived_headline(self) -> str:
        if self.kind is VerdictKind.GO:
            return go_headline(self.counts, self.skips, self.duration)
        if self.kind is VerdictKind.NO_GO:
            return nogo_headline(self.counts, self.skips)
        return self.reason  # an ERROR made without a headline has a one-sentence reason

    def line(self) -> str:
        return f"{self.kind.value}: {self.summary}"

    @property
    def detail(self) -> str:
        """For an ERROR: what its reason says after the headline (advice), else ''."""
        if self.kind is not VerdictKind.ERROR or not self.reason.startswith(self.headline):
            return ""
        return self.reason[len(self.headline) :].lstrip(".;, ")

    @property
    def exit_code(self) -> int:
        """The headless command's exit code: 0 GO, 1 NO-GO, 2 ERROR."""
        return {VerdictKind.GO: 0, VerdictKind.NO_GO: 1, VerdictKind.ERROR: 2}[self.kind]

    def skip_text(self) -> str:
        """``5 skipped: in-process only`` / ``7 skipped (need a secret: 5; …)``."""
        return skip_text(self.skips)

    def findings_text(self) -> str:
        """``12 live findings during the check (AEM009 ×5, AEM010 ×4, …)`` or ''."""
        if not self.findings:
            return ""
        by_rule = Counter(f.rule_id for f in self.findings).most_common(4)
        rules = ", ".join(f"{rule} ×{n}" for rule, n in by_rule)
        n = len(self.findings)
        return f"{n} live finding{'s' if n != 1 else ''} during the check ({rules})"

    def with_findings(self, findings: tuple[FindingSummary, ...]) -> Verdict:
        return replace(self, findings=findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "headline": self.headline,
            "summary": self.summary,
            "line": self.line(),
            "counts": self.counts.to_dict(),
            "duration": self.duration,
            "failures": [
                {
                    "nodeid": f.nodeid,
                    "title": f.title,
                    "reason": f.reason,
                    "rules": list(f.rules),
                    "phase": f.phase,
                }
                for f in self.failures
            ],
            "skips": [[c, n] for c, n in self.skips],
            "reason": self.reason,
            "cause": self.cause.value if self.cause is not None else None,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """A verdict as ``to_dict`` wrote it; files from before ``headline`` and ``cause``
        existed load too (both are derived from the typed fields)."""
        cause = data.get("cause")
        return cls(
            VerdictKind(data["kind"]),
            str(data.get("summary", "")),
            Counts.from_dict(data.get("counts") or {}),
            float(data.get("duration", 0.0)),
            tuple(
                FailureLine(
                    str(f["nodeid"]),
                    str(f.get("title", f["nodeid"])),
                    str(f.get("reason", "")),
                    tuple(f.get("rules") or ()),
                    str(f.get("phase", "call")),
                )
                for f in data.get("failures") or ()
            ),
            tuple((str(c), int(n)) for c, n in data.get("skips") or ()),
            str(data.get("reason", "")),
            tuple(FindingSummary.from_dict(f) for f in data.get("findings") or ()),
            str(data.get("headline") or ""),
            ErrorCause(cause) if cause else None,
        )


def skip_text(skips: tuple[tuple[str, int], ...]) -> str:
    """``5 skipped: in-process only`` / ``7 skipped (need a secret: 5; …)`` / ''."""
    total = sum(n for _, n in skips)
    if not total:
        return ""
    if len(skips) == 1:
        return f"{total} skipped: {skips[0][0]}"
    return f"{total} skipped (" + "; ".join(f"{c}: {n}" for c, n in skips) + ")"


def go_headline(counts: Counts, skips: tuple[tuple[str, int], ...], duration: float) -> str:
    """``73 passed, 5 skipped: in-process only in 17.2s``."""
    text = f"{counts.passed} passed"
    if counts.xfailed:
        text += f", {counts.xfailed} xfailed"
    skipped = skip_text(skips)
    if skipped:
        text += f", {skipped}"
    return text + f" in {_seconds(duration)}"


def nogo_headline(counts: Counts, skips: tuple[tuple[str, int], ...]) -> str:
    """``2 failed, 1 error (71 passed, 5 skipped: in-process only)``."""
    bad = ", ".join(
        part
        for part in (
            f"{counts.failed} failed" if counts.failed else "",
            f"{counts.errors} error{'s' if counts.errors != 1 else ''}" if counts.errors else "",
        )
        if part
    )
    others = [f"{counts.passed} passed"] if counts.passed else []
    skipped = skip_text(skips)
    if skipped:
        others.append(skipped)
    return bad + (f" ({', '.join(others)})" if others else "")


def _seconds(duration: float) -> str:
    return f"{duration:.1f}s"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _last_output_line(tail: str) -> str:
    """The most telling line of pytest's output: an ``ERROR``/``E`` line, else the last."""
    lines = [line.strip() for line in tail.splitlines() if line.strip().strip("=")]
    for line in lines:
        fatal = line.find("Fatal Python error")  # may follow a test's progress dots
        if fatal >= 0:
            return one_line(line[fatal:], 140)
    for line in reversed(lines):
        usage = line.find(": error: ")  # argparse: "python -m pytest: error: unrecognized …"
        if usage >= 0:
            return one_line(line[usage + 2 :], 140)
    for line in reversed(lines):
        if line.startswith(("ERROR", "E ", "INTERNALERROR")):
            text = line.removeprefix("INTERNALERROR>").removeprefix("E ").strip()
            return one_line(text, 140)
    return one_line(lines[-1], 140) if lines else ""


def _where(progress: SuiteProgress) -> str:
    """`` (12 of 74 tests done; running Class::test)`` for error messages."""
    counts = progress.counts()
    parts = [f"{counts.done} of {counts.total} tests done"]
    running = progress.running()
    if running:
        parts.append("running " + running[0].title)
    else:
        last = progress.last_finished()
        if last is not None:
            parts.append("last finished " + last.title)
    return " (" + "; ".join(parts) + ")"


def skip_groups(progress: SuiteProgress) -> tuple[tuple[str, int], ...]:
    tally = Counter(skip_category(t.message) for t in progress.with_outcome(Outcome.SKIPPED))
    return tuple(tally.most_common())


def failure_lines(progress: SuiteProgress) -> tuple[FailureLine, ...]:
    return tuple(
        FailureLine(t.nodeid, t.title, t.reason, t.rules, t.phase) for t in progress.failures()
    )


def decide(progress: SuiteProgress, outcome: RunOutcome) -> Verdict:
    """GO, NO-GO or ERROR for a finished run (see the module docstring for the rules)."""
    counts = progress.counts()
    skips = skip_groups(progress)
    failures = failure_lines(progress)
    duration = outcome.duration

    def error(reason: str, cause: ErrorCause | None = None, headline: str = "") -> Verdict:
        return Verdict(
            VerdictKind.ERROR,
            reason,
            counts,
            duration,
            failures,
            skips,
            reason=reason,
            headline=headline or reason,
            cause=cause or error_cause(reason),
        )

    if outcome.preflight_error:
        return error(outcome.preflight_error, outcome.preflight_cause)
    if outcome.start_error:
        return error(
            f"the suite could not be started: {outcome.start_error}", ErrorCause.NOT_STARTED
        )
    if outcome.cancelled:
        return error(
            f"{outcome.cancelled} after {_seconds(duration)}{_where(progress)}",
            ErrorCause.CANCELLED,
        )
    if outcome.timed_out is not None:
        return error(
            f"timed out: the suite did not finish within {outcome.timed_out:g}s and was "
            f"stopped{_where(progress)}",
            ErrorCause.TIMED_OUT,
        )
    code = outcome.exit_code
    if code is None:
        return error("the suite never started", ErrorCause.NOT_STARTED)
    if code < 0:
        said = _last_output_line(outcome.output_tail)
        return error(
            f"pytest crashed: killed by {_signal_name(code)}{_where(progress)}"
            + (f": {said}" if said else ""),
            ErrorCause.CRASHED,
        )
    if progress.collect_errors:
        first = progress.collect_errors[0]
        more = len(progress.collect_errors) - 1
        return error(
            f"collection failed in {first.nodeid}: {first.message}"
            + (f" (and {more} more)" if more else ""),
            ErrorCause.COLLECTION,
        )
    if code in PYTEST_EXIT_MEANINGS:
        said = _last_output_line(outcome.output_tail)
        return error(
            f"{PYTEST_EXIT_MEANINGS[code]} (exit code {code})" + (f": {said}" if said else ""),
            ErrorCause.PYTEST_EXIT,
        )
    if code not in (0, 1):
        said = _last_output_line(outcome.output_tail)
        return error(
            f"pytest exited with code {code}" + (f": {said}" if said else ""),
            ErrorCause.PYTEST_EXIT,
        )
    if progress.garbage:
        sample = progress.garbage_samples[0] if progress.garbage_samples else ""
        return error(
            f"the progress stream had {progress.garbage} unreadable line"
            f"{'s' if progress.garbage != 1 else ''} (first: {sample[:60]!r}); "
            "the results cannot be trusted",
            ErrorCause.GARBAGE,
        )
    if not progress.finished:
        return error(
            "the progress stream ended before the session finished: the results are incomplete",
            ErrorCause.INCOMPLETE,
        )
    if counts.done == 0:
        return error("no tests ran", ErrorCause.NO_TESTS)
    setup_errors = [t for t in progress.failures() if t.phase == "setup"]
    if setup_errors and len(setup_errors) == counts.done:
        return error(
            f"the suite could not run: every test errored in its setup: {setup_errors[0].reason}",
            ErrorCause.SETUP,
        )
    never = counts.total - counts.done
    consistent = (code == 1 and counts.bad > 0) or (code == 0 and not counts.bad and not never)
    if not consistent:
        return error(
            f"pytest's exit code {code} contradicts the reports ({counts.describe()}"
            + (f", {never} never reported" if never > 0 else "")
            + ")",
            ErrorCause.CONTRADICTION,
        )
    if failures:
        named = "; ".join(one_line(f.text(), LINE_REASON) for f in failures[:LINE_FAILURES])
        if len(failures) > LINE_FAILURES:
            named += f"; … and {len(failures) - LINE_FAILURES} more"
        headline = nogo_headline(counts, skips)
        return Verdict(
            VerdictKind.NO_GO,
            f"{headline} — {named}",
            counts,
            duration,
            failures,
            skips,
            headline=headline,
        )
    if not progress.touching_target(*TOUCHED):
        headline, advice = _untested(progress, counts, skips)
        return error(headline + (f". {advice}" if advice else ""), ErrorCause.UNTESTED, headline)
    headline = go_headline(counts, skips, duration)
    return Verdict(VerdictKind.GO, headline, counts, duration, failures, skips, headline=headline)


#: outcomes of a test that exercised the target to the end: what a GO needs one of
TOUCHED = (Outcome.PASSED, Outcome.XFAILED, Outcome.XPASSED)


def _untested(
    progress: SuiteProgress, counts: Counts, skips: tuple[tuple[str, int], ...]
) -> tuple[str, str]:
    """(first sentence, advice) of the ERROR of a run where no test touched the runtime."""
    touching = progress.touching_target()
    ran = counts.passed + counts.xfailed + counts.xpassed
    if not touching and not ran:
        groups = skips
        headline = f"nothing was tested: {skip_text(skips) or 'every test was skipped'}"
    elif not touching:
        groups = ()
        uses = (
            "the 1 test that passed does not use"
            if ran == 1
            else f"none of the {ran} tests that passed uses"
        )
        headline = (
            f"nothing touched the runtime: {uses} the target (none is marked {TOUCHES_TARGET})"
        )
    else:
        # failures and unfinished tests were decided above: every one of these was skipped
        tally = Counter(skip_category(t.message) for t in touching)
        groups = tuple(tally.most_common())
        n = len(touching)
        why = groups[0][0] if len(groups) == 1 else "; ".join(f"{c}: {k}" for c, k in groups)
        headline = (
            f"nothing touched the runtime: the {n} test{'s' if n != 1 else ''} that "
            f"use{'s' if n == 1 else ''} the target {'was' if n == 1 else 'were'} skipped "
            f"({why})"
        )
        if ran:
            headline += f" and the {ran} that passed {'does' if ran == 1 else 'do'} not use it"
    remedies = [SKIP_REMEDIES[c] for c, _ in groups if c in SKIP_REMEDIES]
    advice = ("To run them, " + "; ".join(remedies)) if remedies else ""
    return headline, advice


def preflight_verdict(reason: str, duration: float = 0.0) -> Verdict:
    """The ERROR of a target that failed the check before any test ran."""
    return decide(SuiteProgress(), RunOutcome(None, duration, preflight_error=reason))
