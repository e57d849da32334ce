"""``LeaseKeeper``: nodes prove they are alive, and a dead node's runs still end.

Each node holds a lease in Redis (its incarnation, expiring after ``LEASE_S`` unless
renewed every ``RENEW_S``) and registers each run it executes, from ``agent_started`` to
``agent_completed``, in the same batch call as those events. Every node sweeps the registry:
a run whose node's lease no longer holds that node's incarnation (killed, hung, cut off)
gets its ``agent_completed`` (``failed``, naming the node) from whichever node claims it
first; the claim and the event are one call of the batch script, so exactly one node
sends it. The lost node itself is reported once on the observer stream (a ``node`` frame,
``lost``).

A node that was only cut off from Redis finds its lease gone when it is back: the runs
another node has ended meanwhile are cancelled here and their queued events dropped (each
counted and logged), so no run gets a second terminal event or events after its first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from runtime.context import UserExecutionContext
from runtime.protocol import Event, EventType, NodeState, NodeStatus, RunStatus
from runtime.protocol.codec import dumps, encode_event, node_status_to_dict

from .records import (
    EventRecord,
    LostNodeRecord,
    ObserverRecord,
    RunOp,
    placeholder_id,
    split_frame,
)

if TYPE_CHECKING:
    from .manager import ClusterManager

log = logging.getLogger(__name__)

#: a node not heard from for this long is lost
LEASE_S = 3.0
#: how often a node renews its lease and sweeps for lost nodes' runs
RENEW_S = 1.0


class LeaseKeeper:
    """One node's lease, its runs in the registry, and the sweep for lost ones."""

    def __init__(self, manager: ClusterManager) -> None:
        self.manager = manager
        self.broker = manager.broker
        self.keys = manager.keys
        #: the registry entries of this node's runs in progress
        self.local_runs: dict[str, bytes] = {}
        #: runs and nodes this node claimed recently (the claim is in flight)
        self._claimed: dict[str, float] = {}
        #: nodes in the registry at the last sweep, with their state, for ``/healthz``
        self.nodes_seen: list[dict[str, Any]] = []
        self._entry = b""

    @property
    def node_id(self) -> str:
        return self.manager.node_id

    def run_info(self, context: UserExecutionContext, started: float) -> bytes:
        """The registry entry of a run this node starts."""
        info = orjson.dumps(
            {
                "node": self.node_id,
                "incarnation": self.broker.incarnation,
                "user_id": context.user_id,
                "thread_id": context.thread_id,
                "agent_name": context.agent_name,
                "request_id": context.request_id,
                "started": started,
            }
        )
        self.local_runs[context.run_id] = info
        return info

    def run_ended(self, run_id: str) -> None:
        self.local_runs.pop(run_id, None)

    # --- this node's lease ------------------------------------------------------------

    async def start(self) -> None:
        redis = self.broker.redis
        self._entry = orjson.dumps(
            {"incarnation": self.broker.incarnation, "joined": round(time.time(), 3)}
        )
        previous = await redis.hget(self.keys.nodes, self.node_id)
        await redis.set(
            self.keys.lease(self.node_id), self.broker.incarnation, px=int(LEASE_S * 1000)
        )
        if previous is not None:
            # The same id restarted without stopping: its last incarnation is lost (and
            # the new lease already tells the sweep so of the runs it left).
            self.broker.enqueue(ObserverRecord(self._lost_frame(self.node_id)))
        await redis.hset(self.keys.nodes, self.node_id, self._entry)

    async def release(self) -> None:
        """Give the lease up at a clean stop (this node's runs have ended)."""
        redis = self.broker.redis
        try:
            await redis.hdel(self.keys.nodes, self.node_id)
            if await redis.get(self.keys.lease(self.node_id)) == self.broker.incarnation.encode():
                await redis.delete(self.keys.lease(self.node_id))
        except (RedisError, OSError) as exc:
            log.warning("node %s could not release its lease: %s", self.node_id, exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._renew()
                await self._sweep()
            except (RedisError, OSError) as exc:
                # The writer and the reader report the outage; this just tries again.
                log.debug("node %s lease round failed: %s", self.node_id, exc)

    async def _renew(self) -> None:
        redis = self.broker.redis
        await self.check_epoch()
        previous = await redis.set(
            self.keys.lease(self.node_id),
            self.broker.incarnation,
            px=int(LEASE_S * 1000),
            get=True,
        )
        if previous != self.broker.incarnation.encode():
            await self._lease_was_lost()
        await redis.hset(self.keys.nodes, self.node_id, self._entry)

    async def check_epoch(self) -> bool:
        """Whether the streams' epoch is still the one this node knows (if not, the
        manager is told)."""
        epoch = await self.broker.read_epoch()
        if epoch == self.broker.epoch:
            return True
        self.broker.epoch = epoch
        self.manager.epoch_changed(epoch)
        return False

    async def check_after_outage(self) -> None:
        """Before the writer flushes what queued while Redis was away."""
        redis = self.broker.redis
        if not await self.check_epoch():
            return
        current = await redis.get(self.keys.lease(self.node_id))
        if current != self.broker.incarnation.encode():
            await self._lease_was_lost()
        await redis.set(
            self.keys.lease(self.node_id), self.broker.incarnation, px=int(LEASE_S * 1000)
        )

    async def _lease_was_lost(self) -> None:
        """Other nodes may have ended this node's runs: those are over here too."""
        run_ids = list(self.local_runs)
        if not run_ids:
            return
        entries = await self.broker.redis.hmget(self.keys.runs, run_ids)
        ended = {run_id for run_id, entry in zip(run_ids, entries, strict=True) if entry is None}
        if not ended:
            return
        self.manager.reaped_runs.update(ended)
        dropped = self.broker.discard(
            lambda r: not (isinstance(r, EventRecord) and r.run_id in ended)
        )
        self.manager.metrics.broker_dropped.inc(dropped)
        log.warning(
            "node %s was cut off long enough to be counted lost: %d of its runs were ended "
            "by another node (%s); they are cancelled here and their %d unsent event(s) "
            "dropped",
            self.node_id,
            len(ended),
            ", ".join(sorted(ended)[:5]),
            dropped,
        )
        for run_id in ended:
            self.local_runs.pop(run_id, None)
            self.manager.cancel_run(run_id)

    def epoch_changed(self) -> None:
        """Redis lost its data: register this node and its runs again."""
        asyncio.get_running_loop().create_task(self._register_again())

    async def _register_again(self) -> None:
        redis = self.broker.redis
        try:
            await redis.set(
                self.keys.lease(self.node_id), self.broker.incarnation, px=int(LEASE_S * 1000)
            )
            await redis.hset(self.keys.nodes, self.node_id, self._entry)
            if self.local_runs:
                await redis.hset(self.keys.runs, mapping=dict(self.local_runs))  # type: ignore[arg-type]
        except (RedisError, OSError) as exc:
            log.warning("node %s could not register again: %s", self.node_id, exc)

    # --- other nodes ------------------------------------------------------------------

    async def _sweep(self) -> None:
        redis = self.broker.redis
        # bytes in, bytes out: the client is made with decode_responses=False
        runs: dict[bytes, bytes] = await redis.hgetall(self.keys.runs)  # type: ignore[assignment]
        nodes: dict[bytes, bytes] = await redis.hgetall(self.keys.nodes)  # type: ignore[assignment]
        infos = {run_id.decode(): (entry, orjson.loads(entry)) for run_id, entry in runs.items()}
        node_ids = sorted(
            {n.decode() for n in nodes} | {info["node"] for _, info in infos.values()}
        )
        leases: dict[str, bytes | None] = {}
        if node_ids:
            values = await redis.mget([self.keys.lease(n) for n in node_ids])
            leases = dict(zip(node_ids, values, strict=True))  # type: ignore[arg-type]
        now = time.monotonic()
        self._claimed = {k: t for k, t in self._claimed.items() if now - t < 10 * RENEW_S}
        seen = []
        for node, raw in nodes.items():
            node_id = node.decode()
            incarnation = orjson.loads(raw).get("incarnation", "")
            alive = leases.get(node_id) == incarnation.encode()
            seen.append({"node": node_id, "state": "up" if alive else "lost"})
            if not alive:
                self._lost_node(node_id, raw)
        self.nodes_seen = seen
        for run_id, (entry, info) in infos.items():
            if leases.get(info["node"]) == str(info.get("incarnation", "")).encode():
                continue
            if run_id in self._claimed:
                continue
            self._claimed[run_id] = now
            self.broker.enqueue(self._end_lost_run(run_id, entry, info))
            self.manager.metrics.runs_reaped.inc()

    def _lost_node(self, node_id: str, entry: bytes) -> None:
        key = f"node:{node_id}:{entry!r}"
        if key in self._claimed:
            return
        self._claimed[key] = time.monotonic()
        incarnation = orjson.loads(entry).get("incarnation", "")
        self.broker.enqueue(LostNodeRecord(node_id, entry, incarnation, self._lost_frame(node_id)))

    def _lost_frame(self, node_id: str) -> bytes:
        status = NodeStatus(
            node_id,
            NodeState.LOST,
            time.time(),
            f"stopped renewing its lease for {LEASE_S:g}s; {self.node_id} ends the runs it "
            "left as failed",
        )
        return dumps(node_status_to_dict(status))[:-1]  # open: the script adds monitor_seq

    def _end_lost_run(self, run_id: str, entry: bytes, info: dict[str, Any]) -> EventRecord:
        now = time.time()
        lost = info["node"]
        event = Event(
            type=EventType.AGENT_COMPLETED,
            event_id=placeholder_id(),
            seq=1,
            user_id=info["user_id"],
            thread_id=info["thread_id"],
            run_id=run_id,
            agent_name=info["agent_name"],
            timestamp=now,
            data={
                "status": RunStatus.FAILED.value,
                "duration_ms": round(max(0.0, now - float(info.get("started", now))) * 1000, 3),
                "error": f"node {lost} was lost during the run (its lease expired); "
                f"ended by node {self.node_id}",
                "correlation_id": info.get("request_id", ""),
            },
        )
        head, tail = split_frame(encode_event(event))
        log.warning(
            "node %s ends run %s of %s as failed: its node %s was lost",
            self.node_id,
            run_id,
            info["user_id"],
            lost,
        )
        return EventRecord(
            info["user_id"],
            head,
            tail,
            "d",
            now,
            run_id,
            RunOp.END,
            b"",
            claimed_info=entry,
            claimed_node=lost,
        )
