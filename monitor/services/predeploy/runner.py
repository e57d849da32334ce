"""``CheckRun``: one check from start to verdict — preflight, the pytest subprocess, the
progress it streams, timeout, cancel, and the files it leaves behind.

The run is driven by ``poll()``, which never blocks: the GUI calls it from its refresh timer,
the headless command from a loop (``wait()``). The target probe runs on a short-lived
thread; pytest runs in its own process *group*, writing its terminal output, progress lines
and JUnit XML into the run's folder, so cancel and timeout kill the whole group — pytest and
anything it started (a load generator, a hung tool) — and nothing is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from monitor.model.clock import steady_time
from monitor.model.predeploy.command import CheckCommand, RunFiles, SuiteSpec, build_command
from monitor.model.predeploy.progress import SuiteProgress
from monitor.model.predeploy.report import CheckRecord, render_report
from monitor.model.predeploy.target import CheckTarget
from monitor.model.predeploy.verdict import ErrorCause, FindingSummary, RunOutcome, Verdict, decide

from .preflight import Refusal, probe_target
from .run_folders import CheckHistory, checks_dir, new_run_folder, write_junit, write_verdict
from .suite import (
    check_unavailable,
    child_environment,
    full_suite,
    missing,
    quick_suite,
    suite_python,
)

log = logging.getLogger(__name__)

#: how much of pytest's output is read back for crash reasons
OUTPUT_TAIL_BYTES = 65536
#: seconds to wait for a killed process group to be reaped
REAP_TIMEOUT = 10.0

FindingsSource = Callable[[float, float], Sequence[FindingSummary]]
Probe = Callable[[CheckTarget], "Refusal | None"]


class CheckState(StrEnum):
    PREFLIGHT = "preflight"
    RUNNING = "running"
    FINISHED = "finished"


class _Tail:
    """Reads whole new lines from a file another process appends to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_lines(self, final: bool = False) -> list[str]:
        try:
            with self.path.open("rb") as source:
                source.seek(self._offset)
                data = source.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        if final and self._partial:
            complete.append(self._partial)  # a last line without newline: feed it as it is
            self._partial = b""
        return [line.decode("utf-8", "replace") for line in complete]


class CheckRun:
    """One run of a suite against a target; ``start()``, then ``poll()`` until finished.

    ``findings(t0, t1)`` (optional) returns what the live validator raised in the run's
    window; it is attached to the verdict and the report. ``probe`` checks the target first
    (``preflight.probe_target``). ``root`` is where run folders and the history go.
    """

    def __init__(
        self,
        target: CheckTarget,
        suite: SuiteSpec,
        *,
        root: Path | None = None,
        findings: FindingsSource | None = None,
        probe: Probe = probe_target,
        python: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = steady_time,
    ) -> None:
        self.target = target
        self.suite = suite
        self.root = root if root is not None else checks_dir()
        self.progress = SuiteProgress()
        self.state = CheckState.PREFLIGHT
        self.verdict: Verdict | None = None
        self.record: CheckRecord | None = None
        self.command: CheckCommand | None = None
        self.files: RunFiles | None = None
        #: why the run's files could not be written (the verdict stands regardless)
        self.save_error = ""
        self.started_at = 0.0
        self.finished_at: float | None = None
        self._findings = findings
        self._probe = probe
        self._environ = dict(os.environ if environ is None else environ)
        self._python = python or suite_python(self._environ)
        self._clock = clock
        self._preflight: threading.Thread | None = None
        self._refusal: Refusal | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0
        self._tails: list[_Tail] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> CheckRun:
        """Create the run folder and start probing the target (returns at once)."""
        self.started_at = self._clock()
        self.files = RunFiles(new_run_folder(self.root, self.suite.key, self.started_at))
        if self._python is None:  # a bundled app without a Python to run pytest with
            self._finish(RunOutcome(None, 0.0, start_error=check_unavailable(self._environ)))
            return self
        absent = missing(self.suite)
        if absent:
            self._finish(
                RunOutcome(
                    None,
                    0.0,
                    start_error="the mission-critical suite is not where the monitor looks "
                    f"for it ({', '.join(absent)}); set AEM_CHECK_ROOT to the project folder",
                )
            )
            return self
        self._preflight = threading.Thread(
            target=self._run_probe, name="predeploy-preflight", daemon=True
        )
        self._preflight.start()
        return self

    def _run_probe(self) -> None:
        try:
            self._refusal = self._probe(self.target)
        except Exception as exc:  # a bug in the probe must still end in an ERROR verdict
            log.exception("the target probe failed")
            self._refusal = Refusal(f"the target probe failed: {exc!r}", ErrorCause.PREFLIGHT)

    @property
    def pid(self) -> int | None:
        """The pytest process id while it runs (its process group has the same id)."""
        return self._process.pid if self._process is not None else None

    @property
    def finished(self) -> bool:
        return self.state is CheckState.FINISHED

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since ``start()`` (frozen once finished)."""
        if self.finished_at is not None:
            return self.finished_at - self.started_at
        return (self._clock() if now is None else now) - self.started_at

    def poll(self) -> bool:
        """Advance the run without blocking; True if anything changed."""
        if self.state is CheckState.FINISHED:
            return False
        if self.state is CheckState.PREFLIGHT:
            assert self._preflight is not None
            if self._preflight.is_alive():
                return False
            refusal = self._refusal
            if refusal is not None:
                self._finish(
                    RunOutcome(
                        None,
                        self.elapsed(),
                        preflight_error=refusal.reason,
                        preflight_cause=refusal.cause,
                    )
                )
            else:
                self._launch()
            return True
        assert self._process is not None
        changed = self._read()
        code = self._process.poll()
        if code is not None:
            if os.name == "posix":
                self._kill_group(self._process.pid)  # whatever pytest left behind
            self._read(final=True)
            self._finish(RunOutcome(code, self.elapsed(), output_tail=self._output_tail()))
            return True
        if self._clock() - self._launched_at > self.suite.timeout:
            self._kill()
            self._read(final=True)
            self._finish(
                RunOutcome(
                    self._process.returncode,
                    self.elapsed(),
                    timed_out=self.suite.timeout,
                    output_tail=self._output_tail(),
                )
            )
            return True
        return changed

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Stop the run now: kill pytest and its children; the verdict is ERROR (``reason``)."""
        if self.state is CheckState.FINISHED:
            return
        if self._process is not None:
            self._kill()
            self._read(final=True)
        code = self._process.returncode if self._process is not None else None
        self._finish(
            RunOutcome(code, self.elapsed(), cancelled=reason, output_tail=self._output_tail())
        )

    def wait(
        self, interval: float = 0.1, on_change: Callable[[CheckRun], None] | None = None
    ) -> Verdict:
        """Poll until finished (blocking: for the headless command, not the GUI)."""
        while not self.finished:
            if self.poll() and on_change is not None:
                on_change(self)
            if not self.finished:
                time.sleep(interval)
        if on_change is not None:
            on_change(self)
        assert self.verdict is not None
        return self.verdict

    # --- the subprocess -----------------------------------------------------------------

    def _launch(self) -> None:
        assert self.files is not None and self._python is not None
        self.command = build_command(
            self.target,
            self.suite,
            self.files,
            python=self._python,
            base_env=child_environment(self._environ),
        )
        self._tails = [_Tail(self.files.collection), _Tail(self.files.progress)]
        options: dict[str, object] = {}
        if os.name == "posix":
            options["start_new_session"] = True  # its own process group: kill it whole
        else:
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        try:
            with self.files.output.open("wb") as output:
                output.write(f"$ {self.command.display()}\n\n".encode())
                output.flush()
                self._process = subprocess.Popen(
                    self.command.argv,
                    cwd=self.command.cwd,
                    env=dict(self.command.env),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    **options,  # type: ignore[call-overload]
                )
        except OSError as exc:
            self._finish(RunOutcome(None, self.elapsed(), start_error=str(exc)))
            return
        self._launched_at = self._clock()
        self.state = CheckState.RUNNING

    def _read(self, final: bool = False) -> bool:
        before = self.progress.lines
        for tail in self._tails:
            self.progress.feed_lines(tail.read_lines(final))
        return self.progress.lines != before

    def _kill(self) -> None:
        """Kill pytest's whole process group and reap pytest."""
        process = self._process
        if process is None or process.poll() is not None:
            if process is not None and os.name == "posix":
                self._kill_group(process.pid)  # children may outlive pytest itself
            return
        if os.name == "posix":
            self._kill_group(process.pid)
        else:
            subprocess.run(  # /T: the children too
                ["taskkill", "/F", "/T", "/PID", str(process.pid)],
                capture_output=True,
                check=False,
            )
            process.kill()
        try:
            process.wait(REAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("pytest (pid %d) did not exit after SIGKILL", process.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(pgid, signal.SIGKILL)

    def _output_tail(self) -> str:
        if self.files is None:
            return ""
        try:
            with self.files.output.open("rb") as output:
                output.seek(0, os.SEEK_END)
                size = output.tell()
                output.seek(max(0, size - OUTPUT_TAIL_BYTES))
                return output.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # --- the end ------------------------------------------------------------------------

    def _finish(self, outcome: RunOutcome) -> None:
        self.finished_at = self._clock()
        verdict = decide(self.progress, outcome)
        if self._findings is not None:
            verdict = verdict.with_findings(
                tuple(self._findings(self.started_at, self.finished_at))
            )
        self.verdict = verdict
        assert self.files is not None
        self.record = CheckRecord(
            id=self.files.folder.name,
            suite=self.suite.key,
            suite_title=self.suite.title,
            target=self.target.describe(),
            target_kind=self.target.kind,
            credentials=self.target.credentials(),
            started=self.started_at,
            duration=self.finished_at - self.started_at,
            verdict=verdict.kind.value,
            line=verdict.line(),
            counts=verdict.counts.to_dict(),
            findings=len(verdict.findings),
            exit_code=outcome.exit_code,
            command=self.command.display() if self.command is not None else "",
            folder=str(self.files.folder),
        )
        self.state = CheckState.FINISHED
        try:
            self._save(self.files, self.record, verdict)
        except OSError as exc:
            self.save_error = f"could not save the check in {self.files.folder}: {exc}"
            log.error("%s", self.save_error)

    def _save(self, files: RunFiles, record: CheckRecord, verdict: Verdict) -> None:
        if not files.junit.exists():
            write_junit(files.junit, self.progress, verdict, self.suite.title)
        write_verdict(files, record, verdict)
        files.report.write_text(
            render_report(record, verdict, self.progress, files.junit.name), encoding="utf-8"
        )
        CheckHistory(self.root).append(record)


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """What the GUI's check buttons run and where runs are kept.

    ``root`` None means ``checks_dir()`` (read when a check starts); ``full`` and ``quick``
    None mean the mission-critical suite and its quick validation. Tests swap in a small
    fixture suite and a temporary folder.
    """

    root: Path | None = None
    full: SuiteSpec | None = None
    quick: SuiteSpec | None = None
    probe: Probe = probe_target

    def suite(self, key: str) -> SuiteSpec:
        """``"full"`` or ``"quick"``."""
        if key == "quick":
            return self.quick or quick_suite()
        if key == "full":
            return self.full or full_suite()
        raise ValueError(f"unknown check {key!r}: use 'full' or 'quick'")

    def checks_root(self) -> Path:
        return self.root if self.root is not None else checks_dir()
