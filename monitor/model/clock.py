"""The monitor's receive clock: wall-clock seconds that never step backwards.

Receive times are compared with the runtime's wall-clock timestamps (latency), so they must
be Unix seconds; but the store keeps rows in receive order and searches them by time, so
they must also never decrease. Wall time read once, advanced by the monotonic clock, is both.
"""

from __future__ import annotations

import time

_WALL_AT_START = time.time()
_MONOTONIC_AT_START = time.monotonic()


def steady_time() -> float:
    """Unix time in seconds, advancing monotonically (immune to clock steps)."""
    return _WALL_AT_START + (time.monotonic() - _MONOTONIC_AT_START)
