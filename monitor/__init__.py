"""Agent Event Monitor: the desktop app that watches agent event streams."""

from runtime import __version__

__all__ = ["__version__"]
