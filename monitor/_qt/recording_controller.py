"""``RecordingController``: recordings in the window.

- **Replay**: File › Open recording…, the Recordings dialog and Help › Open sample recording
  open a recording (or JSON Lines, imported into the recordings folder) and the window
  switches to replaying it; the ``ReplayBar`` above the views plays, pauses, seeks and sets
  the speed.
- **Export**: File › Export events… (the selected session, the visible time range or
  everything recorded, as JSON Lines or CSV) and File › Export findings… (CSV).
- **Paging**: the timeline pages events the store evicted back in from the recording the
  window shows — the replayed file, or the one the live session is being recorded to.

Recording itself happens in the workspace's capture process (``monitor.services.ingest``):
the window only shows its status (``StatusLine.show_recording``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox

from monitor.model.store import EventStore
from monitor.services.recording import (
    RecordingError,
    RecordingPager,
    ReplayWorkspace,
    SessionRecording,
    export_findings_csv,
    recordings_dir,
)

from .export_dialog import ExportEventsDialog
from .icons import icon
from .recordings_dialog import OPEN_FILTER, RecordingsDialog
from .replay_bar import ReplayBar

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .workspace_views import WorkspaceViews

#: the problems of a recording listed in the box that names them (the rest are counted)
PROBLEMS_LISTED = 20


class RecordingController(QObject):
    """Opens, replays and exports the recordings of ``window`` (its actions, its replay bar,
    its timeline's pager)."""

    #: a backward seek replaced the replay's session: the views must be rebuilt over it
    session_replaced = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._pager: RecordingPager | None = None

        self.open_action = QAction("Open recording…", window)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_action.setToolTip("Replay a recording, or JSON Lines frames captured elsewhere")
        self.open_action.triggered.connect(self._on_open_requested)

        self.recordings_action = QAction(icon("history"), "Recordings…", window)
        self.recordings_action.setToolTip("Recordings on disk: open, import, delete, retention")
        self.recordings_action.triggered.connect(self._on_recordings_requested)

        self.export_events_action = QAction("Export events…", window)
        self.export_events_action.setToolTip(
            "Write the selected session, the visible time range or everything recorded "
            "as JSON Lines or CSV"
        )
        self.export_events_action.triggered.connect(self._on_export_events_requested)
        self.export_findings_action = QAction("Export findings…", window)
        self.export_findings_action.triggered.connect(self._on_export_findings_requested)

        # one bar for the window's life: each set of views is put under it
        self.replay_bar = ReplayBar()
        self.replay_bar.session_replaced.connect(self.session_replaced)

    # --- what the window shows ----------------------------------------------------------

    @property
    def recorder(self) -> SessionRecording | None:
        """What records the current workspace (None: not recorded, or a replay)."""
        return self._window.workspace.recorder

    @property
    def replay_workspace(self) -> ReplayWorkspace | None:
        """The current workspace if it replays a recording."""
        workspace = self._window.workspace
        return workspace if isinstance(workspace, ReplayWorkspace) else None

    def show_replay_bar(self) -> None:
        """The bar over the replay shown (hidden while the window watches a runtime)."""
        replay = self.replay_workspace
        if replay is None:
            self.replay_bar.set_replay(None)
        else:
            self.replay_bar.set_replay(replay.replay, replay.problems)
        self.replay_bar.setVisible(replay is not None)

    # --- paging -------------------------------------------------------------------------

    @property
    def pager(self) -> RecordingPager | None:
        return self._pager

    def attach_pager(self, views: WorkspaceViews) -> None:
        """Give the timeline of ``views`` a pager over the workspace's recording (none when
        there is nothing readable yet: it shows the store's rows only)."""
        self.close_pager(views)
        self._pager = self._open_pager(views.store)
        views.timeline.set_pager(self._pager)

    def retry_pager(self, views: WorkspaceViews) -> None:
        """The capture creates the recording a moment after the views are built: page from
        it once it exists."""
        if self._pager is None and self.recorder is not None:
            self._pager = self._open_pager(views.store)
            views.timeline.set_pager(self._pager)

    def close_pager(self, views: WorkspaceViews | None) -> None:
        pager, self._pager = self._pager, None
        if pager is not None:
            if views is not None:
                views.timeline.set_pager(None)
            pager.close()

    def _open_pager(self, store: EventStore) -> RecordingPager | None:
        """A pager over the recording of this workspace (the replayed file, or the one being
        recorded), so the timeline shows events the store evicted; None without one."""
        try:
            replay = self.replay_workspace
            if replay is not None:
                return RecordingPager(store, replay.opened.recording)
            recorder = self.recorder
            if recorder is not None and recorder.path.exists():
                # the pager reads what is committed, which is everything the store holds:
                # the store is fed from the recording
                return RecordingPager(store, recorder.path)
        except RecordingError:
            pass  # nothing readable (yet): the timeline shows the store's rows only
        return None

    # --- opening ------------------------------------------------------------------------

    def open_recording(self, path: Path) -> bool:
        """Replay ``path`` (a recording, or JSON Lines imported into the recordings folder)
        in the window; on failure keep the current workspace and say why."""
        window = self._window
        try:
            workspace = ReplayWorkspace.open(path, import_dir=recordings_dir())
        except RecordingError as exc:
            QMessageBox.critical(window, "Cannot open recording", str(exc))
            return False
        window.switch_workspace(workspace)
        problems = workspace.problems
        if problems:
            shown = "\n".join(f"• {p}" for p in problems[:PROBLEMS_LISTED])
            more = len(problems) - PROBLEMS_LISTED
            more_text = f"\n… and {more} more" if more > 0 else ""
            QMessageBox.warning(
                window,
                "Parts of the recording could not be read",
                f"{path.name} opened, but {len(problems)} part(s) could not be read and are "
                f"left out of the replay:\n\n{shown}{more_text}",
            )
        return True

    def recordings_dialog(self) -> RecordingsDialog:
        """The list of recordings on disk; opening one replays it in the window."""
        recorder = self.recorder
        dialog = RecordingsDialog(
            recordings_dir(),
            active=recorder.path if recorder is not None else None,
            settings=self._window.settings,
            parent=self._window,
        )
        dialog.open_requested.connect(self.open_recording)
        return dialog

    # --- exporting ----------------------------------------------------------------------

    def events_export_dialog(self) -> ExportEventsDialog | None:
        """The export dialog over the current recording (the live one is flushed first, so
        it holds every frame received), offering the selected session and the visible time
        range; None (and a message) when there is no recording to export from."""
        window = self._window
        replay = self.replay_workspace
        recorder = self.recorder
        if replay is not None:
            source = replay.opened.recording.path
        elif recorder is not None:
            recorder.flush()
            source = recorder.path
        else:
            QMessageBox.information(
                window,
                "Export events",
                "This session is not recorded: there is nothing to export.",
            )
            return None
        views = window.views
        store = views.store
        runs: list[tuple[str, str]] = []
        selected = views.sessions.selected_run()
        if selected is not None:
            with store.lock:
                run = store.runs[selected]
                runs.append((run.user_id, run.run_id))
        return ExportEventsDialog(
            source, runs=runs, time_range=views.timeline.visible_time_range(), parent=window
        )

    def export_findings(self, path: Path) -> int:
        """Write every finding shown as CSV to ``path``; returns how many."""
        store = self._window.workspace.session.store
        with store.lock:
            records = list(store.findings)
        return export_findings_csv(records, path)

    # --- the actions --------------------------------------------------------------------

    def _on_open_requested(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self._window, "Open recording", str(recordings_dir()), OPEN_FILTER
        )
        if name:
            self.open_recording(Path(name))

    def _on_recordings_requested(self) -> None:
        self.recordings_dialog().exec()

    def _on_export_events_requested(self) -> None:
        dialog = self.events_export_dialog()
        if dialog is not None:
            dialog.exec()

    def _on_export_findings_requested(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self._window, "Export findings", str(Path.home() / "findings.csv"), "CSV (*.csv)"
        )
        if not name:
            return
        try:
            self.export_findings(Path(name))
        except RecordingError as exc:
            QMessageBox.critical(self._window, "Export failed", str(exc))
