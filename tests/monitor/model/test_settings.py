"""The Qt-free checks on settings read back (``monitor.model.settings``): whatever a settings
file holds, a value is either the expected type or None, and never raises."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.model.settings import (
    LAYOUT_VERSION,
    LAYOUT_VERSION_KEY,
    MAX_RECENT,
    ViewLayout,
    as_bool,
    as_float,
    as_int,
    as_int_list,
    as_str_list,
    read_view_layout,
    recent_after_use,
    splitter_key,
    splitter_sizes,
    tab_index,
    tab_key,
    visible_on_screens,
)

#: anything a settings file (or a hand edit of one) could hand back
stored_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


def test_numbers_from_ini_text_are_read_and_junk_is_not() -> None:
    assert as_int(3) == 3 and as_int(" 7 ") == 7
    assert as_int("3.5") is None and as_int(True) is None and as_int(None) is None
    assert as_float("2048") == 2048.0 and as_float(1.5) == 1.5
    assert as_float("nan") is None and as_float("inf") is None and as_float([1]) is None


def test_switches_from_ini_text_are_read_and_junk_is_not() -> None:
    assert as_bool(True) is True and as_bool("true") is True and as_bool(" False ") is False
    assert as_bool("yes") is None and as_bool(1) is None and as_bool(None) is None


def test_lists_read_back_from_ini_files() -> None:
    assert as_str_list("ws://one:1") == ["ws://one:1"]  # a one-element list comes back bare
    assert as_str_list(["a", "", 3, "b"]) == ["a", "b"]
    assert as_str_list(None) == []
    assert as_int_list(["1", 2]) == [1, 2]
    assert as_int_list("5") == [5]
    assert as_int_list([1, "x"]) is None and as_int_list({"a": 1}) is None


@given(stored_values)
def test_reading_any_stored_value_never_raises(value: object) -> None:
    as_int(value)
    as_bool(value)
    as_float(value)
    as_str_list(value)
    as_int_list(value)
    splitter_sizes(value, 2)
    tab_index(value, 2)


def test_recent_targets_put_the_last_used_first_without_repeats() -> None:
    assert recent_after_use(["b", "a", "c"], "a") == ["a", "b", "c"]
    many = [f"ws://h{i}" for i in range(20)]
    assert recent_after_use(many, "ws://new") == ["ws://new", *many[: MAX_RECENT - 1]]


def test_splitter_sizes_must_fit_the_splitter() -> None:
    assert splitter_sizes([300, 500], 2) == (300, 500)
    assert splitter_sizes(["300", "500"], 2) == (300, 500)  # INI text
    assert splitter_sizes([300, 500, 100], 2) is None  # saved with another pane count
    assert splitter_sizes([-1, 500], 2) is None
    assert splitter_sizes([0, 0], 2) is None  # nothing would be visible
    assert splitter_sizes("wide", 2) is None


def test_tab_index_must_name_an_existing_tab() -> None:
    assert tab_index("1", 2) == 1
    assert tab_index(2, 2) is None and tab_index(-1, 2) is None and tab_index("x", 2) is None


def test_view_layout_round_trips_through_its_values() -> None:
    layout = ViewLayout({"main": (600, 200), "top": (300, 900)}, {"bottom": 1})
    values = {LAYOUT_VERSION_KEY: LAYOUT_VERSION, **layout.values()}
    assert values[splitter_key("main")] == [600, 200]
    assert values[tab_key("bottom")] == 1
    read = read_view_layout(values.get, {"main": 2, "top": 2}, {"bottom": 2})
    assert read == layout


def test_view_layout_keeps_only_what_fits_today() -> None:
    values: dict[str, object] = {
        LAYOUT_VERSION_KEY: str(LAYOUT_VERSION),  # INI text
        splitter_key("main"): [600, 200],
        splitter_key("top"): [1, 2, 3],  # a version with three panes
        tab_key("bottom"): 5,  # a tab that no longer exists
        tab_key("plot"): "1",
    }
    read = read_view_layout(values.get, {"main": 2, "top": 2}, {"bottom": 2, "plot": 2})
    assert read == ViewLayout({"main": (600, 200)}, {"plot": 1})


def test_a_layout_of_another_version_is_dropped_whole() -> None:
    values: dict[str, object] = {
        LAYOUT_VERSION_KEY: LAYOUT_VERSION + 1,
        splitter_key("main"): [600, 200],
    }
    assert read_view_layout(values.get, {"main": 2}, {}) == ViewLayout()
    del values[LAYOUT_VERSION_KEY]  # saved before layouts had versions
    assert read_view_layout(values.get, {"main": 2}, {}) == ViewLayout()


def test_a_window_must_show_its_title_bar_on_a_screen() -> None:
    laptop = (0, 0, 1920, 1080)
    external = (1920, 0, 2560, 1440)
    assert visible_on_screens((100, 100, 1400, 900), [laptop])
    assert visible_on_screens((2500, 200, 1400, 900), [laptop, external])
    assert not visible_on_screens((2500, 200, 1400, 900), [laptop])  # the monitor is gone
    assert not visible_on_screens((100, -900, 1400, 900), [laptop])  # title bar above the top
    assert not visible_on_screens((1900, 100, 1400, 900), [laptop])  # 20 px left to grab
    assert visible_on_screens((1700, 100, 1400, 900), [laptop])  # 220 px: enough
    assert not visible_on_screens((100, 100, 1400, 900), [])
