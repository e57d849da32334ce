"""validator: events/s through ``runtime.protocol.SequenceValidator`` alone.

A valid stream of 200,000 events (20 users running the load agent back to back) is built
first, as ``Event`` objects; only ``feed`` is timed. Every consumer of the protocol (the load
generator's clients, the suite, the monitor's ingest) pays this cost once per event.
"""

from __future__ import annotations

import time

from runtime.protocol import SequenceValidator

from .results import BenchmarkResult, Figure, Target
from .streams import events


def measure(quick: bool) -> BenchmarkResult:
    total = 20_000 if quick else 200_000
    result = BenchmarkResult("validator")
    stream = events(total)
    validator = SequenceValidator()
    findings = 0
    started = time.perf_counter()
    for event in stream:
        findings += len(validator.feed(event, event.timestamp))
    elapsed = time.perf_counter() - started
    open_at_end = len(validator.close(stream[-1].timestamp))  # each user's last run (AEM016)
    result.details.update(
        events=total, seconds=round(elapsed, 4), findings=findings, open_runs_at_end=open_at_end
    )
    result.add(
        Figure("validator.events_per_s", total / elapsed, "events/s", note=f"{total:,} events")
    )
    result.add(Figure("validator.us_per_event", elapsed / total * 1e6, "µs"))
    result.add(
        Figure(
            "validator.findings",
            float(findings),
            "findings",
            targets=(Target("<=", 0),),
            note="the stream is valid: a finding means the benchmark timed an error path",
        )
    )
    return result
