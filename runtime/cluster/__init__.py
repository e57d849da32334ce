"""Many runtime processes as one runtime: the streams in a shared Redis.

``build_manager`` picks the stream engine a runtime is configured with: in memory (the
default: one process, nothing to set up) or Redis (``--broker redis://…``: every process
started with the same broker and namespace is a node of one runtime).
"""

from __future__ import annotations

import re

from runtime.config import ENV_PREFIX, RuntimeConfig
from runtime.manager import WebSocketManager
from runtime.metrics import RuntimeMetrics

from .url import BrokerUrl, BrokerUrlError, parse_broker_url

#: node ids and namespaces: they become parts of Redis keys and of log lines
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def check_cluster_options(config: RuntimeConfig) -> None:
    """Raise ``ValueError`` with one line naming the option if the broker URL, the
    namespace or the node id cannot be used."""
    if config.broker is not None:
        try:
            parse_broker_url(config.broker)
        except BrokerUrlError as exc:
            raise ValueError(f"--broker / {ENV_PREFIX}BROKER: {exc}") from None
    for option, value in (
        ("--broker-namespace", config.broker_namespace),
        ("--node-id", config.node_id),
    ):
        if value is not None and not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{option} {value[:80]!r}: use 1-63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )


def build_manager(
    config: RuntimeConfig, metrics: RuntimeMetrics, server_version: str
) -> WebSocketManager:
    """The manager of ``config``'s stream engine (raises ``BrokerUrlError`` for a bad
    broker URL)."""
    if config.broker is None:
        return WebSocketManager(
            metrics,
            send_queue_limit=config.send_queue_limit,
            replay_buffer=config.replay_buffer,
            monitor_replay_buffer=config.monitor_replay_buffer,
            server_version=server_version,
            node_id=config.node_id,
        )
    from .manager import ClusterManager  # redis is imported only by runtimes that use it

    return ClusterManager(
        parse_broker_url(config.broker),
        metrics,
        namespace=config.broker_namespace,
        send_queue_limit=config.send_queue_limit,
        replay_buffer=config.replay_buffer,
        monitor_replay_buffer=config.monitor_replay_buffer,
        server_version=server_version,
        node_id=config.node_id,
    )


__all__ = [
    "BrokerUrl",
    "BrokerUrlError",
    "build_manager",
    "check_cluster_options",
    "parse_broker_url",
]
