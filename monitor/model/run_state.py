"""How a run stands, as the monitor's store and views say it.

The runtime ends a run with one of its ``agent_completed`` statuses (``runtime.protocol``'s
``RUN_STATUSES``: completed, failed, cancelled). The monitor adds what it judges itself: a
run still going (``RUNNING``), one silent past the stall threshold (``STALLED``), and one
silent so long it was given up on (``ABANDONED``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunState(StrEnum):
    RUNNING = "running"
    #: silent past the stall threshold, no ``agent_completed`` yet (AEM012)
    STALLED = "stalled"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: silent for minutes: given up on (an event for it revives it)
    ABANDONED = "abandoned"


#: the statuses ``agent_completed`` can carry (``runtime.protocol.RUN_STATUSES``)
ENDED_BY_RUNTIME: Final = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})
#: how a run can end, as its status says ("running" and "stalled" are not ends)
FINISHED: Final = ENDED_BY_RUNTIME | {RunState.ABANDONED}
#: a run that has not ended
LIVE: Final = frozenset({RunState.RUNNING, RunState.STALLED})
