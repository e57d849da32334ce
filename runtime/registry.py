"""``AgentRegistry``: the agents a runtime can run, and the tool dispatcher they share."""

from __future__ import annotations

from typing import Any

from .agents.base import Agent, RunScope
from .manager import WebSocketManager
from .tools import Tool, ToolDispatcher, ToolError, enhance_tool_dispatcher_with_notifications

#: Agent used when a ``user_message`` names none.
DEFAULT_AGENT = "supervisor"


class UnknownAgentError(LookupError):
    """No agent of that name is registered."""


class AgentRegistry:
    """Holds agents by name and the ``ToolDispatcher`` every run calls tools through."""

    def __init__(
        self, tool_dispatcher: ToolDispatcher | None = None, default_agent: str = DEFAULT_AGENT
    ) -> None:
        self.tool_dispatcher = tool_dispatcher or ToolDispatcher()
        self.default_agent = default_agent
        self.websocket_manager: WebSocketManager | None = None
        self._agents: dict[str, Agent] = {}
        if self.tool_dispatcher.get("delegate") is None:
            self.tool_dispatcher.register(
                Tool(
                    "delegate",
                    "Hand a task to another agent and return its answer",
                    self._delegate,
                    parameters={"agent": "agent name", "task": "what to do"},
                    timeout=60.0,
                    takes_scope=True,
                )
            )

    def register(self, agent: Agent) -> Agent:
        if agent.name in self._agents:
            raise ValueError(f"agent {agent.name!r} is already registered")
        self._agents[agent.name] = agent
        return agent

    def get(self, name: str | None = None) -> Agent:
        """The agent called ``name`` (the default agent when None)."""
        agent = self._agents.get(name or self.default_agent)
        if agent is None:
            known = ", ".join(self.agent_names) or "none"
            raise UnknownAgentError(f"unknown agent {name!r}; available: {known}")
        return agent

    @property
    def agent_names(self) -> list[str]:
        return sorted(self._agents)

    def set_websocket_manager(self, websocket_manager: WebSocketManager) -> None:
        """Route this registry's events to ``websocket_manager``.

        Enhances the tool dispatcher so every tool call emits ``tool_executing`` and
        ``tool_completed``; calling it again with another manager switches to that one.
        """
        self.websocket_manager = websocket_manager
        enhance_tool_dispatcher_with_notifications(self.tool_dispatcher, websocket_manager)

    async def _delegate(self, scope: RunScope, agent: str, task: str) -> Any:
        try:
            sub_agent = self.get(agent)
        except UnknownAgentError as exc:
            raise ToolError(str(exc)) from None
        if sub_agent.name == scope.context.agent_name:
            raise ToolError(f"agent {agent!r} cannot delegate to itself")
        return await sub_agent.run(scope.child(sub_agent.name, task))
