"""What a check leaves behind on disk: its folder (JUnit XML, progress, output, a Markdown
report, the verdict as JSON) and one line in the history index.

Folders live under ``checks_dir()``: ``platformdirs.user_data_dir("agent-event-monitor")
/ "checks"``, or ``$AEM_CHECK_DIR`` (tests point it at a temporary folder). The history is
``history.jsonl`` there, one JSON object per finished check. What the files say is
``monitor.model.predeploy.report`` (pure).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from monitor.model.predeploy.command import RunFiles
from monitor.model.predeploy.progress import SuiteProgress, read_progress
from monitor.model.predeploy.report import (
    CheckRecord,
    history_line,
    junit_xml,
    parse_history,
    parse_verdict_json,
    verdict_json,
)
from monitor.model.predeploy.verdict import Verdict

APP_NAME = "agent-event-monitor"
#: overrides where check folders and the history go
DIR_VARIABLE = "AEM_CHECK_DIR"
HISTORY_FILE = "history.jsonl"


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
            out.write(history_line(record))

    def load(self) -> list[CheckRecord]:
        """Every readable record, newest first."""
        self.unreadable = 0
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records, self.unreadable = parse_history(text)
        return records


@dataclass(frozen=True, slots=True)
class LoadedRun:
    """A past check read back from its folder."""

    record: CheckRecord
    verdict: Verdict
    progress: SuiteProgress


def write_verdict(files: RunFiles, record: CheckRecord, verdict: Verdict) -> None:
    files.verdict.write_text(verdict_json(record, verdict), encoding="utf-8")


def load_run(folder: Path) -> LoadedRun:
    """Read a check folder back: its record, verdict and the tests as they were reported."""
    files = RunFiles(folder)
    record, verdict = parse_verdict_json(files.verdict.read_text(encoding="utf-8"))
    texts = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in (files.collection, files.progress)
        if path.exists()
    ]
    return LoadedRun(record, verdict, read_progress(*texts))


def write_junit(path: Path, progress: SuiteProgress, verdict: Verdict, suite_title: str) -> None:
    """JUnit XML from the progress reports, plus the ERROR itself as an errored testcase
    (``report.junit_xml``): pytest writes its own at the end of a run; a run that was
    refused, cancelled, timed out or crashed has none, and CI must still see a file that
    fails."""
    path.write_bytes(junit_xml(progress, verdict, suite_title))


def read_output_tail(folder: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a run folder's ``output.log`` (none if it cannot be
    read)."""
    try:
        text = RunFiles(folder).output.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
