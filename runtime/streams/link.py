"""The state of a client's connection to a runtime, as a reconnecting client reports it."""

from __future__ import annotations

from enum import StrEnum


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"  # for good: retrying cannot help (a refused token, a failed recording)
