"""``RecordingPager``: events the bounded store evicted come back from the recording when
the view goes there, in the store's own columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import TYPE_CODE, EventStore
from monitor.services.recording import Recorder, RecordingPager
from runtime.protocol import EventType, decode_event
from tests.monitor.model.recording.frames import T0, traffic


def recorded_session(tmp_path: Path, runs: int, capacity: int) -> tuple[ObservationSession, Path]:
    session = ObservationSession(EventStore(capacity=capacity), FROM_START_VALIDATOR)
    recorder = Recorder.create("ws://t", "embedded", late_join=False, directory=tmp_path)
    recorder.start().attach(session)
    for at, raw in traffic(runs):
        session.feed(raw, at)
    assert recorder.flush()
    return session, recorder.stop().path


def test_evicted_events_are_paged_back_in(tmp_path: Path) -> None:
    session, path = recorded_session(tmp_path, runs=400, capacity=500)  # 2,000 events
    store = session.store
    assert store.oldest_row == 1_500
    oldest = store.oldest_time
    assert oldest is not None
    pager = RecordingPager(store, path)
    try:
        everything = pager.window(T0 - 1, T0 + 100)
        assert everything["t"].size == 2_000
        assert np.all(np.diff(everything["t"]) >= 0)
        paged = everything["row"] == -1
        assert paged.sum() == 1_500 and np.all(everything["t"][paged] < oldest)
        assert np.array_equal(everything["row"][~paged], np.arange(1_500, 2_000))
        # a paged-in row is the recorded event, in the store's terms
        i = 123
        event = decode_event(pager.raw(int(everything["frame_id"][i])) or b"")
        assert everything["seq"][i] == event.seq
        assert everything["etype"][i] == TYPE_CODE[EventType(event.type)]
        run = store.runs[int(everything["run"][i])]
        assert (run.user_id, run.run_id) == (event.user_id, event.run_id)
        # a window entirely in memory never touches the disk
        recent = pager.window(oldest, T0 + 100)
        assert recent["t"].size == 500 and np.all(recent["frame_id"] == -1)
    finally:
        pager.close()


def test_a_wide_window_is_sampled_and_panning_reuses_the_page(tmp_path: Path) -> None:
    session, path = recorded_session(tmp_path, runs=400, capacity=100)
    pager = RecordingPager(session.store, path, limit=200)
    try:
        wide = pager.window(T0, T0 + 100)
        assert pager.sampled_every == 10
        assert 180 <= (wide["row"] == -1).sum() <= 210
        cached = pager._cache
        pager.window(T0 + 0.1, T0 + 100.1)  # a small pan stays within the cached margin
        assert pager._cache is cached
    finally:
        pager.close()
