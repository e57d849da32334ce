"""``StreamTail``: forwards one shared stream to this node's connections, each number once
and in order, whatever the channel does.

The channel delivers at most once (a message sent while the subscription connection was
down is gone), so the tail remembers the last number it forwarded. A number it has seen is
skipped; a hole is filled from the stream Redis keeps before anything after it goes out,
and what arrives meanwhile waits its turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .records import ChannelFrame

log = logging.getLogger(__name__)

#: reads the stream's kept frames numbered ``after < n <= upto`` (an empty frame: a number
#: used with nothing to send)
Fetch = Callable[[int, int], Awaitable[list[ChannelFrame]]]


class StreamTail:
    """How far this node has forwarded one stream, and the forwarding itself."""

    def __init__(self, name: str, forward: Callable[[ChannelFrame], None], fetch: Fetch) -> None:
        self.name = name
        self._forward = forward
        self._fetch = fetch
        #: every number up to this was forwarded, or is known to be lost
        self.delivered = 0
        #: this node receives the stream's channel
        self.subscribed = False
        self._filling: asyncio.Task[None] | None = None
        self._backlog: list[ChannelFrame] = []

    def start_at(self, last: int) -> None:
        """Subscribed now: numbers after ``last`` will arrive on the channel."""
        self.subscribed = True
        self.delivered = max(self.delivered, last)

    def take(self, frames: list[ChannelFrame]) -> None:
        """Forward the frames of one channel message."""
        if self._filling is not None:
            self._backlog.extend(frames)
            return
        if self._backlog:  # left by a fill that failed: they go first
            frames, self._backlog = self._backlog + frames, []
        for index, frame in enumerate(frames):
            if frame.seq <= self.delivered:
                continue
            if frame.seq > self.delivered + 1:
                self._backlog = frames[index:]
                self._filling = asyncio.get_running_loop().create_task(
                    self._fill(frame.seq - 1), name=f"fill-{self.name}"
                )
                return
            self.delivered = frame.seq
            if frame.frame:
                self._forward(frame)

    async def catch_up(self, upto: int) -> None:
        """Forward everything up to ``upto`` before returning."""
        while self._filling is not None:
            await asyncio.shield(self._filling)
        if self.delivered < upto:
            self._filling = asyncio.get_running_loop().create_task(
                self._fill(upto), name=f"fill-{self.name}"
            )
            await asyncio.shield(self._filling)

    async def _fill(self, upto: int) -> None:
        try:
            frames = await self._fetch(self.delivered, upto)
        except Exception as exc:
            # Nothing is skipped: the next message, or the catch-up after a reconnect,
            # tries again from the same place.
            log.warning(
                "%s: could not read %d..%d back from Redis: %s",
                self.name,
                self.delivered + 1,
                upto,
                exc,
            )
            self._filling = None
            return
        missing = (upto - self.delivered) - len(frames)
        for frame in frames:
            if frame.seq > self.delivered:
                self.delivered = frame.seq
                if frame.frame:
                    self._forward(frame)
        if missing > 0:
            # Trimmed from Redis already: connections see the hole and can ask for resume.
            log.warning(
                "%s: %d frame(s) up to %d are no longer in Redis and were not forwarded",
                self.name,
                missing,
                upto,
            )
        self.delivered = max(self.delivered, upto)
        self._filling = None
        backlog, self._backlog = self._backlog, []
        if backlog:
            self.take(backlog)
