"""The runtime's endpoints: their paths, and their names in metrics labels and logs."""

from __future__ import annotations

#: a user's chat connection (WebSocket): that user's events only
USER_PATH = "/ws"
#: the observer stream (WebSocket, monitor role): every user's events and delivery reports
MONITOR_PATH = "/monitor"
#: liveness and configuration (HTTP GET, JSON, no auth)
HEALTH_PATH = "/healthz"
#: Prometheus metrics (HTTP GET, text format, no auth)
METRICS_PATH = "/metrics"

#: the WebSocket endpoints by name, as the ``endpoint`` label of the metrics says them
USER_ENDPOINT = USER_PATH.lstrip("/")
MONITOR_ENDPOINT = MONITOR_PATH.lstrip("/")
