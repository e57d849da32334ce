"""``ChatPanel``: chat with the watched runtime as a chosen user and watch each run live.

A message goes to the runtime's ``/ws`` endpoint through a ``ChatConnection`` (its own
thread and loop, one per user); what comes back is turned into chat steps by the Qt-free
``ChatConversation``, and this panel only renders what that model says changed: the user's
message, the agent's reasoning steps as they arrive, each tool call with a spinner that
becomes a result or an error, partial results, and the final answer.

Against the embedded runtime the panel mints a token for whichever user is chosen; a
remote runtime needs a user token typed into the panel (the monitor's own token is a
``role: monitor`` one), which is kept in memory only. The window's refresh timer drives the
panel (``refresh(now)``): it drains the connections and turns the spinners.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from html import escape
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QShowEvent,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from monitor.model.chat import (
    ChatConversation,
    ChatMessage,
    ChatStep,
    MessageState,
    RunStatus,
    RunTranscript,
    StepKind,
    ToolStatus,
    chat_agents,
    suggestions,
)
from monitor.model.clock import steady_time
from monitor.model.workspace_kind import WatchedWorkspace
from monitor.services.capture import TokenSource
from monitor.services.chat_client import (
    ChatConnection,
    ChatTarget,
    ConnectionChanged,
    chat_target,
    token_subject,
)
from runtime.context import InvalidContextError, validate_id
from runtime.protocol import EventType
from runtime.streams import ConnectionState

from . import theme
from .event_style import EVENT_COLORS, STATUS_COLORS
from .icons import icon

#: users offered in the user box (any other id can be typed in)
DEFAULT_USERS = ("alice", "bob", "carol")
#: seconds per turn of a tool call's spinner
SPIN_PERIOD = 1.0
#: the elapsed times on running runs change at most this often (s)
ELAPSED_INTERVAL = 0.1
#: suggestions shown on the empty transcript
MAX_SUGGESTIONS = 3
#: ``options.pace`` for "Slow motion": agents pause four times as long as the embedded
#: runtime's default (``DEMO_PACE``), so an audience can follow each step
SLOW_MOTION_PACE = 2.0

#: what the Faults menu can ask the runtime for (``options.faults``; the embedded runtime
#: allows it, a remote one only with ``--allow-client-faults``)
FAULT_CHOICES: tuple[tuple[str, Mapping[str, float]], ...] = (
    ("No faults", {}),
    ("Some tools fail", {"tool_failure_rate": 0.5}),
    ("Slow tools (1.5 s)", {"tool_latency_ms": 1500}),
    ("The agent crashes", {"agent_crash_rate": 1.0}),
)


THINKING = EVENT_COLORS[EventType.AGENT_THINKING]
TOOL_RUNNING = EVENT_COLORS[EventType.TOOL_EXECUTING]
TOOL_OK = EVENT_COLORS[EventType.TOOL_COMPLETED]
PARTIAL = EVENT_COLORS[EventType.PARTIAL_RESULT]
ERROR = EVENT_COLORS[EventType.AGENT_ERROR]


class StepMarker(QWidget):
    """The icon beside a transcript line: a dot for reasoning and partial results, a
    spinner while a tool runs, then a check (success) or a cross (error)."""

    DOT, SPINNER, OK, ERROR = "dot", "spinner", "ok", "error"
    SIZE = 16

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(self.SIZE, self.SIZE)
        self.kind = self.DOT
        self.colour = THINKING
        self.angle = 0.0

    def set_state(self, kind: str, colour: str) -> None:
        if (kind, colour) != (self.kind, self.colour):
            self.kind, self.colour = kind, colour
            self.update()

    def set_angle(self, angle: float) -> None:
        self.angle = angle
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(self.colour)
        box = QRectF(2, 2, self.SIZE - 4, self.SIZE - 4)
        if self.kind == self.DOT:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(box.center(), 3.5, 3.5)
        elif self.kind == self.SPINNER:
            pen = QPen(colour, 2.0)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            # Qt angles are 1/16 degree, counter-clockwise: spin clockwise
            painter.drawArc(box, int(-self.angle * 16), 270 * 16)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(box)
            pen = QPen(QColor(theme.BASE), 1.8)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            c = box.center()
            if self.kind == self.OK:
                path = QPainterPath(QPointF(c.x() - 3.2, c.y() + 0.2))
                path.lineTo(c.x() - 0.8, c.y() + 2.6)
                path.lineTo(c.x() + 3.4, c.y() - 2.4)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)
            else:
                painter.drawLine(
                    QPointF(c.x() - 2.6, c.y() - 2.6), QPointF(c.x() + 2.6, c.y() + 2.6)
                )
                painter.drawLine(
                    QPointF(c.x() + 2.6, c.y() - 2.6), QPointF(c.x() - 2.6, c.y() + 2.6)
                )
        painter.end()


class TranscriptLine(QWidget):
    """One step of a run: its marker and its text (and, for a tool, the outcome)."""

    def __init__(self, step: ChatStep, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14 + 18 * step.depth, 1, 8, 1)
        layout.setSpacing(7)
        self.marker = StepMarker()
        marker_column = QVBoxLayout()
        marker_column.setContentsMargins(0, 2, 0, 0)
        marker_column.addWidget(self.marker)
        marker_column.addStretch(1)
        layout.addLayout(marker_column)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label, 1)
        self.step = step
        self.show_step(step)

    @property
    def spinning(self) -> bool:
        return self.marker.kind == StepMarker.SPINNER

    def plain_text(self) -> str:
        return self.label.text() and _plain(self.label.text())

    def show_step(self, step: ChatStep) -> None:
        self.step = step
        muted = theme.TEXT_MUTED
        who = f'<span style="color:{muted}">{escape(step.agent)} · </span>' if step.depth else ""
        if step.kind is StepKind.THINKING:
            self.marker.set_state(StepMarker.DOT, THINKING)
            number = f"Step {step.step}" if step.step is not None else "Thinking"
            text = (
                f'{who}<span style="color:{THINKING}; font-weight:600">{number}</span>'
                f"&nbsp;&nbsp;{escape(step.text)}"
            )
        elif step.kind is StepKind.TOOL:
            text = self._tool_text(step, who)
        elif step.kind is StepKind.PARTIAL:
            self.marker.set_state(StepMarker.DOT, PARTIAL)
            text = (
                f'{who}<span style="color:{muted}"><i>Partial result</i>&nbsp;&nbsp;'
                f"{escape(step.text)}</span>"
            )
        else:
            self.marker.set_state(StepMarker.ERROR, ERROR)
            text = f'{who}<span style="color:{ERROR}">{escape(step.text)}</span>'
        self.label.setText(text)
        self.setToolTip(_tool_tooltip(step) if step.kind is StepKind.TOOL else "")

    def _tool_text(self, step: ChatStep, who: str) -> str:
        muted = theme.TEXT_MUTED
        params = step.parameters_text(90)
        call = f"{who}<b>{escape(step.tool_name)}</b>"
        if params:
            call += f' <span style="color:{muted}">({escape(params)})</span>'
        if step.tool_status is ToolStatus.RUNNING:
            self.marker.set_state(StepMarker.SPINNER, TOOL_RUNNING)
            return f'{call}<br><span style="color:{TOOL_RUNNING}">running…</span>'
        took = (
            f" · {escape(_milliseconds(step.duration_ms))}" if step.duration_ms is not None else ""
        )
        if step.tool_status is ToolStatus.SUCCESS:
            self.marker.set_state(StepMarker.OK, TOOL_OK)
            outcome = f'<span style="color:{muted}">→ {escape(step.result_text(140))}{took}</span>'
        else:
            self.marker.set_state(StepMarker.ERROR, ERROR)
            outcome = (
                f'<span style="color:{ERROR}">error: {escape(step.result_text(140))}</span>'
                f'<span style="color:{muted}">{took}</span>'
            )
        return f"{call}<br>{outcome}"


def _milliseconds(value: float) -> str:
    return "<1 ms" if value < 1 else f"{value:,.0f} ms"


def _tool_tooltip(step: ChatStep) -> str:
    lines = [f"{step.tool_name} ({step.tool_call_id})"]
    if step.parameters:
        lines.append(f"parameters: {step.parameters_text(400)}")
    if step.result is not None:
        label = "result" if step.tool_status is ToolStatus.SUCCESS else "error"
        lines.append(f"{label}: {step.result_text(600)}")
    return "\n".join(lines)


def _plain(rich: str) -> str:
    """The text of a label's rich text, as a user reads it (for tests and accessibility)."""
    document = QTextDocument()
    document.setHtml(rich)
    return document.toPlainText()


class MessageView(QWidget):
    """One message: the user's bubble, then its run's header, steps and answer."""

    def __init__(self, message: ChatMessage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_id = message.id
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 10)
        layout.setSpacing(3)

        bubble_row = QHBoxLayout()
        bubble_row.setContentsMargins(40, 0, 10, 0)
        bubble_row.addStretch(1)
        self.bubble = QLabel(escape(message.text))
        self.bubble.setObjectName("chatBubble")
        self.bubble.setWordWrap(True)
        self.bubble.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bubble_row.addWidget(self.bubble)
        layout.addLayout(bubble_row)
        agent = message.agent or "default agent"
        self.sender_label = QLabel(f"{escape(message.user)} → {escape(agent)}")
        self.sender_label.setProperty("role", "count")
        self.sender_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.sender_label.setContentsMargins(0, 0, 12, 4)
        layout.addWidget(self.sender_label)

        self.header = QLabel()
        self.header.setObjectName("chatRunHeader")
        self.header.setContentsMargins(10, 2, 8, 2)
        layout.addWidget(self.header)
        self.steps_box = QVBoxLayout()
        self.steps_box.setContentsMargins(0, 0, 0, 0)
        self.steps_box.setSpacing(4)
        layout.addLayout(self.steps_box)
        self.lines: list[TranscriptLine] = []

        self.answer = QLabel()
        self.answer.setObjectName("chatAnswer")
        self.answer.setWordWrap(True)
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        self.answer.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        answer_row = QHBoxLayout()
        answer_row.setContentsMargins(10, 4, 10, 0)
        answer_row.addWidget(self.answer)
        layout.addLayout(answer_row)
        self.answer.hide()
        self._header_text = ""
        self.sync(message, (), now=message.sent_at)

    def sync(self, message: ChatMessage, steps: tuple[int, ...], now: float) -> None:
        """Show the message's state; add or update the run's steps ``steps``."""
        run = message.run
        if run is not None:
            for index in steps:
                if index < len(self.lines):
                    self.lines[index].show_step(run.steps[index])
            for step in run.steps[len(self.lines) :]:
                line = TranscriptLine(step)
                self.lines.append(line)
                self.steps_box.addWidget(line)
            self._show_answer(run)
        elif message.state is MessageState.REFUSED:
            self.answer.setText(f"<b>Not sent</b> — {escape(message.refusal)}")
            self._set_answer_status(RunStatus.FAILED)
        self.tick(message, now)

    def tick(self, message: ChatMessage, now: float) -> None:
        """Refresh the header (its elapsed time runs while the run does)."""
        run = message.run
        if run is None:
            refused = message.state is MessageState.REFUSED
            colour = theme.DANGER if refused else theme.TEXT_MUTED
            words = "refused" if refused else "waiting for the agent to start…"
            text = f'<span style="color:{colour}">{words}</span>'
        else:
            colour = STATUS_COLORS.get(run.status.value, theme.NEUTRAL)
            # the runtime's own measure once it is known, else the time since it started
            seconds = (
                run.duration_ms / 1000
                if run.finished and run.duration_ms is not None
                else run.elapsed(now)
            )
            tools = run.tools_running
            running = f" · {tools} tool{'s' * (tools != 1)} running" if tools else ""
            text = (
                f"<b>{escape(run.agent)}</b> · "
                f'<span style="color:{colour}">{run.status.value}</span> · '
                f"{seconds:.1f} s{running}"
            )
        if text != self._header_text:
            self._header_text = text
            self.header.setText(text)

    def answer_text(self) -> str:
        """The answer (or refusal) as the user reads it; "" while there is none."""
        return _plain(self.answer.text()) if self.answer.isVisible() else ""

    def spinners(self) -> list[StepMarker]:
        return [line.marker for line in self.lines if line.spinning]

    def _show_answer(self, run: RunTranscript) -> None:
        if not run.finished:
            return
        answer = escape(run.answer).replace("\n", "<br>")
        if run.status is RunStatus.COMPLETED:
            self.answer.setText(f"<b>Answer</b><br>{answer}")
        elif run.status is RunStatus.CANCELLED:
            self.answer.setText("<b>Cancelled</b>" + (f" — {answer}" if answer else ""))
        else:
            self.answer.setText(f"<b>Failed</b> — {answer}")
        self._set_answer_status(run.status.value)

    def _set_answer_status(self, status: str) -> None:
        self.answer.setProperty("status", status)
        style = self.answer.style()
        style.unpolish(self.answer)
        style.polish(self.answer)
        self.answer.show()


class ChatPanel(QWidget):
    """Chat with the workspace's runtime; see the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conversation = ChatConversation()
        self._target: ChatTarget | None = None
        self._workspace: WatchedWorkspace | None = None
        self._connections: dict[str, ChatConnection] = {}
        self._status: dict[str, ConnectionChanged] = {}
        self._token = ""  # a remote target's user token: memory only, never in settings
        self._views: dict[int, MessageView] = {}
        self._last_elapsed = -math.inf
        self._agents = chat_agents()
        self._fault: Mapping[str, float] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        layout.addWidget(self._build_transcript(), 1)
        layout.addWidget(self._build_composer())
        self._show_empty_state()
        self._update_status()

    # --- construction -------------------------------------------------------------------

    def _build_header(self) -> QWidget:
        header = QWidget()
        header.setObjectName("filterBar")
        grid = QVBoxLayout(header)
        grid.setContentsMargins(10, 8, 10, 8)
        grid.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(6)
        user_caption = QLabel("As")
        user_caption.setProperty("role", "count")
        self.user_box = QComboBox()
        self.user_box.setEditable(True)
        self.user_box.addItems(DEFAULT_USERS)
        self.user_box.setToolTip(
            "The user the message is sent as: the embedded runtime accepts any user id"
        )
        self.user_box.setMinimumContentsLength(6)
        self.user_box.currentTextChanged.connect(self._on_user_changed)
        agent_caption = QLabel("Agent")
        agent_caption.setProperty("role", "count")
        self.agent_box = QComboBox()
        for index, choice in enumerate(self._agents):
            self.agent_box.addItem(choice.name + (" (default)" if choice.default else ""))
            self.agent_box.setItemData(index, choice.name, Qt.ItemDataRole.UserRole)
            self.agent_box.setItemData(index, choice.description, Qt.ItemDataRole.ToolTipRole)
        self.agent_box.currentIndexChanged.connect(self._on_agent_changed)
        row.addWidget(user_caption)
        row.addWidget(self.user_box, 2)
        row.addSpacing(6)
        row.addWidget(agent_caption)
        row.addWidget(self.agent_box, 3)
        grid.addLayout(row)

        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("User token for this runtime (kept in memory only)")
        self.token_edit.setToolTip(
            "A token with this runtime's secret and no monitor role, e.g.\n"
            "agent-runtime token --user alice"
        )
        self.token_edit.editingFinished.connect(self._on_token_entered)
        self.token_edit.hide()
        grid.addWidget(self.token_edit)

        self.status_label = QLabel()
        self.status_label.setProperty("role", "count")
        self.status_label.setWordWrap(True)
        grid.addWidget(self.status_label)
        return header

    def _build_transcript(self) -> QWidget:
        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("chatTranscript")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget()
        content.setObjectName("chatContent")
        self.transcript = QVBoxLayout(content)
        self.transcript.setContentsMargins(0, 6, 0, 6)
        self.transcript.setSpacing(0)
        self.empty_state = self._build_empty_state()
        self.transcript.addWidget(self.empty_state)
        self.transcript.addStretch(1)
        self.scroll_area.setWidget(content)
        # keep the newest step in view while the user has not scrolled up
        self._follow = True
        bar = self.scroll_area.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_scrolled)
        return self.scroll_area

    def _build_empty_state(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(22, 26, 22, 10)
        layout.setSpacing(8)
        art = QLabel()
        art.setPixmap(icon("chat", theme.TEXT_DISABLED).pixmap(QSize(40, 40)))
        art.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        title = QLabel("Ask an agent")
        title.setObjectName("chatEmptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.empty_hint = QLabel()
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setProperty("role", "count")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(art)
        layout.addWidget(title)
        layout.addWidget(self.empty_hint)
        layout.addSpacing(6)
        try_label = QLabel("Try")
        try_label.setProperty("role", "caption")
        layout.addWidget(try_label)
        self.suggestion_buttons: list[QPushButton] = []
        for _ in range(MAX_SUGGESTIONS):
            button = QPushButton()
            button.setObjectName("chatSuggestion")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _checked=False, b=button: self._on_suggestion(b))
            layout.addWidget(button)
            self.suggestion_buttons.append(button)
        return box

    def _build_composer(self) -> QWidget:
        composer = QWidget()
        composer.setObjectName("filterBar")
        column = QVBoxLayout(composer)
        column.setContentsMargins(10, 8, 10, 8)
        column.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.input = QLineEdit()
        self.input.setObjectName("chatInput")
        self.input.returnPressed.connect(self._on_send_clicked)
        self.input.textChanged.connect(self._update_buttons)
        self.send_button = QPushButton(icon("send", "#ffffff"), "Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.clicked.connect(self._on_send_clicked)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        column.addLayout(row)

        options = QHBoxLayout()
        options.setSpacing(6)
        fault_caption = QLabel("Inject")
        fault_caption.setProperty("role", "count")
        self.fault_box = QComboBox()
        for label, faults in FAULT_CHOICES:
            self.fault_box.addItem(label, dict(faults))
        self.fault_box.setToolTip(
            "Ask the runtime to inject a fault into the next messages (options.faults),\n"
            "to show how a run looks when tools fail or the agent crashes"
        )
        self.fault_box.currentIndexChanged.connect(self._on_fault_changed)
        self.slow_motion = QCheckBox("Slow motion")
        self.slow_motion.setToolTip(
            "Ask the agents to take their time (options.pace), so each step can be followed"
        )
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.setToolTip("Cancel the newest running run")
        self.stop_button.clicked.connect(self._on_stop_clicked)
        options.addWidget(fault_caption)
        options.addWidget(self.fault_box)
        options.addSpacing(8)
        options.addWidget(self.slow_motion)
        options.addStretch(1)
        options.addWidget(self.stop_button)
        column.addLayout(options)
        self._on_agent_changed()
        return composer

    # --- the workspace ----------------------------------------------------------------

    def set_workspace(self, workspace: WatchedWorkspace) -> None:
        """Chat with ``workspace``'s runtime from now on (nothing, for a replay). Switching to
        another workspace closes the old connections and starts a new conversation."""
        if workspace is self._workspace:
            return
        self._workspace = workspace
        self.shutdown()
        self._target = chat_target(workspace)
        self._token = ""
        self.token_edit.clear()
        self.conversation = ChatConversation()
        for view in self._views.values():
            view.deleteLater()
        self._views.clear()
        remote = self._target is not None and self._target.needs_token
        self.token_edit.setVisible(remote)
        self.user_box.setEnabled(self._target is not None and not remote)
        self._show_empty_state()
        self._update_status()
        self._update_buttons()
        if self.isVisible():
            self._ensure_connection()

    def shutdown(self) -> None:
        """Close every connection (the window is closing, or the workspace changed)."""
        for connection in self._connections.values():
            connection.stop()
        self._connections.clear()
        self._status.clear()

    @property
    def target(self) -> ChatTarget | None:
        return self._target

    def current_user(self) -> str | None:
        """Who a message is sent as: the chosen user, or a remote token's subject."""
        if self._target is None:
            return None
        if self._target.needs_token:
            return token_subject(self._token) if self._token else None
        user = self.user_box.currentText().strip()
        try:
            return validate_id("user", user)
        except InvalidContextError:
            return None

    def current_agent(self) -> str | None:
        name = self.agent_box.currentData(Qt.ItemDataRole.UserRole)
        return str(name) if name else None

    def run_keys(self) -> set[tuple[str, str]]:
        """(user, run id) of every run started from this panel (the Presentation view puts
        them first)."""
        return {
            (message.user, message.run.run_id)
            for message in self.conversation.messages
            if message.run is not None
        }

    # --- sending ----------------------------------------------------------------------

    def send(
        self,
        text: str | None = None,
        agent: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ChatMessage | None:
        """Send ``text`` (default: the input box) to ``agent`` (default: the chosen one)
        with ``options`` (default: the Faults menu's); None if it could not go out (the
        status line says why)."""
        text = (self.input.text() if text is None else text).strip()
        if not text:
            return None
        user = self.current_user()
        if user is None:
            self._update_status()
            if self._target is not None and self._target.needs_token:
                self.token_edit.setFocus()
            return None
        connection = self._connection_for(user)
        if connection is None:
            return None
        agent = agent or self.current_agent()
        if options is None:
            options = self.message_options()
        message = self.conversation.add_message(text, agent, user, steady_time())
        view = MessageView(message)
        self._views[message.id] = view
        self.empty_state.hide()
        self._follow = True
        self.transcript.insertWidget(self.transcript.count() - 1, view)
        connection.send(message.id, text, agent, options)
        self.input.clear()
        self._update_buttons()
        return message

    def message_options(self) -> dict[str, Any]:
        """``user_message.options`` as the panel's controls set them."""
        options: dict[str, Any] = {}
        if self._fault:
            options["faults"] = dict(self._fault)
        if self.slow_motion.isChecked():
            options["pace"] = SLOW_MOTION_PACE
        return options

    def message_view(self, message_id: int) -> MessageView | None:
        return self._views.get(message_id)

    # --- the window's timer -------------------------------------------------------------

    def refresh(self, now: float) -> None:
        """Apply what the connections received and animate what is running."""
        changed = False
        for user, connection in list(self._connections.items()):
            for update in connection.poll():
                if isinstance(update, ConnectionChanged):
                    self._status[user] = update
                    changed = True
                    continue
                for change in self.conversation.apply(update, now):
                    message = self.conversation.message(change.message_id)
                    view = self._views.get(change.message_id)
                    if message is not None and view is not None:
                        view.sync(message, change.steps, now)
                        changed = True
        if changed:
            self._update_status()
            self._update_buttons()
        running = self.conversation.running
        angle = (now % SPIN_PERIOD) / SPIN_PERIOD * 360
        for message in running:
            view = self._views.get(message.id)
            if view is not None:
                for marker in view.spinners():
                    marker.set_angle(angle)
        if running and now - self._last_elapsed >= ELAPSED_INTERVAL:
            self._last_elapsed = now
            for message in running:
                view = self._views.get(message.id)
                if view is not None:
                    view.tick(message, now)

    # --- handlers ---------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # connect as soon as someone looks at the chat, so the status line is real
        self._ensure_connection()

    def _on_send_clicked(self) -> None:
        self.send()

    def _on_stop_clicked(self) -> None:
        running = self.conversation.running
        if not running:
            return
        message = running[-1]
        connection = self._connections.get(message.user)
        if connection is not None and message.run is not None:
            connection.cancel(message.run.run_id)

    def _on_suggestion(self, button: QPushButton) -> None:
        self.input.setText(button.text())
        self.send()

    def _on_user_changed(self, _text: str) -> None:
        self._update_status()
        self._update_buttons()
        self._update_hint()

    def _on_agent_changed(self, _index: int = 0) -> None:
        agent = self.current_agent()
        self.input.setPlaceholderText(f"Ask {agent or 'an agent'}…")
        texts = suggestions(agent)[:MAX_SUGGESTIONS]
        for index, button in enumerate(self.suggestion_buttons):
            button.setText(texts[index] if index < len(texts) else "")
            button.setVisible(index < len(texts))

    def _on_token_entered(self) -> None:
        token = self.token_edit.text().strip()
        if token == self._token:
            return
        self._token = token
        user = token_subject(token) if token else None
        if user is not None:
            # a new token for a user we already talk to: reconnect with it
            old = self._connections.pop(user, None)
            if old is not None:
                old.stop()
            self._ensure_connection()
        self._update_status()
        self._update_buttons()

    def _on_fault_changed(self, _index: int) -> None:
        faults = self.fault_box.currentData()
        self._fault = dict(faults) if faults else {}
        # a message with a fault should not look like an ordinary one
        self.fault_box.setStyleSheet(f"color: {theme.WARN};" if self._fault else "")

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._follow:
            self.scroll_area.verticalScrollBar().setValue(high)

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.scroll_area.verticalScrollBar().maximum() - 4

    # --- state ------------------------------------------------------------------------

    def _ensure_connection(self) -> None:
        user = self.current_user()
        if user is not None:
            self._connection_for(user)
        self._update_status()

    def _connection_for(self, user: str) -> ChatConnection | None:
        connection = self._connections.get(user)
        if connection is not None and connection.running:
            return connection
        target = self._target
        if target is None:
            return None
        # the embedded runtime mints a token per connection: a reconnect after its
        # lifetime still works
        token: TokenSource = partial(target.mint, user) if target.mint else self._token
        connection = ChatConnection(
            target.url, token, self.conversation.thread_id, name=f"chat-{user}"
        ).start()
        self._connections[user] = connection
        return connection

    def _update_status(self) -> None:
        target = self._target
        if target is None:
            self._set_status(
                theme.NEUTRAL,
                "Chat needs a live runtime, embedded or connected: a replayed recording "
                "has nothing to answer.",
            )
            return
        user = self.current_user()
        if user is None:
            if not target.needs_token:
                self._set_status(theme.DANGER, "A user id is 1–128 letters, digits or _.:@-")
            elif self._token:
                self._set_status(theme.DANGER, "That does not look like a token (a JWT).")
            else:
                self._set_status(
                    theme.WARN,
                    f"Enter a user token for {target.url} to chat (this window watches it "
                    "with a monitor token, which cannot start runs).",
                )
            return
        where = "the embedded runtime" if target.kind == "embedded" else target.url
        status = self._status.get(user)
        if status is None:
            self._set_status(theme.NEUTRAL, f"{where} · as {user}")
        elif status.state is ConnectionState.CONNECTED:
            self._set_status(theme.OK, f"connected to {where} as {user}")
        elif status.state is ConnectionState.CONNECTING:
            self._set_status(theme.WARN, f"connecting to {where}…")
        else:
            colour = theme.CONNECTION_COLOURS.get(status.state, theme.NEUTRAL)
            self._set_status(colour, f"{status.state.value}: {status.detail}")

    def _set_status(self, colour: str, text: str) -> None:
        self.status_label.setText(f'<span style="color:{colour}">●</span>&nbsp;{escape(text)}')
        self.status_label.setToolTip(text)

    def _update_buttons(self) -> None:
        can_send = self._target is not None and self.current_user() is not None
        self.input.setEnabled(self._target is not None)
        self.send_button.setEnabled(can_send and bool(self.input.text().strip()))
        self.stop_button.setEnabled(bool(self.conversation.running))
        for button in self.suggestion_buttons:
            button.setEnabled(can_send)

    def _update_hint(self) -> None:
        target = self._target
        if target is None:
            self.empty_hint.setText("Open a live runtime (the embedded one, or File › Connect…).")
            return
        user = self.current_user() or "a user"
        where = "the embedded runtime" if target.kind == "embedded" else target.url
        self.empty_hint.setText(
            f"Messages go to {where} as {user}. Each reasoning step, tool call and the "
            "final answer appear here as the agent works."
        )

    def _show_empty_state(self) -> None:
        self._update_hint()
        self.empty_state.setVisible(not self._views)
