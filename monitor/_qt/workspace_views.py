"""``WorkspaceViews``: the views of one workspace's session, and how they are laid out.

Sessions on the left; the timeline and, under it, the throughput and latency plots (tabs)
in the middle; findings and the inspector (tabs) below. The window builds a new set over
each workspace it shows (and over a replay's fresh session after a backward seek), puts
``main_splitter`` in its centre, and drives them all from its one timer (``refresh``,
``refresh_tables``). Selecting a run focuses every view on it (``select_run``); pausing
freezes the plots and the inspector (``set_paused``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QTabWidget, QWidget

from monitor.model.session import Outage
from monitor.model.settings import ViewLayout
from monitor.model.store import EventStore

from . import theme
from .findings_panel import FindingsPanel
from .icons import icon
from .inspector import InspectorPanel
from .latency import LatencyView
from .nodes_indicator import PRESENCE_COLOURS
from .sessions_panel import SessionsPanel
from .settings import LayoutWidgets
from .throughput import ThroughputView
from .timeline import TimeBand, TimelineView

#: the plots File › Export plot offers, by name
PLOT_NAMES = ("Timeline", "Throughput", "Latency")
#: the label lines a cluster node's outage bands take turns on, below the connection's
#: (line 0): the outages of nodes lost together keep their names apart
NODE_BAND_ROWS = 3
#: a node's outage is shaded fainter than the monitor's own: the other nodes go on serving,
#: and the lanes under it keep their events
NODE_BAND_SHADE = 14


class WorkspaceViews:
    """Every view over one store, in their splitters and tabs."""

    def __init__(self, store: EventStore, layout: ViewLayout) -> None:
        """``layout``: the splitter sizes and current tabs to show (the defaults, or what
        the user had in the set this one replaces)."""
        self.store = store
        self.sessions = SessionsPanel(store)
        self.timeline = TimelineView(store)
        self.throughput = ThroughputView(store)
        self.latency = LatencyView(store)
        self.findings = FindingsPanel(store)
        self.inspector = InspectorPanel(store)
        #: the timeline's bands for the stretches without a connection, in outage order
        self._outage_bands: list[TimeBand] = []
        #: the timeline's bands for cluster nodes' outages, by (node code, outage start)
        self._node_bands: dict[tuple[int, float], TimeBand] = {}
        self._nodes_synced = -1  # ``NodeTable.changes`` when the bands were last synced

        self.plot_tabs = QTabWidget()
        self.plot_tabs.setDocumentMode(True)
        self.plot_tabs.addTab(self.throughput, "Throughput")
        self.plot_tabs.addTab(self.latency, "Latency")
        self.centre_splitter = QSplitter(Qt.Orientation.Vertical)
        self.centre_splitter.addWidget(self.timeline)
        self.centre_splitter.addWidget(self.plot_tabs)
        self.centre_splitter.setStretchFactor(0, 3)  # the timeline is the main view
        self.centre_splitter.setStretchFactor(1, 1)

        self.top_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.top_splitter.addWidget(self.sessions)
        self.top_splitter.addWidget(self.centre_splitter)
        # both give and take room as the window is resized (the sessions pane no less: at
        # 1024 px it kept its full width and squeezed the timeline)
        self.top_splitter.setStretchFactor(0, 2)
        self.top_splitter.setStretchFactor(1, 3)

        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        self.bottom_tabs.addTab(self.findings, icon("warning"), "Findings")
        self.bottom_tabs.addTab(self.inspector, icon("search"), "Inspector")

        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.addWidget(self.top_splitter)
        self.main_splitter.addWidget(self.bottom_tabs)
        self.main_splitter.setStretchFactor(0, 3)
        self.main_splitter.setStretchFactor(1, 1)
        for splitter in (self.centre_splitter, self.top_splitter, self.main_splitter):
            splitter.setChildrenCollapsible(False)
            splitter.setHandleWidth(3)
        # sizes for the default 1400x900 window; splitters scale them to the real size
        self.layout_widgets().apply(layout)

    def layout_widgets(self) -> LayoutWidgets:
        """The splitters and tab widgets whose sizes and selection the saved layout keeps
        (the names are settings keys: renaming one drops that part of users' layouts)."""
        return LayoutWidgets(
            splitters={
                "main": self.main_splitter,
                "top": self.top_splitter,
                "centre": self.centre_splitter,
            },
            tabs={"bottom": self.bottom_tabs, "plot": self.plot_tabs},
        )

    def plot_view(self, name: str) -> QWidget:
        """The plot called ``name``: one of ``PLOT_NAMES``."""
        views: dict[str, QWidget] = {
            "Timeline": self.timeline,
            "Throughput": self.throughput,
            "Latency": self.latency,
        }
        return views[name]

    # --- what every view does at once ---------------------------------------------------

    def select_run(self, run_index: int | None) -> None:
        """Focus the plots and the inspector on one run (or all runs again)."""
        self.timeline.set_selected_run(run_index)
        self.throughput.set_selected_run(run_index)
        self.latency.set_selected_run(run_index)
        self.inspector.set_selected_run(run_index)

    def set_paused(self, paused: bool) -> None:
        """Freeze the plots and the inspector at what they show (or let them follow)."""
        for view in (self.timeline, self.throughput, self.latency):
            view.set_paused(paused)
        self.inspector.set_paused(paused)

    def set_follow_live(self, follow: bool) -> None:
        self.timeline.set_follow_live(follow)
        self.throughput.set_follow_live(follow)

    def set_show_check_traffic(self, show: bool) -> None:
        for view in (self.sessions, self.timeline, self.findings):
            view.set_show_check_traffic(show)

    def show_waiting(self, text: str | None) -> None:
        """What the tables say while they have nothing to show (None: they have)."""
        for table in (self.sessions.table, self.findings.table, self.inspector.table):
            table.show_waiting(text)

    def set_findings_count(self, total: int) -> None:
        """The Findings tab's title: how many findings there are."""
        title = f"Findings · {total:,}" if total else "Findings"
        if self.bottom_tabs.tabText(0) != title:  # a new text re-lays the tab bar out
            self.bottom_tabs.setTabText(0, title)

    def sync_outages(self, outages: list[Outage]) -> None:
        """Draw each stretch without a connection as a band on the timeline."""
        bands = self._outage_bands
        for i, outage in enumerate(outages):
            if i == len(bands):
                label = f"offline: {outage.reason}" if outage.reason else "offline"
                bands.append(
                    self.timeline.add_time_band(outage.start, outage.end, label, theme.DANGER)
                )
            elif bands[i].t1 != outage.end:
                self.timeline.set_time_band(bands[i], outage.end)

    def sync_nodes(self) -> None:
        """Draw each outage of a runtime cluster's node as a band on the timeline, from the
        frame that said it left or was lost to the one that said it joined again: red when
        lost, grey when it left on purpose. (A node's outage is not the monitor's: those are
        ``sync_outages``.)"""
        with self.store.lock:
            changes = self.store.nodes.changes
            if changes == self._nodes_synced:
                return
            nodes = self.store.nodes.snapshot()
        self._nodes_synced = changes
        bands = self._node_bands
        for node in nodes:
            for outage in node.outages:
                key = (node.code, outage.start)
                label = f"{node.label} {outage.presence.value}"
                colour = PRESENCE_COLOURS[outage.presence]
                band = bands.get(key)
                if band is None:
                    row = 1 + len(bands) % NODE_BAND_ROWS
                    bands[key] = self.timeline.add_time_band(
                        outage.start, outage.end, label, colour, row=row, shade=NODE_BAND_SHADE
                    )
                elif band.t1 != outage.end or band.label != label:
                    self.timeline.set_time_band(band, outage.end, label, colour)

    # --- the frame ----------------------------------------------------------------------

    def refresh(self, now: float) -> None:
        """The timeline, the plot tab shown and the inspector (when shown) pull what
        changed. Paused plots are still refreshed: they froze their data in ``set_paused``
        and only redraw a pan or zoom. A hidden plot tab catches up when it is shown."""
        self.timeline.refresh(now)
        current_plot = self.plot_tabs.currentWidget()
        if current_plot is self.throughput:
            self.throughput.refresh(now)
        elif current_plot is self.latency:
            self.latency.refresh(now)

    def refresh_inspector(self, now: float) -> None:
        if self.bottom_tabs.currentWidget() is self.inspector:
            self.inspector.refresh(now)

    def refresh_tables(self, now: float) -> None:
        """The sessions and findings tables (the window paces these: a table repaint is
        costly)."""
        self.sessions.refresh(now)
        self.findings.refresh(now)
