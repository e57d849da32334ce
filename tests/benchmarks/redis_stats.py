"""What a Redis-engine benchmark reads from its private Redis: commands, CPU, memory.

``RedisProbe`` reads a real ``redis-server`` (``tests.redis_server.RedisServer``, started by
the benchmark, never a shared one): ``INFO commandstats`` (calls per command, the commands
the batch script runs inside Redis included, so a delta over a load says what one event
costs), ``INFO memory``, the redis-server process's CPU time, and each key of a cluster's
namespace (``runtime.cluster.keys``) with its ``MEMORY USAGE`` and length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from runtime.cluster.keys import Keys
from tests.redis_server import RedisServer, redis_binary

from .processes import cpu_seconds

#: command -> what kind of work it is, for the per-family figures (anything else: "other")
FAMILIES: dict[str, str] = {
    "evalsha": "script",
    "eval": "script",
    "script|load": "script",
    "xadd": "stream",
    "xrange": "stream",
    "xlen": "stream",
    "incr": "counter",
    "hincrby": "counter",
    "hget": "hash",
    "hset": "hash",
    "hdel": "hash",
    "hmget": "hash",
    "hgetall": "hash",
    "get": "string",
    "set": "string",
    "mget": "string",
    "expire": "ttl",
    "publish": "pubsub",
    "subscribe": "pubsub",
    "unsubscribe": "pubsub",
    "multi": "transaction",
    "exec": "transaction",
}
#: the commands a node sends itself (the rest run inside the batch script)
CLIENT_COMMANDS = frozenset(
    {"evalsha", "eval", "script|load", "subscribe", "unsubscribe", "hello", "multi", "exec"}
)


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of this benchmark's own on a free port, stopped at the end."""
    if redis_binary() is None:
        raise RuntimeError(
            "the Redis benchmarks need redis-server on the PATH "
            "(Debian: apt-get install redis-server)"
        )
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Redis's counters at one moment."""

    calls: dict[str, int]
    usec: dict[str, int]
    used_memory: int
    cpu_s: float


@dataclass
class RedisProbe:
    """Reads one private Redis and one cluster namespace in it."""

    server: RedisServer
    namespace: str

    def __post_init__(self) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=self.server.port, db=0)
        self.keys = Keys(self.namespace)

    def close(self) -> None:
        self.client.close()

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def snapshot(self) -> Snapshot:
        stats: dict[str, Any] = self.client.info("commandstats")
        memory: dict[str, Any] = self.client.info("memory")
        calls: dict[str, int] = {}
        usec: dict[str, int] = {}
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            calls[name] = int(value["calls"])
            usec[name] = int(value["usec"])
        return Snapshot(calls, usec, int(memory["used_memory"]), cpu_seconds(self.pid))

    def events_numbered(self) -> int:
        """Events the cluster has numbered: the sum of every user's last ``seq``."""
        total = 0
        for key in self.client.scan_iter(match=self.keys.user_meta("*"), count=1000):
            value = self.client.hget(key, "seq")
            total += int(value) if value else 0
        return total

    def observer_numbered(self) -> int:
        value = self.client.get(self.keys.observer_seq)
        return int(value) if value else 0

    def key_memory(self) -> dict[str, dict[str, int]]:
        """Bytes (``MEMORY USAGE … SAMPLES 0``: every element counted) and entries of the
        namespace's keys, by kind: ``user_streams``, ``observer_stream``, ``other``."""
        out = {
            kind: {"keys": 0, "bytes": 0, "entries": 0}
            for kind in ("user_streams", "observer_stream", "other")
        }
        for raw in self.client.scan_iter(match=f"{self.namespace}:*", count=1000):
            key = raw.decode()
            size = self.client.memory_usage(key, samples=0) or 0
            if key == self.keys.observer_stream:
                kind = "observer_stream"
            elif key.startswith(self.keys.user_channel_prefix) and key.endswith(":stream"):
                kind = "user_streams"
            else:
                kind = "other"
            entry = out[kind]
            entry["keys"] += 1
            entry["bytes"] += int(size)
            if kind != "other":
                entry["entries"] += int(self.client.xlen(key))
        return out


def command_delta(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Calls of each command between two snapshots (commands not called left out)."""
    delta = {name: after.calls[name] - before.calls.get(name, 0) for name in after.calls}
    return {name: n for name, n in sorted(delta.items(), key=lambda kv: -kv[1]) if n > 0}


def usec_delta(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Microseconds Redis spent in each command between two snapshots (the batch script's
    own time includes the commands it ran)."""
    delta = {name: after.usec[name] - before.usec.get(name, 0) for name in after.usec}
    return {name: n for name, n in sorted(delta.items(), key=lambda kv: -kv[1]) if n > 0}


def by_family(calls: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in calls.items():
        family = FAMILIES.get(name, "other")
        out[family] = out.get(family, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def per_event(counts: dict[str, int], events: int) -> dict[str, float]:
    return {name: round(n / events, 3) for name, n in counts.items()} if events else {}


class ChannelClock(threading.Thread):
    """Subscribes to every user channel of a namespace and times each event from its
    ``timestamp`` (taken when the node emitted it) to its arrival here: how long an event
    takes to be numbered and published by Redis, apart from what the node does after.
    A plain blocking client in a thread of its own, on this machine's clock."""

    def __init__(self, server: RedisServer, namespace: str) -> None:
        super().__init__(name="channel-clock", daemon=True)
        self.client = redis.Redis(host="127.0.0.1", port=server.port, db=0)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe(Keys(namespace).user_channel("*"))
        self.latencies_ms: list[float] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None or message["type"] != "pmessage":
                continue
            now = time.time()
            for line in message["data"].split(b"\n"):
                # seq action event_id timestamp frame (runtime.cluster.records)
                self.latencies_ms.append((now - float(line.split(b" ", 4)[3])) * 1000)

    def stop(self) -> list[float]:
        self._done.set()
        self.join(5)
        self.pubsub.close()
        self.client.close()
        return self.latencies_ms
