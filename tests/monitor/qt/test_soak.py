"""Soak: 3 × 50,000 frames fed from a background thread while the real window refreshes on
the real Qt event loop. Guards against PySide6 6.12 + qasync, whose Qt timers aborted with
``none_dealloc`` under load, and checks that nothing is lost on the way to the store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor.model.session import ObservationSession
from runtime.streams import ConnectionState

from .scripted import iter_load

ROUNDS = 3
#: 250 runs of 200 events (198 thinking steps + start + completion, no tools) per round
USERS, RUNS_PER_USER, STEPS = 10, 25, 196
EVENTS_PER_RUN = STEPS + 4  # started, steps, tool pair, completed
PER_ROUND = USERS * RUNS_PER_USER * EVENTS_PER_RUN


@dataclass
class FedWorkspace:
    session: ObservationSession = field(default_factory=ObservationSession)
    target: str = "soak://feeder"
    kind: str = "soak"
    #: nothing behind it (``WorkspaceLike``): no runtime, no secret, no recording
    runtime: None = None
    secret: str | None = None
    recorder: None = None

    def stop(self) -> None:
        """Nothing to stop: the feeder threads end on their own."""

    def frames_behind(self) -> int:
        return 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_window_survives_150k_frames_fed_from_another_thread_without_loss(
    qtbot: QtBot,
) -> None:
    assert PER_ROUND >= 50_000
    workspace = FedWorkspace()
    session = workspace.session
    session.set_status(ConnectionState.CONNECTED, "soak://feeder", "background thread")
    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.show()
    window.bottom_tabs.setCurrentWidget(window.inspector)  # the busiest view refreshes too
    ticks = 0

    def count_tick() -> None:
        nonlocal ticks
        ticks += 1

    window.timer.timeout.connect(count_tick)
    fed = 0
    for round_number in range(ROUNDS):
        # each round is a new set of users, so seq numbering stays contiguous per user
        frames = list(iter_load(USERS, RUNS_PER_USER, STEPS, prefix=f"r{round_number}"))
        assert len(frames) == PER_ROUND
        ticks_before = ticks

        def feeder(batch: list[bytes] = frames) -> None:
            for n, raw in enumerate(batch):
                session.feed(raw)
                if n % 500 == 499:
                    # as frames come off a socket: now and then the feeder waits, off the
                    # interpreter lock (a loop of pure Python never would, and the window's
                    # timer could not run until the round is over)
                    time.sleep(0.001)

        thread = threading.Thread(target=feeder, name=f"soak-feeder-{round_number}")
        thread.start()
        fed += len(frames)
        qtbot.waitUntil(lambda total=fed: session.store.total == total, timeout=120_000)
        thread.join()
        assert ticks > ticks_before, "the window's timer did not run while frames arrived"
        qtbot.waitUntil(
            lambda total=fed: window.events_label.text() == f"{total:,} events", timeout=5_000
        )
    store = session.store
    assert store.total == fed == ROUNDS * PER_ROUND
    assert session.frames == fed and session.malformed == 0
    assert store.findings_total == 0, [str(r.finding) for r in list(store.findings)[:5]]
    qtbot.waitUntil(lambda: window.sessions.model.rowCount() == len(store.runs))
    assert len(store.runs) == ROUNDS * USERS * RUNS_PER_USER
    assert all(run.status == "completed" for run in store.runs)
    assert window.inspector.model.rowCount() == window.inspector.model.limit
