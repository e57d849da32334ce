"""``LoopThread``: a coroutine on a thread of its own with a plain asyncio loop.

What talks to a network from the monitor's process (the ingest following the capture, the
demo traffic, the chat) runs on one of these, never on the GUI thread: there, event
latency was 50–185 ms under a redrawing plot; on a thread of its own it is ~2 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class LoopThread:
    """A coroutine (``_run``) on a thread of its own with a plain asyncio loop.

    ``start()`` returns once the loop runs; ``stop()`` cancels the coroutine and joins the
    thread (the coroutine's ``finally`` blocks close its connections). ``asyncio.run`` also
    shuts down the loop's executor, so a stopped ``LoopThread`` leaves no thread behind.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        if self.running:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel ``_run`` and join the thread. Safe to call more than once."""
        thread, loop, task = self._thread, self._loop, self._task
        if thread is None:
            return
        if loop is not None and task is not None and thread.is_alive():
            # The loop may be finishing on its own right now (closed): nothing to cancel.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %.1f s", self.name, timeout)
            return
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            asyncio.run(self._guarded())
        finally:
            self._ready.set()  # in case the loop never started

    async def _guarded(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._run()
