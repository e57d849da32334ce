"""A runtime cluster's observer stream as real frames (``runtime.protocol.codec``): events
and delivery reports that name their node, ``node`` frames, one contiguous monitor_seq."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from runtime.protocol import Delivery, Event, EventType, NodeState, NodeStatus
from runtime.protocol.codec import delivery_to_dict, dumps, encode_event, node_status_to_dict

T0 = 1_795_000_000.0
NODE_A, NODE_B, NODE_C = "staging-a-4121", "staging-b-4123", "staging-c-4127"
#: what the node that ends a lost node's runs says (as ``ClusterStream.three_nodes`` has it)
LOST_DETAIL = f"lease expired; its 1 run was ended by {NODE_A}"


@dataclass
class ClusterStream:
    """Frames as an observer of a cluster receives them: ``(receive time, raw)``, 10 ms apart,
    with events stamped at their receive time (the session checks the two against each
    other) and every frame numbered by one monitor_seq."""

    t: float = T0
    step: float = 0.01
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    monitor_seq: int = 0
    seqs: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _next(self) -> tuple[float, int]:
        self.t += self.step
        self.monitor_seq += 1
        return self.t, self.monitor_seq

    def node(self, name: str, state: NodeState, detail: str) -> float:
        """A ``node`` frame; returns its receive time."""
        at, monitor_seq = self._next()
        status = NodeStatus(name, state, at, detail, monitor_seq)
        self.frames.append((at, dumps(node_status_to_dict(status))))
        return at

    def event(
        self,
        node: str | None,
        etype: EventType,
        user: str,
        run: str,
        data: dict[str, Any],
        *,
        delivered_by: tuple[str, ...] | None = None,
    ) -> Event:
        """One event from ``node`` and a delivery report from each node of ``delivered_by``
        (by default the emitting node; none for an event without a node)."""
        at, monitor_seq = self._next()
        seq = self.seqs.get(user, 0) + 1
        self.seqs[user] = seq
        event = Event(
            type=etype,
            event_id=f"ev{next(self._ids):06d}",
            seq=seq,
            user_id=user,
            thread_id=f"th_{user}",
            run_id=run,
            agent_name="analyst",
            timestamp=at,
            data=data,
            monitor_seq=monitor_seq,
            node=node,
        )
        self.frames.append((at, encode_event(event)))
        for by in delivered_by if delivered_by is not None else (node,) if node else ():
            at, monitor_seq = self._next()
            delivery = Delivery(event.event_id, user, seq, 1, 0, 2.0, monitor_seq, (user,), node=by)
            self.frames.append((at, dumps(delivery_to_dict(delivery))))
        return event

    def run(
        self,
        node: str | None,
        user: str,
        run: str,
        *,
        complete: bool = True,
        delivered_by: tuple[str, ...] | None = None,
    ) -> None:
        """A run on ``node``: started, thinking, a tool call, completed (``complete``)."""
        call = f"call_{run}"
        steps: list[tuple[EventType, dict[str, Any]]] = [
            (EventType.AGENT_STARTED, {"input": f"question of {user}"}),
            (EventType.AGENT_THINKING, {"reasoning": "working it out", "step": 1}),
            (
                EventType.TOOL_EXECUTING,
                {"tool_call_id": call, "tool_name": "calculator", "parameters": {"x": 6}},
            ),
            (
                EventType.TOOL_COMPLETED,
                {
                    "tool_call_id": call,
                    "tool_name": "calculator",
                    "status": "success",
                    "result": 42,
                    "duration_ms": 3.0,
                },
            ),
        ]
        if complete:
            steps.append(
                (
                    EventType.AGENT_COMPLETED,
                    {"status": "completed", "result": "42", "duration_ms": 40.0},
                )
            )
        for etype, data in steps:
            self.event(node, etype, user, run, data, delivered_by=delivered_by)

    @classmethod
    def three_nodes(cls, *, lost: bool = True, t: float = T0) -> ClusterStream:
        """Nodes a, b and c join and each runs one user's run; with ``lost``, b is then
        lost while dave's run is open on it, and a ends that run (``failed``); c runs on.
        The first frame arrives just after ``t``."""
        stream = cls(t=t)
        for name in (NODE_A, NODE_B, NODE_C):
            stream.node(name, NodeState.JOINED, "started")
        stream.run(NODE_A, "alice", "run_alice", delivered_by=(NODE_A, NODE_C))
        stream.run(NODE_B, "bob", "run_bob")
        stream.run(NODE_C, "carol", "run_carol")
        stream.run(NODE_B, "dave", "run_dave", complete=False)
        if lost:
            stream.node(NODE_B, NodeState.LOST, LOST_DETAIL)
            stream.event(
                NODE_A,
                EventType.AGENT_COMPLETED,
                "dave",
                "run_dave",
                {"status": "failed", "error": f"node {NODE_B} was lost", "duration_ms": 90.0},
            )
        stream.run(NODE_C, "erin", "run_erin")
        return stream
