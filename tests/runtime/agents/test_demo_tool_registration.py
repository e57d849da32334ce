"""``register_demo_tools`` and the demo agents' identities."""

from __future__ import annotations

import pytest

from runtime.agents.calculator import CalculatorAgent
from runtime.agents.data_analyst import DataAnalystAgent
from runtime.agents.researcher import ResearcherAgent
from runtime.demo_tools import register_demo_tools
from runtime.registry import AgentRegistry
from runtime.tools import ToolDispatcher

DEMO_TOOLS = {
    "calculate",
    "convert_units",
    "search_documents",
    "read_document",
    "list_datasets",
    "describe_dataset",
    "column_stats",
    "group_totals",
}


def test_registers_every_demo_tool_with_a_description() -> None:
    dispatcher = ToolDispatcher()
    register_demo_tools(dispatcher)
    assert set(dispatcher.tool_names) == DEMO_TOOLS
    for name in DEMO_TOOLS:
        tool = dispatcher.get(name)
        assert tool is not None
        assert tool.description


def test_registering_twice_is_refused() -> None:
    dispatcher = ToolDispatcher()
    register_demo_tools(dispatcher)
    with pytest.raises(ValueError, match="already registered"):
        register_demo_tools(dispatcher)


def test_agents_fit_the_registry_next_to_delegate() -> None:
    registry = AgentRegistry()
    register_demo_tools(registry.tool_dispatcher)
    for agent in (CalculatorAgent(), ResearcherAgent(), DataAnalystAgent()):
        registry.register(agent)
        assert agent.description
    assert registry.agent_names == ["calculator", "data_analyst", "researcher"]
    assert set(registry.tool_dispatcher.tool_names) == DEMO_TOOLS | {"delegate"}
