"""The agents and tools a runtime serves by default."""

from __future__ import annotations

from ..demo_tools import register_demo_tools
from ..registry import AgentRegistry
from ..tools import ToolDispatcher
from .calculator import CalculatorAgent
from .data_analyst import DataAnalystAgent
from .load import ECHO_TOOL, LoadAgent
from .researcher import ResearcherAgent
from .supervisor import SupervisorAgent


def build_default_registry(tool_timeout: float = 5.0) -> AgentRegistry:
    """A registry with the supervisor (default), three specialists and the load agent."""
    dispatcher = ToolDispatcher(default_timeout=tool_timeout)
    register_demo_tools(dispatcher)
    dispatcher.register(ECHO_TOOL)
    registry = AgentRegistry(dispatcher)
    for agent in (
        SupervisorAgent(),
        CalculatorAgent(),
        ResearcherAgent(),
        DataAnalystAgent(),
        LoadAgent(),
    ):
        registry.register(agent)
    return registry
