"""The model's own stand-ins for what a service provides: ``MemoryRunArchive`` (the run
archive of a store used on its own; the SQLite one answers alike, see
``test_run_eviction``), and the lock and frame gate of a session one thread feeds."""

from __future__ import annotations

from monitor.model.run_summary import INPUT_CHARS, MemoryRunArchive, RunSummary
from monitor.model.session import ObservationSession
from monitor.model.sharing import NoLock, OpenGate
from monitor.model.store import EventStore


def summary(index: int, user: str = "ann", run: str = "", start: float = 0.0) -> RunSummary:
    return RunSummary(
        index, user, run or f"run_{index}", "th", "agent", start, start + 1, start + 2,
        "completed", 5, 0, input="x" * 500,
    )  # fmt: skip


def test_the_memory_archive_pages_back_by_index_id_time_and_newest_first() -> None:
    archive = MemoryRunArchive()
    archive.add(summary(i, start=10.0 * i) for i in (3, 1, 2))
    archive.add([summary(7, run="run_1", start=70.0)])  # the same ids, run again later
    assert len(archive) == 4
    first = archive.get(1)
    assert first is not None and len(first.input) == INPUT_CHARS  # cut, as on disk
    assert archive.get(4) is None
    found = archive.by_id("ann", "run_1")
    assert found is not None and found.index == 7  # the newest with these ids
    assert archive.by_id("bob", "run_1") is None
    # active at some time in [15, 25]: run 1 ended at 12, run 2 spans 20..22
    assert [r.index for r in archive.between(15.0, 25.0)] == [2]
    assert [r.index for r in archive.between(0.0, 100.0, limit=2)] == [1, 2]
    assert [r.index for r in archive.page()] == [7, 3, 2, 1]
    assert [r.index for r in archive.page(before=3, limit=1)] == [2]
    archive.close()
    assert len(archive) == 0


def test_a_store_on_its_own_archives_in_memory_through_its_factory() -> None:
    made: list[MemoryRunArchive] = []

    def factory() -> MemoryRunArchive:
        made.append(MemoryRunArchive())
        return made[-1]

    store = EventStore(archive_factory=factory)
    assert not made  # none until the first run leaves memory
    assert store.archive is made[0] and store.archive is made[0]  # made once


def test_a_session_one_thread_feeds_has_no_lock_and_an_open_gate() -> None:
    session = ObservationSession()
    assert isinstance(session.store.lock, NoLock)
    with session.store.lock, session.store.lock:  # re-entrant, like the real one
        pass
    gate = session.frame_gate
    assert isinstance(gate, OpenGate) and not gate.drawing
    with gate.frame():
        gate.yield_to_frame()  # returns at once
    assert (gate.waits, gate.waited) == (0, 0.0)


def test_sharing_a_session_hands_it_a_lock_and_a_gate() -> None:
    session = ObservationSession()
    lock, gate = NoLock(), OpenGate()
    session.share(lock, gate)
    assert session.store.lock is lock and session.frame_gate is gate
