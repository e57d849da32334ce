"""Prometheus metrics of one runtime instance (served at ``GET /metrics``).

Each runtime owns its own ``CollectorRegistry`` so several runtimes in one process (tests,
the monitor's embedded runtime) never share or clash over counters.

prometheus_client takes a lock on every increment (0.7 µs a counter, 1.5 µs a histogram
observation), which is measurable per event at tens of thousands of events per second. The
counts made per event or per frame are therefore kept as plain numbers on the event loop and
folded in when the metrics are rendered (``before_render``), and the delivery latency is a
``LatencyHistogram``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "LatencyHistogram", "RuntimeMetrics"]


class LatencyHistogram(Collector):
    """A Prometheus histogram observed only from the event loop: ``observe`` is a bisect and
    two additions, without prometheus_client's lock per bucket and sum."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(sorted(float(b) for b in buckets))
        #: observations per bucket (not cumulative); the last one is +Inf
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        registry.register(self)

    def observe(self, amount: float) -> None:
        # bisect_left finds the first bound >= amount: Prometheus buckets are "<= bound".
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            cumulative.append(("+Inf" if bound == math.inf else repr(bound), total))
        yield HistogramMetricFamily(
            self.name, self.documentation, buckets=cumulative, sum_value=self.sum
        )


class RuntimeMetrics:
    """The counters the runtime keeps; every send failure is visible here."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_emitted = Counter(
            "aem_events_emitted", "Events emitted, by type", ["type"], registry=r
        )
        self.frames_sent = Counter(
            "aem_frames_sent",
            "Frames written to connections, by endpoint",
            ["endpoint"],
            registry=r,
        )
        self.socket_writes = Counter(
            "aem_socket_writes",
            "Socket writes to connections, by endpoint (frames sent / writes = frames per write)",
            ["endpoint"],
            registry=r,
        )
        self.send_failures = Counter(
            "aem_send_failures",
            "Frames that could not be sent to a connection, by reason",
            ["reason"],
            registry=r,
        )
        self.undelivered_events = Counter(
            "aem_events_undelivered",
            "Events emitted while their user had no connection (kept for resume)",
            registry=r,
        )
        self.slow_consumer_closes = Counter(
            "aem_slow_consumer_closes",
            "Connections closed because their send queue overflowed",
            registry=r,
        )
        self.replays = Counter(
            "aem_replays", "Resume requests served, by endpoint", ["endpoint"], registry=r
        )
        self.replay_gaps = Counter(
            "aem_replay_gaps",
            "Resume requests that asked for events no longer buffered",
            registry=r,
        )
        self.chaos_actions = Counter(
            "aem_chaos_actions",
            "Events altered by protocol chaos, by action",
            ["action"],
            registry=r,
        )
        self.bad_frames = Counter(
            "aem_bad_frames", "Inbound frames rejected, by error code", ["code"], registry=r
        )
        self.auth_failures = Counter(
            "aem_auth_failures",
            "Handshakes refused for who or where they came from (401 token, 403 role or "
            "Origin), by HTTP status",
            ["status"],
            registry=r,
        )
        # Kept apart from auth_failures: a malformed request is a client bug, not an
        # intruder, and an alert on auth failures must not fire for it.
        self.bad_handshakes = Counter(
            "aem_bad_handshakes",
            "Handshakes refused as malformed (400), by reason",
            ["reason"],
            registry=r,
        )
        self.connections = Gauge(
            "aem_connections", "Open connections, by endpoint", ["endpoint"], registry=r
        )
        self.runs_started = Counter("aem_runs_started", "Agent runs started", registry=r)
        self.runs_finished = Counter(
            "aem_runs_finished", "Agent runs finished, by status", ["status"], registry=r
        )
        self.runs_active = Gauge("aem_runs_active", "Agent runs in progress", registry=r)
        self.tool_calls = Counter(
            "aem_tool_calls", "Tool calls, by tool and status", ["tool", "status"], registry=r
        )
        self.delivery_latency = LatencyHistogram(
            "aem_delivery_latency_seconds",
            "Emit to last write of an event to its user's connections",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        # The Redis engine (serve --broker); they stay 0 on a runtime that keeps its
        # streams in memory.
        self.broker_up = Gauge(
            "aem_broker_up", "1 while this node reaches the cluster's Redis", registry=r
        )
        self.broker_pending = Gauge(
            "aem_broker_pending_records",
            "Events and reports waiting to be written to Redis",
            registry=r,
        )
        self.broker_batches = Counter(
            "aem_broker_batches", "Calls of the batch script (one per batch of records)", registry=r
        )
        self.broker_dropped = Counter(
            "aem_broker_dropped_records",
            "Records dropped because Redis was unreachable for too long, or because the "
            "run they belong to was ended by another node meanwhile",
            registry=r,
        )
        self.runs_reaped = Counter(
            "aem_runs_reaped",
            "Runs of lost nodes this node ended with agent_completed (failed)",
            registry=r,
        )
        self._before_render: list[Callable[[], None]] = []

    def before_render(self, fold: Callable[[], None]) -> None:
        """Call ``fold`` before each rendering (it adds counts kept elsewhere as numbers)."""
        self._before_render.append(fold)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        for fold in self._before_render:
            fold()
        return generate_latest(self.registry)
