"""Live progress of a suite run, from the JSON lines pytest writes as each test finishes.

``SuiteProgress`` is a pure model fed one line at a time (``feed_line``): the suite's
``--progress-log`` (pytest-reportlog records: ``SessionStart``, ``TestReport``, failed
``CollectReport``, ``SessionFinish``) and the collection plugin's ``CollectionFinish``. A line
that is not such a record is *garbage*: it is counted and a few are kept as samples, and
feeding never raises — the verdict decides what garbage means.

Tests are grouped file → classes → test (the order of collection, else of first report);
each has an outcome, its duration (setup + call + teardown), the failure text with the
sequence rules it names (``AEM005`` …), the skip reason, the captured output, what it
measured, and whether it exercises the runtime under test: the suite's conftest marks such
tests ``touches_target`` and the marker reaches every report's ``keywords``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: a sequence rule id in a failure message (``runtime.protocol.rules``)
RULE_ID = re.compile(r"\bAEM\d{3}\b")
#: how many garbage lines are kept verbatim for the error message
GARBAGE_SAMPLES = 5
#: one-line reasons are clipped to this many characters
REASON_LIMIT = 160
#: the marker tests/mission_critical/conftest.py puts on every test that uses the ``target``
#: fixture; the verdict needs one of them to have run (a GO must have touched the runtime)
TOUCHES_TARGET = "touches_target"


class Outcome(StrEnum):
    """What became of one test (``RUNNING``: its setup passed, its call has not ended)."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"

    @property
    def finished(self) -> bool:
        return self not in (Outcome.PENDING, Outcome.RUNNING)

    @property
    def bad(self) -> bool:
        """A failure of the gate: a failed test or an error in its setup or teardown."""
        return self in (Outcome.FAILED, Outcome.ERROR)


def split_nodeid(nodeid: str) -> tuple[str, tuple[str, ...], str]:
    """``path.py::Class::test[param]`` -> ``("path.py", ("Class",), "test[param]")``.

    Parameter ids may contain ``::``; only the part before ``[`` is split.
    """
    base, bracket, params = nodeid.partition("[")
    parts = base.split("::")
    if len(parts) == 1:
        return base + bracket + params, (), ""
    return parts[0], tuple(parts[1:-1]), parts[-1] + bracket + params


def longrepr_text(longrepr: object) -> str:
    """The full text of a serialized ``longrepr`` (a failure traceback, a skip, a string)."""
    if longrepr is None:
        return ""
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, list | tuple) and len(longrepr) == 3:
        return str(longrepr[2])  # (path, lineno, "Skipped: reason")
    if isinstance(longrepr, dict):
        chain = longrepr.get("chain")
        parts: list[str] = []
        if isinstance(chain, list) and chain:
            for link in chain:
                if isinstance(link, list | tuple) and link:
                    parts.append(_traceback_text(link[0]))
                    if len(link) > 2 and link[2]:
                        parts.append(str(link[2]))
        else:
            parts.append(_traceback_text(longrepr.get("reprtraceback")))
        for section in longrepr.get("sections") or ():
            if isinstance(section, list | tuple) and len(section) >= 2:
                parts.append(f"--- {section[0]} ---\n{section[1]}")
        text = "\n".join(p for p in parts if p)
        if text:
            return text
        return crash_message(longrepr)
    return json.dumps(longrepr, default=str)[:4000]


def _traceback_text(traceback: object) -> str:
    if not isinstance(traceback, dict):
        return ""
    lines: list[str] = []
    for entry in traceback.get("reprentries") or ():
        if not isinstance(entry, dict):
            continue
        data = entry.get("data")
        if not isinstance(data, dict):
            continue
        lines.extend(str(line) for line in data.get("lines") or ())
        fileloc = data.get("reprfileloc")
        if isinstance(fileloc, dict):
            where = f"{fileloc.get('path')}:{fileloc.get('lineno')}"
            message = fileloc.get("message") or ""
            lines.append(f"{where}: {message}" if message else where)
        lines.append("")
    return "\n".join(lines).rstrip()


def crash_message(longrepr: object) -> str:
    """The exception message of a failure (``AssertionError: …``), or the skip reason."""
    if longrepr is None:
        return ""
    if isinstance(longrepr, dict):
        crash = longrepr.get("reprcrash")
        if isinstance(crash, dict) and crash.get("message"):
            return str(crash["message"])
        chain = longrepr.get("chain")
        if isinstance(chain, list) and chain:
            last = chain[-1]
            if isinstance(last, list | tuple) and len(last) > 1 and isinstance(last[1], dict):
                return str(last[1].get("message", ""))
        return ""
    text = longrepr_text(longrepr)
    # a plain string traceback: its "E   " lines are the exception
    raised = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return "\n".join(raised) if raised else text


def rule_ids(text: str) -> tuple[str, ...]:
    """The sequence rule ids a message names, in order, each once."""
    return tuple(dict.fromkeys(RULE_ID.findall(text)))


_SEVERITY_TAG = re.compile(r"\s*\[(?:error|warning|info)\]")
_WHERE_SUFFIX = re.compile(r"\s*\((?:user|run|seq)=[^)]*\)\s*$")


def one_line(message: str, limit: int = REASON_LIMIT) -> str:
    """Why a test failed, in one line: its first rule violation, else its first line.

    ``- AEM005 [error] tool calculate (call_1) never sent tool_completed (user=u, run=r)``
    becomes ``AEM005 tool calculate (call_1) never sent tool_completed``.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = next((x for x in lines if RULE_ID.search(x)), lines[0] if lines else "")
    line = line.lstrip("-•* ").strip()
    line = _SEVERITY_TAG.sub("", line, count=1)
    line = _WHERE_SUFFIX.sub("", line)
    for prefix in ("AssertionError: ", "Failed: ", "Skipped: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(slots=True)
class TestResult:
    """One test as the check shows it."""

    nodeid: str
    file: str
    classes: tuple[str, ...]
    name: str
    outcome: Outcome = Outcome.PENDING
    duration: float = 0.0
    #: the phase that failed or skipped (``setup``, ``call``, ``teardown``)
    phase: str = ""
    #: the exception message of a failure, or the reason of a skip
    message: str = ""
    #: the whole failure text (traceback and sections)
    details: str = ""
    rules: tuple[str, ...] = ()
    #: captured output: ``(title, text)`` such as ``("Captured stdout call", "…")``
    sections: list[tuple[str, str]] = field(default_factory=list)
    #: what the test measured (``record_measurement``): ``(name, value)``
    properties: list[tuple[str, Any]] = field(default_factory=list)
    #: it uses the runtime under test (its reports carry the ``touches_target`` keyword)
    touches_target: bool = False
    started: float | None = None
    stopped: float | None = None

    __test__ = False  # not a pytest test class, despite its name

    @property
    def reason(self) -> str:
        """One line saying why it failed or was skipped ("" when it passed)."""
        if self.outcome in (Outcome.PASSED, Outcome.PENDING, Outcome.RUNNING):
            return ""
        return one_line(self.message or self.details)

    @property
    def title(self) -> str:
        """``Class::test`` (or ``test``): how a failure is named in one line."""
        return "::".join((*self.classes, self.name))


@dataclass(frozen=True, slots=True)
class CollectError:
    """A file (or other collector) pytest could not collect."""

    nodeid: str
    message: str
    details: str


@dataclass(frozen=True, slots=True)
class Counts:
    """How many tests are where; ``total`` is the collected count when known."""

    total: int
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    running: int = 0

    @property
    def done(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped + self.xfailed + self.xpassed

    @property
    def bad(self) -> int:
        return self.failed + self.errors

    def to_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "xfailed": self.xfailed,
            "xpassed": self.xpassed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        names = ("total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed")
        return cls(**{n: int(data.get(n, 0) or 0) for n in names})

    def describe(self) -> str:
        """``3 failed, 60 passed, 5 skipped`` — the non-zero counts, worst first."""
        parts = [
            (self.failed, "failed"),
            (self.errors, "error" if self.errors == 1 else "errors"),
            (self.xpassed, "xpassed"),
            (self.passed, "passed"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
        ]
        text = ", ".join(f"{n} {label}" for n, label in parts if n)
        return text or "no tests ran"


class SuiteProgress:
    """Everything the progress lines of one run said so far."""

    def __init__(self) -> None:
        self.tests: dict[str, TestResult] = {}
        #: the collected count (``CollectionFinish``), None until known
        self.collected: int | None = None
        self.collect_errors: list[CollectError] = []
        self.session_started = False
        self.finished = False
        self.exitstatus: int | None = None
        self.lines = 0
        self.garbage = 0
        self.garbage_samples: list[str] = []
        #: valid records of a type this model does not use (e.g. ``WarningMessage``)
        self.ignored = 0
        self._changed: dict[str, None] = {}

    # --- feeding ------------------------------------------------------------------------

    def feed_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.feed_line(line)

    def feed_line(self, line: str) -> None:
        """Take one line; anything that is not a known record counts as garbage."""
        text = line.strip()
        if not text:
            return
        self.lines += 1
        try:
            record = json.loads(text)
        except ValueError:
            self._garbage(text)
            return
        if not isinstance(record, dict) or not isinstance(record.get("$report_type"), str):
            self._garbage(text)
            return
        kind = record["$report_type"]
        try:
            if kind == "TestReport":
                self._test_report(record)
            elif kind == "CollectionFinish":
                self._collection(record)
            elif kind == "CollectReport":
                self._collect_report(record)
            elif kind == "SessionStart":
                self.session_started = True
            elif kind == "SessionFinish":
                self.finished = True
                status = record.get("exitstatus")
                self.exitstatus = int(status) if isinstance(status, int | str) else None
            else:
                self.ignored += 1
        except (KeyError, TypeError, ValueError):
            self._garbage(text)

    def _garbage(self, text: str) -> None:
        self.garbage += 1
        if len(self.garbage_samples) < GARBAGE_SAMPLES:
            self.garbage_samples.append(text[:200])

    def _test(self, nodeid: str) -> TestResult:
        test = self.tests.get(nodeid)
        if test is None:
            file, classes, name = split_nodeid(nodeid)
            test = self.tests[nodeid] = TestResult(nodeid, file, classes, name)
        self._changed[nodeid] = None
        return test

    def _collection(self, record: dict[str, Any]) -> None:
        nodeids = record["nodeids"]
        if not isinstance(nodeids, list) or not all(isinstance(n, str) for n in nodeids):
            raise TypeError("nodeids must be a list of strings")
        # collection order first, then whatever was already reported
        ordered = {n: None for n in nodeids}
        earlier = self.tests
        self.tests = {}
        for nodeid in ordered:
            self.tests[nodeid] = earlier.get(nodeid) or TestResult(nodeid, *split_nodeid(nodeid))
        for nodeid, test in earlier.items():
            self.tests.setdefault(nodeid, test)
        self.collected = len(ordered)
        self._changed.update(dict.fromkeys(self.tests))

    def _collect_report(self, record: dict[str, Any]) -> None:
        if record.get("outcome") != "failed":
            self.ignored += 1
            return
        longrepr = record.get("longrepr")
        self.collect_errors.append(
            CollectError(
                str(record.get("nodeid") or "(session)"),
                one_line(crash_message(longrepr) or longrepr_text(longrepr)),
                longrepr_text(longrepr),
            )
        )

    def _test_report(self, record: dict[str, Any]) -> None:
        nodeid, when, outcome = record["nodeid"], record["when"], record["outcome"]
        if not isinstance(nodeid, str) or when not in ("setup", "call", "teardown"):
            raise ValueError("not a test report")
        if outcome not in ("passed", "failed", "skipped"):
            raise ValueError("unknown outcome")
        test = self._test(nodeid)
        duration = record.get("duration")
        if isinstance(duration, int | float):
            test.duration += float(duration)
        start, stop = record.get("start"), record.get("stop")
        if when == "setup" and isinstance(start, int | float):
            test.started = float(start)
        if isinstance(stop, int | float):
            test.stopped = float(stop)
        sections = record.get("sections")
        if isinstance(sections, list):
            test.sections = [
                (str(s[0]), str(s[1]))
                for s in sections
                if isinstance(s, list | tuple) and len(s) > 1
            ]
        properties = record.get("user_properties")
        if isinstance(properties, list):
            test.properties = [
                (str(p[0]), p[1]) for p in properties if isinstance(p, list | tuple) and len(p) > 1
            ]
        keywords = record.get("keywords")
        if isinstance(keywords, dict) and TOUCHES_TARGET in keywords:
            test.touches_target = True
        xfail = "wasxfail" in record
        longrepr = record.get("longrepr")
        if outcome == "skipped":
            test.outcome = Outcome.XFAILED if xfail else Outcome.SKIPPED
            test.phase = when
            test.message = _skip_reason(longrepr) if not xfail else str(record["wasxfail"])
            return
        if outcome == "failed":
            if when == "call":
                test.outcome = Outcome.FAILED
            elif test.outcome is not Outcome.FAILED:
                test.outcome = Outcome.ERROR  # setup or teardown: an error, pytest's word
            message = crash_message(longrepr)
            details = longrepr_text(longrepr)
            if test.details and when == "teardown":  # keep the call's failure, add this
                test.details += f"\n\n--- error in teardown ---\n{details}"
                test.message = test.message or message
            else:
                test.phase, test.message, test.details = when, message, details
            test.rules = rule_ids(test.message) or rule_ids(_raised_lines(test.details))
            return
        # passed
        if when == "setup":
            test.outcome = Outcome.RUNNING
        elif when == "call":
            test.outcome = Outcome.XPASSED if xfail else Outcome.PASSED
        elif test.outcome is Outcome.RUNNING:
            # a teardown that passed after no call report: the call never ran (interrupted)
            test.outcome = Outcome.PENDING

    # --- reading ------------------------------------------------------------------------

    def drain_changes(self) -> list[str]:
        """Node ids whose result changed since the last call (for incremental views)."""
        changed = list(self._changed)
        self._changed.clear()
        return changed

    def counts(self) -> Counts:
        tally = Counter(test.outcome for test in self.tests.values())
        return Counts(
            total=self.collected if self.collected is not None else len(self.tests),
            passed=tally[Outcome.PASSED],
            failed=tally[Outcome.FAILED],
            errors=tally[Outcome.ERROR],
            skipped=tally[Outcome.SKIPPED],
            xfailed=tally[Outcome.XFAILED],
            xpassed=tally[Outcome.XPASSED],
            running=tally[Outcome.RUNNING],
        )

    def __iter__(self) -> Iterator[TestResult]:
        return iter(self.tests.values())

    def with_outcome(self, *outcomes: Outcome) -> list[TestResult]:
        return [t for t in self.tests.values() if t.outcome in outcomes]

    def failures(self) -> list[TestResult]:
        """Failed tests and tests with errors, in collection order."""
        return self.with_outcome(Outcome.FAILED, Outcome.ERROR)

    def running(self) -> list[TestResult]:
        return self.with_outcome(Outcome.RUNNING)

    def touching_target(self, *outcomes: Outcome) -> list[TestResult]:
        """Tests that use the runtime under test (with one of ``outcomes``, if given)."""
        return [
            t
            for t in self.tests.values()
            if t.touches_target and (not outcomes or t.outcome in outcomes)
        ]

    def last_finished(self) -> TestResult | None:
        """The test that finished most recently (for "crashed after …" messages)."""
        done = [t for t in self.tests.values() if t.outcome.finished and t.stopped is not None]
        return max(done, key=lambda t: t.stopped or 0.0, default=None)


#: the suite starts its skip reasons with the target's repr: ``<RuntimeTarget …>: ``
_REPR_PREFIX = re.compile(r"^<[^<>]*>:\s*")


def _skip_reason(longrepr: object) -> str:
    text = longrepr_text(longrepr).strip().removeprefix("Skipped: ")
    return _REPR_PREFIX.sub("", text)


def _raised_lines(details: str) -> str:
    return "\n".join(line for line in details.splitlines() if line.startswith("E "))


def read_progress(*texts: str) -> SuiteProgress:
    """A ``SuiteProgress`` fed every line of ``texts`` (collection file, progress log …)."""
    progress = SuiteProgress()
    for text in texts:
        progress.feed_lines(text.splitlines())
    return progress
