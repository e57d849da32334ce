"""Deterministic, offline tools for the demo agents: arithmetic, documents and datasets.

Each module exposes ``tools()``; ``register_demo_tools`` puts all of them on a dispatcher.
Documents and datasets are read from the bundled ``resources/`` folder on first use.
"""

from __future__ import annotations

from ..tools import ToolDispatcher
from . import arithmetic, datasets, documents


def register_demo_tools(dispatcher: ToolDispatcher) -> None:
    """Register every demo tool on ``dispatcher`` (each name must not be registered yet)."""
    for module in (arithmetic, documents, datasets):
        for tool in module.tools():
            dispatcher.register(tool)
