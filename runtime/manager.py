"""``WebSocketManager``: routes each user's events to that user's connections and to observers.

Every event is routed by the user id of the context that emitted it, never broadcast. The
numbering and keeping of streams is ``runtime.streams`` (a ``UserStream`` per user, one
``ObserverStream``); writing is ``runtime.connections``. The manager ties them together:
``emit`` numbers an event in its user's stream, keeps it for resume (so a run keeps going
while its user is disconnected and the events wait for ``resume``), queues it to the
user's connections and publishes it on the observer stream; once each event's sends have
finished, a ``delivery`` report follows on the observer stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .connections import Subscriber, Transport, WriteScheduler
from .context import UserExecutionContext
from .delivery import Deliverable, DeliveryTicket
from .faults import ChaosAction, FaultPlan
from .metrics import RuntimeMetrics
from .protocol import Event, EventType, RunLog
from .protocol.codec import (
    ConnectionAck,
    ErrorFrame,
    dumps,
    encode_ack,
    encode_error,
    encode_event,
    run_log_to_dict,
)
from .protocol.endpoints import MONITOR_ENDPOINT, USER_ENDPOINT
from .streams import (
    MemoryStore,
    ObserverEntry,
    ObserverStream,
    ResumeAnswer,
    UserStream,
    node_field,
    observer_frame,
)

log = logging.getLogger(__name__)

#: how long a chaos-reordered event waits for a later one to overtake it before it goes out
REORDER_HOLD_S = 0.2


def default_node_id() -> str:
    """This process's node id when none is configured: the host name and the pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamsUnavailableError(RuntimeError):
    """The streams cannot be served right now (a cluster node cut off from its Redis)."""


class UnencodableEventError(ValueError):
    """An event's ``data`` cannot be encoded as JSON; no seq was consumed for it."""


@dataclass(eq=False)
class _UserRoute:
    """A user's stream and where its events go."""

    stream: UserStream
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
        node_id: str | None = None,
    ) -> None:
        self.metrics = metrics or RuntimeMetrics()
        #: names this process in observer frames and ``/healthz``
        self.node_id = node_id or default_node_id()
        self._node = node_field(self.node_id)
        self.send_queue_limit = send_queue_limit
        self.replay_buffer = replay_buffer
        self.server_version = server_version
        #: names this manager's numbering of seq and monitor_seq: both start again at 1 in a
        #: new instance (a restarted runtime), which a reconnecting client can only tell by
        #: this id, sent in every connection_ack
        self.instance_id = uuid.uuid4().hex
        self._users: dict[str, _UserRoute] = {}
        self._monitors: set[Subscriber] = set()
        store: MemoryStore[ObserverEntry] = MemoryStore(monitor_replay_buffer)
        self._observed = ObserverStream(store, self._node)
        self._plans: dict[str, FaultPlan] = {}
        # Counted as plain numbers and folded into the Prometheus counters when they are
        # rendered: an increment there takes a lock (see runtime.metrics).
        self._emitted: dict[EventType, int] = dict.fromkeys(EventType, 0)
        self._writes = WriteScheduler((USER_ENDPOINT, MONITOR_ENDPOINT))
        #: cancels a run of this process by id (the server sets the engine factory's)
        self.cancel_run: Callable[[str], bool] = lambda run_id: False
        self.metrics.before_render(self._fold_counts)

    def _fold_counts(self) -> None:
        for event_type, count in self._emitted.items():
            if count:
                self.metrics.events_emitted.labels(event_type.value).inc(count)
                self._emitted[event_type] = 0
        writes = self._writes
        for endpoint, count in writes.frames_sent.items():
            if count:
                self.metrics.frames_sent.labels(endpoint).inc(count)
                writes.frames_sent[endpoint] = 0
        for endpoint, count in writes.socket_writes.items():
            if count:
                self.metrics.socket_writes.labels(endpoint).inc(count)
                writes.socket_writes[endpoint] = 0

    # --- lifecycle (the in-memory engine has nothing to start or stop) -----------------

    async def start(self) -> None:
        """Get ready before the server accepts connections."""

    async def stop(self) -> None:
        """Let go of shared state after the last connection closed."""

    @property
    def unavailable(self) -> str | None:
        """Why new runs and connections are refused right now (None: they are not)."""
        return None

    def engine_health(self) -> dict[str, Any]:
        """The stream engine's part of ``/healthz``."""
        return {"engine": "memory"}

    # --- connections ------------------------------------------------------------------

    async def open_user(self, user_id: str, transport: Transport) -> Subscriber:
        """``connect_user`` for the server (a shared engine must ask it for the ack)."""
        return self.connect_user(user_id, transport)

    async def open_monitor(self, observer_id: str, transport: Transport) -> Subscriber:
        """``connect_monitor`` for the server."""
        return self.connect_monitor(observer_id, transport)

    def _route(self, user_id: str) -> _UserRoute:
        route = self._users.get(user_id)
        if route is None:
            stream = UserStream(user_id, MemoryStore(self.replay_buffer))
            route = self._users[user_id] = _UserRoute(stream)
        return route

    def _open(
        self,
        transport: Transport,
        user_id: str,
        endpoint: str,
        last_seq: int,
        extra: Mapping[str, Any],
    ) -> Subscriber:
        """A started connection whose first frame is its ``connection_ack``."""
        sub = Subscriber(
            transport, user_id, endpoint, self.send_queue_limit, self, self._writes, self.metrics
        )
        sub.sent_through = last_seq
        sub.start()
        # Ahead of everything: the ack stays the first frame even when resume follows at once.
        ack = ConnectionAck(user_id, last_seq, self.server_version, extra)
        sub.put_ahead([encode_ack(ack)])
        self.metrics.connections.labels(endpoint).inc()
        return sub

    def connect_user(
        self, user_id: str, transport: Transport, extra_ack: Mapping[str, Any] | None = None
    ) -> Subscriber:
        """Register a chat connection; its first frame is ``connection_ack``."""
        route = self._route(user_id)
        extra = {"instance_id": self.instance_id, **(extra_ack or {})}
        sub = self._open(transport, user_id, USER_ENDPOINT, route.stream.last_seq, extra)
        route.connections.add(sub)
        return sub

    def connect_monitor(self, observer_id: str, transport: Transport) -> Subscriber:
        """Register an observer; it receives every user's events from now on."""
        extra = {"stream": "monitor", "instance_id": self.instance_id}
        sub = self._open(transport, observer_id, MONITOR_ENDPOINT, self._observed.last_seq, extra)
        self._monitors.add(sub)
        return sub

    async def disconnect(self, sub: Subscriber) -> None:
        """Forget a connection (its user's runs go on; their events wait for resume)."""
        if sub.endpoint == MONITOR_ENDPOINT:
            if sub in self._monitors:
                self._monitors.discard(sub)
                self.metrics.connections.labels(MONITOR_ENDPOINT).dec()
        else:
            connections = self._connections_of(sub.user_id)
            if connections is not None and sub in connections:
                connections.discard(sub)
                self.metrics.connections.labels(USER_ENDPOINT).dec()
        await self._released(sub)
        await sub.stop()

    def _connections_of(self, user_id: str) -> set[Subscriber] | None:
        """The open connections of ``user_id`` (None: it never had one)."""
        route = self._users.get(user_id)
        return None if route is None else route.connections

    def _user_connections(self) -> list[Subscriber]:
        return [c for r in self._users.values() for c in r.connections]

    async def _released(self, sub: Subscriber) -> None:
        """``sub`` was forgotten (a shared engine lets go of what only it needed)."""

    def connection_count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return len(self._user_connections())
        connections = self._connections_of(user_id)
        return len(connections) if connections else 0

    @property
    def monitor_count(self) -> int:
        return len(self._monitors)

    def buffered(self, user_id: str) -> list[bytes]:
        """The frames of ``user_id``'s replay buffer, oldest first."""
        route = self._users.get(user_id)
        if route is None:
            return []
        store = route.stream.store
        return [payload for _, payload in store.entries(0, store.last_seq)]

    def last_seq(self, user_id: str) -> int:
        route = self._users.get(user_id)
        return route.stream.last_seq if route else 0

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        subs = [*self._monitors, *self._user_connections()]
        await asyncio.gather(*(s._close(code, reason) for s in subs))
        for sub in subs:
            await self.disconnect(sub)

    # --- control frames ---------------------------------------------------------------

    def send_error(self, sub: Subscriber, code: str, message: str, ref: str | None = None) -> None:
        sub.put(encode_error(ErrorFrame(code, message, ref)))

    def send_raw(self, sub: Subscriber, payload: bytes) -> None:
        sub.put(payload)

    # --- resume -----------------------------------------------------------------------

    async def resume_requested(self, sub: Subscriber, after_seq: int) -> None:
        """``resume`` for the server (a shared engine reads its buffer first)."""
        self.resume(sub, after_seq)

    def resume(self, sub: Subscriber, after_seq: int) -> ResumeAnswer:
        """Queue the buffered frames after ``after_seq`` that ``sub`` was not sent yet,
        after a ``replay_gap`` error frame naming what is no longer buffered, or a
        ``resume_ahead`` refusal when ``after_seq`` is beyond the stream."""
        # Events after sent_through reached this connection live: they are not sent twice.
        if sub.endpoint == MONITOR_ENDPOINT:
            answer = self._observed.resume(after_seq, sub.sent_through)
        else:
            answer = self._route(sub.user_id).stream.resume(after_seq, sub.sent_through)
        self._answer_resume(sub, after_seq, answer)
        return answer

    def _answer_resume(self, sub: Subscriber, after_seq: int, answer: ResumeAnswer) -> None:
        """Send ``sub`` a resume's answer and count it."""
        self.metrics.replays.labels(sub.endpoint).inc()
        if answer.refusal is None:
            # Everything after after_seq has now been sent to it (replayed, reported lost, or
            # live): a later resume from further back replays only what is older than that.
            sub.sent_through = min(sub.sent_through, after_seq)
        if answer.gap is not None:
            self.metrics.replay_gaps.inc()
        if answer.gap is not None and after_seq > 0:
            # Frames after the last one this client got, which it never will: the buffer
            # dropped them first. The client is told (replay_gap), but they are lost to it,
            # so the log says so too. (After 0, it asked for whatever is still kept.)
            first, last = answer.gap
            log.warning(
                "%s connection %s of %s resumed after %d: %d frame(s) (%d..%d) had already "
                "left the replay buffer and cannot be sent",
                sub.endpoint,
                sub.id,
                sub.user_id,
                after_seq,
                last - first + 1,
                first,
                last,
            )
        if answer.refusal is not None:
            # INFO: nothing of this stream is lost; the client is told to resume from 0.
            log.info(
                "%s connection %s of %s: %s", sub.endpoint, sub.id, sub.user_id, answer.refusal
            )
        # The notice, then the replayed frames, all ahead of the live frames queued
        # meanwhile; they don't count against the outbox limit (the client is catching up,
        # not slow), so a replay bigger than the limit doesn't close the connection.
        sub.put_ahead(answer.frames())

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
        plan, action = self._chaos_for(context, event_type)
        if action is ChaosAction.OMIT:
            self.metrics.chaos_actions.labels(action.value).inc()
            return None
        route = self._route(context.user_id)
        stream = route.stream
        event = stream.next_event(context, event_type, data, time.time())
        payload = self._encode(event)  # the seq is not consumed if this raises
        self._emitted[event_type] += 1
        if action is not ChaosAction.DELIVER:
            self.metrics.chaos_actions.labels(action.value).inc()
        if action is ChaosAction.DROP:
            stream.record(event, None)  # numbered, never sent: a hole a client must see
            return event
        stream.record(event, payload)
        if action is ChaosAction.REORDER:
            route.held.append((event, payload))
            # If no later event comes, the held one still goes out (late).
            asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._release_held, route)
            return event
        if action is ChaosAction.DELAY:
            assert plan is not None
            asyncio.get_running_loop().call_later(
                plan.config.chaos_delay_ms / 1000, self._deliver, route, event, payload
            )
            return event
        self._deliver(route, event, payload)
        if action is ChaosAction.DUPLICATE:
            self._deliver(route, event, payload)
        if route.held:
            self._release_held(route)
        return event

    def _chaos_for(
        self, context: UserExecutionContext, event_type: EventType
    ) -> tuple[FaultPlan | None, ChaosAction]:
        """The run's fault plan and what its protocol chaos does to this event."""
        plan = self._plans.get(context.run_id)
        if plan is None:
            return None, ChaosAction.DELIVER
        return plan, plan.chaos_for_event(event_type is EventType.AGENT_COMPLETED)

    @staticmethod
    def _encode(event: Event) -> bytes:
        try:
            return encode_event(event)
        except TypeError as exc:  # orjson.JSONEncodeError
            raise UnencodableEventError(f"{event.type} cannot be encoded: {exc}") from exc

    def _release_held(self, route: _UserRoute) -> None:
        held, route.held = route.held, []
        for event, payload in held:
            self._deliver(route, event, payload)

    def _deliver(self, route: _UserRoute, event: Event, payload: bytes) -> None:
        connections = route.connections
        ticket = DeliveryTicket(event, len(connections)) if connections else None
        for sub in connections:
            sub.put(payload, ticket)
        self._publish_monitor(payload)
        if ticket is None:
            self.metrics.undelivered_events.inc()
            self._report(event, 0, 0, 0.0)

    def publish_log(self, entry: RunLog) -> None:
        """A warning or error logged during a run, for the observer stream (a ``log`` frame:
        numbered by ``monitor_seq`` like every frame there, but no event)."""
        self._publish_monitor(dumps(run_log_to_dict(entry)))

    def _publish_monitor(self, entry: ObserverEntry) -> None:
        """Number an event's frame, a ``log`` frame or a delivery report on the observer
        stream and send it."""
        monitor_seq = self._observed.publish(entry)
        if self._monitors:
            frame = observer_frame(monitor_seq, entry, self._node)
            for sub in self._monitors:
                sub.put(frame)

    # --- delivery reports (the connections' DeliverySink) -----------------------------

    def send_done(self, ticket: DeliveryTicket, recipient: str) -> None:
        ticket.ok += 1
        ticket.add_recipient(recipient)
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def send_failed(self, ticket: DeliveryTicket | None, reason: str, recipient: str = "") -> None:
        self.metrics.send_failures.labels(reason).inc()
        if ticket is None:
            return
        ticket.failed += 1
        if recipient:
            ticket.add_recipient(recipient)
        ticket.pending -= 1
        if ticket.pending == 0:
            self._finish(ticket)

    def _finish(self, ticket: DeliveryTicket) -> None:
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
        event: Deliverable,
        connections: int,
        failed: int,
        latency_ms: float,
        recipients: tuple[str, ...] = (),
    ) -> None:
        self._publish_monitor(
            (event.event_id, event.user_id, event.seq, connections, failed, latency_ms, recipients)
        )
