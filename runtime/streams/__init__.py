"""Streams and resume without I/O: the numbering and replay of a user's stream and of the
observer stream (server side), a client's place in a stream across reconnects and runtime
restarts (``ResumeCursor``), and the reconnect delays (``Backoff``).

Nothing here reads a socket or a clock: the server (``runtime.connections``) and the
reconnecting clients (``runtime.reconnect``) do the I/O, and the tests drive these with
plain values.
"""

from .backoff import Backoff
from .cursor import AckKind, AckVerdict, ResumeCursor
from .link import ConnectionState
from .observer import (
    DeliveryFields,
    ObserverEntry,
    ObserverStream,
    delivery_open,
    node_field,
    observer_frame,
)
from .resume import ResumeAnswer, answer_resume
from .store import MemoryStore, SnapshotStore, StreamConflict, StreamStore
from .user import UserStream

__all__ = [
    "AckKind",
    "AckVerdict",
    "Backoff",
    "ConnectionState",
    "DeliveryFields",
    "MemoryStore",
    "ObserverEntry",
    "ObserverStream",
    "ResumeAnswer",
    "ResumeCursor",
    "SnapshotStore",
    "StreamConflict",
    "StreamStore",
    "UserStream",
    "answer_resume",
    "delivery_open",
    "node_field",
    "observer_frame",
]
