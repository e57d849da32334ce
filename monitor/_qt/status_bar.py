"""``StatusLine``: the window's status bar — the connection on the left; on the right a
runtime cluster's nodes (``NodesIndicator``, only for a cluster), how far the window lags the
stream, the recording, the events and their rate, the findings (the check's own apart), and
the process's memory.

The window calls ``show`` at most every ``STATUS_INTERVAL`` of wall time: faster is
unreadable, and each change repaints the labels and what lies under them.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque

from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar

from monitor.model.session import ConnectionStatus
from monitor.model.store import EventStore
from monitor.services.recording import SessionRecording

from . import theme
from .nodes_indicator import NodesIndicator
from .sessions_panel import CHECK_TRAFFIC_TIP

#: the status bar changes at most this often (s)
STATUS_INTERVAL = 0.5
#: the status bar says the window lags the stream once this many frames wait to be shown
#: (fewer are simply in flight: a fast stream commits a few thousand frames at a time)
LAG_SHOWN = 5_000
#: events/s in the status bar is averaged over this many seconds
RATE_WINDOW = 2.0
#: between the parts of the connection line
SEPARATOR = "  ·  "


def resident_mb() -> float | None:
    """This process's resident memory in MB: current RSS from /proc (Linux), else peak RSS
    from ``getrusage`` (macOS, BSD), else None (Windows: no cheap stdlib way)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes vs KiB


def connection_line(status: ConnectionStatus, kind: str, target: str, *, replay: bool) -> str:
    """``● connected · remote · ws://… · detail``; a replay says so instead."""
    if replay:  # its status says "connected … replay"
        parts = ["● replay", status.target or target]
    else:
        parts = [f"● {status.state.value}", kind, status.target or target]
        if status.detail:
            parts.append(status.detail)
    return SEPARATOR.join(p for p in parts if p)


class StatusLine:
    """The labels of ``bar``, and what they show."""

    def __init__(self, bar: QStatusBar) -> None:
        bar.setSizeGripEnabled(False)
        self.bar = bar
        self.connection_label = QLabel()
        # a long target is cut, not the counters beside it
        self.connection_label.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        self.nodes_label = NodesIndicator()
        self.events_label = QLabel()
        self.rate_label = QLabel()
        self.findings_label = QLabel()
        # the check's own findings, apart from the errors and warnings and muted: it
        # injects faults on purpose, and those must not turn the counters red
        self.check_findings_label = QLabel()
        self.check_findings_label.setVisible(False)
        self.check_findings_label.setToolTip(CHECK_TRAFFIC_TIP)
        theme.set_text_colour(self.check_findings_label, theme.TEXT_MUTED)
        self.memory_label = QLabel()
        self.memory_label.setToolTip("resident memory of this process")
        self.recording_label = QLabel()
        self.lag_label = QLabel()
        self.lag_label.setVisible(False)
        self.lag_label.setStyleSheet(f"color: {theme.WARN};")
        self.lag_label.setToolTip(
            "The window is behind the stream: frames received (and recorded) but not shown "
            "yet. Nothing is lost; it catches up."
        )
        bar.addWidget(self.connection_label, 1)
        for label in (
            self.nodes_label,
            self.lag_label,
            self.recording_label,
            self.events_label,
            self.rate_label,
            self.findings_label,
            self.check_findings_label,
            self.memory_label,
        ):
            bar.addPermanentWidget(label)
        self._rate_samples: deque[tuple[float, int]] = deque()

    # --- what it shows ------------------------------------------------------------------

    def show_connection(
        self,
        status: ConnectionStatus,
        kind: str,
        target: str,
        *,
        replay: bool,
        server_version: str = "",
    ) -> None:
        line = connection_line(status, kind, target, replay=replay)
        self.connection_label.setText(line)
        theme.set_text_colour(
            self.connection_label, theme.CONNECTION_COLOURS.get(status.state, theme.NEUTRAL)
        )
        # the label is cut to the bar's width: the tooltip has all of it
        self.connection_label.setToolTip(
            line.replace(SEPARATOR, "\n")
            + f"\n{status.state.value} since "
            + time.strftime("%H:%M:%S", time.localtime(status.since))
            + (f"\nserver {server_version}" if server_version else "")
        )

    def show_counts(self, store: EventStore, wall: float) -> None:
        """Events, their rate, and the findings by severity (the check's apart)."""
        total = store.total
        self.events_label.setText(f"{total:,} events")
        self.rate_label.setText(f"{self.events_per_second(wall, total):,.0f} ev/s")
        # the pre-deploy check's own findings are counted apart (``check_findings_label``)
        by_severity = store.traffic_findings_by_severity()
        errors = by_severity.get("error", 0)
        warnings = by_severity.get("warning", 0)
        self.findings_label.setText(f"{errors:,} errors · {warnings:,} warnings")
        checks = store.check_findings_total
        if checks:
            self.check_findings_label.setText(f"check: {checks:,} finding{'s' * (checks != 1)}")
        if self.check_findings_label.isHidden() == bool(checks):
            self.check_findings_label.setVisible(bool(checks))
        theme.set_text_colour(
            self.findings_label,
            theme.DANGER if errors else theme.WARN if warnings else theme.TEXT_MUTED,
        )

    def show_nodes(self, store: EventStore) -> None:
        """The runtime cluster's nodes and which are gone (hidden for a single runtime)."""
        with store.lock:
            nodes = store.nodes.snapshot()
            cluster = store.nodes.cluster
        self.nodes_label.show_nodes(nodes, cluster=cluster)

    def show_memory(self) -> None:
        memory = resident_mb()
        self.memory_label.setText("– MB" if memory is None else f"{memory:,.0f} MB")

    def show_lag(self, behind: int) -> None:
        """'12,400 frames behind · catching up' while the window lags the stream."""
        shown = behind >= LAG_SHOWN
        if shown:
            self.lag_label.setText(f"{behind:,} frames behind · catching up")
        if self.lag_label.isVisible() != shown:
            self.lag_label.setVisible(shown)

    def show_recording(self, recorder: SessionRecording | None, *, replay: bool) -> None:
        if recorder is None:
            self.recording_label.setText("not recording")
            self.recording_label.setToolTip(
                "replaying a recording" if replay else "this session is not recorded"
            )
            theme.set_text_colour(self.recording_label, theme.TEXT_MUTED)
            return
        status = recorder.status()
        self.recording_label.setText(status.describe())
        self.recording_label.setToolTip(f"recording to {status.path}")
        colour = theme.DANGER if status.loud else theme.TEXT_MUTED
        theme.set_text_colour(self.recording_label, colour)

    # --- the event rate -----------------------------------------------------------------

    def events_per_second(self, now: float, total: int, *, sample: bool = True) -> float:
        """Events/s over the last ``RATE_WINDOW`` seconds of status updates (``sample``:
        this call is one of them)."""
        samples = self._rate_samples
        if not sample:
            if not samples:
                return 0.0
            then, before = samples[0]
            return (total - before) / (now - then) if now > then else 0.0
        samples.append((now, total))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        then, before = samples[0]
        return (total - before) / (now - then) if now > then else 0.0

    def reset_rate(self) -> None:
        """Forget the rate's samples (another session is shown)."""
        self._rate_samples.clear()
