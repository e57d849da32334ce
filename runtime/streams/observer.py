"""``ObserverStream``: every user's events and their delivery reports, numbered by
``monitor_seq``, for the ``/monitor`` endpoint.

An event's observer frame is the user's frame with its ``monitor_seq`` appended; a delivery
report is kept as its fields and encoded only when an observer needs it (live or on
resume), so a runtime that nobody observes pays only for keeping the entries.
"""

from __future__ import annotations

from runtime.protocol.codec import dumps

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


def delivery_open(fields: DeliveryFields) -> bytes:
    """A delivery report's frame up to (not including) its ``node``, ``monitor_seq`` and
    closing brace: what ``delivery_to_dict`` encodes, written directly (one is made per
    event and connection node). Ids are plain names the protocol checks (letters, digits
    and ``_.:@-``), so none needs escaping."""
    event_id, user_id, seq, connections, failed, latency_ms, recipients = fields
    listed = b'","'.join(r.encode() for r in recipients)
    return (
        b'{"type":"delivery","event_id":"%s","user_id":"%s","seq":%d,"connections":%d,'
        b'"failed":%d,"latency_ms":%s,"recipients":[%s]'
        % (
            event_id.encode(),
            user_id.encode(),
            seq,
            connections,
            failed,
            repr(round(latency_ms, 3)).encode(),
            b'"' + listed + b'"' if recipients else b"",
        )
    )


def observer_frame(monitor_seq: int, entry: ObserverEntry, node: bytes = b"") -> bytes:
    """The observer stream's frame for an entry; ``node`` is ``node_field``'s member (the
    node that emitted the event or delivered it)."""
    # The user's frame (one JSON object) or the report, plus the node and its place.
    open_frame = entry[:-1] if isinstance(entry, bytes) else delivery_open(entry)
    return open_frame + node + b',"monitor_seq":%d}' % monitor_seq


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
