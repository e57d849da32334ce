"""``ResumeCursor``: a client's place in a stream across connections and restarts, without
sockets. Each test is a sequence of what a client sees (acks, frames, losses) and what the
cursor must make of it."""

from __future__ import annotations

import pytest

from runtime.streams import AckKind, ResumeCursor


def test_a_client_joins_live_then_resumes_after_what_it_received() -> None:
    cursor = ResumeCursor()
    assert cursor.request() is None  # join live: nothing from before
    verdict = cursor.acknowledge(40, "A", None)
    assert (verdict.kind, verdict.expect_next) == (AckKind.JOINED, 41)
    assert cursor.request() == 40  # lost before anything arrived: nothing before 40 wanted
    for seq in (41, 42, 43):
        cursor.advance(seq)
    assert cursor.request() == 43
    verdict = cursor.acknowledge(50, "A", 43)
    assert (verdict.kind, verdict.asked, verdict.expect_next) == (AckKind.RESUMED, 43, 44)


def test_from_start_asks_for_everything_the_runtime_keeps() -> None:
    cursor = ResumeCursor(from_start=True)
    assert cursor.request() == 0
    verdict = cursor.acknowledge(7, "A", 0)
    assert (verdict.kind, verdict.expect_next) == (AckKind.RESUMED, 1)


def test_a_cursor_given_a_position_resumes_after_it() -> None:
    cursor = ResumeCursor(after=12)
    assert cursor.request() == 12
    assert cursor.acknowledge(12, "A", 12).kind is AckKind.RESUMED


def test_an_old_frame_replayed_does_not_move_the_cursor_back() -> None:
    cursor = ResumeCursor(after=10)
    cursor.advance(9)
    assert cursor.position == 10


@pytest.mark.parametrize(
    ("last_seq", "instance", "why"),
    [
        (5, "A", "its stream is at seq 5, but 20 had been received"),  # behind us: restarted
        (5, None, "its stream is at seq 5, but 20 had been received"),
        (90, "B", "it is a new instance (B, was A)"),  # already past us, but another runtime
    ],
    ids=["behind", "behind-no-instance", "new-instance-ahead"],
)
def test_an_ack_that_shows_a_restart_sends_the_client_back_to_the_start(
    last_seq: int, instance: str | None, why: str
) -> None:
    cursor = ResumeCursor()
    cursor.acknowledge(10, "A", None)
    cursor.advance(20)
    verdict = cursor.acknowledge(last_seq, instance, 20)
    assert verdict.kind is AckKind.RESTARTED
    assert why in verdict.detail
    assert cursor.request() == 0  # the new runtime's stream from its first frame
    # the next ack names the new runtime: nothing to compare it with
    assert cursor.acknowledge(last_seq, instance, 0).kind is AckKind.RESUMED


def test_the_same_instance_ahead_of_us_is_a_resume_not_a_restart() -> None:
    cursor = ResumeCursor()
    cursor.acknowledge(10, "A", None)
    cursor.advance(12)
    assert cursor.acknowledge(500, "A", 12).kind is AckKind.RESUMED


def test_a_runtime_that_sends_no_instance_id_is_judged_by_its_numbers_only() -> None:
    cursor = ResumeCursor()
    cursor.acknowledge(10, None, None)
    cursor.advance(12)
    assert cursor.acknowledge(500, None, 12).kind is AckKind.RESUMED
    assert cursor.acknowledge(500, "A", 12).kind is AckKind.RESUMED  # nothing to compare


@pytest.mark.parametrize(
    ("lost_at", "now", "uptime", "restarted"),
    [
        (100.0, 110.0, 3.0, True),  # up 3 s, lost 10 s ago: it came up after we lost it
        (100.0, 110.0, 500.0, False),  # up long before: the same runtime
        (100.0, 110.0, 9.9, False),  # within the margin: clock granularity, rounding
    ],
)
def test_an_uptime_shorter_than_the_outage_is_a_restart(
    lost_at: float, now: float, uptime: float, restarted: bool
) -> None:
    cursor = ResumeCursor()
    cursor.acknowledge(10, "A", None)
    cursor.advance(30)
    cursor.lost(lost_at)
    detail = cursor.check_uptime(uptime, now)
    assert bool(detail) == restarted
    assert cursor.request() == (0 if restarted else 30)


def test_a_restarted_process_whose_streams_go_on_is_no_restart() -> None:
    """A node of a cluster restarted: short uptime, but the same instance_id (the epoch of
    streams kept in Redis), so the cursor resumes where it was."""
    cursor = ResumeCursor()
    cursor.acknowledge(10, "epoch-1", None)
    cursor.advance(30)
    cursor.lost(100.0)
    assert cursor.check_uptime(2.0, 110.0, "epoch-1") == ""
    assert cursor.request() == 30
    assert cursor.check_uptime(2.0, 110.0, "epoch-2") != ""
    assert cursor.request() == 0


def test_no_uptime_check_while_connected() -> None:
    cursor = ResumeCursor()
    cursor.acknowledge(10, "A", None)
    assert cursor.check_uptime(0.0, 1e9) == ""


def test_a_resume_ahead_refusal_is_a_restart_other_errors_are_not() -> None:
    cursor = ResumeCursor(after=50)
    assert not cursor.refused("replay_gap")
    assert cursor.request() == 50
    assert cursor.refused("resume_ahead")
    assert cursor.request() == 0
