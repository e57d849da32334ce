"""``FramePacer``: when the window draws a frame — as often as what it shows needs, and not at
all while nothing changes.

The window draws from one timer. Drawing every view at 30 Hz costs a good part of a core
even when the stream is quiet, and the monitor is left open all day: so each tick asks the
pacer whether a frame is due, and how long to sleep until the next tick.

- **Busy** (the stream is fast, ``rate`` ≥ ``busy_rate`` events/s): a frame every
  ``busy_interval`` (~30 Hz), so a flood of events still moves smoothly.
- **Live** (events arrive, slowly): a frame every ``live_interval`` (3 Hz) — a marker shows
  up within a quarter of a second, the live view scrolls in small steps, and an app left
  open on a quiet staging runtime costs a few percent of a core, not a quarter of one.
- **Moving** (nothing new, but the view scrolls with time: runs still open, or recent events
  in the live window): a frame every ``moving_interval``.
- **Still** (nothing new and nothing in view moves): a frame every ``still_interval``, for
  the clock on the axis and the status line; the timer sleeps that long too.

A change the user makes (a click, a filter, a resize) asks for a frame at once
(``request``), whatever the pace. Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FramePacer:
    busy_interval: float = 1 / 30
    live_interval: float = 1 / 3
    moving_interval: float = 0.5
    still_interval: float = 1.0
    #: events/s from which the stream counts as busy
    busy_rate: float = 500.0
    #: after a change the timer ticks at the live (or busy) pace for this long (s), then
    #: slows to the pace of what is left: moving or still
    settle: float = 0.5

    def __post_init__(self) -> None:
        self._last_frame = -float("inf")
        self._last_change = -float("inf")
        self._requested = False

    def request(self) -> None:
        """Draw at the next tick (the user did something that shows)."""
        self._requested = True

    def frame_interval(self, changed: bool, moving: bool, rate: float) -> float:
        """How long frames are apart in the current state."""
        if rate >= self.busy_rate:
            # a busy stream arrives in batches, not every tick; its view moves all the same
            return self.busy_interval
        if changed:
            return self.live_interval
        return self.moving_interval if moving else self.still_interval

    def frame_due(self, now: float, *, changed: bool, moving: bool, rate: float) -> bool:
        """Whether to draw a frame now; ``changed``: the store has something not drawn yet;
        ``moving``: the view scrolls with time; ``rate``: events/s arriving lately."""
        if changed:
            self._last_change = now
        interval = self.frame_interval(changed, moving, rate)
        # due once its interval has passed, give or take half a fast tick: a timer tick
        # that comes a little early must not skip a whole frame
        due = self._requested or now - self._last_frame >= interval - self.busy_interval / 2
        if due:
            self._last_frame = now
            self._requested = False
        return due

    def tick_interval(self, now: float, *, moving: bool, rate: float = 0.0) -> float:
        """How long the timer should sleep before the next tick: no longer than until the
        next frame can be due."""
        if self._requested:
            return self.busy_interval
        if rate >= self.busy_rate:
            return self.busy_interval
        if now - self._last_change < self.settle:
            return self.live_interval
        return self.moving_interval if moving else self.still_interval
