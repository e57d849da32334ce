"""day: a day of staging compressed into minutes, through the whole monitor; memory stays flat.

The monitor is left open all day. This scenario runs a day's worth of agent runs (at least
``RUNS``: 90,000) through it in ``duration`` seconds: a runtime process, the load generator
in another (``USERS`` users, each running short runs back to back), and in this process the
app's ``MainWindow`` (offscreen, redrawing as in the app) over ``Workspace.remote`` — its
capture process recording to a folder with a size limit, so retention trims while it runs.

Every ``SAMPLE_INTERVAL`` it samples the resident memory of this process (the window) and of
the capture process, the runs seen and held, and how far the window lags the stream. What
must hold: the window's memory at the end within ``GROWTH_BUDGET_MB`` of its value at five
minutes (half-way for runs shorter than ten) and under ``RSS_LIMIT_MB``; nothing lost; the
window caught up at the end; the recordings folder within its limit.
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from monitor._qt.main_window import MainWindow
from monitor.services.recording.storage import MB, RetentionPolicy, disk_use
from monitor.services.workspace import Workspace
from runtime.auth import Role, TokenAuthority
from runtime.streams import ConnectionState
from tests.benchmarks.frame_clock import themed_application
from tests.benchmarks.processes import (
    cores_used,
    cpu_snapshot,
    load_command,
    read_load_run,
    runtime_process,
    stop_process,
)
from tests.benchmarks.results import BenchmarkResult, Figure, Target

from .figures import none_allowed
from .monitor_load import rss_bytes

#: runs in a compressed day (a busy staging runtime: about one run a second for a day) …
RUNS = 90_000
#: … and how many the load generator is asked for, so that RUNS reach the monitor even
#: though its users ramp up and down
RUNS_ASKED = 92_000
USERS = 50
#: thinking steps per run: with started, one tool call's two events and completed, 10 events
STEPS = 6
#: the recordings folder's size limit during the soak (retention trims the live recording)
RETENTION_MB = 512.0
GROWTH_BUDGET_MB = 50.0
RSS_LIMIT_MB = 400.0
#: the baseline: the window's memory this long into the run (or half-way through a shorter one)
BASELINE_AT = 300.0
SAMPLE_INTERVAL = 5.0
CONNECT_TIMEOUT = 10.0
#: after the load generator ends, how long the window may take to show everything
DRAIN_TIMEOUT = 60.0
WINDOW_SIZE = (1400, 900)


@dataclass
class DaySample:
    t: float
    rss_mb: float
    capture_rss_mb: float
    runs: int
    held: int
    events: int
    behind: int


@dataclass
class DayReport:
    runs_asked: int
    duration_s: float
    samples: list[DaySample] = field(default_factory=list)
    runs_seen: int = 0
    events_stored: int = 0
    emitted: int = 0
    received: int = 0
    behind_at_end: int = 0
    findings_by_rule: dict[str, int] = field(default_factory=dict)
    folder_mb: float = 0.0
    trimmed_frames: int = 0
    cores: dict[str, float] = field(default_factory=dict)
    load: dict[str, object] = field(default_factory=dict)

    def rss_at(self, t: float) -> float:
        """The window's memory at the first sample at or after ``t`` (MB)."""
        for sample in self.samples:
            if sample.t >= t:
                return sample.rss_mb
        return self.samples[-1].rss_mb if self.samples else math.nan


#: the pace of the compressed day: RUNS_ASKED in ten minutes
RUNS_PER_S = RUNS_ASKED / 600.0


def compressed_day(duration: float = 600.0, runs: int = RUNS) -> DayReport:
    """Run ``runs`` runs through the monitor in ``duration`` seconds; see the module doc."""
    report = DayReport(runs, duration)
    # each user runs back to back; runs/s = USERS / run_seconds
    run_seconds = USERS * duration / runs
    rate = USERS * STEPS / run_seconds  # thinking steps/s over all users
    app = themed_application()
    with tempfile.TemporaryDirectory(prefix="aem-day-") as tmp, runtime_process() as runtime:
        folder = Path(tmp) / "recordings"
        token = TokenAuthority(runtime.secret).issue("day-monitor", Role.MONITOR)
        workspace = Workspace.remote(
            runtime.url,
            token,
            record_to=folder,
            retention=RetentionPolicy(max_total_mb=RETENTION_MB, max_age_days=0),
        )
        window = MainWindow(workspace)
        window.resize(*WINDOW_SIZE)
        window.show()
        gc.freeze()  # as run_app does once its window is up
        session, store, ingest = workspace.session, workspace.session.store, workspace.ingest
        try:
            _run_until(
                lambda: session.status.state is ConnectionState.CONNECTED,
                CONNECT_TIMEOUT,
                "the monitor to connect",
            )
            before_events = runtime.events_emitted()
            pids = {"runtime": runtime.pid, "capture": ingest.capture_pid or 0}
            cpu_before = cpu_snapshot({**pids, "window": os.getpid()}, {})
            load = subprocess.Popen(
                load_command(
                    runtime,
                    Path(tmp) / "load.json",
                    users=USERS,
                    rate=rate,
                    duration=duration,
                    run_seconds=run_seconds,
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started = time.monotonic()

            def sample() -> None:
                stats = ingest.stats()
                with store.lock:
                    runs_seen, held, events = len(store.runs), store.runs.held, store.total
                capture = ingest.capture_pid
                report.samples.append(
                    DaySample(
                        round(time.monotonic() - started, 1),
                        rss_bytes() / MB,
                        rss_bytes(capture) / MB if capture else 0.0,
                        runs_seen,
                        held,
                        events,
                        stats.behind,
                    )
                )

            sampler = QTimer()
            sampler.setInterval(int(SAMPLE_INTERVAL * 1000))
            sampler.timeout.connect(sample)
            sampler.start()
            _run_until(lambda: load.poll() is not None, duration + 120, "the load to end")
            report.emitted = runtime.events_emitted() - before_events
            _run_until(
                lambda: store.total >= report.emitted and ingest.stats().behind == 0,
                DRAIN_TIMEOUT,
                "the window to show every event",
                fail=False,
            )
            sampler.stop()
            sample()
            report.cores = cores_used(cpu_before, cpu_snapshot({**pids, "window": os.getpid()}, {}))
            stop_process(load)
            output = load.stdout.read() if load.stdout is not None else ""
            report.load = read_load_run(load, Path(tmp) / "load.json", duration, output).report
            stats = ingest.stats()
            with store.lock:
                report.runs_seen = len(store.runs)
                report.events_stored = store.total
                report.findings_by_rule = dict(Counter(r.finding.rule_id for r in store.findings))
            report.received = stats.received
            report.behind_at_end = stats.behind
            recording = workspace.recorder
            report.trimmed_frames = recording.status().trimmed if recording else 0
            report.folder_mb = disk_use(folder) / MB
        finally:
            window.close()
            app.processEvents()
    return report


def _run_until(
    condition: Callable[[], bool], timeout: float, what: str, *, fail: bool = True
) -> None:
    """Run Qt's event loop (the window redraws, as in the app) until ``condition()``."""
    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    timed_out = False

    def check() -> None:
        nonlocal timed_out
        if condition():
            loop.quit()
        elif time.monotonic() > deadline:
            timed_out = True
            loop.quit()

    poll = QTimer()
    poll.setInterval(200)
    poll.timeout.connect(check)
    poll.start()
    check()
    if not timed_out and not condition():
        loop.exec()
    poll.stop()
    if timed_out and fail:
        raise TimeoutError(f"{what} within {timeout:g} s")


def soak(duration: float = 600.0) -> BenchmarkResult:
    """Runs at a compressed day's pace for ``duration`` seconds through the whole monitor:
    at least ``RUNS`` in 600 s (``python -m tests.soak day --duration 600``), fewer in less."""
    report = compressed_day(duration, min(RUNS_ASKED, round(RUNS_PER_S * duration)))
    baseline_at = min(BASELINE_AT, duration / 2)
    baseline = report.rss_at(baseline_at)
    end = report.samples[-1].rss_mb if report.samples else math.nan
    peak = max((s.rss_mb for s in report.samples), default=math.nan)
    capture_peak = max((s.capture_rss_mb for s in report.samples), default=math.nan)
    rules = report.findings_by_rule
    result = BenchmarkResult("day")
    result.details.update(
        {k: v for k, v in asdict(report).items() if k != "samples"}
        | {"samples": [asdict(s) for s in report.samples]}
    )
    for figure in (
        Figure(
            "day.runs",
            report.runs_seen,
            "runs",
            targets=(Target(">=", min(RUNS, 0.97 * report.runs_asked)),),
            note=f"{report.runs_asked:,} asked in {report.duration_s:g} s; "
            f"{report.events_stored:,} events",
        ),
        Figure(
            "day.rss_growth",
            end - baseline,
            "MB",
            targets=(Target("<=", GROWTH_BUDGET_MB),),
            note=f"the window's resident memory: {baseline:.0f} MB at {baseline_at:g} s, "
            f"{end:.0f} MB at the end",
        ),
        Figure("day.rss_max", peak, "MB", targets=(Target("<", RSS_LIMIT_MB),)),
        Figure(
            "day.capture_rss_max",
            capture_peak,
            "MB",
            note="the capture process (socket + recording)",
        ),
        none_allowed(
            "day.lost",
            report.emitted - report.events_stored + rules.get("AEM009", 0) + rules.get("AEM019", 0),
            "events",
            f"emitted {report.emitted:,}, stored {report.events_stored:,}; "
            f"AEM009 {rules.get('AEM009', 0)}, AEM019 {rules.get('AEM019', 0)}",
        ),
        none_allowed("day.behind_at_end", report.behind_at_end, "frames"),
        Figure(
            "day.recordings_folder",
            report.folder_mb,
            "MB",
            targets=(Target("<=", RETENTION_MB * 1.05),),
            note=f"limit {RETENTION_MB:g} MB; {report.trimmed_frames:,} oldest frames trimmed",
        ),
        Figure("day.window_cores", report.cores.get("window", math.nan), "cores"),
        Figure("day.capture_cores", report.cores.get("capture", math.nan), "cores"),
    ):
        result.add(figure)
    return result
