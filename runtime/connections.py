"""``WebSocketManager``: per-user connections, per-user ``seq``, replay buffers and fan-out.

Every event is routed by the user id of the context that emitted it, never broadcast. Each
connection has a bounded outbox. Once per loop turn the manager writes every outbox that has
frames, each in one socket write (a busy connection at most every ``COALESCE_S``); a
connection whose client reads slowly is handed to its own writer task, which waits for it,
so one slow client never delays another. Every emitted event goes into its user's replay
buffer, so a run keeps going while its user is disconnected and the events wait there for
``resume``.

The observer stream (``/monitor``) gets every event with a ``monitor_seq`` and, once each
event's sends have finished, a ``delivery`` report.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from .context import UserExecutionContext
from .faults import ChaosAction, FaultPlan
from .metrics import RuntimeMetrics
from .protocol import Event, EventType
from .protocol.codec import (
    ConnectionAck,
    Delivery,
    ErrorFrame,
    delivery_to_dict,
    dumps,
    encode_ack,
    encode_error,
    encode_event,
)

log = logging.getLogger(__name__)

#: Close code for a connection whose outbox overflowed (application range 4000-4999).
CLOSE_SLOW_CONSUMER = 4008
USER_ENDPOINT = "ws"
MONITOR_ENDPOINT = "monitor"
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


class UnencodableEventError(ValueError):
    """An event's ``data`` cannot be encoded as JSON; no seq was consumed for it."""


class Transport(Protocol):
    """What the manager needs of a WebSocket connection (websockets' ``ServerConnection``)."""

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


def _can_write_batch(connection: Connection) -> bool:
    """Whether frames can go straight to the socket without waiting (``_write_batch``): the
    connection is open and its write buffer below websockets' limit (else ``send`` waits)."""
    return (
        connection.protocol.state is State.OPEN
        and not connection.paused
        and not connection.transport.is_closing()
    )


def _write_batch(connection: Connection, frames: Sequence[bytes]) -> None:
    """Frame every payload as a text message and hand them to the socket in one write.

    websockets' ``send`` writes each message on its own, one syscall per frame on an idle
    socket; its Sans-I/O protocol frames them, and one write sends them all.
    """
    protocol = connection.protocol
    for frame in frames:
        protocol.send_text(frame)
    connection.transport.writelines(protocol.data_to_send())


class _Ticket:
    """Tracks one event's sends so its ``delivery`` report can be made when they finish.

    ``recipients`` are the users of the connections that settled the ticket (each says
    whose it is): the report names who was sent the event, not who it was meant for, so a
    routing bug that hands it to another user's connection shows on the observer stream.
    """

    __slots__ = ("_recipients", "event", "failed", "ok", "pending")

    def __init__(self, event: Event, pending: int) -> None:
        self.event = event
        self.pending = pending
        self.ok = 0
        self.failed = 0
        # nearly always one user: a set is made only when a second one turns up
        self._recipients: str | set[str] | None = None

    def add_recipient(self, user_id: str) -> None:
        known = self._recipients
        if known is None:
            self._recipients = user_id
        elif isinstance(known, str):
            if known != user_id:
                self._recipients = {known, user_id}
        else:
            known.add(user_id)

    @property
    def recipients(self) -> tuple[str, ...]:
        """The users sent the event, sorted."""
        known = self._recipients
        if known is None:
            return ()
        return (known,) if isinstance(known, str) else tuple(sorted(known))


@dataclass(eq=False)
class Subscriber:
    """One open connection: a user's chat connection or an observer."""

    transport: Transport
    user_id: str
    endpoint: str
    limit: int
    manager: WebSocketManager
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: the stream's last seq (monitor_seq on the observer stream) when this connection
    #: opened: later events reach it live, so ``resume`` replays at most up to here
    sent_through: int = 0
    closed: bool = False
    _queue: deque[tuple[bytes, _Ticket | None]] = field(default_factory=deque)
    #: frames written before the outbox: the connection_ack, then resume's gap report and
    #: replayed frames. Not counted against ``limit``: replayed frames are the replay
    #: buffer's own bytes, so this is bounded by the replay buffer's size.
    _ahead: deque[bytes] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.Task[None] | None = None
    #: waiting in the manager's flush list
    _flush_pending: bool = False
    #: loop time of the last write by ``_flush``
    _last_write: float = -math.inf
    #: whether frames came faster than one per ``COALESCE_S`` in the last window
    _busy: bool = False
    _window_start: float = -math.inf
    _window_frames: int = 0
    #: the writer task has the connection (the client reads slowly, or it is closing)
    _writer_busy: bool = False

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._drain(), name=f"outbox-{self.endpoint}-{self.id}"
        )

    @property
    def queued(self) -> int:
        return len(self._queue)

    def put(self, payload: bytes, ticket: _Ticket | None = None) -> None:
        """Queue a frame; never blocks. Overflow closes the connection (slow consumer)."""
        if self.closed:
            self.manager._send_failed(ticket, "closed", self.user_id)
            return
        queued = len(self._queue)
        # Over the limit is slow only while the socket cannot take frames (the writer task
        # waits on it): a burst queued within one loop turn to a writable connection (the
        # delivery reports of another connection's 5,000 failed frames, say) is written on
        # the next turn. A hard cap still bounds the memory a burst may take.
        if queued >= self.limit and (self._writer_busy or queued >= BURST_LIMIT * self.limit):
            self.manager._send_failed(ticket, "slow_consumer", self.user_id)
            self._overflow()
            return
        self._queue.append((payload, ticket))
        self._schedule_flush()

    def put_ahead(self, payloads: Iterable[bytes]) -> None:
        """Queue frames to be written before the outbox (see ``_ahead``)."""
        if not self.closed:
            self._ahead.extend(payloads)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Have the manager write this connection's queued frames (once, however many)."""
        if not self._flush_pending:
            self._flush_pending = True
            self.manager._flush_later(self)

    def _overflow(self) -> None:
        log.warning(
            "closing %s connection %s of %s: %d frames unsent (slow consumer); "
            "the client can reconnect and resume",
            self.endpoint,
            self.id,
            self.user_id,
            len(self._queue),
        )
        self.manager.metrics.slow_consumer_closes.inc()
        self._fail_queued("slow_consumer")
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
            log.warning(
                "connection %s of %s took no close frame within %gs (not reading): dropped",
                self.id,
                self.user_id,
                timeout,
            )
            transport.transport.abort()
        except (ConnectionClosed, OSError) as exc:
            log.warning("closing connection %s failed: %s", self.id, exc)

    def _fail_queued(self, reason: str) -> None:
        self.closed = True
        if self._queue:
            log.warning(
                "%d frame(s) for %s connection %s of %s not sent: %s",
                len(self._queue),
                self.endpoint,
                self.id,
                self.user_id,
                reason,
            )
        while self._queue:
            _, ticket = self._queue.popleft()
            self.manager._send_failed(ticket, reason, self.user_id)
        while self._ahead:
            self._ahead.popleft()
            self.manager._send_failed(None, reason)
        self._wakeup.set()

    def _take(self) -> tuple[list[bytes], list[_Ticket | None]]:
        """The next frames to write, in order: ``_ahead`` first, up to ``MAX_WRITE_BYTES``."""
        frames: list[bytes] = []
        tickets: list[_Ticket | None] = []
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
        """Write everything queued, in as few socket writes as possible (the manager calls
        this for every connection with frames queued: on the next loop turn, or
        ``COALESCE_S`` after the connection's last write)."""
        self._flush_pending = False
        if self.closed or self._writer_busy:
            return  # nothing to write, or the writer task is writing in order
        transport = self.transport
        while self._queue or self._ahead:
            if not isinstance(transport, Connection) or not _can_write_batch(transport):
                # The client reads slowly or the connection is closing: the writer task
                # waits for websockets' flow control or reports the failure.
                self._writer_busy = True
                self._wakeup.set()
                return
            frames, tickets = self._take()
            _write_batch(transport, frames)
            self.manager._socket_writes[self.endpoint] += 1
            self._last_write = now
            elapsed = now - self._window_start
            if elapsed >= BUSY_WINDOW_S:
                self._busy = self._window_frames * COALESCE_S > elapsed
                self._window_start, self._window_frames = now, 0
            self._window_frames += len(frames)
            self.manager._frames_sent[self.endpoint] += len(frames)
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
            try:
                for frame in frames:
                    await self.transport.send(frame, text=True)
                    written += 1
            except ConnectionClosed:
                self._account(tickets, written, "connection_closed")
                self._fail_queued("connection_closed")
                return
            except asyncio.CancelledError:
                # stop() cancelled a write in flight: the frames not written failed like the
                # ones still queued (otherwise their delivery would never be reported).
                self._account(tickets, written, "disconnected")
                raise
            self._account(tickets, written)
            if isinstance(self.transport, Connection) and _can_write_batch(self.transport):
                # Writable again: back to one write per flush for whatever is queued.
                self._writer_busy = False
                if self._queue or self._ahead:
                    self._schedule_flush()

    def _account(self, tickets: list[_Ticket | None], written: int, failure: str = "") -> None:
        """The writer task sent the first ``written`` of a batch (one send each); the rest
        failed with ``failure``."""
        manager = self.manager
        self._settle(tickets[:written])
        for ticket in tickets[written:]:
            manager._send_failed(ticket, failure, self.user_id)
        manager._frames_sent[self.endpoint] += written
        manager._socket_writes[self.endpoint] += written

    def _settle(self, tickets: Iterable[_Ticket | None]) -> None:
        """Count the written frames' events as sent to this connection."""
        for ticket in tickets:
            if ticket is not None:
                self.manager._send_done(ticket, self.user_id)

    async def stop(self) -> None:
        """Stop writing: anything still queued is reported as failed."""
        if not self.closed:
            self._fail_queued("disconnected")
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


def _event_id_prefix() -> str:
    return secrets.token_hex(8)


#: a delivery report's fields (event_id, user_id, seq, connections, failed, latency_ms,
#: recipients), kept unencoded in the observer replay buffer until an observer needs it
_DeliveryFields = tuple[str, str, int, int, int, float, tuple[str, ...]]


def _monitor_frame(monitor_seq: int, entry: bytes | _DeliveryFields) -> bytes:
    """The observer stream's frame for a replay buffer entry (an event's frame or a report)."""
    if isinstance(entry, bytes):
        # The user's frame plus its place in the observer stream.
        return entry[:-1] + b',"monitor_seq":%d}' % monitor_seq
    event_id, user_id, seq, connections, failed, latency_ms, recipients = entry
    latency_ms = round(latency_ms, 3)
    return dumps(
        delivery_to_dict(
            Delivery(
                event_id, user_id, seq, connections, failed, latency_ms, monitor_seq, recipients
            )
        )
    )


@dataclass
class _UserStream:
    last_seq: int = 0
    #: event ids are this stream's random prefix + its seq in hex (32 hex digits): unique
    #: without uuid4's cost per event, and they reveal nothing about other users' streams
    id_prefix: str = field(default_factory=_event_id_prefix)
    replay: deque[tuple[int, bytes]] = field(default_factory=deque)
    connections: set[Subscriber] = field(default_factory=set)
    held: list[tuple[Event, bytes]] = field(default_factory=list)  # chaos reorder


class WebSocketManager:
    """Routes each user's events to that user's connections and to observers."""

    def __init__(
        self,
        metrics: RuntimeMetrics | None = None,
        *,
        send_queue_limit: int = 5000,
        replay_buffer: int = 2000,
        monitor_replay_buffer: int = 100_000,
        server_version: str = "",
    ) -> None:
        self.metrics = metrics or RuntimeMetrics()
        self.send_queue_limit = send_queue_limit
        self.replay_buffer = replay_buffer
        self.server_version = server_version
        #: names this manager's numbering of seq and monitor_seq: both start again at 1 in a
        #: new instance (a restarted runtime), which a reconnecting client can only tell by
        #: this id, sent in every connection_ack
        self.instance_id = uuid.uuid4().hex
        self._users: dict[str, _UserStream] = {}
        self._monitors: set[Subscriber] = set()
        self._monitor_seq = 0
        # Observer frames are encoded when an observer needs them (live or on resume), so a
        # runtime that nobody observes pays only for keeping the entries. Their monitor_seq
        # are contiguous up to _monitor_seq, so none is stored.
        self._monitor_replay: deque[bytes | _DeliveryFields] = deque(maxlen=monitor_replay_buffer)
        self._plans: dict[str, FaultPlan] = {}
        # Counted as plain numbers and folded into the Prometheus counters when they are
        # rendered: an increment there takes a lock (see runtime.metrics).
        self._emitted: dict[EventType, int] = dict.fromkeys(EventType, 0)
        self._frames_sent: dict[str, int] = {USER_ENDPOINT: 0, MONITOR_ENDPOINT: 0}
        self._socket_writes: dict[str, int] = {USER_ENDPOINT: 0, MONITOR_ENDPOINT: 0}
        self.metrics.before_render(self._fold_counts)
        #: connections with frames queued, written on the next loop turn (``_flush_queued``)
        #: or, if busy, ``COALESCE_S`` after their last write (``_flush_deferred``)
        self._to_flush: list[Subscriber] = []
        self._flush_handle: asyncio.Handle | None = None
        self._deferred: list[Subscriber] = []
        self._deferred_handle: asyncio.TimerHandle | None = None

    def _fold_counts(self) -> None:
        for event_type, count in self._emitted.items():
            if count:
                self.metrics.events_emitted.labels(event_type.value).inc(count)
                self._emitted[event_type] = 0
        for endpoint, count in self._frames_sent.items():
            if count:
                self.metrics.frames_sent.labels(endpoint).inc(count)
                self._frames_sent[endpoint] = 0
        for endpoint, count in self._socket_writes.items():
            if count:
                self.metrics.socket_writes.labels(endpoint).inc(count)
                self._socket_writes[endpoint] = 0

    # --- writing ----------------------------------------------------------------------

    def _flush_later(self, sub: Subscriber) -> None:
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

    # --- connections ------------------------------------------------------------------

    def _stream(self, user_id: str) -> _UserStream:
        stream = self._users.get(user_id)
        if stream is None:
            stream = self._users[user_id] = _UserStream(replay=deque(maxlen=self.replay_buffer))
        return stream

    def connect_user(
        self, user_id: str, transport: Transport, extra_ack: Mapping[str, Any] | None = None
    ) -> Subscriber:
        """Register a chat connection; its first frame is ``connection_ack``."""
        stream = self._stream(user_id)
        sub = Subscriber(transport, user_id, USER_ENDPOINT, self.send_queue_limit, self)
        sub.sent_through = stream.last_seq
        sub.start()
        # Ahead of everything: the ack stays the first frame even when resume follows at once.
        sub.put_ahead(
            [
                encode_ack(
                    ConnectionAck(
                        user_id,
                        stream.last_seq,
                        self.server_version,
                        {"instance_id": self.instance_id, **(extra_ack or {})},
                    )
                )
            ]
        )
        stream.connections.add(sub)
        self.metrics.connections.labels(USER_ENDPOINT).inc()
        return sub

    def connect_monitor(self, observer_id: str, transport: Transport) -> Subscriber:
        """Register an observer; it receives every user's events from now on."""
        sub = Subscriber(transport, observer_id, MONITOR_ENDPOINT, self.send_queue_limit, self)
        sub.sent_through = self._monitor_seq
        sub.start()
        sub.put_ahead(
            [
                encode_ack(
                    ConnectionAck(
                        observer_id,
                        self._monitor_seq,
                        self.server_version,
                        {"stream": "monitor", "instance_id": self.instance_id},
                    )
                )
            ]
        )
        self._monitors.add(sub)
        self.metrics.connections.labels(MONITOR_ENDPOINT).inc()
        return sub

    async def disconnect(self, sub: Subscriber) -> None:
        """Forget a connection (its user's runs go on; their events wait for resume)."""
        if sub.endpoint == MONITOR_ENDPOINT:
            if sub in self._monitors:
                self._monitors.discard(sub)
                self.metrics.connections.labels(MONITOR_ENDPOINT).dec()
        else:
            stream = self._users.get(sub.user_id)
            if stream is not None and sub in stream.connections:
                stream.connections.discard(sub)
                self.metrics.connections.labels(USER_ENDPOINT).dec()
        await sub.stop()

    def connection_count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return sum(len(s.connections) for s in self._users.values())
        stream = self._users.get(user_id)
        return len(stream.connections) if stream else 0

    @property
    def monitor_count(self) -> int:
        return len(self._monitors)

    def buffered(self, user_id: str) -> list[bytes]:
        """The frames of ``user_id``'s replay buffer, oldest first."""
        stream = self._users.get(user_id)
        return [payload for _, payload in stream.replay] if stream else []

    def last_seq(self, user_id: str) -> int:
        stream = self._users.get(user_id)
        return stream.last_seq if stream else 0

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        subs = [*self._monitors, *(c for s in self._users.values() for c in s.connections)]
        await asyncio.gather(*(s._close(code, reason) for s in subs))
        for sub in subs:
            await self.disconnect(sub)

    # --- control frames ---------------------------------------------------------------

    def send_error(self, sub: Subscriber, code: str, message: str, ref: str | None = None) -> None:
        sub.put(encode_error(ErrorFrame(code, message, ref)))

    def send_raw(self, sub: Subscriber, payload: bytes) -> None:
        sub.put(payload)

    # --- resume -----------------------------------------------------------------------

    def resume(self, sub: Subscriber, after_seq: int) -> int:
        """Queue the buffered frames with seq > ``after_seq`` that ``sub`` was not sent.

        Returns how many were queued. When some requested frames are no longer buffered the
        client is told with a ``replay_gap`` error frame first, naming the lost range.
        """
        # Events after sent_through reached this connection live: they are not sent twice.
        upper = sub.sent_through
        if sub.endpoint == MONITOR_ENDPOINT:
            monitor = self._monitor_replay
            newest = self._monitor_seq
            oldest = newest - len(monitor) + 1
            first = max(after_seq + 1, oldest)
            entries = itertools.islice(monitor, first - oldest, None)
            items = [
                _monitor_frame(seq, entry)
                for seq, entry in zip(range(first, upper + 1), entries, strict=False)
            ]
        else:
            stream = self._stream(sub.user_id)
            items = [payload for seq, payload in stream.replay if after_seq < seq <= upper]
            newest = stream.last_seq
            oldest = stream.replay[0][0] if stream.replay else newest + 1
        self.metrics.replays.labels(sub.endpoint).inc()
        frames: list[bytes] = []
        if after_seq + 1 < oldest and after_seq < upper:
            lost_last = min(oldest - 1, upper)
            self.metrics.replay_gaps.inc()
            frames.append(
                encode_error(
                    ErrorFrame(
                        "replay_gap",
                        f"seq {after_seq + 1}..{lost_last} are no longer in the replay buffer "
                        f"(it holds {oldest}..{newest}); they cannot be re-sent",
                        f"{after_seq + 1}..{lost_last}",
                    )
                )
            )
        # The gap report, then the replayed frames, all ahead of the live frames queued
        # meanwhile; they don't count against the outbox limit (the client is catching up,
        # not slow), so a replay bigger than the limit doesn't close the connection.
        sub.put_ahead(frames + items)
        return len(items)

    # --- emission ---------------------------------------------------------------------

    def attach_plan(self, run_id: str, plan: FaultPlan) -> None:
        """Apply a run's protocol chaos to its events (engine calls this at run start)."""
        if plan.config.chaos_enabled:
            self._plans[run_id] = plan

    def detach_plan(self, run_id: str) -> None:
        self._plans.pop(run_id, None)

    def emit(
        self, context: UserExecutionContext, event_type: EventType, data: Mapping[str, Any]
    ) -> Event | None:
        """Create the next event of ``context``'s user and deliver it.

        Returns the event, or None when protocol chaos omitted it.
        """
        plan = self._plans.get(context.run_id)
        action = (
            plan.chaos_for_event(event_type is EventType.AGENT_COMPLETED)
            if plan is not None
            else ChaosAction.DELIVER
        )
        if action is ChaosAction.OMIT:
            self.metrics.chaos_actions.labels(action.value).inc()
            return None
        stream = self._stream(context.user_id)
        seq = stream.last_seq + 1
        event = Event(
            type=event_type,
            event_id=f"{stream.id_prefix}{seq:016x}",
            seq=seq,
            user_id=context.user_id,
            thread_id=context.thread_id,
            run_id=context.run_id,
            agent_name=context.agent_name,
            timestamp=time.time(),
            data=data,
        )
        try:
            payload = encode_event(event)
        except TypeError as exc:  # orjson.JSONEncodeError: the seq is not consumed
            raise UnencodableEventError(f"{event_type} cannot be encoded: {exc}") from exc
        stream.last_seq = event.seq
        self._emitted[event_type] += 1
        if action is not ChaosAction.DELIVER:
            self.metrics.chaos_actions.labels(action.value).inc()
        if action is ChaosAction.DROP:
            return event
        stream.replay.append((event.seq, payload))
        if action is ChaosAction.REORDER:
            stream.held.append((event, payload))
            # If no later event comes, the held one still goes out (late).
            asyncio.get_running_loop().call_later(0.2, self._release_held, stream)
            return event
        if action is ChaosAction.DELAY:
            assert plan is not None
            asyncio.get_running_loop().call_later(
                plan.config.chaos_delay_ms / 1000, self._deliver, stream, event, payload
            )
            return event
        self._deliver(stream, event, payload)
        if action is ChaosAction.DUPLICATE:
            self._deliver(stream, event, payload)
        if stream.held:
            self._release_held(stream)
        return event

    def _release_held(self, stream: _UserStream) -> None:
        held, stream.held = stream.held, []
        for event, payload in held:
            self._deliver(stream, event, payload)

    def _deliver(self, stream: _UserStream, event: Event, payload: bytes) -> None:
        connections = stream.connections
        ticket = _Ticket(event, len(connections)) if connections else None
        for sub in connections:
            sub.put(payload, ticket)
        self._publish_monitor(payload)
        if ticket is None:
            self.metrics.undelivered_events.inc()
            self._report(event, 0, 0, 0.0)

    def _publish_monitor(self, entry: bytes | _DeliveryFields) -> None:
        """Number an event's frame or a delivery report on the observer stream and send it."""
        self._monitor_seq += 1
        self._monitor_replay.append(entry)
        if self._monitors:
            frame = _monitor_frame(self._monitor_seq, entry)
            for sub in self._monitors:
                sub.put(frame)

    def _send_done(self, ticket: _Ticket, recipient: str) -> None:
        ticket.ok += 1
        ticket.add_recipient(recipient)
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def _send_failed(self, ticket: _Ticket | None, reason: str, recipient: str = "") -> None:
        self.metrics.send_failures.labels(reason).inc()
        if ticket is None:
            return
        ticket.failed += 1
        if recipient:
            ticket.add_recipient(recipient)
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def _finish(self, ticket: _Ticket) -> None:
        # From the event's creation (its timestamp), not from when fan-out began: a delay
        # anywhere between emit and the socket counts.
        latency = max(0.0, time.time() - ticket.event.timestamp)
        self.metrics.delivery_latency.observe(latency)
        self._report(
            ticket.event,
            ticket.ok + ticket.failed,
            ticket.failed,
            latency * 1000,
            ticket.recipients,
        )

    def _report(
        self,
        event: Event,
        connections: int,
        failed: int,
        latency_ms: float,
        recipients: tuple[str, ...] = (),
    ) -> None:
        self._publish_monitor(
            (event.event_id, event.user_id, event.seq, connections, failed, latency_ms, recipients)
        )
