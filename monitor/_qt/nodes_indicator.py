"""``NodesIndicator``: a runtime cluster's nodes in the status bar.

One dot per node in the colour its events have in the Node columns (a hollow one for a node
that is gone), how many serve, and the nodes that are gone with since when::

    ●●○  2 nodes up · b-4123 lost 12:01:03

A node that left or was lost is that node's outage — red when lost, grey when it left on
purpose — not the runtime's: the connection on the left of the status bar is the monitor's
own and does not change for it. Nodes go by their labels (their ids without the prefix all
share); the tooltip lists every node by its whole id, with what its ``node`` frames said.
Hidden while the stream is no cluster's (``NodeTable.cluster``).
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from monitor.model.nodes import NodeInfo, NodePresence

from . import theme
from .event_style import node_colour
from .sessions_panel import clock

#: dots shown at most (a cluster that restarted its nodes many times has many ids)
MAX_DOTS = 8
#: gone nodes named in the line at most (the newest outages); the tooltip has them all
MAX_NAMED = 2
#: nodes listed in the tooltip at most (those up first, then the newest outages)
MAX_LISTED = 20
#: what a gone node's name is shown in
PRESENCE_COLOURS = {NodePresence.LOST: theme.DANGER, NodePresence.LEFT: theme.TEXT_MUTED}
#: between the parts of the line
SEPARATOR = " · "


def presence_colour(node: NodeInfo) -> str:
    """The colour a node's state is told in: its own while up, red lost, grey left."""
    return PRESENCE_COLOURS.get(node.presence, node_colour(node.colour))


def gone_text(node: NodeInfo) -> str:
    """``lost 12:01:03``: how and since when a node is gone ("" while it is up)."""
    return "" if node.up else f"{node.presence.value} {clock(node.since)}"


def _newest_gone_first(nodes: tuple[NodeInfo, ...]) -> list[NodeInfo]:
    return sorted((n for n in nodes if not n.up), key=lambda n: n.since, reverse=True)


def nodes_line(nodes: tuple[NodeInfo, ...]) -> str:
    """The indicator's text (rich text): dots, nodes up, the newest outages."""
    dots = "&thinsp;".join(
        f"<span style='color:{node_colour(n.colour)}'>{'●' if n.up else '○'}</span>"
        for n in nodes[:MAX_DOTS]
    )
    if len(nodes) > MAX_DOTS:
        dots += f"<span style='color:{theme.TEXT_MUTED}'>…</span>"
    up = sum(n.up for n in nodes)
    parts = [f"{up} node{'s' * (up != 1)} up"]
    gone = _newest_gone_first(nodes)
    for node in gone[:MAX_NAMED]:
        parts.append(
            f"<span style='color:{presence_colour(node)}'>"
            f"{escape(node.label)} {gone_text(node)}</span>"
        )
    if len(gone) > MAX_NAMED:
        parts.append(f"+{len(gone) - MAX_NAMED} more gone")
    return f"{dots}&nbsp; {SEPARATOR.join(parts)}"


def nodes_tooltip(nodes: tuple[NodeInfo, ...]) -> str:
    """Every node (up to ``MAX_LISTED``): its state and since when, its events, and what
    its last ``node`` frame said."""
    up = [n for n in nodes if n.up]
    listed = (up + _newest_gone_first(nodes))[:MAX_LISTED]
    rows = []
    for node in listed:
        state = f"up since {clock(node.since)}" if node.up else gone_text(node)
        detail = f"<br>&nbsp;&nbsp;{escape(node.detail)}" if node.detail and not node.up else ""
        rows.append(
            f"<span style='color:{node_colour(node.colour)}'>●</span> <b>{escape(node.name)}"
            f"</b> <span style='color:{presence_colour(node)}'>{state}</span>"
            f"{SEPARATOR}{node.events:,} events{detail}"
        )
    if len(nodes) > len(listed):
        rows.append(f"… and {len(nodes) - len(listed)} more")
    head = f"Runtime cluster: {len(nodes)} node{'s' * (len(nodes) != 1)}, {len(up)} up"
    foot = (
        "A node that is gone is an outage of that node: the others go on serving, and "
        "this monitor's connection is not affected."
    )
    return f"<p>{head}</p><p>{'<br>'.join(rows)}</p><p><i>{foot}</i></p>"


class NodesIndicator(QLabel):
    """The cluster's nodes and their state, compact (see the module doc)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("nodesIndicator")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setVisible(False)

    def show_nodes(self, nodes: tuple[NodeInfo, ...], *, cluster: bool) -> None:
        """Show ``nodes`` (hidden unless ``cluster``); repaints only what changed."""
        if self.isHidden() == cluster:
            self.setVisible(cluster)
        if not cluster:
            return
        line = nodes_line(nodes)
        if line != self.text():
            self.setText(line)
        tip = nodes_tooltip(nodes)
        if tip != self.toolTip():
            self.setToolTip(tip)
