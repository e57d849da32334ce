"""``WebSocketManager``: per-user connections, per-user ``seq``, replay buffers and fan-out.

Every event is routed by the user id of the context that emitted it, never broadcast. Each
connection has a bounded outbox drained by its own writer task, so one slow client never
delays another. Every emitted event goes into its user's replay buffer, so a run keeps
going while its user is disconnected and the events wait there for ``resume``.

The observer stream (``/monitor``) gets every event with a ``monitor_seq`` and, once each
event's sends have finished, a ``delivery`` report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed

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


class UnencodableEventError(ValueError):
    """An event's ``data`` cannot be encoded as JSON; no seq was consumed for it."""


class Transport(Protocol):
    """What the manager needs of a WebSocket connection (websockets' ``ServerConnection``)."""

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class _Ticket:
    """Tracks one event's sends so its ``delivery`` report can be made when they finish."""

    __slots__ = ("emitted", "event", "failed", "ok", "pending")

    def __init__(self, event: Event, pending: int) -> None:
        self.event = event
        self.pending = pending
        self.ok = 0
        self.failed = 0
        self.emitted = time.perf_counter()


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
            self.manager._send_failed(ticket, "closed")
            return
        if len(self._queue) >= self.limit:
            self.manager._send_failed(ticket, "slow_consumer")
            self._overflow()
            return
        self._queue.append((payload, ticket))
        self._wakeup.set()

    def put_ahead(self, payloads: Iterable[bytes]) -> None:
        """Queue frames to be written before the outbox (see ``_ahead``)."""
        if not self.closed:
            self._ahead.extend(payloads)
            self._wakeup.set()

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
        try:
            await self.transport.close(code, reason)
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
            self.manager._send_failed(ticket, reason)
        while self._ahead:
            self._ahead.popleft()
            self.manager._send_failed(None, reason)
        self._wakeup.set()

    async def _drain(self) -> None:
        metric = self.manager.metrics.frames_sent.labels(self.endpoint)
        while True:
            while not self._queue and not self._ahead:
                if self.closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._ahead:
                payload, ticket = self._ahead.popleft(), None
            else:
                payload, ticket = self._queue.popleft()
            try:
                await self.transport.send(payload, text=True)
            except ConnectionClosed:
                self.manager._send_failed(ticket, "connection_closed")
                self._fail_queued("connection_closed")
                return
            except asyncio.CancelledError:
                # stop() cancelled the write in flight: it failed like the frames still queued
                # (otherwise its failure would go uncounted and its delivery never reported).
                self.manager._send_failed(ticket, "disconnected")
                raise
            metric.inc()
            if ticket is not None:
                self.manager._send_done(ticket)

    async def stop(self) -> None:
        """Stop writing: anything still queued is reported as failed."""
        if not self.closed:
            self._fail_queued("disconnected")
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


@dataclass
class _UserStream:
    last_seq: int = 0
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
        self._users: dict[str, _UserStream] = {}
        self._monitors: set[Subscriber] = set()
        self._monitor_seq = 0
        self._monitor_replay: deque[tuple[int, bytes]] = deque(maxlen=monitor_replay_buffer)
        self._plans: dict[str, FaultPlan] = {}
        # Resolved once: a labels() lookup per event is measurable at 20k events/s.
        self._emitted = {t: self.metrics.events_emitted.labels(t.value) for t in EventType}

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
                        user_id, stream.last_seq, self.server_version, dict(extra_ack or {})
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
                        observer_id, self._monitor_seq, self.server_version, {"stream": "monitor"}
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
        if sub.endpoint == MONITOR_ENDPOINT:
            buffer: Iterable[tuple[int, bytes]] = self._monitor_replay
            newest = self._monitor_seq
        else:
            stream = self._stream(sub.user_id)
            buffer = stream.replay
            newest = stream.last_seq
        self.metrics.replays.labels(sub.endpoint).inc()
        # Events after sent_through reached this connection live: they are not sent twice.
        upper = sub.sent_through
        items = [payload for seq, payload in buffer if after_seq < seq <= upper]
        oldest = next(iter(buffer))[0] if buffer else newest + 1
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
        event = Event(
            type=event_type,
            event_id=uuid.uuid4().hex,
            seq=stream.last_seq + 1,
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
        self._emitted[event_type].inc()
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
        # The observer stream carries the same bytes plus its own sequence number.
        self._monitor_seq += 1
        self._publish_monitor(payload[:-1] + b',"monitor_seq":%d}' % self._monitor_seq)
        if ticket is None:
            self.metrics.undelivered_events.inc()
            self._report(event, 0, 0, 0.0)

    def _publish_monitor(self, frame: bytes) -> None:
        self._monitor_replay.append((self._monitor_seq, frame))
        for sub in self._monitors:
            sub.put(frame)

    def _send_done(self, ticket: _Ticket) -> None:
        ticket.ok += 1
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def _send_failed(self, ticket: _Ticket | None, reason: str) -> None:
        self.metrics.send_failures.labels(reason).inc()
        if ticket is None:
            return
        ticket.failed += 1
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def _finish(self, ticket: _Ticket) -> None:
        latency = time.perf_counter() - ticket.emitted
        self.metrics.delivery_latency.observe(latency)
        self._report(ticket.event, ticket.ok + ticket.failed, ticket.failed, latency * 1000)

    def _report(self, event: Event, connections: int, failed: int, latency_ms: float) -> None:
        self._monitor_seq += 1
        delivery = Delivery(
            event_id=event.event_id,
            user_id=event.user_id,
            seq=event.seq,
            connections=connections,
            failed=failed,
            latency_ms=round(latency_ms, 3),
            monitor_seq=self._monitor_seq,
        )
        self._publish_monitor(dumps(delivery_to_dict(delivery)))
