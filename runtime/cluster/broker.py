"""``RedisBroker``: a node's link to the Redis its cluster shares.

Three loops, each on its own connection:

- the **writer** sends the node's records (events, delivery reports, ``node`` frames) to the
  batch script, in the order they were made, as many per call as have queued up. A batch
  that fails is retried, not lost; one whose reply was lost is not applied twice (its id).
- the **reader** receives the channels this node subscribed to (the users it has
  connections of, the observer stream while it has monitors) and hands each message to the
  manager; after a reconnect it tells the manager, which fills what it missed from the
  streams.
- the **lease** loop renews this node's lease and ends the runs of nodes whose lease ran
  out (see ``runtime.cluster.leases``).

While Redis cannot be reached, ``unavailable`` says why: the server then refuses new runs and
connections, runs in progress keep going and their events wait in the writer's queue (up
to ``MAX_PENDING``; past that each one dropped is logged and counted, never silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from runtime.manager import StreamsUnavailableError
from runtime.metrics import RuntimeMetrics
from runtime.streams import Backoff, node_field

from .keys import Keys
from .records import Record
from .scripts import BATCH_SCRIPT
from .url import BrokerUrl

log = logging.getLogger(__name__)

#: records waiting for Redis before new ones are dropped (and counted) instead of kept
MAX_PENDING = 100_000
#: records per call of the batch script: bounds how long one call holds Redis
MAX_BATCH = 512
#: how long a Redis command may take before the link counts as broken
COMMAND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0

#: (channel, message) handed to the manager by the reader
MessageHandler = Callable[[str, bytes], None]


class RedisBroker:
    """One node's connections to the shared Redis, and the loops that use them."""

    def __init__(
        self,
        url: BrokerUrl,
        keys: Keys,
        node_id: str,
        *,
        replay_buffer: int,
        monitor_replay_buffer: int,
        user_ttl_s: int,
        metrics: RuntimeMetrics,
    ) -> None:
        self.url = url
        self.keys = keys
        self.node_id = node_id
        #: this run of the node: a restart under the same id is a new incarnation, so the
        #: runs the old one left are still found lost
        self.incarnation = uuid.uuid4().hex
        self.replay_buffer = replay_buffer
        self.monitor_replay_buffer = monitor_replay_buffer
        self.user_ttl_s = user_ttl_s
        self.metrics = metrics
        self.epoch = ""
        self.redis = Redis(
            host=url.host,
            port=url.port,
            db=url.db,
            username=url.username,
            password=url.password,
            ssl=url.tls,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            decode_responses=False,
            # No retries inside redis-py: its default backs off for seconds before a lost
            # Redis shows, and the loops here retry on their own (a batch by its id).
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self.redis.register_script(BATCH_SCRIPT)
        self._pending: deque[Record] = deque()
        self._wakeup = asyncio.Event()
        self._batches = itertools.count(1)
        self._dropped_while_down = 0
        self._error: str | None = None
        self._pubsub: PubSub | None = None
        self._resubscribed: asyncio.Task[None] | None = None
        self._channels: set[str] = set()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._on_message: MessageHandler = lambda channel, data: None
        self._on_resubscribed: Callable[[], Awaitable[None]] | None = None
        self._on_results: Callable[[list[Record], list[Any]], None] = lambda records, out: None
        self._on_epoch: Callable[[str], None] = lambda epoch: None
        self._before_flush: Callable[[], Awaitable[None]] | None = None
        #: the batch being written: a failed one is sent again as it was, under the same
        #: number, so Redis applies it once even if only its reply was lost
        self._batch: list[Record] = []
        #: what a batch being retried keeps (``discard`` narrows it)
        self._keep: Callable[[Record], bool] = lambda record: True
        self._control_channel = keys.control_channel(node_id)
        self.closed = False
        self._node_json = node_json(node_id)
        # read when /metrics is rendered: a gauge's set takes a lock, once per event here
        metrics.before_render(lambda: metrics.broker_pending.set(self.pending))

    # --- state ------------------------------------------------------------------------

    @property
    def unavailable(self) -> str | None:
        """Why Redis cannot be used right now (None: it can)."""
        if self._error is None:
            return None
        return f"Redis at {self.url.display} is unreachable ({self._error})"

    @property
    def pending(self) -> int:
        """Records not yet in Redis: queued, or in the batch being written."""
        return len(self._pending) + len(self._batch)

    def _broken(self, exc: BaseException) -> None:
        text = str(exc) or type(exc).__name__
        if self._error is None:
            log.error("node %s lost Redis at %s: %s", self.node_id, self.url.display, text)
        self._error = text
        self.metrics.broker_up.set(0)

    def _working(self) -> None:
        if self._error is not None:
            log.warning("node %s reached Redis at %s again", self.node_id, self.url.display)
        self._error = None
        self.metrics.broker_up.set(1)

    # --- lifecycle --------------------------------------------------------------------

    async def start(
        self,
        *,
        on_message: MessageHandler,
        on_resubscribed: Callable[[], Awaitable[None]],
        on_results: Callable[[list[Record], list[Any]], None],
        on_epoch: Callable[[str], None],
        before_flush: Callable[[], Awaitable[None]],
    ) -> None:
        """Read the epoch (making one if Redis has none) and start the loops. Raises
        ``StreamsUnavailableError`` if Redis cannot be reached at all."""
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._on_results = on_results
        self._on_epoch = on_epoch
        self._before_flush = before_flush
        try:
            self.epoch = await self.read_epoch()
            await self._subscribe_all()
        except (RedisError, OSError) as exc:
            raise StreamsUnavailableError(
                f"cannot reach Redis at {self.url.display}: {exc}"
            ) from None
        self._working()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop(), name=f"broker-writer-{self.node_id}"),
            loop.create_task(self._read_loop(), name=f"broker-reader-{self.node_id}"),
        ]

    def add_task(self, task: asyncio.Task[None]) -> None:
        """A loop that stops with the broker (the lease loop)."""
        self._tasks.append(task)

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued record was applied (at most ``timeout`` seconds)."""
        if self.closed:
            return not self._pending
        try:
            async with asyncio.timeout(timeout):
                while self._pending or self._batch:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # runs once, at a node's stop
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await task
        self._tasks = []
        if self._resubscribed is not None:
            self._resubscribed.cancel()
        await self._drop_pubsub()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # --- epoch ------------------------------------------------------------------------

    async def read_epoch(self) -> str:
        """The streams' epoch, made now if Redis has none (a new or emptied Redis)."""
        await self.redis.set(self.keys.epoch, uuid.uuid4().hex, nx=True)
        value: bytes | None = await self.redis.get(self.keys.epoch)  # type: ignore[assignment]
        return value.decode() if value else ""

    # --- writing ----------------------------------------------------------------------

    def enqueue(self, record: Record) -> None:
        """Queue a record for the batch script; never blocks."""
        if len(self._pending) >= MAX_PENDING:
            self._dropped_while_down += 1
            self.metrics.broker_dropped.inc()
            if self._dropped_while_down == 1:
                log.error(
                    "node %s: %d records wait for Redis (%s); further events are dropped "
                    "and counted in aem_broker_dropped_records_total until it is back",
                    self.node_id,
                    MAX_PENDING,
                    self.unavailable or "it is slow",
                )
            return
        self._pending.append(record)
        self._wakeup.set()

    def discard(self, keep: Callable[[Record], bool]) -> int:
        """Remove the queued records ``keep`` rejects (the batch being retried too);
        returns how many were queued."""
        self._keep = keep
        before = len(self._pending)
        self._pending = deque(r for r in self._pending if keep(r))
        return before - len(self._pending)

    async def _write_loop(self) -> None:
        backoff = Backoff(0.05, 2.0)
        reconnected = False
        number = 0
        while True:
            if not self._batch:
                await self._wakeup.wait()
                # One turn of the loop first: every run that is ready adds its event to
                # this call instead of the next (a call costs more than an event in it).
                await asyncio.sleep(0)
                self._wakeup.clear()
                if not self._pending:
                    continue
                take = min(MAX_BATCH, len(self._pending))
                self._batch = [self._pending.popleft() for _ in range(take)]
                number = next(self._batches)
            try:
                if reconnected and self._before_flush is not None:
                    await self._before_flush()
                    reconnected = False
                    self._batch = [r for r in self._batch if self._keep(r)]
                    if not self._batch:
                        continue
                out = await self._apply(self._batch, number)
            except (RedisError, OSError) as exc:
                self._broken(exc)
                reconnected = True
                await asyncio.sleep(next(backoff))
                continue
            applied, self._batch = self._batch, []
            if self._pending:
                self._wakeup.set()
            backoff.reset()
            self._working()
            if self._dropped_while_down:
                # The ERROR at the first drop could not say how many would follow.
                log.warning(
                    "node %s: Redis takes records again; %d record(s) were dropped while "
                    "%d already waited for it",
                    self.node_id,
                    self._dropped_while_down,
                    MAX_PENDING,
                )
            self._dropped_while_down = 0
            self.metrics.broker_batches.inc()
            if out and out[0].decode() != self.epoch:
                self.epoch = out[0].decode()
                self._on_epoch(self.epoch)
            if len(out) > 1 and out[1] == b"repeat":
                continue  # applied before its reply was lost
            self._on_results(applied, out[1:])

    async def _apply(self, batch: list[Record], batch_number: int) -> list[Any]:
        args: list[bytes | str | int] = [
            self.keys.namespace,
            self.epoch,
            uuid.uuid4().hex,
            self._node_json,
            self.replay_buffer,
            self.monitor_replay_buffer,
            self.user_ttl_s,
            uuid.uuid4().hex,
            f"{self.node_id}:{self.incarnation}",
            batch_number,
        ]
        args.extend([record.pack() for record in batch])
        result: list[Any] = await self._script(keys=[], args=args)
        return result

    # --- reading ----------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe to ``channel`` and wait until Redis confirmed it (from then on every
        message published on it reaches this node)."""
        if channel in self._channels:
            return
        self._channels.add(channel)
        try:
            await self._subscribe([channel])
        except StreamsUnavailableError:
            self._channels.discard(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await self._pubsub.unsubscribe(channel)

    def _expect_confirmations(self, channels: list[str]) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        waits = []
        for channel in channels:
            future = self._confirmations.get(channel)
            if future is None or future.done():
                future = self._confirmations[channel] = loop.create_future()
            waits.append(future)
        return waits

    async def _subscribe(self, channels: list[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise StreamsUnavailableError(self.unavailable or "not connected to Redis")
        waits = self._expect_confirmations(channels)
        try:
            await pubsub.subscribe(*channels)
            # The reader loop takes the confirmations off the connection.
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await asyncio.gather(*waits)
        except (RedisError, OSError, RuntimeError, TimeoutError) as exc:
            raise StreamsUnavailableError(f"cannot subscribe: {exc or 'timed out'}") from None

    async def _subscribe_all(self) -> None:
        """The first subscription, before the reader runs."""
        self._pubsub = self.redis.pubsub()
        # Its own channel keeps the connection subscribed (and the reader reading) while
        # the node has no connections.
        self._channels.add(self._control_channel)
        await self._pubsub.subscribe(*sorted(self._channels))

    async def _read_loop(self) -> None:
        backoff = Backoff(0.05, 2.0)
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is None:
                    pubsub = await self._reconnect_subscriptions()
                message = await pubsub.get_message(timeout=1.0)
            except (RedisError, OSError, RuntimeError) as exc:
                # RuntimeError: redis-py's word for a subscription connection it lost
                self._broken(exc)
                await self._drop_pubsub()
                await asyncio.sleep(next(backoff))
                continue
            backoff.reset()
            if message is None:
                continue
            kind = message["type"]
            channel = bytes(message["channel"]).decode()
            if kind == "message":
                self._on_message(channel, message["data"])
            elif kind == "subscribe":
                future = self._confirmations.pop(channel, None)
                if future is not None and not future.done():
                    future.set_result(None)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await pubsub.aclose()

    async def _reconnect_subscriptions(self) -> PubSub:
        pubsub = self.redis.pubsub()
        channels = sorted(self._channels)
        waits = self._expect_confirmations(channels)
        await pubsub.subscribe(*channels)
        self._pubsub = pubsub
        self._resubscribed = asyncio.get_running_loop().create_task(
            self._after_resubscribe(waits), name=f"broker-resubscribed-{self.node_id}"
        )
        return pubsub

    async def _after_resubscribe(self, waits: list[asyncio.Future[None]]) -> None:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await asyncio.gather(*waits)
        except TimeoutError:
            return  # the reader fails too and tries again
        self._working()
        log.info("node %s subscribed to its %d channels again", self.node_id, len(self._channels))
        if self._on_resubscribed is not None:
            try:
                await self._on_resubscribed()
            except (RedisError, OSError, StreamsUnavailableError) as exc:
                log.warning("node %s could not catch up after reconnecting: %s", self.node_id, exc)

    # --- stream reads -----------------------------------------------------------------

    async def last_seq(self, meta_key: str) -> int:
        value = await self.redis.hget(meta_key, "seq")
        return int(value) if value else 0

    async def observer_last_seq(self) -> int:
        value = await self.redis.get(self.keys.observer_seq)
        return int(value) if value else 0

    async def entries(
        self, stream: str, after: int, upto: int
    ) -> tuple[int, list[tuple[int, bytes]]]:
        """The stream's first kept number and its entries numbered ``after < n <= upto``
        (an empty frame: a number used with nothing to re-send)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(stream, "-", "+", count=1)
            pipe.xrange(stream, f"0-{after + 1}", f"0-{max(upto, after + 1)}")
            first_entry, rows = await pipe.execute()
        first = _entry_seq(first_entry[0][0]) if first_entry else upto + 1
        if upto <= after:
            rows = []
        return first, [(_entry_seq(entry_id), fields[b"f"]) for entry_id, fields in rows]


def _entry_seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[1])


def node_json(node_id: str) -> bytes:
    """A node id as a JSON string, as the batch script writes it into observer frames."""
    return node_field(node_id)[len(b',"node":') :]
