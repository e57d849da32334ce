"""``UserStream``: one user's events, numbered and kept for resume.

Every event of a user gets the next ``seq`` of that user's stream (1, 2, 3, … with no holes:
a client that sees a hole knows it lost something) and an ``event_id`` made of the stream's
random prefix and that ``seq`` in hex: 32 hex digits, unique without uuid4's cost per event,
and revealing nothing about any other user's stream.

Numbering is two steps, so that an event whose ``data`` cannot be encoded consumes no
number: ``next_event`` builds the event with the next number, ``record`` takes the number
once the frame exists.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from runtime.context import UserExecutionContext
from runtime.protocol import Event, EventType

from .resume import ResumeAnswer, answer_resume
from .store import StreamStore


def _keep(_seq: int, payload: bytes) -> bytes:
    return payload  # a user's frames are re-sent exactly as they were first sent


class UserStream:
    """One user's ``seq`` numbering, event ids and replay buffer."""

    __slots__ = ("id_prefix", "store", "user_id")

    def __init__(self, user_id: str, store: StreamStore[bytes]) -> None:
        self.user_id = user_id
        self.store = store
        self.id_prefix = secrets.token_hex(8)

    @property
    def last_seq(self) -> int:
        return self.store.last_seq

    def next_event(
        self,
        context: UserExecutionContext,
        event_type: EventType,
        data: Mapping[str, Any],
        timestamp: float,
    ) -> Event:
        """The user's next event; its ``seq`` is taken only by ``record``."""
        seq = self.store.last_seq + 1
        return Event(
            type=event_type,
            event_id=f"{self.id_prefix}{seq:016x}",
            seq=seq,
            user_id=self.user_id,
            thread_id=context.thread_id,
            run_id=context.run_id,
            agent_name=context.agent_name,
            timestamp=timestamp,
            data=data,
        )

    def record(self, event: Event, payload: bytes | None) -> None:
        """Take ``event``'s number and keep its frame for resume (``None``: nothing can be
        re-sent for it)."""
        self.store.append(event.seq, payload)

    def resume(self, after_seq: int, upto: int) -> ResumeAnswer:
        """The frames after ``after_seq`` up to ``upto`` (see ``answer_resume``)."""
        return answer_resume(self.store, after_seq, upto, _keep)
