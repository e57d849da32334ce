"""Record the sample recordings shipped in ``resources/recordings/``.

``python -m tests.mission_critical.record_samples [--out resources/recordings]`` runs an
embedded runtime, watches it through the real ingest path — its capture process records
exactly as the monitor records — drives a few users over real WebSockets and exports each
recording as JSON Lines:

- ``sample-clean.jsonl``: ordinary runs of every agent, no faults — a replay must find no
  error;
- ``sample-chaos.jsonl``: seeded faults, one kind per user: dropped, duplicated and
  reordered events, a crashing agent, failing tools, a run that never completes (flagged as
  stalled 15 s later) and a user who leaves mid-run (events delivered to nobody).

The live session's findings are printed; a replay of the file finds the same (the
regression test in ``test_recorded_regressions.py`` pins them). Regenerate only on purpose:
run ids and timings change every time, and the pinned counts may with them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.services.ingest import MonitorIngest, RecordingPlan
from monitor.services.recording import Recording, Replay, export_jsonl
from runtime.auth import Role
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from tests.conftest import test_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "resources" / "recordings"

CLEAN: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("ana", "12 times (3 + 4)", "calculator", {}),
    ("ben", "How do we rotate the signing key?", "researcher", {}),
    ("chen", "revenue by region", "data_analyst", {}),
    ("ana", "What is the refund policy for annual plans?", None, {}),
    ("ben", "load", "load", {"steps": 4, "tools": 2}),
]

CHAOS: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("dara", "load", "load", {"steps": 12, "tools": 3, "faults": {"chaos_drop": 0.3, "seed": 7}}),
    (
        "eli",
        "load",
        "load",
        {"steps": 12, "tools": 3, "faults": {"chaos_duplicate": 0.3, "seed": 7}},
    ),
    (
        "fatima",
        "load",
        "load",
        {"steps": 12, "tools": 3, "faults": {"chaos_reorder": 0.3, "seed": 7}},
    ),
    ("gus", "2^10 minus 24", "calculator", {"faults": {"agent_crash_rate": 1.0, "seed": 1}}),
    (
        "hana",
        "average p99_ms by service",
        "data_analyst",
        {"faults": {"tool_failure_rate": 1.0, "seed": 4}},
    ),
    ("ivan", "load", "load", {"steps": 3, "tools": 1, "faults": {"chaos_omit_terminal": 1.0}}),
]
#: how long the chaos recording goes on after its last run: the never-completed run is
#: flagged as stalled after the validator's 15 s
CHAOS_TAIL = 16.5


def record(name: str, runs: Sequence[tuple[str, str, str | None, dict[str, Any]]], *,
           out: Path, tail: float, leaver: bool) -> Path:  # fmt: skip
    runtime = EmbeddedRuntime(test_config(pace=0.05)).start()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    with tempfile.TemporaryDirectory() as scratch:
        ingest = MonitorIngest(
            session,
            runtime.url,
            runtime.issue_token("ops", Role.MONITOR),
            from_start=True,
            recording=RecordingPlan(Path(scratch)),
            kind="embedded",
        ).start()
        try:
            runtime.call(_drive(runtime, runs, leaver), timeout=60)
            time.sleep(tail)  # the live ingest keeps ticking the watchdogs meanwhile
        finally:
            ingest.stop()
            runtime.stop()
        assert ingest.recording is not None
        status = ingest.recording.status()
        live = Counter(r.finding.rule_id for r in session.store.findings)
        destination = out / f"{name}.jsonl"
        with Recording.open(status.path) as recording:
            export_jsonl(recording, destination)
            replay = Replay(recording)
            replay.run_to_end()
        print(f"{destination}: {status.written} frames, {destination.stat().st_size:,} bytes")
        print(f"  live:   {dict(sorted(live.items()))}")
        print(f"  replay: {dict(sorted(replay.rule_counts.items()))}")
    return destination


async def _drive(
    runtime: EmbeddedRuntime,
    runs: Sequence[tuple[str, str, str | None, dict[str, Any]]],
    leaver: bool,
) -> None:
    clients: dict[str, AgentClient] = {}
    try:
        for user, text, agent, options in runs:
            if user not in clients:
                clients[user] = await AgentClient.connect(runtime.url, runtime.issue_token(user))
            client = clients[user]
            if "chaos_omit_terminal" in options.get("faults", {}):
                await client.start_run(text, agent, options=options)
                continue  # never completes: nothing to wait for
            await client.run(text, agent, options=options, timeout=20)
        if leaver:
            # a user who closes the app mid-run: the run goes on, delivered to nobody
            gone = await AgentClient.connect(runtime.url, runtime.issue_token("jo"))
            await gone.start_run("load", "load", options={"steps": 6, "tools": 1, "rate": 3})
            await gone.close()
            await asyncio.sleep(3.0)
    finally:
        for client in clients.values():
            await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record("sample-clean", CLEAN, out=args.out, tail=1.0, leaver=False)
    record("sample-chaos", CHAOS, out=args.out, tail=CHAOS_TAIL, leaver=True)


if __name__ == "__main__":
    main()
