"""The monitor's receive clock: wall-clock seconds that never step backwards.

Receive times are compared with the runtime's wall-clock timestamps (latency), so they must
be Unix seconds; but the store keeps rows in receive order and searches them by time, so
they must also never decrease. Wall time read once, advanced by the monotonic clock, is both.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_WALL_AT_START = time.time()
_MONOTONIC_AT_START = time.monotonic()


def steady_time() -> float:
    """Unix time in seconds, advancing monotonically (immune to clock steps)."""
    return _WALL_AT_START + (time.monotonic() - _MONOTONIC_AT_START)


#: this process's anchor: wall time and monotonic time read together at start
ClockAnchor = tuple[float, float]


def clock_anchor() -> ClockAnchor:
    """The anchor of ``steady_time`` (for another process to read the same clock)."""
    return (_WALL_AT_START, _MONOTONIC_AT_START)


def anchored_clock(anchor: ClockAnchor) -> Callable[[], float]:
    """``steady_time`` of the process whose ``clock_anchor()`` this is. The monotonic clock
    is the system's, shared by its processes: the capture process stamps frames on the
    app's own receive clock."""
    wall, monotonic = anchor

    def now() -> float:
        return wall + (time.monotonic() - monotonic)

    return now
