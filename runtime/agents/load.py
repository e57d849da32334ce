"""An agent for load tests and benchmarks: a configurable burst of thinking and tool calls.

Options (``user_message.options``): ``steps`` thinking steps (default 10), ``tools`` tool
calls (default 1), ``rate`` thinking steps per second (default 0: as fast as possible).
Pacing follows a schedule rather than sleeping a fixed interval per step, so the rate holds
even when the event loop's timers are coarser than the interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..tools import Tool
from .base import Agent, RunScope

MAX_STEPS = 100_000


def echo(payload: Any = None) -> Any:
    """Return the payload unchanged (the cheapest real tool)."""
    return payload


ECHO_TOOL = Tool("echo", "Return the payload unchanged", echo, parameters={"payload": "any"})


def _bounded_int(value: Any, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(low, min(high, value))


class LoadAgent(Agent):
    """Emits exactly ``steps`` thinking events and ``tools`` tool calls, as fast as allowed."""

    name = "load"
    description = "Benchmark agent: options steps, tools, rate"

    async def run(self, scope: RunScope) -> Any:
        steps = _bounded_int(scope.options.get("steps"), 10, 1, MAX_STEPS)
        tools = _bounded_int(scope.options.get("tools"), 1, 1, MAX_STEPS)
        rate = scope.options.get("rate", 0)
        interval = 1.0 / rate if isinstance(rate, int | float) and rate > 0 else 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        for step in range(steps):
            await scope.think(f"load step {step + 1} of {steps}", pause=0)
            if interval:
                # Absolute schedule, not scaled by the runtime's pace: step k at k * interval.
                ahead = started + (step + 1) * interval - loop.time()
                if ahead > 0:
                    await scope.sleep(ahead)
            if step < tools:
                await scope.call_tool("echo", payload=step)
        for extra in range(steps, tools):
            await scope.call_tool("echo", payload=extra)
        return {"steps": steps, "tools": tools}
