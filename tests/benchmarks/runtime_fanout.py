"""runtime_fanout: events/s the runtime delivers to N connected users, against bare websockets.

Runtime: ``agent-runtime serve --port 0 --pace 0`` in a subprocess, driven by the load
generator (``agent-runtime load``, i.e. ``run_load``) in another subprocess: 20 users, rate 0
(as fast as the runtime goes), each user's runs back to back. Every event is decoded and
checked by the generator's ``SequenceValidator``; loss would show as ``lost``.

Baseline, same run: a bare websockets server subprocess (``bare_ws serve``) flooding the
same number of clients with the frames the runtime sends them (load-agent runs, encoded by
the runtime's codec, valid and contiguous), received by the load generator's own client
(``bare_ws count --check``: every frame decoded and validated, as in the runtime's run). Both
sides then do the same client work, and the ratio says how much of what websockets and that
client can move on this machine the runtime achieves. The two are measured in turns (bare,
runtime, bare, runtime), so load from other programs weighs on both alike. Clients that only
count frames (``bare_raw``, details only) show what websockets alone moves. The CPU seconds
each process used show which side was the bottleneck.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .processes import (
    LoadRun,
    RuntimeProcess,
    bare_server_process,
    cores_used,
    cpu_snapshot,
    run_bare_clients,
    run_load_processes,
    runtime_process,
)
from .results import BenchmarkResult, Figure, Target

USERS = 20
#: the baseline and the runtime are measured in turns, each this many times for a share of
#: the duration: load from other programs that comes and goes then weighs on both alike
TURNS = 2


@dataclass
class FanoutTurn:
    """One turn of load at the runtime's maximum rate: one load generator per runtime (a
    node of a cluster), at once, with the users shared out between them."""

    loads: list[LoadRun]
    #: cores each process used during the turn ("children": the load generators)
    cores: dict[str, float]
    #: CPU seconds each process used during the turn, and the turn's ``wall`` seconds
    cpu_s: dict[str, float]

    @property
    def events(self) -> int:
        return sum(int(load.report["events_received"]) for load in self.loads)

    @property
    def seconds(self) -> float:
        return max(float(load.report["elapsed_s"]) for load in self.loads)

    @property
    def defects(self) -> int:
        return sum(load.defects for load in self.loads)

    @property
    def lost(self) -> int:
        return sum(load.lost for load in self.loads)


def fanout_turn(
    runtimes: Sequence[RuntimeProcess],
    directory: Path,
    tag: str,
    *,
    duration: float,
    users: int = USERS,
    processes: dict[str, int] | None = None,
) -> FanoutTurn:
    """Load ``runtimes`` at rate 0 for ``duration`` s with ``users`` users in all, and the
    cores used meanwhile by each of ``processes`` (name -> pid; default: the runtimes)."""
    if processes is None:
        processes = {f"runtime{i or ''}": r.pid for i, r in enumerate(runtimes)}
    shares = [users // len(runtimes) + (i < users % len(runtimes)) for i in range(len(runtimes))]
    before = cpu_snapshot(processes, {})
    loads = run_load_processes(
        [
            (runtime, directory / f"load-{tag}-{i}.json", share)
            for i, (runtime, share) in enumerate(zip(runtimes, shares, strict=True))
        ],
        rate=0,
        duration=duration,
    )
    after = cpu_snapshot(processes, {})
    # "children" is the finished load generators; both include their start-up and drain
    cpu_s = {name: round(after[name] - before[name], 3) for name in before}
    return FanoutTurn(loads, cores_used(before, after), cpu_s)


def throughput(turns: Sequence[FanoutTurn]) -> float:
    """Events delivered per second over all the turns."""
    return sum(t.events for t in turns) / sum(t.seconds for t in turns)


def worst_latency(turns: Sequence[FanoutTurn], name: str) -> float:
    return max(load.latency_ms.get(name, float("nan")) for turn in turns for load in turn.loads)


def measure(quick: bool) -> BenchmarkResult:
    duration = 3.0 if quick else 8.0
    turn_s = duration / TURNS
    result = BenchmarkResult("runtime_fanout")
    details = result.details
    details.update(users=USERS, duration_s=duration, turns=TURNS)
    bare_turns: list[dict[str, Any]] = []
    turns: list[FanoutTurn] = []
    bare_cores: list[dict[str, float]] = []

    with (
        tempfile.TemporaryDirectory() as tmp,
        bare_server_process("serve") as (url, server_pid),
        runtime_process() as runtime,
    ):
        before = cpu_snapshot({"server": server_pid}, {})
        details["bare_raw"] = run_bare_clients(url, clients=USERS, duration=duration)
        details["bare_raw_cores_used"] = cores_used(
            before, cpu_snapshot({"server": server_pid}, {})
        )
        for turn in range(TURNS):
            before = cpu_snapshot({"server": server_pid}, {})
            bare_turns.append(run_bare_clients(url, clients=USERS, duration=turn_s, check=True))
            # "children" is the finished client process
            bare_cores.append(cores_used(before, cpu_snapshot({"server": server_pid}, {})))
            turns.append(fanout_turn([runtime], Path(tmp), str(turn), duration=turn_s))
    details.update(
        bare=bare_turns,
        bare_cores_used=bare_cores,
        runtime=[load.report for turn in turns for load in turn.loads],
        cores_used=[turn.cores for turn in turns],
    )
    findings = sum(b["findings"] for b in bare_turns)
    if findings:
        raise RuntimeError(f"the bare stream is not a valid one: {findings} findings")

    bare_rate = sum(b["frames"] for b in bare_turns) / sum(b["seconds"] for b in bare_turns)
    events = sum(turn.events for turn in turns)
    rate = throughput(turns)
    lost = sum(turn.lost for turn in turns)
    result.add(
        Figure(
            "runtime_fanout.events_per_s",
            rate,
            "events/s",
            baseline=bare_rate,
            baseline_of=f"bare websockets server -> {USERS} load-generator clients, frames/s",
            targets=(Target(">=", 20_000), Target(">=", 0.5, on="ratio")),
            note=f"{events:,} events in {TURNS} turns, lost {lost}",
        )
    )
    result.add(
        Figure(
            "runtime_fanout.vs_raw_websockets",
            rate,
            "events/s",
            baseline=float(details["bare_raw"]["frames_per_s"]),
            baseline_of=f"bare websockets server -> {USERS} clients counting frames, frames/s",
            note="what websockets alone moves: no decoding, no validation",
        )
    )
    for name in ("p50", "p99"):
        result.add(
            Figure(
                f"runtime_fanout.latency_{name}",
                worst_latency(turns, name),
                "ms",
                note=f"worst of {TURNS} turns",
            )
        )
    result.add(
        Figure(
            "runtime_fanout.lost",
            float(sum(turn.defects for turn in turns)),
            "events",
            targets=(Target("<=", 0),),
            note="lost + duplicated + out of order",
        )
    )
    return result
