"""Finished runs leave memory: the store holds the running runs and the newest finished
ones; older ones (and their tool spans) go to the run archive, keep their index, and page
back — by index, by id, by time — for the views and the recording pager."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.model.run_summary import MemoryRunArchive, RunSummary
from monitor.model.run_summary import RunArchive as ArchiveOfRuns
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore, RunInfo
from monitor.services.recording import Recorder, RecordingPager
from monitor.services.run_archive import RunArchive
from runtime.protocol import SequenceValidator
from tests.monitor.model.recording.frames import T0, run_events, traffic

HELD = 40  # finished runs held in these tests


def session_with(
    max_finished_runs: int = HELD, archive: Callable[[], ArchiveOfRuns] = RunArchive
) -> ObservationSession:
    """A session whose store archives to SQLite, as a live session's does (``archive``:
    another archive)."""
    store = EventStore(
        capacity=100_000,
        raw_capacity=1_000,
        max_finished_runs=max_finished_runs,
        archive_factory=archive,
    )
    return ObservationSession(store, FROM_START_VALIDATOR)


def feed_runs(session: ObservationSession, runs: int, *, users: int = 5) -> None:
    for at, raw in traffic(runs, users=users):
        session.feed(raw, at)


def test_only_the_newest_finished_runs_stay_in_memory() -> None:
    session = session_with()
    feed_runs(session, 500)
    store = session.store

    assert len(store.runs) == 500  # every run got an index, never reused
    held_now = store.runs.held
    assert HELD <= held_now < HELD + 10, f"{held_now} runs held in memory, expected ~{HELD}"
    assert store.evicted_runs == 500 - store.runs.held
    held = [run.index for run in store.runs]
    assert held == list(range(500 - store.runs.held, 500)), "not the newest that stayed"
    # the tool spans of runs that left memory left with them
    assert store.span_count == store.runs.held  # one tool call per run
    assert set(store.spans()["run"].tolist()) == set(held)
    assert not session.store.findings  # leaving memory is not a finding


@pytest.mark.parametrize("archive", [RunArchive, MemoryRunArchive], ids=["sqlite", "memory"])
def test_a_run_that_left_memory_pages_back_by_index_id_and_time(
    archive: Callable[[], ArchiveOfRuns],
) -> None:
    session = session_with(archive=archive)
    feed_runs(session, 300)
    store = session.store
    assert 7 not in store.runs, "an old finished run is still held in memory"

    summary = store.run_summary(7)
    assert isinstance(summary, RunSummary)
    assert summary.index == 7 and summary.finished and summary.status == "completed"
    assert summary.events == 5 and summary.ended_at is not None  # started … completed
    assert store.archived_run(summary.user_id, summary.run_id) == summary
    assert store.run_by_id(summary.user_id, summary.run_id) is None  # not held
    # by time: every archived run active in a window, oldest first
    around = store.archive.between(summary.started_at, summary.ended_at)
    assert summary in around and [r.index for r in around] == sorted(r.index for r in around)
    # a held run is served from memory
    assert isinstance(store.run_summary(299), RunInfo)
    # newest first, in pages
    first_page = store.archive.page(limit=10)
    assert [r.index for r in first_page] == sorted((r.index for r in first_page), reverse=True)
    assert store.archive.page(before=first_page[-1].index, limit=1)[0].index < first_page[-1].index


def test_running_runs_are_never_evicted_and_their_open_tools_still_close() -> None:
    session = session_with(max_finished_runs=10)
    store = session.store
    long_run = run_events("zed", 1, T0 - 10, tools=1)
    # it starts and opens its tool, then 200 short runs of others go by …
    for at, raw in long_run[:3]:
        session.feed(raw, at)
    feed_runs(session, 200)
    run = store.run_by_id("zed", store.runs[0].run_id)
    assert run is not None and run.tools_open == 1
    # … then it finishes: its span (moved by the compactions meanwhile) closes
    for at, raw in long_run[3:]:
        session.feed(raw, at + 20)
    assert run.status == "completed" and run.tools_open == 0
    spans = store.spans()
    mine = spans["run"] == run.index
    assert int(mine.sum()) == 1 and not np.isnan(spans["end"][mine]).any()


def test_paged_in_events_of_a_run_that_left_memory_keep_its_index(tmp_path: Path) -> None:
    store = EventStore(capacity=200, max_finished_runs=HELD)
    session = ObservationSession(store, FROM_START_VALIDATOR)
    recorder = Recorder.create("ws://t", "embedded", late_join=False, directory=tmp_path)
    recorder.start().attach(session)
    feed_runs(session, 400)
    assert recorder.flush()
    pager = RecordingPager(store, recorder.stop().path)
    try:
        everything = pager.window(T0 - 1, T0 + 1_000)
        assert everything["t"].size == 400 * 5  # 200 held rows + 1,800 paged in
        runs = set(everything["run"].tolist())
        assert runs == set(range(400)), "events of archived runs were dropped"
        summary = store.run_summary(3)
        assert summary is not None
        assert set(everything["user"][everything["run"] == 3].tolist()) == {
            store.user_code(summary.user_id)
        }
    finally:
        pager.close()


def test_memory_stops_growing_with_the_number_of_runs() -> None:
    session = session_with(max_finished_runs=200)
    # the validator remembers a bounded number of runs too (the app's: 20,000)
    session.validator = SequenceValidator(replace(FROM_START_VALIDATOR, max_runs=500))
    frames = traffic(30_000, users=4)

    def feed(runs: int) -> None:
        for at, raw in itertools.islice(frames, runs * 5):
            session.feed(raw, at)

    # traced from the start, so what later runs replace is counted as freed
    tracemalloc.start()
    try:
        feed(6_000)  # warm up: the held runs and the validator's windows are full
        before = tracemalloc.take_snapshot()
        feed(4_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert not session.store.findings
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_run = grown / 4_000
    # 4.7 KB per run when every run stayed; what is left is the index-keyed bookkeeping
    assert per_run < 300, f"{per_run:.0f} bytes stay in memory per run that went by"
    session.close()


def test_a_run_silent_for_minutes_is_abandoned_leaves_memory_and_revives_if_it_speaks() -> None:
    session = session_with(max_finished_runs=10)
    store = session.store
    frames = run_events("zed", 1, T0, tools=1)
    for at, raw in frames[:3]:  # started, thinking, tool_executing … and then silence
        session.feed(raw, at)
    run = store.runs[0]
    session.tick(T0 + 60)
    assert run.status == "stalled" and store.open_runs == 1
    session.tick(T0 + 301)
    assert run.status == "abandoned" and run.finished and store.open_runs == 0
    assert run.ended_at == run.last_at  # its lane ends where it went silent
    # it speaks after all: running again
    _at, raw = frames[3]
    session.feed(raw, T0 + 302)
    assert run.status == "running" and run.ended_at is None and store.open_runs == 1
    # abandoned runs leave memory like finished ones
    session.tick(T0 + 700)
    feed_runs(session, 100)
    assert run.index not in store.runs
    summary = store.run_summary(run.index)
    assert summary is not None and summary.status == "abandoned"
