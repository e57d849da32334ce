"""The timeline's scene maths, without Qt: time on x, one lane per run on y.

``monitor._qt.timeline.TimelineView`` draws what this computes. x is receive time in seconds
since the store's epoch (its first event); lane ``i`` spans ``i - 0.5 .. i + 0.5`` on y.

- **Time axis**: tick spacing on whole seconds, minutes and hours (``tick_spacing``,
  ``tick_values``), labels in ``m:ss`` (``format_elapsed``), grid lines (``grid_ticks``).
- **Lanes**: which runs get one, in user then start order, and how far the view may move
  before that changes (``layout_lanes``); their height and scrolling (``lane_px_for``,
  ``lane_geometry``, ``scroll_anchor``, ``reveal_scroll``, ``lanes_in_view``); labels
  (``lane_label``).
- **What a frame draws**: the visible and the drawn range (``TimeFrame``), when it goes
  stale (``DrawnRange``), run and tool-call bars (``run_bar_extents``, ``tool_bars``), the
  density image's cells when there are too many events for markers (``density_cells``).
- **Hover**: the event or tool call under the pointer (``nearest_event``, ``span_at``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from runtime.protocol import EventType, ProtocolError, decode_object

from .ids import short_id
from .run_state import RunState
from .store import EVENT_TYPES, TOOL_ERROR, TOOL_OK

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LaneArray = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

#: at most this many finding rings are drawn (thinned with a stride beyond); a quarter of
#: that over the density image, where they are smaller and must not bury the data
MAX_FINDING_RINGS = 2_000
#: above this many visible tool bars, finished ok bars narrower than a pixel are dropped
MAX_TOOL_BARS = 20_000
#: a render draws this fraction of the visible span beyond each edge it may scroll toward
RENDER_MARGIN = 0.5
#: between the parts of a lane label
LABEL_SEPARATOR = " · "
#: the density image's buckets are this many pixels wide, at most ``MAX_BUCKETS`` of them
BUCKET_PX = 2
MAX_BUCKETS = 2000
#: image rows per lane: the event band is the middle one
ROWS_PER_LANE = 3

#: run bar items, by status code (``RUN_STATUS_CODE``): the order of ``RunState``
RUN_STATUSES: Final[tuple[str, ...]] = tuple(RunState)
RUN_STATUS_CODE: Final = {s: i for i, s in enumerate(RUN_STATUSES)}
#: tool-call bar items, by state; hover reads a visible span's state by its index here
TOOL_STATES: Final[tuple[str, ...]] = ("ok", "error", "unfinished", "open", "stalled")
#: the bar items whose bars may reach "now" (clipped there when painted)
LIVE_TOOL_STATES: Final = ("open", "stalled")
ERROR_CODE: Final = EVENT_TYPES.index(EventType.AGENT_ERROR)
NTYPES: Final = len(EVENT_TYPES)


# --- labels -----------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at the end with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, keeping both ends (user ids differ at their
    ends: ``load-7c8d19-9``)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


class _RunNames(Protocol):
    """What ``lane_label`` reads of a run (``RunInfo`` and ``RunSummary`` both have it)."""

    @property
    def user_id(self) -> str: ...

    @property
    def agent_name(self) -> str: ...

    @property
    def run_id(self) -> str: ...


def lane_label(run: _RunNames) -> str:
    """The lane label of a run: ``user · agent · short run id``."""
    return LABEL_SEPARATOR.join(
        (clip_middle(run.user_id, 18), clip(run.agent_name, 16), short_id(run.run_id))
    )


# --- the time axis ----------------------------------------------------------------------


def format_elapsed(seconds: float, spacing: float = 1.0) -> str:
    """Seconds since the epoch as ``m:ss`` / ``h:mm:ss``, with decimals when ticks are close."""
    decimals = 0 if spacing >= 1 else min(3, math.ceil(-math.log10(spacing)))
    value = round(abs(seconds), decimals)
    sign = "-" if seconds < 0 and value > 0 else ""
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    width = 2 if decimals == 0 else 3 + decimals
    sec = f"{secs:0{width}.{decimals}f}"
    if hours:
        return f"{sign}{int(hours)}:{int(minutes):02d}:{sec}"
    return f"{sign}{int(minutes)}:{sec}"


TIME_STEPS: Final = (
    *(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    *(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 10800, 21600, 43200, 86400),
)
#: minor ticks per major tick for the time-specific steps (quarter minutes, ten minutes…)
MINOR_DIVISIONS: Final = {
    15: 3, 30: 3, 60: 4, 120: 4, 900: 3, 1800: 3,
    3600: 4, 7200: 4, 10800: 3, 21600: 6, 43200: 4, 86400: 4,
}  # fmt: skip
#: a major tick every this many pixels at most
TICK_PX = 90.0


def tick_spacing(lo: float, hi: float, size: float) -> list[tuple[float, float]]:
    """``[(major, 0), (minor, 0)]``: tick spacings (s) for ``lo..hi`` over ``size`` pixels,
    on whole seconds, minutes and hours; empty for an empty range or size."""
    span = abs(hi - lo)
    if span == 0 or size <= 0:
        return []
    max_ticks = max(2.0, size / TICK_PX)
    major = float(TIME_STEPS[-1])
    for step in TIME_STEPS:
        if span / step <= max_ticks:
            major = float(step)
            break
    else:
        major *= math.ceil(span / max_ticks / major)
    if major >= 15 and int(major) in MINOR_DIVISIONS:
        divisions = MINOR_DIVISIONS[int(major)]
    else:
        mantissa = round(major / 10 ** math.floor(math.log10(major)))
        divisions = 4 if mantissa == 2 else 5
    minor = major / divisions
    return [(major, 0.0), (minor, 0.0)]


def tick_values(
    lo: float, hi: float, spacings: list[tuple[float, float]]
) -> list[tuple[float, list[float]]]:
    """The ticks at each spacing (coarsest first) in ``lo..hi``, each finer level without the
    ticks a coarser one has. The levels are whole multiples of each other, so a minor tick is
    a major one when its index divides (no comparison of every tick with every other)."""
    lo, hi = sorted((lo, hi))
    out: list[tuple[float, list[float]]] = []
    coarser = 0.0
    for spacing, offset in spacings:
        first = math.ceil((lo - offset) / spacing)
        index = np.arange(first, math.floor((hi - offset) / spacing) + 1)
        values = index * spacing + offset
        if coarser:
            ratio = values / coarser
            values = values[np.abs(ratio - np.round(ratio)) > 1e-6]
        out.append((spacing, values.tolist()))
        coarser = spacing
    return out


def follow_range(now_rel: float, window: float) -> tuple[float, float]:
    """The x-range following live shows: the last ``window`` seconds up to ``now_rel`` (at
    least the first ``window``), with half a second of margin either side so no marker sits
    on the plot's edge."""
    right = max(now_rel, window) + 0.5
    return right - window - 1.0, right


def interval_passed(now: float, since: float, interval: float) -> bool:
    """Whether a live step is due at ``now`` after one at ``since`` (session time). A tenth
    short of the interval counts: a timer's ticks (or a paced window's frames) come a little
    early or late, and steps should follow them one for one."""
    return not 0.0 <= now - since < 0.9 * interval


# --- one frame --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeFrame:
    """What one render draws: the visible x-range and the drawn one (s since epoch), the
    time, the pixels."""

    x0: float
    x1: float
    cover0: float  # items are drawn for [cover0, cover1] (the visible range and a margin)
    cover1: float
    now: float  # seconds since epoch
    epoch: float
    width_px: int
    height_px: int
    frozen: bool  # paused: draw the store as it was at ``now``

    @property
    def px(self) -> float:
        """Seconds per pixel along x."""
        return (self.x1 - self.x0) / max(self.width_px, 1)

    @property
    def far(self) -> float:
        """Where bars that grow to "now" end when drawn (they are clipped at "now")."""
        return self.cover1 + (self.x1 - self.x0)


@dataclass(frozen=True, slots=True)
class DrawnRange:
    """What the last render drew from, and how far the view and the clock may move before
    it is stale. The lane set holds while ``x0_lo < x0 <= x0_hi`` and
    ``x1_lo <= x1 < x1_hi``; the items cover ``[cover0, cover1]``."""

    key: tuple[Any, ...]
    now: float  # session time (unix s) of the render
    span: float
    cover0: float
    cover1: float
    x0_lo: float
    x0_hi: float
    x1_lo: float
    x1_hi: float
    now_hi: float  # s since epoch: a drawn state changes by itself then (a tool stalls)
    image_lanes: tuple[int, int] | None  # lanes the density image has rows for

    def covers(self, x0: float, x1: float) -> bool:
        """Whether a view of ``x0..x1`` (of the drawn span) needs no new render: within the
        drawn items and with the same lanes."""
        return (
            self.cover0 <= x0
            and x1 <= self.cover1
            and self.x0_lo < x0 <= self.x0_hi
            and self.x1_lo <= x1 < self.x1_hi
        )


def render_cover(x0: float, x1: float, *, live: bool) -> tuple[float, float]:
    """The range a render draws items for: the view and ``RENDER_MARGIN`` of it either side
    (while following live the view only moves right: no margin on the left)."""
    margin = (x1 - x0) * RENDER_MARGIN
    return (x0 if live else x0 - margin), x1 + margin


# --- lanes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunColumns:
    """The per-run arrays a layout reads (index: the run's index in the store), each at
    least as long as the runs laid out."""

    start: FloatArray  # s since epoch
    end: FloatArray  # s since epoch; NaN while open
    user: LaneArray  # the user's order of first appearance
    first_row: IntArray  # the store row of its first event
    known: BoolArray  # False: left memory before the view saw it (no lane yet)
    check: BoolArray  # a run of the pre-deploy check's own users


@dataclass(frozen=True, slots=True)
class LaneLayout:
    """Which runs have a lane, and how far the view may move with these lanes."""

    #: run index of each lane, top first
    lane_runs: IntArray
    #: lane of each run (-1: none)
    lane_of_run: LaneArray
    #: ``x0_lo, x0_hi, x1_lo, x1_hi`` (see ``DrawnRange``) and the time at which the clock
    #: alone changes the lanes (an open run reaching a view that lies ahead of "now")
    bounds: tuple[float, float, float, float, float]
    #: check runs in the range that have no lane because check traffic is hidden
    hidden_check: int
    #: runs with events in the drawn range that the view has not seen yet (page them in)
    missing: IntArray


def unknown_runs_with_events(run_col: LaneArray, known: BoolArray, n: int) -> IntArray:
    """The runs (below ``n``) with events in ``run_col`` that the view does not know yet."""
    with_events = np.bincount(run_col, minlength=n)[:n] > 0
    return np.flatnonzero(with_events & ~known[:n])


def layout_lanes(
    runs: RunColumns,
    n: int,
    run_col: LaneArray,
    frame: TimeFrame,
    row_limit: int | None,
    *,
    hide_check: bool,
) -> LaneLayout:
    """Choose the runs (of the first ``n``) that get a lane, in user then start order: the
    runs active in the view, and any run with an event in ``run_col`` (a late event, e.g. a
    duplicate after ``agent_completed``, keeps its run in view). ``row_limit``: the view is
    frozen at that store row (paused). ``hide_check``: the check's runs get no lane."""
    x0, x1, now_rel = frame.x0, frame.x1, frame.now
    with_events = np.bincount(run_col, minlength=n)[:n] > 0
    missing = np.flatnonzero(with_events & ~runs.known[:n])
    start = runs.start[:n]
    end = runs.end[:n]
    open_ = np.isnan(end) | (end > now_rel)
    end_eff = np.where(open_, now_rel, end)
    candidate = np.ones(n, dtype=bool)
    if row_limit is not None:
        candidate &= runs.first_row[:n] < row_limit
    hidden = 0
    if hide_check:
        check = runs.check[:n]
        hidden = int(np.count_nonzero(check & candidate & (start <= x1) & (end_eff >= x0)))
        candidate &= ~check
    in_range = candidate & (start <= x1) & (end_eff >= x0)
    shown = in_range.copy()
    shown |= with_events & runs.known[:n] & ~np.isnan(start) & candidate
    before = candidate & ~in_range & (end_eff < x0)
    after = candidate & ~in_range & (start > x1)
    bounds = (
        float(end_eff[before].max()) if before.any() else -math.inf,
        float(end_eff[in_range].min()) if in_range.any() else math.inf,
        float(start[in_range].max()) if in_range.any() else -math.inf,
        float(start[after].min()) if after.any() else math.inf,
        x0 if (before & open_).any() else math.inf,
    )
    candidates = np.flatnonzero(shown)
    order = np.lexsort((start[candidates], runs.user[:n][candidates]))
    lane_runs = candidates[order]
    lane_of_run = np.full(n, -1, dtype=np.int32)
    lane_of_run[lane_runs] = np.arange(lane_runs.size, dtype=np.int32)
    return LaneLayout(lane_runs, lane_of_run, bounds, hidden, missing)


def lane_px_for(lanes: int, height: float, min_px: float, max_px: float) -> float:
    """The height of a lane when there are ``lanes`` in ``height`` pixels: they share it,
    between ``min_px`` (then they scroll) and ``max_px`` (then they sit at the top)."""
    return min(max_px, max(min_px, max(height, 1.0) / max(lanes, 1)))


@dataclass(frozen=True, slots=True)
class LaneGeometry:
    """Where the lanes are: their height, the pixel row at the top edge, how far they
    scroll, and the y-range (in lanes) the plot shows."""

    lane_px: float
    scroll_px: float
    max_scroll: float
    y0: float
    y1: float


def lane_geometry(
    lanes: int, height: float, scroll_px: float, min_px: float, max_px: float
) -> LaneGeometry:
    """The geometry of ``lanes`` in a plot ``height`` pixels high, scrolled to
    ``scroll_px`` (kept within what there is to scroll)."""
    height = max(height, 1.0)
    lane_px = lane_px_for(lanes, height, min_px, max_px)
    max_scroll = max(0.0, lanes * lane_px - height)
    scroll = min(max(scroll_px, 0.0), max_scroll)
    y0 = scroll / lane_px - 0.5
    return LaneGeometry(lane_px, scroll, max_scroll, y0, y0 + height / lane_px)


def lanes_in_view(top: float, bottom: float, lanes: int) -> tuple[int, int]:
    """The lanes at least partly between y ``top`` and ``bottom``: ``first`` up to, not
    including, ``last``."""
    first = min(max(0, math.floor(top + 0.5)), lanes)
    last = min(max(first, math.floor(bottom + 0.5) + 1), lanes)
    return first, last


def scroll_anchor(
    old_runs: IntArray,
    old_px: float,
    old_scroll: float,
    *,
    height: float,
    lane_of_run: LaneArray,
    new_px: float,
    selected: int | None,
) -> float | None:
    """The lanes changed: the scroll position (px) that keeps the run that was at the top of
    the view on the same pixel row — or the selected run, when it was in view — as a list
    keeps its place; None when no run of the old view has a lane now."""
    height = max(height, 1.0)
    anchor: tuple[int, float] | None = None  # run, its pixel row minus the scroll
    if selected is not None and old_runs.size:
        hits = np.flatnonzero(old_runs == selected)
        if hits.size:
            row = float(hits[0]) * old_px
            if old_scroll - old_px < row < old_scroll + height and lane_of_run[selected] >= 0:
                anchor = (selected, row - old_scroll)
    if anchor is None and old_runs.size:
        first = min(int(old_scroll // old_px), old_runs.size - 1)
        kept = np.flatnonzero(lane_of_run[old_runs[first:]] >= 0)
        if kept.size:
            lane = first + int(kept[0])
            anchor = (int(old_runs[lane]), lane * old_px - old_scroll)
    if anchor is None:
        return None
    run, offset = anchor
    return float(lane_of_run[run]) * new_px - offset


def reveal_scroll(lane: int, lane_px: float, scroll_px: float, height: float) -> float:
    """The scroll position that shows ``lane`` wholly: unchanged if it is, else centred."""
    height = max(height, 1.0)
    row = lane * lane_px
    if row < scroll_px or row + lane_px > scroll_px + height:
        return row - (height - lane_px) / 2
    return scroll_px


def label_width(widest_px: int, view_width: int, bounds: tuple[int, int], share: float) -> int:
    """The lane labels' width (px): the widest label's and some padding, within ``bounds``
    and never wider than ``share`` of the view."""
    least, most = bounds
    most = max(least, min(most, int(view_width * share)))
    return min(max(widest_px + 16, least), most)


# --- what a frame draws -----------------------------------------------------------------


def alternate_users(users: LaneArray) -> BoolArray:
    """For lanes in order, whether each belongs to an odd-numbered run of same-user lanes
    (every other user's lanes sit on a lighter band)."""
    if not users.size:
        return np.zeros(0, dtype=bool)
    group = np.concatenate(([0], np.cumsum(users[1:] != users[:-1])))
    odd: BoolArray = group % 2 == 1
    return odd


def run_bar_extents(
    start: FloatArray, end: FloatArray, frame: TimeFrame
) -> tuple[FloatArray, FloatArray]:
    """Where the run bars of lanes start and end as drawn: clipped a second outside the drawn
    range; open runs reach ``frame.far`` (a painter clips them at "now")."""
    open_ = np.isnan(end) | (end > frame.now)
    starts = np.maximum(start, frame.cover0 - 1.0)
    ends = np.where(open_, frame.far, np.minimum(end, frame.cover1 + 1.0))
    return starts, ends


def grid_ticks(major: float, minor: float, frame: TimeFrame) -> tuple[FloatArray, FloatArray]:
    """Grid lines at the axis's major and minor tick spacings over all the drawn range (and
    a span to its left): ``(major ticks, minor ticks)``."""
    first = math.ceil((frame.cover0 - (frame.x1 - frame.x0)) / minor)
    ticks = np.arange(first, math.floor(frame.far / minor) + 1) * minor
    on_major = np.abs(ticks / major - np.round(ticks / major)) < 1e-6
    return ticks[on_major], ticks[~on_major]


@dataclass(frozen=True, slots=True)
class ToolBars:
    """The tool calls of the lanes, as drawn: each state's bars, and what hover reads."""

    #: per state (``TOOL_STATES``): bar starts, ends and lanes
    bars: dict[str, tuple[FloatArray, FloatArray, FloatArray]]
    #: the visible spans: start, end (NaN: still running, grows to "now"), lane, store
    #: index and state code (-1: thinned out)
    x0: FloatArray
    x1: FloatArray
    lane: FloatArray
    index: IntArray
    state: npt.NDArray[np.int8]
    #: when (s since epoch) the next running call turns stalled
    next_stall: float


def no_tool_bars() -> ToolBars:
    """No tool calls drawn (before the first render)."""
    empty: FloatArray = np.zeros(0)
    return ToolBars(
        {},
        empty,
        empty,
        empty,
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int8),
        math.inf,
    )


def tool_bars(
    spans: Mapping[str, npt.NDArray[np.generic]],
    lane_of_run: LaneArray,
    run_end: FloatArray,
    frame: TimeFrame,
    *,
    stall_after: float,
    max_bars: int = MAX_TOOL_BARS,
) -> ToolBars:
    """The tool calls (``store.spans()``) of runs with a lane, grouped by state: ok, error,
    unfinished (still open when its run ended: it ends with the run), open, and stalled
    (open longer than ``stall_after``). A call of a few ms is still a 2 px tick; beyond
    ``max_bars`` ok bars, the ones narrower than three pixels are dropped, then a stride."""
    cover0, cover1, now_rel, px = frame.cover0, frame.cover1, frame.now, frame.px
    run = np.asarray(spans["run"], dtype=np.int32)
    start: FloatArray = np.asarray(spans["start"], dtype=np.float64) - frame.epoch
    end: FloatArray = np.asarray(spans["end"], dtype=np.float64) - frame.epoch
    status = np.asarray(spans["status"])
    lane: LaneArray = lane_of_run[run]
    # paused: spans opened later do not exist yet (and those closed later are still open)
    is_open = np.isnan(end) | (end > now_rel)
    ended_with = run_end[run]
    unfinished = is_open & (ended_with <= now_rel)  # NaN (run open) compares False
    end_eff = np.where(unfinished, ended_with, np.where(is_open, frame.far, end))
    visible = (lane >= 0) & (start <= cover1) & (end_eff >= cover0)
    if frame.frozen:
        visible &= start <= now_rel
    index = np.flatnonzero(visible)
    start, end_eff, status, lane, is_open, unfinished = (
        start[index],
        end_eff[index],
        status[index],
        lane[index],
        is_open[index],
        unfinished[index],
    )
    end_eff = np.maximum(end_eff, start + 2 * px)
    running = is_open & ~unfinished
    stalled = running & (now_rel - start > stall_after)
    groups = {
        "ok": ~is_open & (status == TOOL_OK),
        "error": ~is_open & (status == TOOL_ERROR),
        "unfinished": unfinished,
        "open": running & ~stalled,
        "stalled": stalled,
    }
    ok = groups["ok"]
    if int(np.count_nonzero(ok)) > max_bars:
        # hidden under the density image anyway; keep the ones wider than a pixel
        ok &= (end_eff - start) > 3 * px
        idx = np.flatnonzero(ok)
        if idx.size > max_bars:
            ok[:] = False
            ok[idx[:: math.ceil(idx.size / max_bars)]] = True
        groups["ok"] = ok
    y = lane.astype(np.float64)
    lo, hi = cover0 - 1.0, cover1 + 1.0
    state = np.full(index.size, -1, dtype=np.int8)
    bars: dict[str, tuple[FloatArray, FloatArray, FloatArray]] = {}
    for code, (name, mask) in enumerate(groups.items()):
        ends = end_eff[mask] if name in LIVE_TOOL_STATES else np.minimum(end_eff[mask], hi)
        bars[name] = (np.maximum(start[mask], lo), ends, y[mask])
        state[mask] = code
    waiting = start[running & ~stalled]
    next_stall = float(waiting.min()) + stall_after if waiting.size else math.inf
    return ToolBars(bars, start, np.where(running, np.nan, end_eff), y, index, state, next_stall)


def cell_counts(key: npt.NDArray[np.int32], cells: int) -> tuple[IntArray, IntArray, IntArray]:
    """Events per density cell, from one ``cell * NTYPES + type`` key per event: the occupied
    cells, how many events each holds, and its dominant type (the most frequent, the lowest
    code on a tie; an error is never outvoted)."""
    if key.size * 8 >= cells * NTYPES:
        # many events for the cells: count every (cell, type) pair
        per_type = np.bincount(key, minlength=cells * NTYPES).reshape(cells, NTYPES)
        totals = per_type.sum(axis=1)
        occupied = np.flatnonzero(totals)
        per_type = per_type[occupied]
        dominant = per_type.argmax(axis=1)
        dominant[per_type[:, ERROR_CODE] > 0] = ERROR_CODE
        return occupied, totals[occupied], dominant
    if key.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    # few events (most lanes scrolled out of view): count only the pairs that occur
    pairs, count = np.unique(key, return_counts=True)
    cell, etype = pairs // NTYPES, pairs % NTYPES
    occupied, first = np.unique(cell, return_index=True)
    totals = np.add.reduceat(count, first)
    # within each cell (pairs are sorted by cell), the last after ordering by count, then by
    # descending type, is the most frequent type with the lowest code
    order = np.lexsort((-etype, count, cell))
    last = np.append(first[1:], cell.size) - 1
    dominant = etype[order][last]
    errors = np.searchsorted(occupied, cell[etype == ERROR_CODE])
    dominant[errors] = ERROR_CODE
    return occupied.astype(np.int64), totals.astype(np.int64), dominant.astype(np.int64)


@dataclass(frozen=True, slots=True)
class DensityCells:
    """The density image of lanes ``first..last``: ``rows`` × ``buckets`` cells, each
    occupied one with its dominant event type and opacity, and the finding rings."""

    first: int
    last: int
    rows: int
    buckets: int
    occupied: IntArray
    dominant: IntArray
    alpha: npt.NDArray[np.uint8]
    #: one ring per flagged cell, at the cell's centre (x, lane)
    ring_x: FloatArray
    ring_y: FloatArray


def density_cells(
    x: FloatArray,
    lane: LaneArray,
    frame: TimeFrame,
    *,
    types: npt.NDArray[np.uint8],
    flags: npt.NDArray[np.uint8],
    first: int,
    last: int,
    max_rings: int = MAX_FINDING_RINGS // 4,
) -> DensityCells:
    """Per lane of ``first..last`` and ``BUCKET_PX``-pixel bucket of the visible range: the
    dominant type, and an opacity growing with the log of the count (70..255)."""
    x0, x1 = frame.x0, frame.x1
    width_px = max(frame.width_px, 200)
    buckets = max(1, min(MAX_BUCKETS, width_px // BUCKET_PX))
    rows = max(1, (last - first) * ROWS_PER_LANE)
    in_rows = (lane >= first) & (lane < last)
    # three image rows per lane: the event band is the middle one
    row_of = (lane[in_rows] - first) * ROWS_PER_LANE + 1
    # int32 throughout (cells * types stays far below 2**31): a million events make
    # several temporaries here, and halving their size is most of this function's time
    scaled = x[in_rows] - x0
    scaled *= buckets / (x1 - x0)
    bucket = scaled.astype(np.int32)
    np.clip(bucket, 0, buckets - 1, out=bucket)
    cell = row_of.astype(np.int32) * np.int32(buckets)
    cell += bucket
    cells = rows * buckets
    key = cell * np.int32(NTYPES)
    key += types[in_rows]
    occupied, totals, dominant = cell_counts(key, cells)
    peak = max(int(totals.max()), 1) if totals.size else 1
    alpha = (70 + 185 * np.log1p(totals) / math.log1p(peak)).astype(np.uint8)
    flagged = np.flatnonzero(flags[in_rows] == 1)
    ring_x: FloatArray = np.zeros(0)
    ring_y: FloatArray = np.zeros(0)
    if flagged.size:
        flagged_cells = np.unique(cell[flagged])
        if flagged_cells.size > max_rings:
            flagged_cells = flagged_cells[:: math.ceil(flagged_cells.size / max_rings)]
        ring_x = x0 + (flagged_cells % buckets + 0.5) * (x1 - x0) / buckets
        ring_y = first + (flagged_cells // buckets - 1) / ROWS_PER_LANE
    return DensityCells(first, last, rows, buckets, occupied, dominant, alpha, ring_x, ring_y)


def thin(x: FloatArray, y: FloatArray, limit: int) -> tuple[FloatArray, FloatArray]:
    """At most about ``limit`` of the points, with a stride."""
    if x.size > limit:
        stride = math.ceil(x.size / limit)
        return x[::stride], y[::stride]
    return x, y


# --- hover ------------------------------------------------------------------------------


def nearest_event(
    vis_x: FloatArray, vis_lane: LaneArray, x: float, lane: int, max_dx: float
) -> int | None:
    """The drawn event on ``lane`` nearest to ``x``, if within ``max_dx``."""
    on_lane = np.flatnonzero(vis_lane == lane)
    if not on_lane.size:
        return None
    dist = np.abs(vis_x[on_lane] - x)
    best = int(dist.argmin())
    return int(on_lane[best]) if dist[best] <= max_dx else None


def span_at(bars: ToolBars, x: float, lane: int, now_rel: float) -> int | None:
    """The last drawn tool call on ``lane`` under ``x`` (a running one reaches ``now_rel``;
    thinned-out ones are not under anything): its position in ``bars``' visible spans."""
    ends = np.where(np.isnan(bars.x1), now_rel, bars.x1)
    hits = np.flatnonzero((bars.lane == lane) & (bars.x0 <= x) & (ends >= x) & (bars.state >= 0))
    return int(hits[-1]) if hits.size else None


def event_detail(raw: bytes | None) -> str:
    """The tool name / status / error of a raw frame, when it is still held."""
    if raw is None:
        return ""
    try:
        data = decode_object(raw).get("data", {})
    except ProtocolError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = []
    if "tool_name" in data:
        parts.append(f"tool {data['tool_name']}")
    if "status" in data:
        parts.append(f"status {data['status']}")
    if "error_type" in data:
        parts.append(f"{data['error_type']}: {str(data.get('message', ''))[:80]}")
    return " · ".join(parts)


def band_placement(
    t0: float, t1: float | None, *, now: float | None, epoch: float, view_x0: float, top: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where a time band over receive time ``t0..t1`` (None: up to ``now``) lies in x, and
    where its label goes: at the band's start, or at the view's left edge while any of the
    band is in view, so the label stays in sight."""
    end = t1 if t1 is not None else max(now or t0, t0)
    placed = (t0 - epoch, end - epoch)
    return placed, (max(placed[0], min(view_x0, placed[1])), top)
