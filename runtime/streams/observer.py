"""``ObserverStream``: every user's events and their delivery reports, numbered by
``monitor_seq``, for the ``/monitor`` endpoint.

An event's observer frame is the user's frame with its ``monitor_seq`` appended; a delivery
report is kept as its fields and encoded only when an observer needs it (live or on
resume), so a runtime that nobody observes pays only for keeping the entries.
"""

from __future__ import annotations

from runtime.protocol.codec import Delivery, delivery_to_dict, dumps

from .resume import ResumeAnswer, answer_resume
from .store import StreamStore

#: a delivery report's fields: event_id, user_id, seq, connections, failed, latency_ms,
#: recipients
DeliveryFields = tuple[str, str, int, int, int, float, tuple[str, ...]]
#: what the observer stream keeps per number: an event's user frame, or a delivery report
ObserverEntry = bytes | DeliveryFields


def node_field(node_id: str) -> bytes:
    """The ``"node"`` member observer frames carry, encoded once per node."""
    return b',"node":' + dumps({"n": node_id})[5:-1]


def observer_frame(monitor_seq: int, entry: ObserverEntry, node: bytes = b"") -> bytes:
    """The observer stream's frame for an entry; ``node`` is ``node_field``'s member (the
    node that emitted the event or delivered it)."""
    if isinstance(entry, bytes):
        # The user's frame (one JSON object) plus the node and its place in the stream.
        return entry[:-1] + node + b',"monitor_seq":%d}' % monitor_seq
    event_id, user_id, seq, connections, failed, latency_ms, recipients = entry
    report = dumps(
        delivery_to_dict(
            Delivery(
                event_id, user_id, seq, connections, failed, round(latency_ms, 3), None, recipients
            )
        )
    )
    return report[:-1] + node + b',"monitor_seq":%d}' % monitor_seq


class ObserverStream:
    """The ``monitor_seq`` numbering and replay buffer of the observer stream."""

    __slots__ = ("node", "store")

    def __init__(self, store: StreamStore[ObserverEntry], node: bytes = b"") -> None:
        self.store = store
        #: ``node_field`` of the node that keeps this stream
        self.node = node

    @property
    def last_seq(self) -> int:
        return self.store.last_seq

    def publish(self, entry: ObserverEntry) -> int:
        """Number ``entry`` and keep it; returns its ``monitor_seq``."""
        monitor_seq = self.store.last_seq + 1
        self.store.append(monitor_seq, entry)
        return monitor_seq

    def resume(self, after_seq: int, upto: int) -> ResumeAnswer:
        """The frames after ``after_seq`` up to ``upto`` (see ``answer_resume``)."""
        node = self.node
        return answer_resume(
            self.store,
            after_seq,
            upto,
            lambda seq, entry: observer_frame(seq, entry, node),
            seq_name="monitor_seq",
        )
