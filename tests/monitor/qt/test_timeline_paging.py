"""The timeline pages events the bounded store evicted back in from the recording when the
view scrolls or zooms to them; the main window wires a pager to the recording it has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor._qt.timeline import TimelineView
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EVENT_TYPES, EventStore
from monitor.services.recording import Recorder, RecordingPager
from tests.monitor.model.recording.frames import T0, traffic

CAPACITY = 200
RUNS = 200  # 5 events each: 1,000 events over 2 s


@dataclass
class Recorded:
    session: ObservationSession
    recorder: Recorder
    frames: list[tuple[float, bytes]]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    session = ObservationSession(EventStore(capacity=CAPACITY), FROM_START_VALIDATOR)
    recorder = Recorder.create("ws://t", "embedded", late_join=False, directory=tmp_path)
    recorder.start().attach(session)
    frames = list(traffic(RUNS))
    for at, raw in frames:
        session.feed(raw, at)
    assert recorder.flush()
    yield Recorded(session, recorder, frames)
    recorder.stop()


def marker_total(view: TimelineView) -> int:
    return sum(len(view.markers[t].getData()[0]) for t in EVENT_TYPES)


def show_range(view: TimelineView, x0: float, x1: float, now: float) -> None:
    view.set_follow_live(False)
    view._vb.setXRange(x0, x1, padding=0)
    view.refresh(now)


def test_scrolling_to_evicted_events_pages_them_back_in(qtbot: QtBot, recorded: Recorded) -> None:
    store = recorded.session.store
    assert store.total == len(recorded.frames) == 1_000
    assert store.oldest_row == store.total - store.capacity == 800  # evicted
    oldest = store.oldest_time
    assert oldest is not None and oldest > T0 + 1.0

    view = TimelineView(store)
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    end = recorded.frames[-1][0] + 1.0
    x0, x1 = -0.5, 0.995  # the first ~100 runs: all evicted from the store
    expected = sum(1 for at, _ in recorded.frames if T0 + x0 <= at <= T0 + x1)
    assert expected == 500

    show_range(view, x0, x1, end)
    assert marker_total(view) == 0  # without a pager only held rows are drawn

    pager = RecordingPager(store, recorded.recorder.path)
    try:
        view.set_pager(pager)
        view.refresh(end)
        assert not view.dense
        assert marker_total(view) == expected > 0

        # hover on a paged-in marker still describes it (from the recorded frame)
        vb = view._vb
        i = 0
        lane = float(view._vis_lane[i])
        scene = view._canvas.scene()
        scene.sigMouseMoved.emit(vb.mapViewToScene(QPointF(float(view._vis_x[i]), lane)))
        text = view.hover_text
        assert "agent_started" in text and "seq 1" in text

        # back to the held rows: the store's own, as before
        show_range(view, oldest - T0, end - T0, end)
        assert marker_total(view) == store.capacity
    finally:
        view.set_pager(None)
        pager.close()


@dataclass
class RecordingWorkspace:
    session: ObservationSession
    recorder: Recorder
    target: str = "recorded://test"
    kind: str = "recorded"
    #: nothing behind it (``WorkspaceLike``): no runtime, no secret
    runtime: None = None
    secret: str | None = None
    stops: int = field(default=0)

    def stop(self) -> None:
        self.stops += 1

    def frames_behind(self) -> int:
        return 0


def test_the_window_pages_from_its_recorder_and_closes_the_pager(
    qtbot: QtBot, recorded: Recorded
) -> None:
    workspace = RecordingWorkspace(recorded.session, recorded.recorder)
    window = MainWindow(workspace)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    pager = window.timeline.pager
    assert pager is not None and pager.recording.path == recorded.recorder.path

    end = recorded.frames[-1][0] + 1.0
    show_range(window.timeline, -0.5, 0.995, end)
    assert marker_total(window.timeline) == 500

    window.rebuild_views()  # a new pager for the new views; the old one is closed
    assert window.timeline.pager is not None and window.timeline.pager is not pager
    window.close()
    assert window.timeline.pager is None
