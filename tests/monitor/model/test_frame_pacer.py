"""``FramePacer``: frames as often as what is shown needs, none while nothing changes, and
the timer asleep meanwhile — driven by a fake clock, no sleeping."""

from __future__ import annotations

from monitor.model.frame_pacer import FramePacer


def frames(pacer: FramePacer, seconds: float, step: float, **state: object) -> int:
    """Ticks every ``step`` for ``seconds`` (from t=0) and counts the frames drawn."""
    count, t = 0, 0.0
    while t < seconds:
        count += pacer.frame_due(t, **state)  # type: ignore[arg-type]
        t += step
    return count


def test_a_busy_stream_draws_every_tick() -> None:
    drawn = frames(FramePacer(), 1.0, 1 / 30, changed=True, moving=True, rate=20_000.0)
    assert drawn >= 29


def test_a_slow_stream_draws_at_the_live_pace() -> None:
    drawn = frames(FramePacer(), 3.0, 1 / 30, changed=True, moving=True, rate=45.0)
    assert 8 <= drawn <= 10


def test_nothing_new_but_a_moving_view_scrolls_slowly() -> None:
    assert 3 <= frames(FramePacer(), 2.0, 1 / 30, changed=False, moving=True, rate=0.0) <= 5


def test_nothing_new_and_nothing_moving_draws_once_a_second_and_the_timer_sleeps() -> None:
    pacer = FramePacer()
    assert frames(pacer, 10.0, 1 / 30, changed=False, moving=False, rate=0.0) <= 11
    assert pacer.tick_interval(10.0, moving=False) == pacer.still_interval
    assert pacer.tick_interval(10.0, moving=True) == pacer.moving_interval


def test_a_change_wakes_the_timer_and_a_request_draws_at_once() -> None:
    pacer = FramePacer()
    assert pacer.frame_due(0.0, changed=False, moving=False, rate=0.0)
    assert not pacer.frame_due(0.5, changed=False, moving=False, rate=0.0)
    assert pacer.tick_interval(0.6, moving=False) == pacer.still_interval
    pacer.request()  # the user clicked: draw at the next tick, whatever the pace
    assert pacer.tick_interval(0.6, moving=False) == pacer.busy_interval
    assert pacer.frame_due(0.62, changed=False, moving=False, rate=0.0)
    # a change keeps the timer at the stream's pace for ``settle``, then it sleeps again
    pacer.frame_due(1.0, changed=True, moving=False, rate=10.0)
    assert pacer.tick_interval(1.2, moving=False, rate=10.0) == pacer.live_interval
    assert pacer.tick_interval(1.2, moving=False, rate=20_000.0) == pacer.busy_interval
    assert pacer.tick_interval(1.0 + pacer.settle + 0.01, moving=False) == pacer.still_interval
