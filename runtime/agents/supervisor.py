"""The default agent: reads the request, delegates to the right specialists, summarises."""

from __future__ import annotations

import re
from typing import Any

from .base import Agent, RunScope

_MATH = re.compile(r"\d\s*[-+*/%^]\s*\(?\s*\d|\b(calculate|compute|sum of|times|divided)\b", re.I)
_DATA = re.compile(
    r"\b(sales|revenue|units|region|latency|p99|p50|requests|dataset|average|mean|median|"
    r"stats?|statistics|trend|csv)\b",
    re.I,
)


def route(text: str) -> list[str]:
    """Which specialists a request needs, in the order they are asked."""
    agents = []
    if _MATH.search(text):
        agents.append("calculator")
    if _DATA.search(text):
        agents.append("data_analyst")
    if not agents or len(text.split()) > 12:
        agents.append("researcher")
    return agents


class SupervisorAgent(Agent):
    """Plans, delegates each part of the request to a specialist agent, then answers."""

    name = "supervisor"
    description = "Default agent: delegates to calculator, data_analyst and researcher"

    async def run(self, scope: RunScope) -> Any:
        specialists = route(scope.text)
        await scope.think(
            f"Reading the request ({len(scope.text)} characters) and deciding who should "
            f"handle it: {', '.join(specialists)}.",
            pause=0.3,
        )
        answers: list[str] = []
        for agent in specialists:
            await scope.think(f"Asking the {agent} agent for its part of the answer.", pause=0.1)
            outcome = await scope.delegate(agent, scope.text)
            if outcome.ok:
                answers.append(f"{agent}: {outcome.result}")
                scope.partial(f"{agent} answered.")
            else:
                answers.append(f"{agent} could not help ({outcome.error}).")
        await scope.think("Combining the specialists' answers into one reply.", pause=0.2)
        return "\n".join(answers)
