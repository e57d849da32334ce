"""``StreamNote``: what happened to the connection, kept in the recording between its frames.

Frames alone don't say when the monitor lost its connection, when it was back, or that the
runtime behind the URL restarted (sometimes only ``/healthz`` can tell). The process that
reads the socket writes a note for each of those, in order with the frames
(``after_frame``: the id of the last frame before it), so everything that reads the
recording — the live window following it, a replay, a headless check — applies them at the
same place in the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class NoteKind(StrEnum):
    #: a handshake completed; ``detail``: ``after`` (the resume point asked for, or None to
    #: join live), ``last_seq`` (the ack's), ``server_version``, ``instance_id``
    CONNECTED = "connected"
    #: an established connection ended; ``detail``: ``reason``
    DISCONNECTED = "disconnected"
    #: the runtime behind the URL is a new one; ``detail``: ``detail`` (how it was noticed)
    RESTARTED = "restarted"


@dataclass(frozen=True, slots=True)
class StreamNote:
    """One note: its kind, when, after which frame, and what it says."""

    kind: NoteKind
    at: float
    after_frame: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def encode_detail(self) -> str:
        return orjson.dumps(self.detail).decode()

    @classmethod
    def from_row(
        cls, note_id: int, after_frame: int, at: float, kind: str, detail: str
    ) -> StreamNote:
        """A note as stored; an unknown kind (a newer writer) raises ``ValueError``."""
        try:
            parsed = orjson.loads(detail)
        except orjson.JSONDecodeError:
            parsed = {}
        return cls(
            NoteKind(kind),
            float(at),
            int(after_frame),
            parsed if isinstance(parsed, dict) else {},
            int(note_id),
        )
