"""Agent runtime: agents, tools and a WebSocket server that stream agent progress events."""

__version__ = "0.1.0"
