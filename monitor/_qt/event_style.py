"""Colours and marker symbols of the monitor, and the dark style its plots share.

Colours are hex strings (build a ``QColor`` where you paint). The event palette is chosen to
read on the dark theme's plot background and to stay apart for colour-blind users: it follows
Okabe-Ito where it can, and every event type also has its own marker shape, so no type is told
apart by hue alone. Run-status and severity colours are the theme's state colours
(``theme.OK``/``WARN``/``DANGER``…), so a status dot, a banner and a plot agree.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg

from monitor.model.run_logs import ERROR_RANK
from monitor.model.run_state import RunState
from runtime.protocol import EventType

from . import theme

#: plot background: the theme's deepest layer
PLOT_BACKGROUND = theme.BASE
#: axis lines, tick labels and axis titles
PLOT_FOREGROUND = theme.TEXT
#: de-emphasised text (hints, empty-state messages)
PLOT_MUTED = theme.TEXT_MUTED
#: the alternating band behind every other user's lanes
PLOT_BAND = "#171e26"
#: the band behind the selected run's lane (and its label)
PLOT_SELECTION = theme.SELECTION
#: the outline of the selected run's lane and the bar beside its label
PLOT_SELECTION_EDGE = theme.ACCENT
#: the ring drawn around a highlighted event
PLOT_HIGHLIGHT = "#ffffff"

EVENT_COLORS: dict[EventType, str] = {
    EventType.AGENT_STARTED: "#56b4e9",  # sky blue
    EventType.AGENT_THINKING: "#b48ef0",  # violet
    EventType.TOOL_EXECUTING: "#e69f00",  # amber
    EventType.TOOL_COMPLETED: "#2fc48d",  # bluish green
    EventType.AGENT_COMPLETED: "#eceff4",  # near white
    EventType.PARTIAL_RESULT: "#8c96a5",  # grey
    EventType.AGENT_ERROR: "#ff5c57",  # red
}

#: pyqtgraph symbol names: ▶ starts a run, ◀ ends it, ■ opens a tool, ◆ closes it
EVENT_SYMBOLS: dict[EventType, str] = {
    EventType.AGENT_STARTED: "t2",
    EventType.AGENT_THINKING: "o",
    EventType.TOOL_EXECUTING: "s",
    EventType.TOOL_COMPLETED: "d",
    EventType.AGENT_COMPLETED: "t3",
    EventType.PARTIAL_RESULT: "h",
    EventType.AGENT_ERROR: "x",
}

#: marker sizes in pixels: frequent, less important types are drawn smaller
EVENT_SYMBOL_SIZES: dict[EventType, int] = {
    EventType.AGENT_STARTED: 10,
    EventType.AGENT_THINKING: 7,
    EventType.TOOL_EXECUTING: 8,
    EventType.TOOL_COMPLETED: 9,
    EventType.AGENT_COMPLETED: 10,
    EventType.PARTIAL_RESULT: 6,
    EventType.AGENT_ERROR: 12,
}

#: short names for legends and axis ticks
EVENT_SHORT_NAMES: dict[EventType, str] = {
    EventType.AGENT_STARTED: "started",
    EventType.AGENT_THINKING: "thinking",
    EventType.TOOL_EXECUTING: "tool exec",
    EventType.TOOL_COMPLETED: "tool done",
    EventType.AGENT_COMPLETED: "completed",
    EventType.PARTIAL_RESULT: "partial",
    EventType.AGENT_ERROR: "error",
}

#: run statuses as ``RunInfo.status`` spells them
STATUS_COLORS: dict[str, str] = {
    RunState.RUNNING: theme.ACCENT,
    RunState.COMPLETED: theme.OK,
    RunState.FAILED: theme.DANGER,
    RunState.CANCELLED: theme.NEUTRAL,
    RunState.STALLED: theme.WARN,
    RunState.ABANDONED: theme.DANGER,  # silent for minutes without ever ending: given up on
}

#: finding severities as ``Severity`` values spell them
SEVERITY_COLORS: dict[str, str] = {
    "info": theme.ACCENT,
    "warning": theme.WARN,
    "error": theme.DANGER,
}

#: tool-call bars on the timeline, by state
TOOL_SPAN_COLORS: dict[str, str] = {
    "ok": "#5d6b7c",  # finished fine: muted, it is the common case
    "error": "#b8534f",  # finished with an error: red-ish
    "open": "#e69f00",  # still executing
    "stalled": "#ff2e2e",  # executing longer than the stall threshold: loud red
    # its run ended without a tool_completed: hatched and outlined, so it reads as cut off
    # rather than as still running (the shape tells it apart, not only the hue)
    "unfinished": "#ff79c6",
}

#: the outline of a marker whose event has a finding
FINDING_OUTLINE = "#ff3b30"

#: runtime cluster nodes, by ``NodeInfo.colour`` (``nodes.NODE_COLOURS`` of them): hues that
#: stay apart from each other and from the danger red a lost node is shown in
NODE_COLORS: tuple[str, ...] = (
    "#4fc1e9",  # sky
    "#f0a35e",  # orange
    "#a48cf0",  # violet
    "#5fd3a5",  # mint
    "#f27ab0",  # pink
    "#e3c94d",  # yellow
    "#c9a27a",  # tan
    "#7fa7ff",  # periwinkle
)


def log_colour(rank: int) -> str:
    """The colour of a logged level's rank (``run_logs.LEVEL_RANK``): errors red, warnings
    amber."""
    return theme.DANGER if rank >= ERROR_RANK else theme.WARN


def node_colour(colour: int | None) -> str:
    """The colour of a node's colour index (None: no node, the neutral text colour)."""
    return theme.TEXT_MUTED if colour is None else NODE_COLORS[colour % len(NODE_COLORS)]


def style_plot(plot: Any, *, grid_x: bool = True, grid_y: bool = False) -> None:
    """Give a ``pg.PlotItem`` the dark theme: readable axes, a faint grid, no auto-SI prefix."""
    pen = pg.mkPen(PLOT_FOREGROUND)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
        axis.enableAutoSIPrefix(False)
        # Major and minor ticks only: the finest level's grid lines, drawn on every repaint
        # of the plot, took two thirds of the throughput plot's paint (11 ms of 12).
        axis.setStyle(maxTickLevel=1)
    plot.showGrid(x=grid_x, y=grid_y, alpha=0.12)
