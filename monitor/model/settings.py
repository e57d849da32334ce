"""What the desktop app remembers between runs: the keys, the window-layout schema, and the
checks a stored value passes before it is used.

Qt-free on purpose: a settings file is user-editable and outlives versions of the app, so
every value read back is treated as untrusted input. ``QSettings`` hands values back as
whatever the storage format produced (an INI file returns ``"3"`` for 3, a one-element list as
a plain string, anything at all after a hand edit); the functions here turn such a value into
the expected type or ``None`` ("ignore it, use the default"), and never raise.
``monitor._qt.settings`` does the reading and writing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

#: recent ``File › Connect…`` targets (URLs only: tokens are never stored)
RECENT_URLS_KEY = "connect/recent_urls"
#: how many recent targets are kept
MAX_RECENT = 8
#: the recordings' retention limits (``RetentionPolicy``)
RETENTION_MAX_MB_KEY = "recordings/max_total_mb"
RETENTION_MAX_DAYS_KEY = "recordings/max_age_days"
#: the theme's name (``monitor._qt.theme.THEMES``)
THEME_KEY = "view/theme"
#: whether the sessions, the timeline and the findings list show the pre-deploy check's own
#: traffic (``monitor.model.check_traffic``); hidden unless the user chose to see it
SHOW_CHECK_TRAFFIC_KEY = "view/show_check_traffic"

#: Bump when the window's docks, toolbars, splitters or tabs change in a way that makes an
#: older saved layout wrong; every ``window/`` value of another version is then ignored.
LAYOUT_VERSION = 1
LAYOUT_VERSION_KEY = "window/layout_version"
#: ``QWidget.saveGeometry()``: position, size, maximised, screen
GEOMETRY_KEY = "window/geometry"
#: ``QMainWindow.saveState(LAYOUT_VERSION)``: docks and toolbars
STATE_KEY = "window/state"
#: the part of a window that must be on a screen for a restored position to be kept: enough
#: of its top edge (where the title bar is) to grab it and drag it back
MIN_VISIBLE_WIDTH = 120
MIN_VISIBLE_HEIGHT = 40

#: a rectangle as (x, y, width, height) in screen coordinates
Rect = tuple[int, int, int, int]


def splitter_key(name: str) -> str:
    """Where the sizes of the splitter called ``name`` are kept."""
    return f"window/splitters/{name}"


def tab_key(name: str) -> str:
    """Where the selected tab of the tab widget called ``name`` is kept."""
    return f"window/tabs/{name}"


# --- values read back -----------------------------------------------------------------------


def as_int(value: object) -> int | None:
    """``value`` as an int (INI files store numbers as text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_bool(value: object) -> bool | None:
    """``value`` as a bool (an INI file stores ``true``/``false`` as text), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


def as_float(value: object) -> float | None:
    """``value`` as a finite float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_str_list(value: object) -> list[str]:
    """``value`` as a list of non-empty strings (an INI file returns a one-element list as a
    plain string); anything else is an empty list."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [item for item in value if isinstance(item, str) and item]


def as_int_list(value: object) -> list[int] | None:
    """``value`` as a list of ints (every item must be one), else None."""
    if isinstance(value, (str, int)):
        value = [value]  # a one-element list read back from an INI file
    if not isinstance(value, (list, tuple)):
        return None
    numbers = [as_int(item) for item in value]
    if any(n is None for n in numbers):
        return None
    return [n for n in numbers if n is not None]


# --- recent targets -------------------------------------------------------------------------


def recent_after_use(recent: Iterable[str], url: str) -> list[str]:
    """The recent-targets list once ``url`` has been used: it first, no repeats, capped."""
    return [url, *(u for u in recent if u != url)][:MAX_RECENT]


# --- window layout --------------------------------------------------------------------------


def splitter_sizes(value: object, count: int) -> tuple[int, ...] | None:
    """Stored sizes for a splitter with ``count`` panes, or None when they don't fit it: a
    layout saved by a version with other panes, negative sizes, or nothing visible."""
    sizes = as_int_list(value)
    if sizes is None or len(sizes) != count or any(s < 0 for s in sizes) or sum(sizes) <= 0:
        return None
    return tuple(sizes)


def tab_index(value: object, count: int) -> int | None:
    """A stored tab index if a tab widget with ``count`` tabs has that tab, else None."""
    index = as_int(value)
    return index if index is not None and 0 <= index < count else None


@dataclass(frozen=True, slots=True)
class ViewLayout:
    """The views' part of the window layout: splitter sizes and selected tabs, by name.

    Only what passed the checks is in it; a name that is missing means "keep the default".
    """

    splitters: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    tabs: Mapping[str, int] = field(default_factory=dict)

    def values(self) -> dict[str, object]:
        """The settings to write, by key."""
        values: dict[str, object] = {
            splitter_key(name): list(sizes) for name, sizes in self.splitters.items()
        }
        values.update({tab_key(name): index for name, index in self.tabs.items()})
        return values


def read_view_layout(
    value_of: Callable[[str], object],
    splitter_counts: Mapping[str, int],
    tab_counts: Mapping[str, int],
) -> ViewLayout:
    """The stored view layout for splitters and tab widgets with these pane and tab counts
    (``value_of(key)`` reads one setting, None when absent). Values saved under another
    ``LAYOUT_VERSION`` are all ignored, and so is each value that does not fit its widget."""
    if not layout_is_current(value_of):
        return ViewLayout()
    splitters = {
        name: sizes
        for name, count in splitter_counts.items()
        if (sizes := splitter_sizes(value_of(splitter_key(name)), count)) is not None
    }
    tabs = {
        name: index
        for name, count in tab_counts.items()
        if (index := tab_index(value_of(tab_key(name)), count)) is not None
    }
    return ViewLayout(splitters, tabs)


def layout_is_current(value_of: Callable[[str], object]) -> bool:
    """Whether the stored window layout was saved under this ``LAYOUT_VERSION``."""
    return as_int(value_of(LAYOUT_VERSION_KEY)) == LAYOUT_VERSION


def visible_on_screens(window: Rect, screens: Iterable[Rect]) -> bool:
    """Whether enough of ``window``'s top edge lies on one of ``screens`` (their available
    areas) for the user to see it and drag it: a position saved on a monitor that has since
    been unplugged, or with another screen arrangement, is not."""
    x, y, width, height = window
    band = (x, y, width, min(height, MIN_VISIBLE_HEIGHT))
    need_w = min(width, MIN_VISIBLE_WIDTH)
    need_h = min(height, MIN_VISIBLE_HEIGHT)
    for screen in screens:
        overlap_w, overlap_h = _overlap(band, screen)
        if overlap_w >= need_w and overlap_h >= need_h:
            return True
    return False


def _overlap(a: Rect, b: Rect) -> tuple[int, int]:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return max(0, right - left), max(0, bottom - top)
