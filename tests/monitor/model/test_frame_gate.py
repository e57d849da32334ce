"""``FrameGate``: the ingest waits out a GUI frame, and never longer than ``max_wait``."""

from __future__ import annotations

import threading

from monitor.model.session import ObservationSession
from monitor.services.frame_gate import FrameGate, share_across_threads

WAIT = 5.0  # generous bound for a thread to reach a point on a loaded machine


def test_no_frame_means_no_wait() -> None:
    gate = FrameGate()
    gate.yield_to_frame()
    assert not gate.drawing
    assert gate.waits == 0


def test_the_ingest_waits_until_the_frame_is_drawn() -> None:
    gate = FrameGate(max_wait=60.0)  # only the frame's end can release the waiter
    in_frame, waiting, released = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def gui() -> None:
        with gate.frame():
            in_frame.set()
            assert waiting.wait(WAIT)
            order.append("frame drawn")

    def ingest() -> None:
        assert in_frame.wait(WAIT)
        waiting.set()
        gate.yield_to_frame()
        order.append("ingest continues")
        released.set()

    threads = [threading.Thread(target=gui), threading.Thread(target=ingest)]
    for thread in threads:
        thread.start()
    assert released.wait(WAIT)
    for thread in threads:
        thread.join(WAIT)
    # the waiter set `waiting` before it blocked; it could only continue after the frame
    assert order == ["frame drawn", "ingest continues"]
    assert gate.waits == 1
    assert not gate.drawing


def test_a_frame_that_never_ends_only_delays_the_ingest() -> None:
    gate = FrameGate(max_wait=0.01)
    with gate.frame():  # a GUI stuck mid-frame
        gate.yield_to_frame()
        gate.yield_to_frame()
        assert gate.drawing
    assert gate.waits == 2
    assert gate.waited >= 0.02 * 0.5  # each wait was bounded, not skipped


def test_a_session_fed_from_another_thread_gets_a_lock_and_a_gate_once() -> None:
    session = ObservationSession()
    share_across_threads(session)
    lock, gate = session.store.lock, session.frame_gate
    assert isinstance(gate, FrameGate)
    with lock, lock:  # re-entrant: the session takes it inside its callers' hold
        pass
    share_across_threads(session)  # a second feeder (or the window) changes nothing
    assert session.store.lock is lock and session.frame_gate is gate
