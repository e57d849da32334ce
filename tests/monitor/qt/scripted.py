"""Scripted protocol traffic for widget tests: real v1 frames (``encode_event``), with each
chaos fault the runtime can inject applied by hand, so tests know exactly what to expect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor.model.session import ObservationSession
from runtime.protocol import Event, EventType, encode_event

T0 = 1_795_000_000.0


@dataclass
class Script:
    """Builds per-user streams (contiguous seq per user) of well-formed runs."""

    t: float = T0
    step: float = 0.01
    seqs: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def event(
        self, etype: EventType, user: str, run: str, data: dict[str, Any], agent: str = "analyst"
    ) -> Event:
        seq = self.seqs.get(user, 0) + 1
        self.seqs[user] = seq
        self.counter += 1
        self.t += self.step
        return Event(
            type=etype,
            event_id=f"ev{self.counter:08d}",
            seq=seq,
            user_id=user,
            thread_id=f"th_{user}_thread",
            run_id=run,
            agent_name=agent,
            timestamp=self.t,
            data=data,
        )

    def run(
        self,
        user: str,
        run: str,
        *,
        steps: int = 2,
        tools: int = 1,
        status: str | None = "completed",
        tool_completes: bool = True,
        text: str = "what is 6*7?",
    ) -> list[Event]:
        """One run; ``status=None`` leaves out ``agent_completed``."""
        out = [self.event(EventType.AGENT_STARTED, user, run, {"input": text})]
        for step in range(1, steps + 1):
            out.append(
                self.event(
                    EventType.AGENT_THINKING,
                    user,
                    run,
                    {"reasoning": f"thinking step {step}", "step": step},
                )
            )
        for tool in range(tools):
            call = f"call_{run}_{tool}"
            out.append(
                self.event(
                    EventType.TOOL_EXECUTING,
                    user,
                    run,
                    {"tool_call_id": call, "tool_name": "calculator", "parameters": {"x": 6}},
                )
            )
            if tool_completes:
                out.append(
                    self.event(
                        EventType.TOOL_COMPLETED,
                        user,
                        run,
                        {
                            "tool_call_id": call,
                            "tool_name": "calculator",
                            "status": "success",
                            "result": 42,
                            "duration_ms": 3.0,
                        },
                    )
                )
        if status is not None:
            data: dict[str, Any] = {"status": status, "duration_ms": 12.0}
            data["result" if status == "completed" else "error"] = (
                "42" if status == "completed" else "boom"
            )
            out.append(self.event(EventType.AGENT_COMPLETED, user, run, data))
        return out


def frames(events: list[Event]) -> list[bytes]:
    return [encode_event(e) for e in events]


def feed(
    session: ObservationSession, raws: list[bytes], start: float = T0, step: float = 0.01
) -> float:
    """Feed frames with increasing receive times; returns the last receive time."""
    at = start
    for raw in raws:
        at += step
        session.feed(raw, received_at=at)
    return at


@dataclass(frozen=True)
class Chaos:
    """What ``chaos_session`` fed, for the assertions."""

    session: ObservationSession
    end: float
    runs: dict[str, str]  # label -> run id


def chaos_traffic(script: Script) -> tuple[list[bytes], dict[str, str]]:
    """One run per fault, each on its own user's stream so every finding is attributable:

    - alice: clean run (completed); amy: failed run; ann: cancelled run
    - bob: a dropped event (seq gap -> AEM009 once the grace time passes)
    - carol: a duplicated event (AEM010)
    - dave: two events swapped (AEM011)
    - erin: no agent_completed (AEM012 stalled on a late tick; AEM016 when the stream ends)
    - frank: a tool that never completes (AEM013, and the run stalls: AEM012)
    """
    runs = {
        "clean": "run_alice_clean",
        "failed": "run_amy_failed",
        "cancelled": "run_ann_cancelled",
        "drop": "run_bob_drop",
        "duplicate": "run_carol_dup",
        "reorder": "run_dave_reorder",
        "no_completed": "run_erin_open",
        "tool_hang": "run_frank_hang",
    }
    out: list[bytes] = []
    out += frames(script.run("alice", runs["clean"]))
    out += frames(script.run("amy", runs["failed"], status="failed"))
    out += frames(script.run("ann", runs["cancelled"], status="cancelled"))
    bob = frames(script.run("bob", runs["drop"], steps=3))
    del bob[2]  # thinking step 2 never arrives
    out += bob
    carol = frames(script.run("carol", runs["duplicate"]))
    carol.insert(2, carol[1])  # thinking step 1 twice
    out += carol
    dave = frames(script.run("dave", runs["reorder"], steps=3))
    dave[2], dave[3] = dave[3], dave[2]  # step 3 before step 2
    out += dave
    out += frames(script.run("erin", runs["no_completed"], status=None))
    out += frames(script.run("frank", runs["tool_hang"], status=None, tool_completes=False))
    return out, runs


def iter_load(users: int, runs_per_user: int, steps: int, prefix: str = "") -> Iterator[bytes]:
    """A long, clean stream for soak tests: interleaved users, every run well-formed
    (``steps`` thinking steps and one tool call); ``prefix`` makes the user ids unique."""
    # fed at the session's receive clock, which checks timestamps against it (AEM024)
    script = Script(t=time.time(), step=0.0001)
    for r in range(runs_per_user):
        for u in range(users):
            user = f"{prefix}user{u:02d}"
            yield from frames(script.run(user, f"run_{prefix}{u:02d}_{r:05d}", steps=steps))
