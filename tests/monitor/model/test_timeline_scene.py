"""The timeline's scene maths, without Qt: the time axis, which runs get lanes and where,
what a frame draws (run and tool bars, the density image's cells) and what is under the
pointer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from monitor.model.store import EVENT_TYPES, TOOL_ERROR, TOOL_OK, TOOL_OPEN
from monitor.model.timeline_scene import (
    ERROR_CODE,
    NTYPES,
    DrawnRange,
    RunColumns,
    TimeFrame,
    alternate_users,
    band_placement,
    cell_counts,
    clip_middle,
    density_cells,
    event_detail,
    follow_range,
    format_elapsed,
    grid_ticks,
    interval_passed,
    label_width,
    lane_geometry,
    lane_label,
    lane_px_for,
    lanes_in_view,
    layout_lanes,
    nearest_event,
    render_cover,
    reveal_scroll,
    run_bar_extents,
    scroll_anchor,
    span_at,
    thin,
    tick_spacing,
    tick_values,
    tool_bars,
)
from runtime.protocol import Event, EventType, encode_event


def frame(x0: float = 0.0, x1: float = 10.0, now: float = 10.0, **kw: object) -> TimeFrame:
    values: dict[str, object] = {
        "cover0": x0,
        "cover1": x1,
        "epoch": 1000.0,
        "width_px": 1000,
        "height_px": 400,
        "frozen": False,
    }
    values.update(kw)
    return TimeFrame(x0, x1, now=now, **values)  # type: ignore[arg-type]


# --- the time axis ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "spacing", "text"),
    [
        (0, 1, "0:00"),
        (65, 1, "1:05"),
        (3725, 60, "1:02:05"),
        (1.26, 0.1, "0:01.3"),
        (1.234, 0.001, "0:01.234"),
        (-5, 1, "-0:05"),
        (-0.0001, 1, "0:00"),  # no minus zero
    ],
)
def test_elapsed_time_reads_as_minutes_and_seconds(
    seconds: float, spacing: float, text: str
) -> None:
    assert format_elapsed(seconds, spacing) == text


def test_ticks_fall_on_whole_seconds_minutes_and_hours() -> None:
    # a minute over 900 px: at most 10 major ticks → every 10 s, a minor one every 2 s
    assert tick_spacing(0, 60, 900) == [(10.0, 0.0), (2.0, 0.0)]
    # an hour: every 10 minutes, minor every 2.5 (600 s is no time-specific step: 5 of them)
    assert tick_spacing(0, 3600, 900)[0] == (600.0, 0.0)
    # quarter minutes split in three, minutes in four
    assert tick_spacing(0, 150, 900) == [(15.0, 0.0), (5.0, 0.0)]
    assert tick_spacing(0, 600, 900) == [(60.0, 0.0), (15.0, 0.0)]
    # beyond a day: whole multiples of a day
    assert tick_spacing(0, 86400 * 30, 900)[0][0] % 86400 == 0
    assert tick_spacing(5, 5, 900) == [] and tick_spacing(0, 10, 0) == []


def test_minor_ticks_leave_out_the_major_ones() -> None:
    levels = tick_values(0.0, 20.0, [(10.0, 0.0), (2.0, 0.0)])
    assert levels[0] == (10.0, [0.0, 10.0, 20.0])
    assert levels[1][1] == [2.0, 4.0, 6.0, 8.0, 12.0, 14.0, 16.0, 18.0]
    # either order of the ends
    assert tick_values(20.0, 0.0, [(10.0, 0.0)]) == [(10.0, [0.0, 10.0, 20.0])]


def test_following_live_shows_the_last_window_with_a_margin() -> None:
    assert follow_range(5.0, 30.0) == (-0.5, 30.5)  # the first window, from the start
    assert follow_range(100.0, 30.0) == (69.5, 100.5)


def test_a_live_step_is_due_once_per_interval_give_or_take_a_tenth() -> None:
    assert interval_passed(1.0, 0.9, 0.1)
    assert interval_passed(1.0, 0.905, 0.1)  # a tick a little early still counts
    assert not interval_passed(1.0, 0.95, 0.1)
    assert interval_passed(1.0, 1.5, 0.1)  # the clock went back (a replay seeked)


def test_grid_lines_cover_the_drawn_range_and_a_span_to_its_left() -> None:
    f = frame(10.0, 20.0, cover0=10.0, cover1=25.0)
    major, minor = grid_ticks(5.0, 1.0, f)
    assert major.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    assert 1.0 in minor and 5.0 not in minor and minor.max() == 34.0  # up to ``far``
    assert f.far == 35.0 and f.px == pytest.approx(0.01)


# --- what a render covers ---------------------------------------------------------------


def test_a_render_draws_a_margin_on_the_sides_the_view_may_scroll_to() -> None:
    assert render_cover(10.0, 20.0, live=False) == (5.0, 25.0)
    assert render_cover(10.0, 20.0, live=True) == (10.0, 25.0)  # live: it only moves right


def test_a_drawn_range_holds_while_the_view_stays_within_it_and_its_lanes() -> None:
    drawn = DrawnRange((), 0.0, 10.0, 0.0, 30.0, -1.0, 5.0, 8.0, 25.0, math.inf, None)
    assert drawn.covers(2.0, 12.0)
    assert not drawn.covers(-0.5, 9.5)  # left of the drawn items
    assert not drawn.covers(6.0, 16.0)  # the left edge passed a run's end: lanes change
    assert not drawn.covers(1.0, 7.0)  # the right edge went back past a run's start


# --- lanes ------------------------------------------------------------------------------


def runs(
    start: list[float],
    end: list[float],
    user: list[int],
    *,
    check: list[bool] | None = None,
    known: list[bool] | None = None,
) -> RunColumns:
    n = len(start)
    return RunColumns(
        start=np.array(start, dtype=np.float64),
        end=np.array(end, dtype=np.float64),
        user=np.array(user, dtype=np.int32),
        first_row=np.arange(n, dtype=np.int64) * 10,
        known=np.array(known if known is not None else [True] * n),
        check=np.array(check if check is not None else [False] * n),
    )


NO_EVENTS = np.zeros(0, dtype=np.int32)


def test_lanes_are_the_runs_in_view_by_user_then_start() -> None:
    columns = runs(
        start=[1.0, 2.0, 3.0, 50.0, 0.5],
        end=[4.0, np.nan, 8.0, 60.0, 0.6],
        user=[1, 0, 1, 0, 0],
    )
    f = frame(1.0, 10.0, now=9.0)
    layout = layout_lanes(columns, 5, NO_EVENTS, f, None, hide_check=False)
    # run 3 starts after the view, run 4 ended before it
    assert layout.lane_runs.tolist() == [1, 0, 2]
    assert layout.lane_of_run.tolist() == [1, 0, 2, -1, -1]
    x0_lo, x0_hi, x1_lo, x1_hi, now_hi = layout.bounds
    assert x0_lo == 0.6  # the left edge may go back to where run 4 ended
    assert x0_hi == 4.0  # …and forward until run 0 ends
    assert x1_lo == 3.0  # the right edge may come back to run 2's start
    assert x1_hi == 50.0  # …and go on until run 3 starts
    assert now_hi == math.inf


def test_a_late_event_keeps_its_run_in_view_and_an_unseen_run_is_paged_in() -> None:
    columns = runs([1.0, 2.0], [1.5, 2.5], [0, 0], known=[True, False])
    events = np.array([0, 1], dtype=np.int32)  # both have events in the drawn range
    layout = layout_lanes(columns, 2, events, frame(5.0, 10.0), None, hide_check=False)
    assert layout.lane_runs.tolist() == [0]  # run 1 is not known yet: no lane
    assert layout.missing.tolist() == [1]


def test_check_runs_get_no_lane_while_hidden_and_are_counted() -> None:
    columns = runs([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0, 1, 2], check=[False, True, True])
    f = frame(0.0, 10.0)
    hidden = layout_lanes(columns, 3, NO_EVENTS, f, None, hide_check=True)
    assert hidden.lane_runs.tolist() == [0] and hidden.hidden_check == 2
    shown = layout_lanes(columns, 3, NO_EVENTS, f, None, hide_check=False)
    assert shown.lane_runs.tolist() == [0, 1, 2] and shown.hidden_check == 0


def test_a_paused_view_has_no_lanes_for_runs_that_started_later() -> None:
    columns = runs([1.0, 2.0], [4.0, 5.0], [0, 0])  # first rows 0 and 10
    layout = layout_lanes(columns, 2, NO_EVENTS, frame(0.0, 10.0), 5, hide_check=False)
    assert layout.lane_runs.tolist() == [0]


def test_an_open_run_ahead_of_now_changes_the_lanes_with_the_clock() -> None:
    # the view lies ahead of "now" (4.0): a run still open ends at "now" for the layout
    columns = runs([1.0], [np.nan], [0])
    layout = layout_lanes(columns, 1, NO_EVENTS, frame(5.0, 10.0, now=4.0), None, hide_check=False)
    assert layout.lane_runs.size == 0 and layout.bounds[4] == 5.0


def test_lanes_share_the_height_between_their_minimum_and_maximum() -> None:
    assert lane_px_for(2, 400.0, 18.0, 40.0) == 40.0  # few lanes sit at the top
    assert lane_px_for(16, 400.0, 18.0, 40.0) == 25.0
    assert lane_px_for(100, 400.0, 18.0, 40.0) == 18.0  # many: they scroll
    geometry = lane_geometry(100, 400.0, 10_000.0, 18.0, 40.0)
    assert geometry.lane_px == 18.0 and geometry.max_scroll == 1400.0
    assert geometry.scroll_px == 1400.0  # kept within what there is to scroll
    assert geometry.y0 == pytest.approx(1400 / 18 - 0.5)
    assert geometry.y1 - geometry.y0 == pytest.approx(400 / 18)
    assert lane_geometry(3, 400.0, 50.0, 18.0, 40.0).scroll_px == 0.0  # nothing to scroll


def test_the_lanes_in_view_include_partly_visible_ones() -> None:
    assert lanes_in_view(-0.5, 9.5, 100) == (0, 11)  # lane 10 touches the bottom edge
    assert lanes_in_view(2.7, 5.1, 100) == (3, 6)
    assert lanes_in_view(-0.5, 9.5, 4) == (0, 4)


def test_the_run_at_the_top_keeps_its_place_when_lanes_change() -> None:
    old_runs = np.array([10, 11, 12, 13], dtype=np.int64)
    # run 10 left; run 11 (at the top of the view: scroll 20 px, lanes 20 px) is now lane 0
    lane_of_run = np.full(20, -1, dtype=np.int32)
    lane_of_run[[11, 12, 13]] = [0, 1, 2]
    scroll = scroll_anchor(
        old_runs, 20.0, 20.0, height=40.0, lane_of_run=lane_of_run, new_px=20.0, selected=None
    )
    assert scroll == 0.0  # run 11 stays on the same pixel row
    # the selected run, in view, is the anchor instead
    scroll = scroll_anchor(
        old_runs, 20.0, 20.0, height=40.0, lane_of_run=lane_of_run, new_px=20.0, selected=12
    )
    assert scroll == 0.0 + 20.0 - 20.0  # lane 1 at 20 px, it was at 40 - 20
    nothing = np.full(20, -1, dtype=np.int32)
    assert (
        scroll_anchor(
            old_runs, 20.0, 0.0, height=40.0, lane_of_run=nothing, new_px=20.0, selected=None
        )
        is None
    )


def test_revealing_a_lane_centres_it_only_when_it_is_out_of_view() -> None:
    assert reveal_scroll(2, 20.0, 0.0, 100.0) == 0.0  # in view
    assert reveal_scroll(20, 20.0, 0.0, 100.0) == 400.0 - 40.0


def test_lane_labels_keep_both_ends_of_a_user_and_the_short_run_id() -> None:
    @dataclass
    class Run:
        user_id: str
        agent_name: str
        run_id: str

    run = Run("load-7c8d19-aaaaaaaaaaaaa-9", "data_analyst_with_a_long_name", "run_3f0c1a9b")
    assert lane_label(run) == "load-7c8…aaaaaaa-9 · data_analyst_wi… · 3f0c1a"
    assert clip_middle("abcdef", 5) == "ab…ef" and clip_middle("abc", 5) == "abc"
    assert label_width(100, 2000, (90, 320), 0.4) == 116
    assert label_width(10, 2000, (90, 320), 0.4) == 90
    assert label_width(500, 400, (90, 320), 0.4) == 160  # at most 40 % of the view


# --- what a frame draws -----------------------------------------------------------------


def test_every_other_users_lanes_alternate() -> None:
    users = np.array([3, 3, 1, 1, 1, 7, 3], dtype=np.int32)
    assert alternate_users(users).tolist() == [False, False, True, True, True, False, True]
    assert alternate_users(np.zeros(0, dtype=np.int32)).size == 0


def test_run_bars_are_clipped_to_the_drawn_range_and_open_ones_reach_far() -> None:
    f = frame(0.0, 10.0, now=8.0, cover0=0.0, cover1=15.0)
    starts, ends = run_bar_extents(np.array([-100.0, 2.0, 3.0]), np.array([5.0, np.nan, 9.0]), f)
    assert starts.tolist() == [-1.0, 2.0, 3.0]
    assert ends.tolist() == [5.0, f.far, f.far]  # ending after "now": still open at 8 s


def spans(rows: list[tuple[int, float, float, int]]) -> dict[str, np.ndarray]:
    return {
        "run": np.array([r[0] for r in rows], dtype=np.int32),
        "start": np.array([r[1] for r in rows], dtype=np.float64) + 1000.0,
        "end": np.array([r[2] for r in rows], dtype=np.float64) + 1000.0,
        "status": np.array([r[3] for r in rows], dtype=np.uint8),
    }


def test_tool_calls_are_grouped_by_how_they_stand() -> None:
    lane_of_run = np.array([0, 1, 2, -1], dtype=np.int32)
    run_end = np.array([np.nan, 6.0, np.nan, np.nan])
    f = frame(0.0, 20.0, now=20.0, cover1=20.0)
    bars = tool_bars(
        spans(
            [
                (0, 1.0, 2.0, TOOL_OK),
                (0, 3.0, 4.0, TOOL_ERROR),
                (1, 5.0, np.nan, TOOL_OPEN),  # its run ended at 6 s without it: unfinished
                (2, 15.0, np.nan, TOOL_OPEN),  # running for 5 s
                (2, 2.0, np.nan, TOOL_OPEN),  # running for 18 s: stalled
                (3, 1.0, 2.0, TOOL_OK),  # its run has no lane
            ]
        ),
        lane_of_run,
        run_end,
        f,
        stall_after=10.0,
    )
    counts = {name: bar[0].size for name, bar in bars.bars.items()}
    assert counts == {"ok": 1, "error": 1, "unfinished": 1, "open": 1, "stalled": 1}
    assert bars.bars["unfinished"][1].tolist() == [6.0]  # it ends with its run
    assert bars.bars["open"][1].tolist() == [f.far]  # grows to "now"
    assert bars.next_stall == 25.0  # the running call turns stalled 10 s after it began
    assert bars.index.tolist() == [0, 1, 2, 3, 4]
    assert np.isnan(bars.x1[[3, 4]]).all() and not np.isnan(bars.x1[2])
    # a call of a few ms is still a 2 px tick
    short = tool_bars(spans([(0, 1.0, 1.0001, TOOL_OK)]), lane_of_run, run_end, f, stall_after=10)
    assert short.bars["ok"][1][0] - short.bars["ok"][0][0] == pytest.approx(2 * f.px)


def test_past_the_limit_only_wide_ok_bars_are_kept() -> None:
    rows = [(0, float(i), float(i) + (1.0 if i % 2 else 0.001), TOOL_OK) for i in range(100)]
    bars = tool_bars(
        spans(rows),
        np.array([0], dtype=np.int32),
        np.array([np.nan]),
        frame(0.0, 100.0, now=100.0, cover1=100.0),
        stall_after=10.0,
        max_bars=10,
    )
    assert bars.bars["ok"][0].size == 10  # the 50 wide ones, with a stride of 5
    assert (bars.state == -1).sum() == 90  # thinned out: hover skips them


def reference_cell_counts(key: np.ndarray, cells: int) -> tuple[list[int], list[int], list[int]]:
    per_cell: dict[int, list[int]] = {}
    for k in key.tolist():
        per_cell.setdefault(k // NTYPES, [0] * NTYPES)[k % NTYPES] += 1
    occupied = sorted(per_cell)
    totals = [sum(per_cell[c]) for c in occupied]
    dominant = []
    for c in occupied:
        counts = per_cell[c]
        best = ERROR_CODE if counts[ERROR_CODE] else counts.index(max(counts))
        dominant.append(best)
    return occupied, totals, dominant


@pytest.mark.parametrize("cells", [4, 100_000])  # many events per cell, and few
def test_cell_counts_pick_the_dominant_type_and_never_outvote_an_error(cells: int) -> None:
    rng = np.random.default_rng(7)
    cell = rng.integers(0, 4, size=400).astype(np.int32)
    etype = rng.choice([0, 1, 1, 2], size=400).astype(np.int32)
    etype[:3] = ERROR_CODE  # one error in a cell of many other events
    key = cell * np.int32(NTYPES) + etype
    occupied, totals, dominant = cell_counts(key, cells)
    expected = reference_cell_counts(key, cells)
    assert (occupied.tolist(), totals.tolist(), dominant.tolist()) == expected
    empty = cell_counts(np.zeros(0, dtype=np.int32), cells)
    assert all(a.size == 0 for a in empty)


def test_the_density_image_has_three_rows_per_lane_and_rings_for_flagged_cells() -> None:
    f = frame(0.0, 10.0, width_px=200)  # 100 buckets of 0.1 s
    x = np.array([0.05, 0.06, 5.05, 9.99])
    lane = np.array([1, 1, 2, 5], dtype=np.int32)  # lane 5 is outside the rows drawn
    types = np.array([0, 0, ERROR_CODE, 0], dtype=np.uint8)
    flags = np.array([0, 1, 0, 1], dtype=np.uint8)
    cells = density_cells(x, lane, f, types=types, flags=flags, first=1, last=3)
    assert (cells.rows, cells.buckets) == (6, 100)
    # the middle row of each lane: lane 1 → row 1, lane 2 → row 4
    assert cells.occupied.tolist() == [1 * 100 + 0, 4 * 100 + 50]
    assert cells.dominant.tolist() == [0, ERROR_CODE]
    assert cells.alpha.tolist() == [255, int(70 + 185 * math.log1p(1) / math.log1p(2))]
    assert cells.ring_x.tolist() == pytest.approx([0.05]) and cells.ring_y.tolist() == [1.0]


def test_thinning_keeps_every_nth_point() -> None:
    x, y = thin(np.arange(10.0), np.arange(10.0), 4)
    assert x.tolist() == [0.0, 3.0, 6.0, 9.0] and y.tolist() == x.tolist()
    assert thin(np.arange(3.0), np.arange(3.0), 4)[0].size == 3


# --- hover ------------------------------------------------------------------------------


def test_hover_finds_the_nearest_event_on_the_lane_within_reach() -> None:
    xs = np.array([1.0, 2.0, 2.2, 5.0])
    lanes = np.array([0, 1, 1, 1], dtype=np.int32)
    assert nearest_event(xs, lanes, 2.15, 1, 0.5) == 2
    assert nearest_event(xs, lanes, 3.5, 1, 0.5) is None  # too far from both
    assert nearest_event(xs, lanes, 1.0, 2, 0.5) is None  # nothing on that lane


def test_hover_finds_the_tool_call_under_the_pointer_a_running_one_up_to_now() -> None:
    bars = tool_bars(
        spans([(0, 1.0, 3.0, TOOL_OK), (0, 4.0, np.nan, TOOL_OPEN)]),
        np.array([0], dtype=np.int32),
        np.array([np.nan]),
        frame(0.0, 10.0, now=6.0),
        stall_after=100.0,
    )
    assert span_at(bars, 2.0, 0, now_rel=6.0) == 0
    assert span_at(bars, 5.0, 0, now_rel=6.0) == 1  # running: reaches "now"
    assert span_at(bars, 7.0, 0, now_rel=6.0) is None
    assert span_at(bars, 2.0, 1, now_rel=6.0) is None


def test_an_events_detail_names_its_tool_status_and_error() -> None:
    def raw(etype: EventType, data: dict[str, object]) -> bytes:
        return encode_event(Event(etype, "e1", 1, "ann", "th_1", "run_1", "analyst", 1.0, data))

    done = raw(
        EventType.TOOL_COMPLETED,
        {
            "tool_call_id": "c",
            "tool_name": "calc",
            "status": "success",
            "result": 1,
            "duration_ms": 2,
        },
    )
    assert event_detail(done) == "tool calc · status success"
    crash = raw(
        EventType.AGENT_ERROR, {"error_type": "Crash", "message": "x" * 200, "recoverable": False}
    )
    assert event_detail(crash) == "Crash: " + "x" * 80
    assert event_detail(None) == "" and event_detail(b"not json") == ""
    assert EVENT_TYPES  # the codes the density image colours by


def test_a_bands_label_stays_in_sight_while_any_of_the_band_is() -> None:
    placed, text_at = band_placement(1010.0, 1020.0, now=None, epoch=1000.0, view_x0=15.0, top=0)
    assert placed == (10.0, 20.0) and text_at == (15.0, 0)
    assert band_placement(1010.0, 1020.0, now=None, epoch=1000.0, view_x0=5.0, top=0)[1] == (
        10.0,
        0,
    )
    # an open band reaches "now"
    assert band_placement(1010.0, None, now=1030.0, epoch=1000.0, view_x0=0.0, top=0)[0] == (
        10.0,
        30.0,
    )
