"""Runs each plant of ``plants.PLANTS`` through the three stages in a scratch copy.

A copy is the checkout's tracked and new files (what ``git ls-files`` lists), with the plant
applied; every stage runs in it as its own process with ``PYTHONPATH`` pointing at it, so the
mutated runtime is what the suite, the check and the probe import:

- **quick**: ``python -m monitor check --embedded --quick`` (its typed verdict, from
  ``verdict.json``, and its output);
- **full**: ``python -m pytest tests/mission_critical`` against the in-process runtime (the
  verdict is decided from its progress log by the check's own ``decide``);
- **live**: ``python -m tests.mutation.live_probe`` (the monitor's live validator).

A stage *catches* a plant when the verdict is NO-GO and the stage's pattern is found in what
it reported; for the live stage, when a finding matches the pattern.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from monitor.model.predeploy.progress import SuiteProgress
from monitor.model.predeploy.verdict import RunOutcome, VerdictKind, decide

from .plants import Plant

ROOT = Path(__file__).resolve().parents[2]
#: a stage taking longer than this is hung
STAGE_TIMEOUT = 300.0


class PlantDoesNotApply(RuntimeError):
    """The code a plant changes is no longer there (exactly once): update the plant."""


@dataclass(slots=True)
class StageResult:
    stage: str
    #: GO / NO-GO / ERROR for the quick and full stages; "findings" for live
    verdict: str
    caught: bool
    #: the line that matched, or what the stage said instead
    evidence: str
    seconds: float
    #: the full gate's slowest tests, "3.9s test_name" (where a failing gate spends time)
    slowest: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PlantResult:
    name: str
    kind: str
    stages: dict[str, StageResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line and (root / line).is_file()]


def make_copy(root: Path, destination: Path, plant: Plant | None) -> None:
    for name in tracked_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    if plant is None:
        return
    path = destination / plant.path
    text = path.read_text(encoding="utf-8")
    count = text.count(plant.old)
    if count != 1:
        raise PlantDoesNotApply(
            f"plant {plant.name}: the code it changes occurs {count} times in {plant.path} "
            f"(needs exactly 1): {plant.old.strip()[:80]!r}"
        )
    path.write_text(text.replace(plant.old, plant.new), encoding="utf-8")


def _environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEM_")}
    env["PYTHONPATH"] = str(copy)
    env["AEM_CHECK_ROOT"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _run(argv: list[str], copy: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            check=False,
            cwd=copy,
            env=_environment(copy),
            capture_output=True,
            text=True,
            timeout=STAGE_TIMEOUT,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = -1, f"timed out after {STAGE_TIMEOUT:g}s: {exc.stdout!r}"
    return code, output, time.monotonic() - started


def _match(pattern: str | None, text: str) -> str:
    """The first line of ``text`` that matches ``pattern`` (clipped), or ''."""
    if pattern is None:
        return ""
    # line by line: across lines a pattern could join words of unrelated failures
    regex = re.compile(pattern, re.I)
    for line in text.splitlines():
        if regex.search(line):
            return line.strip()[:200]
    return ""


def run_quick(copy: Path, pattern: str | None) -> StageResult:
    reports = copy / ".checks"
    _code, output, seconds = _run(
        [
            sys.executable,
            "-m",
            "monitor",
            "check",
            "--embedded",
            "--quick",
            "--report-dir",
            str(reports),
        ],
        copy,
    )
    verdicts = sorted(reports.glob("*/verdict.json"))
    kind, said = "ERROR", output.strip().splitlines()[-1:] or ["no output"]
    text = output
    if verdicts:
        data = json.loads(verdicts[-1].read_text(encoding="utf-8"))
        kind = data["verdict"]["kind"]
        said = [data["verdict"]["line"]]
        log = verdicts[-1].parent / "output.log"
        text += "\n" + json.dumps(data["verdict"]) + "\n"
        if log.exists():
            text += log.read_text(encoding="utf-8", errors="replace")
    matched = _match(pattern, text) if kind == VerdictKind.NO_GO.value else ""
    return StageResult("quick", kind, bool(matched), matched or said[0][:200], seconds)


def run_full(copy: Path, pattern: str | None) -> StageResult:
    progress_log = copy / ".full-progress.jsonl"
    code, output, seconds = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/mission_critical",
            "-p",
            "no:cacheprovider",
            "-q",
            "--timeout=120",
            "--color=no",
            "--tb=native",  # as the check runs it (see monitor.model.predeploy.command)
            f"--progress-log={progress_log}",
        ],
        copy,
    )
    progress = SuiteProgress()
    if progress_log.exists():
        for line in progress_log.read_text(encoding="utf-8").splitlines():
            progress.feed_line(line)
    verdict = decide(progress, RunOutcome(code, seconds, output_tail=output[-4000:]))
    matched = _match(pattern, output) if verdict.kind is VerdictKind.NO_GO else ""
    slowest = sorted(progress, key=lambda t: t.duration, reverse=True)[:5]
    return StageResult(
        "full",
        verdict.kind.value,
        bool(matched),
        matched or verdict.line()[:200],
        seconds,
        [f"{t.duration:.1f}s {t.title}" for t in slowest],
    )


def run_live(copy: Path, pattern: str | None) -> StageResult:
    code, output, seconds = _run([sys.executable, "-m", "tests.mutation.live_probe"], copy)
    findings = []
    for line in output.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            findings.append(f"{data['rule_id']} {data['message']}")
    if code != 0 and not findings:
        return StageResult("live", "ERROR", False, output.strip()[-200:], seconds)
    matched = _match(pattern, "\n".join(findings))
    rules = sorted({f.split()[0] for f in findings})
    return StageResult(
        "live",
        f"{len(findings)} findings",
        bool(matched),
        matched or (", ".join(rules) or "no findings"),
        seconds,
    )


#: the stages, in the order they run
STAGES = ("quick", "full", "live")


def run_plant(plant: Plant | None, scratch: Path, stages: tuple[str, ...] = STAGES) -> PlantResult:
    """The ``stages`` on one copy (``plant`` None: the unmutated baseline)."""
    name = plant.name if plant else "baseline"
    result = PlantResult(name, plant.kind if plant else "no regression planted")
    # not named after the plant: its name would show in every path of the output, and a
    # pattern could match the path instead of what a test said
    copy = Path(tempfile.mkdtemp(prefix="copy-", dir=scratch))
    try:
        make_copy(ROOT, copy, plant)
    except PlantDoesNotApply as exc:
        result.problems.append(str(exc))
        return result
    patterns = (plant.quick, plant.full, plant.live) if plant else (None, None, None)
    runners = {"quick": run_quick, "full": run_full, "live": run_live}
    for stage, pattern in zip(STAGES, patterns, strict=True):
        if stage in stages:
            result.stages[stage] = runners[stage](copy, pattern)
    if plant is None:
        for stage in ("quick", "full"):
            if stage in result.stages and result.stages[stage].verdict != VerdictKind.GO.value:
                result.problems.append(
                    f"the unmutated copy is not GO in the {stage} stage: "
                    f"{result.stages[stage].evidence}"
                )
        live = result.stages.get("live")
        if live is not None and live.verdict != "0 findings":
            result.problems.append(f"the unmutated copy has live findings: {live.evidence}")
    else:
        for stage, pattern in zip(STAGES, patterns, strict=True):
            outcome = result.stages.get(stage)
            if outcome is not None and pattern is not None and not outcome.caught:
                result.problems.append(
                    f"{stage} did not catch it (expected /{pattern}/): {outcome.verdict}: "
                    f"{outcome.evidence}"
                )
    shutil.rmtree(copy, ignore_errors=True)
    return result


def run_all(
    plants: list[Plant], jobs: int, stages: tuple[str, ...] = STAGES
) -> Iterator[PlantResult]:
    """The baseline first (a broken checkout makes every catch meaningless), then each
    plant, ``jobs`` at a time; results in the table's order."""
    with tempfile.TemporaryDirectory(prefix="aem-mutation-") as scratch:
        base = Path(scratch)
        yield run_plant(None, base, stages)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_plant, plant, base, stages) for plant in plants]
            for future in futures:
                yield future.result()


def to_json(results: list[PlantResult]) -> list[dict[str, object]]:
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "ok": r.ok,
            "problems": r.problems,
            "stages": {k: asdict(v) for k, v in r.stages.items()},
        }
        for r in results
    ]
