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


def observer_frame(monitor_seq: int, entry: ObserverEntry) -> bytes:
    """The observer stream's frame for an entry."""
    if isinstance(entry, bytes):
        # The user's frame (one JSON object) plus its place in the observer stream.
        return entry[:-1] + b',"monitor_seq":%d}' % monitor_seq
    event_id, user_id, seq, connections, failed, latency_ms, recipients = entry
    return dumps(
        delivery_to_dict(
            Delivery(
                event_id,
                user_id,
                seq,
                connections,
                failed,
                round(latency_ms, 3),
                monitor_seq,
                recipients,
            )
        )
    )


class ObserverStream:
    """The ``monitor_seq`` numbering and replay buffer of the observer stream."""

    __slots__ = ("store",)

    def __init__(self, store: StreamStore[ObserverEntry]) -> None:
        self.store = store

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
        return answer_resume(self.store, after_seq, upto, observer_frame, seq_name="monitor_seq")
