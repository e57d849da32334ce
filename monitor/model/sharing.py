"""What a session shared between threads is given: a lock for its store and a gate for the
GUI's frames — as protocols, with the stand-ins a session used by one thread needs.

The model starts no threads and creates no thread primitives. A session is fed by one
thread unless something in ``monitor.services`` feeds it from another (the ingest thread):
that service hands it real ones (``ObservationSession.share``) before its thread starts —
a re-entrant ``threading.RLock`` for the store and a ``FrameGate`` for the frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Protocol


class Lock(Protocol):
    """A re-entrant lock, used as a context manager (``with store.lock: …``)."""

    def __enter__(self) -> object: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> object: ...


class NoLock:
    """The lock of a store only one thread touches: entering it costs a call, nothing else."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None:
        return None


class FrameGate(Protocol):
    """The GUI marks each frame it draws (``with gate.frame(): …``); whatever feeds the
    session calls ``yield_to_frame()`` between frames it receives
    (``monitor.services.frame_gate``)."""

    waits: int
    waited: float

    @property
    def drawing(self) -> bool: ...

    def frame(self) -> AbstractContextManager[None]: ...

    def yield_to_frame(self) -> None: ...


class OpenGate:
    """The frame gate of a session fed on the GUI's own thread (a replay, a test): nothing
    to wait for."""

    def __init__(self) -> None:
        self.waits = 0
        self.waited = 0.0

    @property
    def drawing(self) -> bool:
        return False

    @contextmanager
    def frame(self) -> Iterator[None]:
        yield

    def yield_to_frame(self) -> None:
        return None
