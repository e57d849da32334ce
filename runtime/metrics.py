"""Prometheus metrics of one runtime instance (served at ``GET /metrics``).

Each runtime owns its own ``CollectorRegistry`` so several runtimes in one process (tests,
the monitor's embedded runtime) never share or clash over counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "RuntimeMetrics"]


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
            "aem_auth_failures", "Handshakes refused, by HTTP status", ["status"], registry=r
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
        self.delivery_latency = Histogram(
            "aem_delivery_latency_seconds",
            "Emit to last write of an event to its user's connections",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
