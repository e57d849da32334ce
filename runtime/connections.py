"""Connections' outboxes and writers: each frame reaches its socket in order, promptly, and
in as few writes as possible, and a slow client delays nobody else.

Every connection (``Subscriber``) has a bounded outbox. Once per loop turn the
``WriteScheduler`` writes every outbox that has frames, each in one socket write (a busy
connection at most every ``COALESCE_S``); a connection whose client reads slowly is handed
to its own writer task, which waits for it, so one slow client never delays another. A
client that stops reading long enough for its outbox to overflow is closed as a slow
consumer (4008) and can resume. Each written or failed frame settles its event's
``DeliveryTicket`` with the ``DeliverySink`` (the manager, ``runtime.manager``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from .delivery import DeliverySink, DeliveryTicket
from .log_context import correlated
from .metrics import RuntimeMetrics
from .websockets_adapter import BatchWriter, batch_writer

log = logging.getLogger(__name__)

#: Close code for a connection whose outbox overflowed (application range 4000-4999).
CLOSE_SLOW_CONSUMER = 4008
#: most bytes of frames a writer takes from its queues for one write (bounds the transport
#: buffer beyond websockets' write limit when a client reads slowly)
MAX_WRITE_BYTES = 64 * 1024
#: a busy connection written to less than this long ago gets its next frames this long after
#: that write, all in one: a socket write (and the client's read) then carries several frames
#: instead of one, which takes a good part of the CPU both ends spend per frame
COALESCE_S = 0.002
#: how many times its send queue limit a writable connection may queue within one loop
#: turn (a burst) before it is closed as a slow consumer anyway
BURST_LIMIT = 4
#: a connection is busy while its last window of at least this long averaged more than one
#: frame per ``COALESCE_S`` (waiting then gathers company); any other connection is written
#: to on the next loop turn, undelayed
BUSY_WINDOW_S = 0.01


class Transport(Protocol):
    """What the manager needs of a WebSocket connection (websockets' ``ServerConnection``)."""

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass(eq=False)
class Subscriber:
    """One open connection: a user's chat connection or an observer."""

    transport: Transport
    user_id: str
    endpoint: str
    limit: int
    sink: DeliverySink
    scheduler: WriteScheduler
    metrics: RuntimeMetrics
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: every frame of its stream numbered after this was sent to it (or reported lost):
    #: the stream's last seq (monitor_seq) when it opened, as later ones reach it live,
    #: then lowered by each resume, so no resume sends a frame twice
    sent_through: int = 0
    #: a cluster node forwards only frames numbered after this (the ack's last_seq)
    live_after: int = 0
    closed: bool = False
    _queue: deque[tuple[bytes, DeliveryTicket | None]] = field(default_factory=deque)
    #: frames written before the outbox: the connection_ack, then resume's gap report and
    #: replayed frames. Not counted against ``limit``: replayed frames are the replay
    #: buffer's own bytes, so this is bounded by the replay buffer's size.
    _ahead: deque[bytes] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    #: writes queued frames in one socket write (None: the connection can't, see
    #: ``runtime.websockets_adapter``; its frames then go one ``send`` each)
    _batch: BatchWriter | None = None
    _writer: asyncio.Task[None] | None = None
    #: waiting in the scheduler's flush list
    _flush_pending: bool = False
    #: loop time of the last write by ``_flush``
    _last_write: float = -math.inf
    #: whether frames came faster than one per ``COALESCE_S`` in the last window
    _busy: bool = False
    _window_start: float = -math.inf
    _window_frames: int = 0
    #: the writer task has the connection (the client reads slowly, or it is closing)
    _writer_busy: bool = False
    #: frames the writer task took from the queues and is still sending
    _in_flight: int = 0
    #: why the outbox was closed ("": it is open)
    _closed_for: str = ""
    #: frames given to it after its outbox closed (none was sent): logged once, by ``stop``
    _late: int = 0

    def start(self) -> None:
        self._batch = batch_writer(self.transport)
        # The writer task logs as this connection (its ids are copied into the task).
        with correlated(user_id=self.user_id, connection_id=self.id):
            self._writer = asyncio.get_running_loop().create_task(
                self._drain(), name=f"outbox-{self.endpoint}-{self.id}"
            )

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def unsent(self) -> int:
        """Frames given to this connection and not yet written: queued, or being sent."""
        return len(self._queue) + len(self._ahead) + self._in_flight

    def put(self, payload: bytes, ticket: DeliveryTicket | None = None) -> None:
        """Queue a frame; never blocks. Overflow closes the connection (slow consumer)."""
        if self.closed:
            self._late += 1
            self.sink.send_failed(ticket, "closed", self.user_id)
            return
        queued = len(self._queue)
        # Over the limit is slow only while the socket cannot take frames (the writer task
        # waits on it): a burst queued within one loop turn to a writable connection (the
        # delivery reports of another connection's 5,000 failed frames, say) is written on
        # the next turn. A hard cap still bounds the memory a burst may take.
        if queued >= self.limit and (self._writer_busy or queued >= BURST_LIMIT * self.limit):
            self.sink.send_failed(ticket, "slow_consumer", self.user_id)
            self._overflow()
            return
        self._queue.append((payload, ticket))
        self._schedule_flush()

    def put_ahead(self, payloads: Iterable[bytes]) -> None:
        """Queue frames to be written before the outbox (see ``_ahead``)."""
        if self.closed:
            self._late += sum(1 for _ in payloads)
            return
        self._ahead.extend(payloads)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Have the scheduler write this connection's queued frames (once, however many)."""
        if not self._flush_pending:
            self._flush_pending = True
            self.scheduler.flush_later(self)

    def _warn(self, message: str, *args: object) -> None:
        """A WARNING about this connection: it carries the connection's user and id (over
        the ids of a run in effect: the run whose event it could not take)."""
        with correlated(user_id=self.user_id, connection_id=self.id):
            log.warning(message, *args, stacklevel=2)

    def _overflow(self) -> None:
        # One line for the whole close: every frame it will not send (queued, in flight, and
        # the one that overflowed), not one per frame; later ones are counted by ``stop``.
        self._warn(
            "closing %s connection %s of %s as a slow consumer (over %d frames queued): "
            "%d frame(s) not sent; the client can reconnect and resume",
            self.endpoint,
            self.id,
            self.user_id,
            self.limit,
            self.unsent + 1,
        )
        self.metrics.slow_consumer_closes.inc()
        self._fail_queued("slow_consumer", logged=True)
        asyncio.get_running_loop().create_task(
            self._close(CLOSE_SLOW_CONSUMER, f"send queue over {self.limit} frames; resume")
        )

    async def _close(self, code: int, reason: str) -> None:
        transport = self.transport
        # websockets drains the socket before it writes the close frame, and a client that
        # stopped reading never lets it drain: unbounded, the connection (and a failed send
        # for each of its user's events) stayed until the next keepalive ping, or forever
        # with keepalive off. After the close timeout the TCP connection is dropped instead.
        timeout = transport.close_timeout if isinstance(transport, Connection) else None
        try:
            async with asyncio.timeout(timeout):
                await transport.close(code, reason)
        except TimeoutError:
            assert isinstance(transport, Connection)  # no timeout is set otherwise
            self._warn(
                "connection %s of %s took no close frame within %gs (not reading): dropped",
                self.id,
                self.user_id,
                timeout,
            )
            if self._batch is not None:
                self._batch.abort()
        except (ConnectionClosed, OSError) as exc:
            self._warn("closing connection %s failed: %s", self.id, exc)

    def _fail_queued(self, reason: str, in_flight: int | None = None, logged: bool = False) -> None:
        """Close the outbox: fail every frame still queued. The first time, one WARNING
        counts every frame the connection will not send: queued, and ``in_flight`` (default:
        the writer task's, which it fails when its send ends), unless ``logged`` (the
        caller said it)."""
        first = not self.closed
        self.closed = True
        if first:
            self._closed_for = reason
            queued = len(self._queue) + len(self._ahead)
            unsent = queued + (self._in_flight if in_flight is None else in_flight)
            if unsent and not logged:
                self._warn(
                    "%d frame(s) for %s connection %s of %s not sent: %s",
                    unsent,
                    self.endpoint,
                    self.id,
                    self.user_id,
                    reason,
                )
        while self._queue:
            _, ticket = self._queue.popleft()
            self.sink.send_failed(ticket, reason, self.user_id)
        while self._ahead:
            self._ahead.popleft()
            self.sink.send_failed(None, reason)
        self._wakeup.set()

    def _take(self) -> tuple[list[bytes], list[DeliveryTicket | None]]:
        """The next frames to write, in order: ``_ahead`` first, up to ``MAX_WRITE_BYTES``."""
        frames: list[bytes] = []
        tickets: list[DeliveryTicket | None] = []
        size = 0
        ahead, queue = self._ahead, self._queue
        while ahead and size < MAX_WRITE_BYTES:
            frame = ahead.popleft()
            frames.append(frame)
            tickets.append(None)
            size += len(frame)
        while queue and size < MAX_WRITE_BYTES:
            frame, ticket = queue.popleft()
            frames.append(frame)
            tickets.append(ticket)
            size += len(frame)
        return frames, tickets

    def _flush(self, now: float) -> None:
        """Write everything queued, in as few socket writes as possible (the scheduler calls
        this for every connection with frames queued: on the next loop turn, or
        ``COALESCE_S`` after the connection's last write)."""
        self._flush_pending = False
        if self.closed or self._writer_busy:
            return  # nothing to write, or the writer task is writing in order
        batch = self._batch
        counts = self.scheduler
        while self._queue or self._ahead:
            if batch is None or not batch.writable():
                # The client reads slowly or the connection is closing: the writer task
                # waits for websockets' flow control or reports the failure.
                self._writer_busy = True
                self._wakeup.set()
                return
            frames, tickets = self._take()
            batch.write(frames)
            counts.socket_writes[self.endpoint] += 1
            self._last_write = now
            elapsed = now - self._window_start
            if elapsed >= BUSY_WINDOW_S:
                self._busy = self._window_frames * COALESCE_S > elapsed
                self._window_start, self._window_frames = now, 0
            self._window_frames += len(frames)
            counts.frames_sent[self.endpoint] += len(frames)
            self._settle(tickets)

    async def _drain(self) -> None:
        """The writer task: takes over from ``_flush`` while frames must wait, one send at a
        time (websockets' ``send`` waits for the write buffer to drain, or raises
        ``ConnectionClosed``), until nothing is queued or the connection is writable again."""
        while True:
            while not self._writer_busy or not (self._queue or self._ahead):
                self._writer_busy = False
                if self.closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            frames, tickets = self._take()
            written = 0
            self._in_flight = len(frames)
            try:
                for frame in frames:
                    await self.transport.send(frame, text=True)
                    written += 1
                    self._in_flight -= 1
            except ConnectionClosed:
                failed = len(tickets) - written
                self._account(tickets, written, "connection_closed")
                self._fail_queued("connection_closed", failed)
                return
            except asyncio.CancelledError:
                # stop() cancelled a write in flight: the frames not written failed like the
                # ones still queued (otherwise their delivery would never be reported).
                self._account(tickets, written, "disconnected")
                raise
            self._account(tickets, written)
            if self._batch is not None and self._batch.writable():
                # Writable again: back to one write per flush for whatever is queued.
                self._writer_busy = False
                if self._queue or self._ahead:
                    self._schedule_flush()

    def _account(
        self, tickets: list[DeliveryTicket | None], written: int, failure: str = ""
    ) -> None:
        """The writer task sent the first ``written`` of a batch (one send each); the rest
        failed with ``failure``."""
        self._in_flight = 0
        self._settle(tickets[:written])
        for ticket in tickets[written:]:
            self.sink.send_failed(ticket, failure, self.user_id)
        self.scheduler.frames_sent[self.endpoint] += written
        self.scheduler.socket_writes[self.endpoint] += written

    def _settle(self, tickets: Iterable[DeliveryTicket | None]) -> None:
        """Count the written frames' events as sent to this connection."""
        for ticket in tickets:
            if ticket is not None:
                self.sink.send_done(ticket, self.user_id)

    async def stop(self) -> None:
        """Stop writing: anything still queued is reported as failed."""
        if not self.closed:
            self._fail_queued("disconnected")
        elif self._late:
            # Counted since the outbox closed (a slow consumer's flood goes on until the
            # connection is gone): one line for all of them.
            self._warn(
                "%d more frame(s) for %s connection %s of %s not sent: given to it after "
                "it closed (%s)",
                self._late,
                self.endpoint,
                self.id,
                self.user_id,
                self._closed_for,
            )
            self._late = 0  # said: a second stop (shutdown and handler both) does not repeat it
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


class WriteScheduler:
    """Writes every connection that has frames queued once per loop turn, or, if it is busy,
    ``COALESCE_S`` after its last write; and counts frames and socket writes per endpoint
    (folded into the Prometheus counters when they are rendered: an increment there takes a
    lock, see ``runtime.metrics``)."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        self.frames_sent: dict[str, int] = dict.fromkeys(endpoints, 0)
        self.socket_writes: dict[str, int] = dict.fromkeys(self.frames_sent, 0)
        self._to_flush: list[Subscriber] = []
        self._flush_handle: asyncio.Handle | None = None
        self._deferred: list[Subscriber] = []
        self._deferred_handle: asyncio.TimerHandle | None = None

    def flush_later(self, sub: Subscriber) -> None:
        """Have ``sub``'s queued frames written on the next loop turn, together with
        whatever else is queued for it by then (every event emitted in this turn)."""
        self._to_flush.append(sub)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_queued)

    def _flush_queued(self) -> None:
        self._flush_handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        subs, self._to_flush = self._to_flush, []
        for sub in subs:
            if sub._busy and now - sub._last_write < COALESCE_S:
                # Busy and written moments ago: wait for more frames to share the next write.
                self._deferred.append(sub)
                if self._deferred_handle is None:
                    self._deferred_handle = loop.call_at(
                        sub._last_write + COALESCE_S, self._flush_deferred
                    )
            else:
                sub._flush(now)

    def _flush_deferred(self) -> None:
        # Connections deferred after the first one are written a little early: never late.
        self._deferred_handle = None
        now = asyncio.get_running_loop().time()
        subs, self._deferred = self._deferred, []
        for sub in subs:
            sub._flush(now)
