"""Synthetic protocol frames for recording tests: well-formed runs, written or fed fast."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.model.recording.format import RecordingMeta
from monitor.services.recording.writer import RecordingWriter
from runtime.protocol import Event, EventType, encode_event

T0 = 1_795_000_000.0


def run_events(
    user: str, seq: int, at: float, *, tools: int = 1, run_id: str | None = None
) -> list[tuple[float, bytes]]:
    """One complete, valid run of ``user`` starting at stream ``seq``: (time, frame) pairs,
    1 ms apart."""
    run = run_id or f"run_{uuid.uuid4().hex[:12]}"
    kinds: list[tuple[EventType, dict[str, Any]]] = [
        (EventType.AGENT_STARTED, {"input": "hello"}),
        (EventType.AGENT_THINKING, {"reasoning": "thinking", "step": 1}),
    ]
    for n in range(tools):
        call = f"call_{run}_{n}"
        kinds.append(
            (EventType.TOOL_EXECUTING, {"tool_call_id": call, "tool_name": "t", "parameters": {}})
        )
        kinds.append(
            (
                EventType.TOOL_COMPLETED,
                {
                    "tool_call_id": call,
                    "tool_name": "t",
                    "status": "success",
                    "result": n,
                    "duration_ms": 1,
                },
            )
        )
    kinds.append(
        (EventType.AGENT_COMPLETED, {"status": "completed", "result": "ok", "duration_ms": 3})
    )
    out = []
    for i, (kind, data) in enumerate(kinds):
        event = Event(
            type=kind,
            event_id=uuid.uuid4().hex,
            seq=seq + i,
            user_id=user,
            thread_id="th_1",
            run_id=run,
            agent_name="load",
            timestamp=at + i * 0.001,
            data=data,
        )
        out.append((at + i * 0.001, encode_event(event)))
    return out


def traffic(
    runs: int, *, users: int = 4, t0: float = T0, spacing: float = 0.01
) -> Iterator[tuple[float, bytes]]:
    """``runs`` valid runs spread over ``users``, in time order."""
    seqs = dict.fromkeys(range(users), 1)
    for n in range(runs):
        user = n % users
        events = run_events(f"user{user}", seqs[user], t0 + n * spacing)
        seqs[user] += len(events)
        yield from events


def write_recording(
    path: Path,
    frames: list[tuple[float, bytes]] | Iterator[tuple[float, bytes]],
    *,
    meta: RecordingMeta | None = None,
    ended_at: float | None = None,
) -> Path:
    """A recording of ``frames`` written directly (no threads)."""
    writer = RecordingWriter(
        path, meta or RecordingMeta(created_at=T0, target="test", kind="embedded", late_join=False)
    )
    source = writer.source_id("test")
    batch = [(i, t, source, raw) for i, (t, raw) in enumerate(frames, 1)]
    for start in range(0, len(batch), 5000):
        writer.append(batch[start : start + 5000])
    if ended_at is not None:
        writer.set_meta(ended_at=ended_at)
    writer.close()
    return path
