"""The Presentation view: cards over a scripted session (stage, finish state, the chat's runs
first), its keys, and the whole demo flow in the main window against a real embedded runtime
— open the chat, ask the data analyst, switch to Presentation, leave it with Esc."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from monitor._qt import theme
from monitor._qt.event_style import STATUS_COLORS
from monitor._qt.main_window import MainWindow
from monitor._qt.presentation import (
    PresentationView,
    format_elapsed,
    grid_shape,
    tools_summary,
)
from monitor.model.presentation import RunKey
from monitor.model.session import ObservationSession
from monitor.services.workspace import Workspace
from runtime.protocol import EventType
from tests.conftest import seconds, test_config

from .scripted import Script, feed, frames

RUN_TIMEOUT_MS = int(seconds(20) * 1000)


def scripted_session() -> tuple[ObservationSession, float]:
    """alice's run finished, bob's failed, carol's still in a tool call."""
    session = ObservationSession()
    script = Script()
    raws = frames(script.run("alice", "run_alice", steps=3, tools=2))
    raws += frames(script.run("bob", "run_bob", status="failed"))
    raws += frames(script.run("carol", "run_carol", status=None, tool_completes=False))
    end = feed(session, raws)
    return session, end


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[PresentationView]:
    featured: set[RunKey] = set()
    view = PresentationView(featured=lambda: featured)
    view.featured_keys = featured  # type: ignore[attr-defined]  # tests add to it
    qtbot.addWidget(view)
    view.resize(1600, 900)
    yield view


def show(view: PresentationView, session: ObservationSession, now: float) -> None:
    view.set_session(session)
    view.show()
    view.refresh(now)


def test_one_card_per_run_with_its_stage_and_finish_state(
    qtbot: QtBot, view: PresentationView, tmp_path: Path
) -> None:
    session, end = scripted_session()
    show(view, session, end + 1)
    cards = {card.user: card for card in view.shown.cards}
    assert set(cards) == {"alice", "bob", "carol"}
    assert cards["alice"].status == "completed" and cards["alice"].stage_counts == (1, 3, 2, 2, 1)
    assert cards["bob"].status == "failed"
    carol = cards["carol"]
    assert carol.status == "running" and carol.stage is EventType.TOOL_EXECUTING
    assert carol.tools_in_flight == ("calculator",) and carol.reasoning == "thinking step 2"
    assert view.shown.active == 1
    image = view.grab().toImage()
    assert image.save(str(tmp_path / "presentation.png"))
    # the finished cards wear their outcome's colour (border, mark); the running one does not
    colours = _colours(image)
    assert STATUS_COLORS["completed"] in colours and STATUS_COLORS["failed"] in colours


def _colours(image: QImage) -> set[str]:
    """The colours painted, sampled every third pixel."""
    return {
        QColor(image.pixel(x, y)).name()
        for y in range(0, image.height(), 3)
        for x in range(0, image.width(), 3)
    }


def test_the_chats_runs_are_marked_and_come_first(qtbot: QtBot, view: PresentationView) -> None:
    session, end = scripted_session()
    view.featured_keys.add(("bob", "run_bob"))  # type: ignore[attr-defined]
    show(view, session, end + 1)
    first = view.shown.cards[0]
    assert first.user == "bob" and first.featured
    assert not any(card.featured for card in view.shown.cards[1:])


def test_a_finished_run_leaves_the_board_after_it_has_been_read(
    qtbot: QtBot, view: PresentationView
) -> None:
    session, end = scripted_session()
    show(view, session, end + 1)
    view.refresh(end + 60)  # carol's run is silent for a minute: dropped as stale too
    assert view.shown.cards == ()
    image = view.grab().toImage()
    assert QColor(image.pixel(5, 5)).name() == theme.BASE  # the empty board, not a blank


def test_a_toggles_the_chats_runs_only_and_esc_f11_ctrl_shift_p_leave(
    qtbot: QtBot, view: PresentationView
) -> None:
    session, end = scripted_session()
    view.featured_keys.add(("alice", "run_alice"))  # type: ignore[attr-defined]
    show(view, session, end + 1)
    qtbot.keyClick(view, Qt.Key.Key_A)
    view.refresh(end + 1.5)
    assert view.featured_only and [c.user for c in view.shown.cards] == ["alice"]
    qtbot.keyClick(view, Qt.Key.Key_A)
    view.refresh(end + 2)
    assert len(view.shown.cards) == 3
    for key, modifiers in (
        (Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier),
        (Qt.Key.Key_F11, Qt.KeyboardModifier.NoModifier),
        (Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier),
    ):
        view.show()
        with qtbot.waitSignal(view.closed):
            qtbot.keyClick(view, key, modifiers)
        assert not view.isVisible()


def test_layout_and_text_helpers() -> None:
    assert grid_shape(1, 1600, 900) == (1, 1)
    assert grid_shape(2, 1600, 900) == (2, 1)
    assert grid_shape(4, 1600, 900) == (2, 2)
    assert grid_shape(6, 1600, 900) == (3, 2)
    assert grid_shape(3, 600, 1400) == (1, 3)  # a portrait screen stacks them
    assert format_elapsed(4.25) == "4.2 s" and format_elapsed(65) == "1:05"
    names: Collection[str] = ("column_stats", "group_totals", "column_stats")
    assert tools_summary(names) == "column_stats ×2, group_totals"


# --- the demo flow in the main window -----------------------------------------------------


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[MainWindow]:
    workspace = Workspace.embedded(demo=False, config=test_config(pace=0.05))
    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()


def test_chat_is_a_hidden_dock_and_presentation_a_view_action_with_its_shortcuts(
    qtbot: QtBot, window: MainWindow
) -> None:
    assert not window.chat_dock.isVisible()
    assert window.chat_dock.objectName() == "chatDock"  # its place is saved with the layout
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    names = [a.text() for a in view_menu.actions()]  # type: ignore[union-attr]
    assert names.index("Chat") < names.index("Presentation")
    keys = [s.toString() for s in window.presentation_action.shortcuts()]
    assert keys == ["F11", "Ctrl+Shift+P"]
    taken = {
        s.toString()
        for action in window.findChildren(type(window.presentation_action))
        if action not in (window.presentation_action, window.chat_action)
        for s in action.shortcuts()
    }
    assert not taken & {*keys, window.chat_action.shortcut().toString()}
    assert window.toolbar.widgetForAction(window.chat_action) is not None
    assert window.toolbar.widgetForAction(window.presentation_action) is not None


def test_ask_the_data_analyst_then_present_the_run(qtbot: QtBot, window: MainWindow) -> None:
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_C, ctrl_shift)  # the Chat shortcut opens the dock
    qtbot.waitUntil(window.chat_dock.isVisible)
    assert window.chat_action.isChecked()
    chat = window.chat
    qtbot.waitUntil(lambda: "connected" in chat.status_label.text(), timeout=RUN_TIMEOUT_MS)
    chat.agent_box.setCurrentIndex(chat.agent_box.findData("data_analyst"))
    message = chat.send("revenue by region", options={"faults": {"tool_latency_ms": 300}})
    assert message is not None

    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.presentation_action.isChecked()
    presentation = window.presentation
    qtbot.waitUntil(presentation.isVisible)
    assert presentation.isFullScreen()

    def my_card_is_first() -> bool:
        cards = presentation.shown.cards
        return bool(cards) and cards[0].featured and cards[0].agent == "data_analyst"

    qtbot.waitUntil(my_card_is_first, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: bool(presentation.shown.cards[0].tools_in_flight), timeout=RUN_TIMEOUT_MS
    )
    qtbot.waitUntil(
        lambda: presentation.shown.cards[0].status == "completed", timeout=RUN_TIMEOUT_MS
    )
    card = presentation.shown.cards[0]
    assert card.input == "revenue by region" and card.user == "alice"
    assert card.stage_counts == (1, 5, 5, 5, 1) and card.elapsed > 0
    # the chat shows the same run, finished
    view = chat.message_view(message.id)
    assert view is not None and "revenue by region (total" in view.answer_text()

    with qtbot.waitSignal(presentation.closed):
        qtbot.keyClick(presentation, Qt.Key.Key_Escape)
    assert not window.presentation_action.isChecked() and not presentation.isVisible()
    window.presentation_action.trigger()  # and back, from the menu or toolbar
    qtbot.waitUntil(presentation.isVisible)
    window.presentation_action.trigger()
    qtbot.waitUntil(lambda: not presentation.isVisible())
