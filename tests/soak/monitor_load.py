"""monitor: the monitor's ingest under 20,000 events/s — no crash, bounded memory, no loss.

Headless: ``MonitorIngest`` (its own thread and loop, as in the app) feeding an
``ObservationSession`` (validator + ``EventStore``), with no window. The source is
``bare_ws replay`` from the benchmarks: a stand-in for a runtime's ``/monitor`` stream that
costs next to nothing to produce (load-agent events, each followed by its ``delivery``
report), paced at ``rate`` events/s, so the figures are the monitor's own.

Every second the scenario samples what the store holds and the process's resident memory.
The store is smaller than the stream (``store_capacity``), so it fills and wraps part-way:
from then on the store's arrays stay the same size, and memory may only grow with what is
kept per run (the session table), not per event.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from monitor.model.session import ObservationSession
from monitor.model.store import EventStore
from monitor.services.ingest import MonitorIngest
from monitor.services.run_archive import archived_store
from runtime.streams import ConnectionState
from tests.benchmarks.processes import bare_server_process
from tests.benchmarks.results import BenchmarkResult, Figure, Target
from tests.benchmarks.streams import STEPS_PER_RUN

from .figures import all_of, none_allowed

#: the replay server starts streaming this long after the ingest connected
REPLAY_DELAY = 1.0
CONNECT_TIMEOUT = 10.0
#: after the stream's scheduled end, wait at most this long for its last frames
DRAIN_TIMEOUT = 20.0
SAMPLE_INTERVAL = 1.0
POLL_INTERVAL = 0.01
#: events per run of the replayed stream (the load agent's: started, thinking steps, one
#: tool call's two events, completed)
RUN_EVENTS = STEPS_PER_RUN + 4


def rss_bytes(pid: int | str = "self") -> int:
    """A process's resident memory (Linux ``/proc``; 0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


@dataclass
class Sample:
    """One second of the run: when, how many events stored, resident memory."""

    t: float
    stored: int
    rss: int


@dataclass
class MonitorLoadReport:
    events: int
    rate: float
    store_capacity: int
    stored: int = 0
    frames: int = 0
    elapsed_s: float = 0.0
    events_per_s: float = 0.0
    #: the slowest whole second of ingest once the stream was under way
    slowest_second: float = 0.0
    findings_by_rule: dict[str, int] = field(default_factory=dict)
    disconnects: int = 0
    last_error: str = ""
    ingest_alive: bool = True
    samples: list[Sample] = field(default_factory=list)
    #: resident memory before the stream, when the store first wrapped, and at the end
    rss_start_mb: float = float("nan")
    rss_at_full_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    #: the most the ingest's capture process (which holds the WebSocket) had resident
    capture_rss_max_mb: float = 0.0
    #: memory growth after the store was full, per event and per run ingested meanwhile
    growth_per_event_after_full: float = float("nan")
    growth_per_run_after_full: float = float("nan")

    @property
    def lost(self) -> int:
        rules = self.findings_by_rule
        return self.events - self.stored + rules.get("AEM009", 0) + rules.get("AEM019", 0)


def ingest_under_load(
    rate: float = 20_000, duration: float = 60.0, store_capacity: int = 300_000
) -> MonitorLoadReport:
    """Stream ``rate * duration`` events through the monitor's ingest; see the module doc."""
    events = int(rate * duration)
    report = MonitorLoadReport(events, rate, store_capacity)
    args = (
        "replay",
        "--events",
        str(events),
        "--rate",
        f"{rate:g}",
        "--delay",
        f"{REPLAY_DELAY:g}",
    )
    session = ObservationSession(archived_store(capacity=store_capacity))
    store = session.store
    report.rss_start_mb = rss_bytes() / 2**20
    with bare_server_process(*args) as (url, _pid):
        # The replay server needs no token and has no /healthz (nothing to restart here).
        ingest = MonitorIngest(session, url, "no-token-needed", probe_health=False).start()
        try:
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while session.status.state is not ConnectionState.CONNECTED:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the ingest did not connect: {session.status}")
                time.sleep(0.01)
            started = time.monotonic()
            end = started + REPLAY_DELAY + duration + DRAIN_TIMEOUT
            full_at: Sample | None = None
            while store.total < events and time.monotonic() < end:
                _until_next_sample(started, len(report.samples), lambda: store.total >= events)
                sample = Sample(time.monotonic() - started, store.total, rss_bytes())
                report.samples.append(sample)
                capture = ingest.capture_pid  # the process holding the WebSocket
                if capture is not None:
                    report.capture_rss_max_mb = max(
                        report.capture_rss_max_mb, rss_bytes(capture) / 2**20
                    )
                if full_at is None and sample.stored >= store_capacity:
                    full_at = sample
                if not ingest.running:
                    break
            report.ingest_alive = ingest.running
            stats = ingest.stats()
            report.disconnects = stats.reconnects + stats.failed_attempts
            report.last_error = stats.last_error
        finally:
            ingest.stop()
    with store.lock:
        report.stored = store.total
        report.frames = session.frames
        report.findings_by_rule = dict(Counter(r.finding.rule_id for r in store.findings))
        columns = store.columns(max(0, store.total - store_capacity))
    times = columns["t"]
    if store.epoch is not None and len(times) and times[-1] > store.epoch:
        # from the first event received (the store's epoch) to the last
        report.events_per_s = (report.stored - 1) / float(times[-1] - store.epoch)
    report.elapsed_s = report.samples[-1].t if report.samples else 0.0
    report.slowest_second = _slowest_second(report.samples, events)
    if report.samples:
        report.rss_end_mb = report.samples[-1].rss / 2**20
    if full_at is not None and report.samples:
        last = report.samples[-1]
        report.rss_at_full_mb = full_at.rss / 2**20
        grown_by = last.stored - full_at.stored
        if grown_by > 0:
            report.growth_per_event_after_full = (last.rss - full_at.rss) / grown_by
            report.growth_per_run_after_full = (last.rss - full_at.rss) / (grown_by / RUN_EVENTS)
    return report


def _until_next_sample(started: float, taken: int, done: Callable[[], bool]) -> None:
    """Wait for the next sample's time (an absolute schedule: a slow sample does not push
    every later one back), or until ``done()``: the last sample is taken at the end."""
    next_at = started + (taken + 1) * SAMPLE_INTERVAL
    while time.monotonic() < next_at and not done():
        time.sleep(POLL_INTERVAL)


def _slowest_second(samples: list[Sample], events: int) -> float:
    """Events ingested in the slowest whole second between the stream's first and last
    second (ramp-up and tail left out)."""
    rates = [
        (b.stored - a.stored) / (b.t - a.t)
        for a, b in itertools.pairwise(samples)
        if a.stored > 0 and b.stored < events
    ]
    return min(rates, default=float("nan"))


# --- the soak -----------------------------------------------------------------------------

RATE = 20_000.0
#: the soak's store: full after a quarter of the run (15 s of a minute), so most of the run
#: goes on with it full; and never smaller than twice the store's ring of raw frames, so that
#: ring is full by then too
STORE_FILLED_AFTER = 0.25
#: what the monitor may keep per run once its store is full (the session table's row, the
#: run's tool spans and its validator state): memory grows with runs, never with events
RUN_BUDGET = 16 * 1024


def soak(duration: float) -> BenchmarkResult:
    """``RATE`` events/s for ``duration`` seconds into the monitor's ingest."""
    capacity = max(int(RATE * duration * STORE_FILLED_AFTER), 2 * EventStore().raw_capacity)
    report = ingest_under_load(RATE, duration, capacity)
    result = BenchmarkResult("monitor")
    result.details.update(
        {k: v for k, v in asdict(report).items() if k != "samples"}
        | {"samples": [(round(s.t, 2), s.stored, s.rss) for s in report.samples]}
    )
    rules = report.findings_by_rule
    for figure in (
        Figure(
            "monitor.events_per_s",
            report.events_per_s,
            "events/s",
            # behind by at most 3 s at the end of the minute: it kept up, give or take the
            # machine's other work
            targets=(Target(">=", 0.95 * RATE),),
            note=f"{RATE:,.0f}/s sent for {duration:g} s; slowest second "
            f"{report.slowest_second:,.0f}",
        ),
        all_of("monitor.events", report.stored, report.events, "events", "sent"),
        none_allowed(
            "monitor.lost",
            report.lost,
            "events",
            f"AEM009 {rules.get('AEM009', 0)}, AEM019 {rules.get('AEM019', 0)}",
        ),
        none_allowed(
            "monitor.findings",
            sum(rules.values()),
            "findings",
            ", ".join(f"{k} {v}" for k, v in sorted(rules.items())),
        ),
        none_allowed("monitor.disconnects", report.disconnects, note=report.last_error),
        Figure("monitor.ingest_alive", float(report.ingest_alive), "", targets=(Target(">=", 1),)),
        Figure(
            "monitor.rss_growth_per_run",
            report.growth_per_run_after_full,
            "B/run",
            targets=(Target("<=", RUN_BUDGET),),
            note=f"after the store filled ({capacity:,} rows): "
            f"{report.growth_per_event_after_full:.1f} B/event, {RUN_EVENTS} events/run",
        ),
        Figure(
            "monitor.rss_growth",
            report.rss_end_mb - report.rss_start_mb,
            "MiB",
            note=f"{report.rss_start_mb:.0f} -> {report.rss_end_mb:.0f} MiB resident; the "
            f"store's arrays {store_mib(capacity):.0f} MiB",
        ),
        Figure(
            "monitor.capture_rss_max",
            report.capture_rss_max_mb,
            "MiB",
            note="the capture process that holds the WebSocket and records",
        ),
    ):
        result.add(figure)
    return result


def store_mib(capacity: int) -> float:
    """What an ``EventStore`` of ``capacity`` rows holds in its fixed arrays, in MiB."""
    return EventStore(capacity=capacity).nbytes / 2**20
