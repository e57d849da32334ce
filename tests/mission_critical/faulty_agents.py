"""An agent whose tools misbehave for real, installed into the in-process runtime.

The fault knobs inject failures inside the tool executor; these tools fail the way real
code does (an unexpected exception, a refusal, a name nobody registered, a result JSON
cannot carry), so the gate also covers bugs the knobs cannot imitate.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from runtime.agents.base import Agent, RunScope
from runtime.embedded import EmbeddedRuntime
from runtime.tools import Tool, ToolError

AGENT = "mc_tool_faults"
#: tool name -> the status its tool_completed must carry
TOOLS = {
    "mc_raises": "error",
    "mc_refuses": "error",
    "mc_not_registered": "error",
    "mc_opaque_result": "success",
    "echo": "success",
}


def _raises() -> None:
    raise RuntimeError("mc_raises exploded on purpose")


def _refuses() -> None:
    raise ToolError("mc_refuses refused on purpose")


def _opaque_result() -> object:
    return object()  # JSON cannot carry it: the runtime must send its repr instead


class ToolFaultsAgent(Agent):
    """Calls each misbehaving tool alone, then all of them in parallel, then answers."""

    name: ClassVar[str] = AGENT
    description: ClassVar[str] = "mission-critical suite: tools that raise, refuse, are missing"

    async def run(self, scope: RunScope) -> Any:
        statuses: dict[str, list[str]] = {}
        await scope.think("calling each tool on its own", pause=0)
        for tool in TOOLS:
            result = await scope.call_tool(tool)
            statuses.setdefault(tool, []).append(result.status)
        await scope.think("calling all of them in parallel", pause=0)
        results = await scope.call_tools([(tool, {}) for tool in TOOLS])
        for tool, result in zip(TOOLS, results, strict=True):
            statuses[tool].append(result.status)
        await scope.think("reporting what each tool did", pause=0)
        return statuses


def install(embedded: EmbeddedRuntime) -> str:
    """Register the agent and its tools with the running runtime (once); return its name."""
    registry = embedded.server.registry

    async def register() -> None:  # on the runtime's own loop, between its callbacks
        await asyncio.sleep(0)
        if AGENT in registry.agent_names:
            return
        dispatcher = registry.tool_dispatcher
        dispatcher.register(Tool("mc_raises", "raises RuntimeError", _raises))
        dispatcher.register(Tool("mc_refuses", "raises ToolError", _refuses))
        dispatcher.register(Tool("mc_opaque_result", "returns an object()", _opaque_result))
        registry.register(ToolFaultsAgent())

    embedded.call(register())
    return AGENT
