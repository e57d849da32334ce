"""``ClusterManager``: a ``WebSocketManager`` whose streams live in Redis, shared by nodes.

What changes from the in-memory manager is where numbers come from and how frames reach
connections; routing by user, outboxes and delivery reports are the same.

- ``emit`` queues the event for the batch script, which numbers it in the user's stream,
  keeps it, and publishes it on the user's channel and the observer channel.
- Each node subscribes to the channels of the users it has connections of, and to the
  observer channel while it has monitors, and forwards what arrives to those connections,
  each frame once and in order: a ``_Tail`` per stream remembers how far the node got, and
  a hole (a lost message, a reconnect) is filled from the stream in Redis before anything
  after it goes out.
- A connection's ack carries the number the node has forwarded up to: everything after it
  reaches the connection live, everything up to it is for ``resume``, read from Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from redis.exceptions import RedisError

from runtime.connections import Subscriber, Transport
from runtime.context import UserExecutionContext
from runtime.delivery import DeliveryTicket
from runtime.faults import ChaosAction
from runtime.manager import (
    REORDER_HOLD_S,
    StreamsUnavailableError,
    WebSocketManager,
)
from runtime.metrics import RuntimeMetrics
from runtime.protocol import Event, EventType, NodeState, NodeStatus
from runtime.protocol.codec import (
    dumps,
    node_status_to_dict,
)
from runtime.protocol.endpoints import MONITOR_ENDPOINT, USER_ENDPOINT
from runtime.protocol.errors import ErrorCode
from runtime.streams import (
    ObserverEntry,
    ResumeAnswer,
    SnapshotStore,
    answer_resume,
    delivery_open,
)

from .broker import RedisBroker
from .keys import Keys
from .leases import LeaseKeeper
from .records import (
    ACTION_CODES,
    ChannelFrame,
    EventRecord,
    ObserverRecord,
    Record,
    RunOp,
    parse_observer_message,
    parse_user_message,
    placeholder_id,
    split_frame,
)
from .tail import StreamTail
from .url import BrokerUrl

log = logging.getLogger(__name__)

#: how long an idle user's stream stays in Redis after its last event
USER_TTL_S = 24 * 3600


class _Received(NamedTuple):
    """What a delivery report needs of an event read off a channel."""

    event_id: str
    user_id: str
    seq: int
    timestamp: float


@dataclass(eq=False)
class _ClusterRoute:
    """A user's connections on this node and how far its stream reached them."""

    user_id: str
    tail: StreamTail
    connections: set[Subscriber] = field(default_factory=set)
    #: frames a chaos reorder holds back until the next one has gone out
    held: list[ChannelFrame] = field(default_factory=list)
    #: connections being opened (the subscription must outlive their setup)
    opening: int = 0


class ClusterManager(WebSocketManager):
    """Routes each user's events through Redis to that user's connections on every node."""

    def __init__(
        self,
        url: BrokerUrl,
        metrics: RuntimeMetrics | None = None,
        *,
        namespace: str,
        send_queue_limit: int = 5000,
        replay_buffer: int = 2000,
        monitor_replay_buffer: int = 100_000,
        server_version: str = "",
        node_id: str | None = None,
    ) -> None:
        super().__init__(
            metrics,
            send_queue_limit=send_queue_limit,
            replay_buffer=replay_buffer,
            monitor_replay_buffer=0,
            server_version=server_version,
            node_id=node_id,
        )
        self.keys = Keys(namespace)
        self.broker = RedisBroker(
            url,
            self.keys,
            self.node_id,
            replay_buffer=replay_buffer,
            monitor_replay_buffer=monitor_replay_buffer,
            user_ttl_s=USER_TTL_S,
            metrics=self.metrics,
        )
        self.instance_id = ""
        self._routes: dict[str, _ClusterRoute] = {}
        self._observer = StreamTail(
            f"node {self.node_id} observer stream",
            self._forward_observed,
            self._fetch_observed_frames,
        )
        self._monitor_opening = 0
        self._restarting: asyncio.Task[None] | None = None
        #: live frames held back from connections whose resume is being read
        self._resuming: dict[Subscriber, list[tuple[bytes, DeliveryTicket | None]]] = {}
        self.leases = LeaseKeeper(self)
        #: runs another node ended while this one was cut off: their events are dropped
        self.reaped_runs: set[str] = set()
        #: events of each reaped run dropped so far, logged once at its last one
        self._reaped_dropped: dict[str, int] = {}

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        await self.broker.start(
            on_message=self._on_message,
            on_resubscribed=self._catch_up_all,
            on_results=self._on_results,
            on_epoch=self.epoch_changed,
            before_flush=self.leases.check_after_outage,
        )
        self.instance_id = self.broker.epoch
        await self.leases.start()
        self.broker.add_task(
            asyncio.get_running_loop().create_task(
                self.leases.run(), name=f"broker-leases-{self.node_id}"
            )
        )
        self.publish_node(NodeState.JOINED, "started")
        log.info(
            "node %s joined the cluster on %s (epoch %s)",
            self.node_id,
            self.broker.url.display,
            self.instance_id,
        )

    async def stop(self) -> None:
        if self.broker.closed:
            return
        self.publish_node(NodeState.LEFT, "stopped")
        if not await self.broker.flush(timeout=5.0):
            log.warning(
                "node %s stopped with %d records Redis never took",
                self.node_id,
                self.broker.pending,
            )
        await self.leases.release()
        await self.broker.close()

    @property
    def unavailable(self) -> str | None:
        return self.broker.unavailable

    def engine_health(self) -> dict[str, Any]:
        return {
            "engine": "redis",
            "broker": {
                "url": self.broker.url.display,
                "namespace": self.keys.namespace,
                "connected": self.broker.unavailable is None,
                "error": self.broker.unavailable,
                "pending_records": self.broker.pending,
                "nodes": self.leases.nodes_seen,
            },
        }

    def publish_node(self, state: NodeState, detail: str, node_id: str | None = None) -> None:
        status = NodeStatus(node_id or self.node_id, state, time.time(), detail)
        self.broker.enqueue(ObserverRecord(dumps(node_status_to_dict(status))[:-1]))

    # --- connections ------------------------------------------------------------------

    def _cluster_route(self, user_id: str) -> _ClusterRoute:
        found = self._routes.get(user_id)
        if found is not None:
            return found

        def forward(frame: ChannelFrame) -> None:
            self._forward_user(route, frame)

        async def fetch(after: int, upto: int) -> list[ChannelFrame]:
            return await self._fetch_user_frames(user_id, after, upto)

        tail = StreamTail(f"node {self.node_id} stream of {user_id}", forward, fetch)
        route = self._routes[user_id] = _ClusterRoute(user_id, tail)
        return route

    async def _reach(
        self, tail: StreamTail, channel: str, last_seq: Callable[[], Awaitable[int]]
    ) -> None:
        """Subscribe to a stream's channel, then forward it up to its present end: from
        here every later number arrives on the channel."""
        try:
            await self.broker.subscribe(channel)
            last = await last_seq()
        except (RedisError, OSError) as exc:
            raise StreamsUnavailableError(str(exc) or type(exc).__name__) from None
        if tail.subscribed:
            await tail.catch_up(last)
        else:
            tail.start_at(last)

    async def open_user(self, user_id: str, transport: Transport) -> Subscriber:
        route = self._cluster_route(user_id)
        route.opening += 1
        try:
            await self._reach(
                route.tail,
                self.keys.user_channel(user_id),
                lambda: self.broker.last_seq(self.keys.user_meta(user_id)),
            )
        finally:
            route.opening -= 1
        # Synchronous from here to the add: nothing is forwarded in between.
        delivered = route.tail.delivered
        extra = {"instance_id": self.instance_id, "node_id": self.node_id}
        sub = self._open(transport, user_id, USER_ENDPOINT, delivered, extra)
        sub.live_after = delivered
        route.connections.add(sub)
        return sub

    async def open_monitor(self, observer_id: str, transport: Transport) -> Subscriber:
        self._monitor_opening += 1
        try:
            await self._reach(
                self._observer, self.keys.observer_channel, self.broker.observer_last_seq
            )
        finally:
            self._monitor_opening -= 1
        delivered = self._observer.delivered
        extra = {"stream": "monitor", "instance_id": self.instance_id, "node_id": self.node_id}
        sub = self._open(transport, observer_id, MONITOR_ENDPOINT, delivered, extra)
        sub.live_after = delivered
        self._monitors.add(sub)
        return sub

    def _connections_of(self, user_id: str) -> set[Subscriber] | None:
        route = self._routes.get(user_id)
        return None if route is None else route.connections

    def _user_connections(self) -> list[Subscriber]:
        return [c for r in self._routes.values() for c in r.connections]

    async def _released(self, sub: Subscriber) -> None:
        # The last connection of a stream on this node: its channel is no longer needed.
        if sub.endpoint == MONITOR_ENDPOINT:
            tail, channel, busy = (
                self._observer,
                self.keys.observer_channel,
                bool(self._monitors) or self._monitor_opening > 0,
            )
        else:
            route = self._routes.get(sub.user_id)
            if route is None:
                return
            tail, channel, busy = (
                route.tail,
                self.keys.user_channel(sub.user_id),
                bool(route.connections) or route.opening > 0,
            )
        if not busy and tail.subscribed:
            tail.subscribed = False
            await self.broker.unsubscribe(channel)

    # --- resume -----------------------------------------------------------------------

    async def resume_requested(self, sub: Subscriber, after_seq: int) -> None:
        # Reading the stream takes a round trip to Redis; live frames that arrive meanwhile
        # wait, so none is written before the older ones the resume sends.
        held = self._resuming.setdefault(sub, [])
        try:
            answer = await self._read_resume(sub, after_seq)
        except (RedisError, OSError) as exc:
            self.send_error(
                sub,
                ErrorCode.BROKER_UNAVAILABLE,
                f"resume after {after_seq} could not be read from Redis ({exc}); ask again",
            )
        else:
            self._answer_resume(sub, after_seq, answer)
        finally:
            if self._resuming.get(sub) is held:
                del self._resuming[sub]
            for frame, ticket in held:
                sub.put(frame, ticket)

    async def _read_resume(self, sub: Subscriber, after_seq: int) -> ResumeAnswer:
        if sub.endpoint == MONITOR_ENDPOINT:
            stream, seq_name = self.keys.observer_stream, "monitor_seq"
            last_seq = await self.broker.observer_last_seq()
        else:
            stream, seq_name = self.keys.user_stream(sub.user_id), "seq"
            last_seq = await self.broker.last_seq(self.keys.user_meta(sub.user_id))
        upto = sub.sent_through
        first, rows = await self.broker.entries(stream, after_seq, min(upto, last_seq))
        # What Redis keeps, answered by the same rule as in memory.
        snapshot = SnapshotStore(first, last_seq, [(n, f or None) for n, f in rows])
        return answer_resume(snapshot, after_seq, upto, _as_is, seq_name=seq_name)

    def _put_live(
        self, sub: Subscriber, frame: bytes, ticket: DeliveryTicket | None = None
    ) -> None:
        held = self._resuming.get(sub)
        if held is None:
            sub.put(frame, ticket)
        else:
            held.append((frame, ticket))

    # --- emission ---------------------------------------------------------------------

    def emit(
        self, context: UserExecutionContext, event_type: EventType, data: Mapping[str, Any]
    ) -> Event | None:
        """Queue the next event of ``context``'s user for numbering in Redis.

        Returns None: the event's ``seq`` is taken by the broker after this returns.
        """
        if context.run_id in self.reaped_runs:
            self._drop_reaped(context, event_type)
            return None
        plan, action = self._chaos_for(context, event_type)
        if action is ChaosAction.OMIT:
            self.metrics.chaos_actions.labels(action.value).inc()
            return None
        event = Event(
            type=event_type,
            event_id=placeholder_id(),
            seq=1,
            user_id=context.user_id,
            thread_id=context.thread_id,
            run_id=context.run_id,
            agent_name=context.agent_name,
            timestamp=time.time(),
            data=data,
        )
        payload = self._encode(event)  # no seq is taken if this raises
        self._emitted[event_type] += 1
        if action is not ChaosAction.DELIVER:
            self.metrics.chaos_actions.labels(action.value).inc()
        code = ACTION_CODES[action]
        if action is ChaosAction.DELAY and plan is not None:
            code += str(int(plan.config.chaos_delay_ms))
        head, tail = split_frame(payload)
        run_op, run_info = RunOp.NONE, b""
        if event_type is EventType.AGENT_STARTED:
            run_op = RunOp.START
            run_info = self.leases.run_info(context, event.timestamp)
        elif event_type is EventType.AGENT_COMPLETED:
            run_op = RunOp.END
            self.leases.run_ended(context.run_id)
        self.broker.enqueue(
            EventRecord(
                context.user_id,
                head,
                tail,
                code,
                event.timestamp,
                context.run_id,
                run_op,
                run_info,
            )
        )
        return None

    def _drop_reaped(self, context: UserExecutionContext, event_type: EventType) -> None:
        """An event of a run another node has ended: dropped, so no run gets a second
        terminal event or events after its first. The run's cancel makes it emit its last
        events at once (its tools' completions, its own): one WARNING at its last counts
        them, not one per event."""
        self.metrics.broker_dropped.inc()
        run_id = context.run_id
        dropped = self._reaped_dropped.get(run_id, 0) + 1
        if event_type is not EventType.AGENT_COMPLETED:
            self._reaped_dropped[run_id] = dropped
            return
        self._reaped_dropped.pop(run_id, None)
        log.warning(
            "run %s of %s was ended by another node while node %s was cut off: the %d "
            "event(s) it emitted here since, up to its agent_completed, were dropped",
            run_id,
            context.user_id,
            self.node_id,
            dropped,
        )

    def _on_results(self, batch: list[Record], out: list[Any]) -> None:
        # An event no node's connection was subscribed to gets its delivery report from
        # the node that emitted it, as in memory.
        for index, record in enumerate(batch):
            if not isinstance(record, EventRecord) or record.action == "x":
                continue
            seq, receivers, event_id = out[3 * index : 3 * index + 3]
            if seq and not receivers:
                self.metrics.undelivered_events.inc()
                received = _Received(event_id.decode(), record.user_id, int(seq), record.timestamp)
                self._report(received, 0, 0, 0.0)

    def _publish_monitor(self, entry: ObserverEntry) -> None:
        """A delivery report or ``log`` frame of this node, for the observer stream in
        Redis (events go through ``emit``)."""
        open_frame = entry[:-1] if isinstance(entry, bytes) else delivery_open(entry)
        self.broker.enqueue(ObserverRecord(open_frame + self._node))

    # --- forwarding -------------------------------------------------------------------

    def _on_message(self, channel: str, data: bytes) -> None:
        if channel == self.keys.observer_channel:
            if self._observer.subscribed:
                self._observer.take(list(parse_observer_message(data)))
            return
        route = self._routes.get(channel[len(self.keys.user_channel_prefix) :])
        if route is not None and route.tail.subscribed:
            route.tail.take(list(parse_user_message(data)))

    def _forward_observed(self, frame: ChannelFrame) -> None:
        for sub in self._monitors:
            if frame.seq > sub.live_after:
                self._put_live(sub, frame.frame)

    def _forward_user(self, route: _ClusterRoute, frame: ChannelFrame) -> None:
        action = frame.action
        if action == "d":
            self._deliver_user(route, frame)
        elif action == "u":
            self._deliver_user(route, frame)
            self._deliver_user(route, frame)
        elif action == "r":
            route.held.append(frame)
            asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._release, route)
            return
        elif action.startswith("l"):
            delay_s = int(action[1:] or 0) / 1000
            asyncio.get_running_loop().call_later(delay_s, self._deliver_user, route, frame)
            return
        if route.held:
            self._release(route)

    def _release(self, route: _ClusterRoute) -> None:
        held, route.held = route.held, []
        for frame in held:
            self._deliver_user(route, frame)

    def _deliver_user(self, route: _ClusterRoute, frame: ChannelFrame) -> None:
        subs = [s for s in route.connections if frame.seq > s.live_after]
        if not subs:
            # Its user's connections on this node closed since: the node that has one
            # reports it; with none anywhere, the emitting node already did.
            return
        event = _Received(frame.event_id, route.user_id, frame.seq, frame.timestamp)
        ticket = DeliveryTicket(event, len(subs))
        for sub in subs:
            self._put_live(sub, frame.frame, ticket)

    async def _fetch_user_frames(self, user_id: str, after: int, upto: int) -> list[ChannelFrame]:
        _first, rows = await self.broker.entries(self.keys.user_stream(user_id), after, upto)
        frames = []
        for seq, payload in rows:
            if not payload:
                frames.append(ChannelFrame(seq, "x", "", 0.0, b""))
                continue
            obj = orjson.loads(payload)
            frames.append(ChannelFrame(seq, "d", obj["event_id"], obj["timestamp"], payload))
        return frames

    async def _fetch_observed_frames(self, after: int, upto: int) -> list[ChannelFrame]:
        _first, rows = await self.broker.entries(self.keys.observer_stream, after, upto)
        return [ChannelFrame(seq, "d", "", 0.0, payload) for seq, payload in rows]

    async def _catch_up_all(self) -> None:
        """After the subscription connection was lost: forward what every stream missed."""
        if not await self.leases.check_epoch():
            return  # new streams: the connections are being closed
        for route in list(self._routes.values()):
            if route.tail.subscribed:
                await route.tail.catch_up(
                    await self.broker.last_seq(self.keys.user_meta(route.user_id))
                )
        if self._observer.subscribed:
            await self._observer.catch_up(await self.broker.observer_last_seq())

    # --- epoch ------------------------------------------------------------------------

    def epoch_changed(self, epoch: str) -> None:
        """Redis lost its data (restarted empty, flushed): every stream starts again at 1.
        Clients are told the way a restart tells them: their connections close, and the
        ack of the next one carries the new ``instance_id``."""
        if epoch == self.instance_id:
            return  # already seen (the lease loop and a batch can both notice)
        log.error(
            "node %s: the cluster's streams were lost in Redis (epoch %s -> %s); closing "
            "every connection so clients start again from the new streams",
            self.node_id,
            self.instance_id,
            epoch,
        )
        self.instance_id = epoch
        for route in self._routes.values():
            route.tail.delivered = 0
        self._observer.delivered = 0
        # kept: the loop holds only a weak reference to a task
        self._restarting = asyncio.get_running_loop().create_task(
            self._restart_connections(), name=f"epoch-{self.node_id}"
        )
        self.leases.epoch_changed()

    async def _restart_connections(self) -> None:
        subs = [*self._monitors, *self._user_connections()]
        await asyncio.gather(
            *(s._close(1012, "the runtime's streams restarted: reconnect") for s in subs)
        )


def _as_is(_seq: int, frame: bytes) -> bytes:
    return frame  # frames in Redis are stored as they are sent
