"""Synthetic event streams shaped like the ``load`` agent's, for the in-process benchmarks.

Each user runs the load agent back to back (``agent_started``, a thinking step, one tool
call, the other thinking steps, ``agent_completed``); users are interleaved round robin as
on a busy runtime. Envelopes are plain dicts, so a benchmark can build ``Event`` objects
(the validator) or ``/monitor`` frames (the monitor's store) without paying for the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.protocol.codec import Delivery, delivery_to_dict, dumps, event_from_dict
from runtime.protocol.events import Event

#: the load agent's default shape under ``agent-runtime load --rate 0``
STEPS_PER_RUN = 200
USERS = 20


def _run_events(run: int, steps: int) -> Iterator[tuple[str, dict[str, Any]]]:
    call_id = f"call_{run:016x}"
    yield "agent_started", {"input": f"load run {run}"}
    yield "agent_thinking", {"reasoning": f"load step 1 of {steps}", "step": 1}
    yield "tool_executing", {"tool_call_id": call_id, "tool_name": "echo", "parameters": {}}
    yield (
        "tool_completed",
        {
            "tool_call_id": call_id,
            "tool_name": "echo",
            "status": "success",
            "duration_ms": 0.05,
            "result": 0,
        },
    )
    for step in range(2, steps + 1):
        yield "agent_thinking", {"reasoning": f"load step {step} of {steps}", "step": step}
    yield (
        "agent_completed",
        {"status": "completed", "duration_ms": 12.5, "result": {"steps": steps}},
    )


def envelopes(
    total: int,
    *,
    users: int = USERS,
    steps: int = STEPS_PER_RUN,
    start: float = 1_700_000_000.0,
    rate: float = 25_000.0,
) -> Iterator[dict[str, Any]]:
    """``total`` event envelopes (dicts), ``rate`` events/s of server time from ``start``."""
    names = [f"bench-user-{u:02d}" for u in range(users)]
    seqs = [0] * users
    runs = [0] * users
    pending: list[Iterator[tuple[str, dict[str, Any]]]] = [_run_events(0, steps) for _ in names]
    for i in range(total):
        u = i % users
        try:
            kind, data = next(pending[u])
        except StopIteration:
            runs[u] += 1
            pending[u] = _run_events(runs[u], steps)
            kind, data = next(pending[u])
        seqs[u] += 1
        data["correlation_id"] = f"req_{u:04d}{runs[u]:012x}"
        yield {
            "type": kind,
            "event_id": f"{i:032x}",
            "seq": seqs[u],
            "user_id": names[u],
            "thread_id": f"th_{names[u]}",
            "run_id": f"run_{names[u]}_{runs[u]:08d}",
            "agent_name": "load",
            "timestamp": start + i / rate,
            "data": data,
        }


def events(total: int, **kwargs: Any) -> list[Event]:
    """``total`` validated ``Event`` objects (see ``envelopes``)."""
    return [event_from_dict(e) for e in envelopes(total, **kwargs)]


def monitor_frames(
    total: int, *, deliveries: bool = False, first_monitor_seq: int = 1, **kwargs: Any
) -> Iterator[bytes]:
    """The same events as ``/monitor`` frames, encoded as the runtime encodes them
    (``codec.dumps``: exact-size bytes, like a received frame), lazily, so a million of
    them never sit in memory at once. With ``deliveries`` each event is followed by its
    ``delivery`` report, as on a runtime's observer stream; ``monitor_seq`` counts both."""
    monitor_seq = first_monitor_seq
    for envelope in envelopes(total, **kwargs):
        envelope["monitor_seq"] = monitor_seq
        yield dumps(envelope)
        monitor_seq += 1
        if deliveries:
            report = Delivery(
                event_id=envelope["event_id"],
                user_id=envelope["user_id"],
                seq=envelope["seq"],
                connections=1,
                failed=0,
                latency_ms=0.2,
                monitor_seq=monitor_seq,
            )
            yield dumps(delivery_to_dict(report))
            monitor_seq += 1
