"""``FrameGate``: the GUI's frames get the interpreter; the ingest waits them out.

CPython runs one thread's bytecode at a time. Under a fast stream the ingest thread is
almost always runnable, and every call from Qt into Python while the GUI draws a frame
(each table cell, each paint hook of a plot) has to win the GIL back from it — after up to
the interpreter's 5 ms switch interval each time. Measured at 25,000 events/s: a frame
that takes 15 ms of CPU took 90–250 ms of wall time. Lowering the switch interval made
frames fast but starved the ingest in the same way.

So the two threads take turns, in coarse steps instead of thousands of 5 ms ones: the GUI
marks each frame (``with gate.frame(): …``) and the ingest calls ``yield_to_frame()``
between the frames it receives, sleeping — off the GIL — until the GUI's frame is drawn.
What arrives meanwhile waits in the socket's buffer; nothing is dropped. The ingest never
waits longer than ``max_wait`` for one frame, so a GUI that stops drawing (hung, or a bug)
only slows it down.

``share_across_threads`` gives a session the lock and the gate it needs before a thread of
``monitor.services`` starts feeding it (the model creates no thread primitives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from monitor.model.session import ObservationSession
from monitor.model.sharing import NoLock, OpenGate

#: the longest the ingest waits for one GUI frame (s): a frame takes ~10–30 ms
MAX_WAIT = 0.1


class FrameGate:
    """Open unless the GUI is drawing a frame; ``yield_to_frame`` waits while it is."""

    def __init__(self, max_wait: float = MAX_WAIT) -> None:
        self.max_wait = max_wait
        self._open = threading.Event()
        self._open.set()
        #: how often, and for how long in total (s), a caller waited for a frame
        self.waits = 0
        self.waited = 0.0

    @property
    def drawing(self) -> bool:
        return not self._open.is_set()

    @contextmanager
    def frame(self) -> Iterator[None]:
        """The GUI thread draws one frame inside this block."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def yield_to_frame(self) -> None:
        """Wait (off the GIL) until a frame being drawn is done, at most ``max_wait``.

        Costs one attribute read when no frame is being drawn.
        """
        if self._open.is_set():
            return
        start = time.perf_counter()
        self._open.wait(self.max_wait)
        self.waits += 1
        self.waited += time.perf_counter() - start


def share_across_threads(session: ObservationSession) -> None:
    """Give ``session`` a re-entrant lock for its store and a ``FrameGate``, unless it has
    them: call before the thread that will feed it starts."""
    if isinstance(session.store.lock, NoLock) or isinstance(session.frame_gate, OpenGate):
        lock = session.store.lock
        session.share(
            threading.RLock() if isinstance(lock, NoLock) else lock,
            FrameGate() if isinstance(session.frame_gate, OpenGate) else session.frame_gate,
        )
