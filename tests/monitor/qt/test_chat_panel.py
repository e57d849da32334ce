"""``ChatPanel`` against a real embedded runtime over real WebSockets: what it renders while a
run goes on — reasoning steps in order, a spinner per tool call that turns into a result or
an error, partial results, the final answer — and how it follows the workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from monitor._qt.chat_panel import ChatPanel, MessageView, StepMarker, TranscriptLine
from monitor.model.chat import ChatMessage, MessageState, StepKind
from monitor.model.clock import steady_time
from runtime.embedded import EmbeddedRuntime
from tests.conftest import seconds, test_config

RUN_TIMEOUT_MS = int(seconds(20) * 1000)


@dataclass
class RuntimeWorkspace:
    """What the panel needs of a workspace: its kind, target and (embedded) runtime."""

    kind: str
    target: str
    runtime: EmbeddedRuntime | None = None

    def stop(self) -> None:
        pass


@pytest.fixture
def runtime() -> Iterator[EmbeddedRuntime]:
    runtime = EmbeddedRuntime(test_config()).start()
    yield runtime
    runtime.stop()


PanelFactory = Callable[..., ChatPanel]


@pytest.fixture
def make_panel(qtbot: QtBot) -> Iterator[PanelFactory]:
    """A shown panel over a workspace, refreshed by a timer as the window's would."""
    panels: list[ChatPanel] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: [panel.refresh(steady_time()) for panel in panels])
    timer.start()

    def make(workspace: Any) -> ChatPanel:
        panel = ChatPanel()
        qtbot.addWidget(panel)
        panel.resize(440, 800)
        panel.set_workspace(workspace)
        panel.show()
        panels.append(panel)
        return panel

    yield make
    timer.stop()
    for panel in panels:
        panel.shutdown()


@pytest.fixture
def panel(runtime: EmbeddedRuntime, make_panel: PanelFactory) -> ChatPanel:
    # the runtime first, so it stops last: after the panel's connections have closed
    return make_panel(RuntimeWorkspace("embedded", runtime.url, runtime))


def view_of(panel: ChatPanel, message: ChatMessage | None) -> MessageView:
    assert message is not None, "the message was not sent"
    view = panel.message_view(message.id)
    assert view is not None
    return view


def finished(message: ChatMessage) -> Callable[[], bool]:
    return lambda: message.run is not None and message.run.finished


def rendered(view: MessageView) -> list[tuple[str, str]]:
    """(marker, text) of every line the view shows, top to bottom."""
    return [(line.marker.kind, line.plain_text()) for line in view.lines]


def test_a_data_analyst_question_renders_each_step_in_order_and_the_answer(
    qtbot: QtBot, panel: ChatPanel
) -> None:
    qtbot.waitUntil(lambda: "connected" in panel.status_label.text(), timeout=RUN_TIMEOUT_MS)
    assert "as alice" in panel.status_label.toolTip()
    panel.agent_box.setCurrentIndex(panel.agent_box.findData("data_analyst"))
    panel.input.setText("revenue by region")
    qtbot.mouseClick(panel.send_button, _left())
    message = panel.conversation.messages[-1]
    view = view_of(panel, message)
    assert view.bubble.text() == "revenue by region" and panel.input.text() == ""
    qtbot.waitUntil(finished(message), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(view.answer.isVisible)
    run = message.run
    assert run is not None
    lines = rendered(view)
    # one line per step, in the order the events arrived
    assert len(lines) == len(run.steps)
    thinking = [text for (kind, text), step in zip(lines, run.steps, strict=True)
                if step.kind is StepKind.THINKING]  # fmt: skip
    assert [t.split()[:2] for t in thinking] == [["Step", str(i)] for i in range(1, 6)]
    assert thinking[0].endswith("listing the available ones first.")
    tools = [(kind, text) for kind, text in lines if text.split()[0] in TOOLS]
    assert [text.split()[0] for _, text in tools] == [
        "list_datasets",
        "describe_dataset",
        "column_stats",
        "column_stats",
        "group_totals",
    ]
    assert all(kind == StepMarker.OK and "→" in text for kind, text in tools)
    partials = [text for _, text in lines if text.startswith("Partial result")]
    assert len(partials) == 2 and "mean" in partials[0]
    answer = view.answer.text()
    assert "Answer" in answer and "revenue by region (total 424,863.95)" in answer
    assert view.answer.property("status") == "completed"
    assert "completed" in view.header.text()
    assert not panel.stop_button.isEnabled()


TOOLS = {"list_datasets", "describe_dataset", "column_stats", "group_totals"}


def test_a_tool_call_shows_a_spinner_that_turns_into_its_result(
    qtbot: QtBot, panel: ChatPanel
) -> None:
    slow = {"faults": {"tool_latency_ms": 600}}
    message = panel.send("12 times (3 + 4)", "calculator", slow)
    view = view_of(panel, message)
    qtbot.waitUntil(lambda: any(line.spinning for line in view.lines), timeout=RUN_TIMEOUT_MS)
    line = next(line for line in view.lines if line.spinning)
    assert line.plain_text().endswith("running…")
    assert "tool running" in view.header.text() and panel.stop_button.isEnabled()
    angle = line.marker.angle
    qtbot.waitUntil(lambda: line.marker.angle != angle)  # it turns
    qtbot.waitUntil(lambda: not line.spinning, timeout=RUN_TIMEOUT_MS)
    assert line.marker.kind == StepMarker.OK
    assert "→" in line.plain_text() and "ms" in line.plain_text()
    qtbot.waitUntil(view.answer.isVisible, timeout=RUN_TIMEOUT_MS)
    assert "84" in view.answer.text()


def test_a_failing_tool_turns_its_spinner_into_an_error(qtbot: QtBot, panel: ChatPanel) -> None:
    faults = {"faults": {"tool_failure_rate": 1.0, "tool_latency_ms": 300}}
    message = panel.send("revenue by region", "data_analyst", faults)
    view = view_of(panel, message)
    qtbot.waitUntil(lambda: any(line.spinning for line in view.lines), timeout=RUN_TIMEOUT_MS)
    line = next(line for line in view.lines if line.spinning)
    qtbot.waitUntil(lambda: line.marker.kind == StepMarker.ERROR, timeout=RUN_TIMEOUT_MS)
    assert "error: injected failure in list_datasets" in line.plain_text()
    qtbot.waitUntil(finished(view_message(panel, view)), timeout=RUN_TIMEOUT_MS)
    errors = [text for kind, text in rendered(view) if kind == StepMarker.ERROR]
    assert [e.split()[0] for e in errors] == ["list_datasets", "describe_dataset"]
    qtbot.waitUntil(view.answer.isVisible)
    assert "couldn't analyse the sales dataset" in view.answer_text()


def test_a_crashing_agent_shows_its_error_and_a_failed_answer(
    qtbot: QtBot, panel: ChatPanel
) -> None:
    message = panel.send("12 * 7", "calculator", {"faults": {"agent_crash_rate": 1.0}})
    view = view_of(panel, message)
    qtbot.waitUntil(view.answer.isVisible, timeout=RUN_TIMEOUT_MS)
    assert view.answer.property("status") == "failed" and "Failed" in view.answer.text()
    assert any("injected crash" in text for kind, text in rendered(view) if kind == "error")
    assert "failed" in view.header.text()


def test_a_refused_message_says_why(qtbot: QtBot, panel: ChatPanel) -> None:
    message = panel.send("hello", "no_such_agent")
    assert message is not None
    view = view_of(panel, message)
    qtbot.waitUntil(lambda: message.state is MessageState.REFUSED, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(view.answer.isVisible)
    assert "Not sent" in view.answer.text() and "unknown_agent" in view.answer.text()
    assert "refused" in view.header.text()


def test_the_faults_menu_and_slow_motion_go_into_the_message(
    qtbot: QtBot, panel: ChatPanel, runtime: EmbeddedRuntime
) -> None:
    assert panel.message_options() == {}
    panel.fault_box.setCurrentIndex(panel.fault_box.findText("Some tools fail"))
    panel.slow_motion.setChecked(True)
    assert panel.message_options() == {"faults": {"tool_failure_rate": 0.5}, "pace": 2.0}
    panel.fault_box.setCurrentIndex(0)
    panel.slow_motion.setChecked(False)
    assert panel.message_options() == {}


def test_messages_go_as_the_chosen_user_and_the_suggestions_send_at_once(
    qtbot: QtBot, panel: ChatPanel
) -> None:
    assert panel.empty_state.isVisible()
    panel.agent_box.setCurrentIndex(panel.agent_box.findData("calculator"))
    suggestion = panel.suggestion_buttons[0]
    assert suggestion.isVisible() and suggestion.text() == "12 times (3 + 4)"
    panel.user_box.setCurrentText("bob")
    qtbot.mouseClick(suggestion, _left())
    message = panel.conversation.messages[-1]
    assert message.user == "bob" and message.agent == "calculator"
    assert not panel.empty_state.isVisible()
    qtbot.waitUntil(finished(message), timeout=RUN_TIMEOUT_MS)
    assert message.run is not None
    assert panel.run_keys() == {("bob", message.run.run_id)}
    panel.user_box.setCurrentText("not a valid id!")
    assert not panel.send_button.isEnabled() and panel.send("2 + 2") is None
    assert "user id" in panel.status_label.text()


def test_a_remote_runtime_needs_a_user_token_typed_in(
    qtbot: QtBot, runtime: EmbeddedRuntime, make_panel: PanelFactory
) -> None:
    panel = make_panel(RuntimeWorkspace("remote", runtime.url + "/monitor"))
    assert panel.token_edit.isVisible() and not panel.user_box.isEnabled()
    assert "Enter a user token" in panel.status_label.text()
    assert panel.send("12 * 7", "calculator") is None
    panel.token_edit.setText(runtime.issue_token("dana"))
    panel.token_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: "as dana" in panel.status_label.text(), timeout=RUN_TIMEOUT_MS)
    message = panel.send("12 * 7", "calculator")
    assert message is not None and message.user == "dana"
    qtbot.waitUntil(finished(message), timeout=RUN_TIMEOUT_MS)


def test_a_replay_has_nothing_to_chat_with_and_a_switch_starts_afresh(
    qtbot: QtBot, panel: ChatPanel, runtime: EmbeddedRuntime
) -> None:
    message = panel.send("12 * 7", "calculator")
    qtbot.waitUntil(finished(view_message(panel, view_of(panel, message))), timeout=RUN_TIMEOUT_MS)
    panel.set_workspace(RuntimeWorkspace("replay", "recording.sqlite"))
    assert panel.target is None and panel.conversation.messages == []
    assert panel.empty_state.isVisible() and not panel.input.isEnabled()
    assert "a replayed recording has nothing to answer" in panel.status_label.text()
    assert panel.send("12 * 7") is None


def view_message(panel: ChatPanel, view: MessageView) -> ChatMessage:
    message = panel.conversation.message(view.message_id)
    assert message is not None
    return message


def test_a_transcript_line_reads_as_the_user_sees_it(qtbot: QtBot) -> None:
    from monitor.model.chat import ChatStep, ToolStatus

    step = ChatStep(
        StepKind.TOOL,
        "data_analyst",
        tool_call_id="c1",
        tool_name="column_stats",
        parameters={"dataset": "sales", "column": "units"},
        tool_status=ToolStatus.SUCCESS,
        result={"mean": 57.8472},
        duration_ms=0.4,
        depth=1,
    )
    line = TranscriptLine(step)
    qtbot.addWidget(line)
    assert line.plain_text() == (
        "data_analyst · column_stats (dataset=sales, column=units)\n→ mean=57.85 · <1 ms"
    )
    assert "column_stats (c1)" in line.toolTip()


def _left() -> Any:
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
