"""``ReplayBar``: play/pause, speed, a scrubber and the position of a recording's replay.

A thin view over ``monitor.model.recording.Replay``: a ``QTimer`` calls ``replay.pump`` every
``TICK_MS`` while the replay plays or catches up with a seek (each pump feeds at most
~20 ms of frames, so the window never freezes) and stops when there is nothing to do. The
scrubber runs over the whole recording, above a strip of its activity (frames per slice of
time, one pass over the file's time index), so busy stretches are easy to find.

The window listens to ``session_replaced`` (a backward seek starts a fresh session: rebuild
the views over it) and ``position_changed`` (the replay's "now", for the plots).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractSlider,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from monitor.model.session import ObservationSession
from monitor.services.recording import SPEEDS, Replay, speed_label

from . import theme
from .icons import icon

#: how often the timer pumps the replay (ms)
TICK_MS = 30
#: scrubber resolution
SCRUB_STEPS = 1000
#: slices of the activity strip
ACTIVITY_BINS = 400


def clock_text(seconds: float) -> str:
    """``1:02:03.4``, ``02:03.4`` — elapsed recording time."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes):02d}:{secs:04.1f}"


class ActivityStrip(QWidget):
    """Frames per slice of the recording, and where the replay is."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.progress = 0.0
        self.setFixedHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_counts(self, counts: npt.NDArray[np.int64]) -> None:
        self.counts = counts
        self.update()

    def set_progress(self, progress: float) -> None:
        self.progress = min(max(progress, 0.0), 1.0)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.rect()
        painter.fillRect(rect, QColor(theme.BASE_ALT))
        counts = self.counts
        if counts.size and counts.max() > 0:
            width = rect.width() / counts.size
            heights = np.sqrt(counts / counts.max()) * rect.height()  # sqrt: quiet parts show
            played = self.progress * counts.size
            for i, h in enumerate(heights):
                if h <= 0:
                    continue
                colour = QColor(theme.ACCENT if i < played else theme.NEUTRAL)
                painter.fillRect(QRectF(i * width, rect.height() - h, width, h), colour)
        painter.setPen(QColor(theme.TEXT))
        x = int(self.progress * (rect.width() - 1))
        painter.drawLine(x, 0, x, rect.height())
        painter.end()


class ReplayBar(QWidget):
    """Controls for one ``Replay`` (``set_replay``); drives it with its own timer."""

    #: the replay position (recording time, Unix seconds) after each step
    position_changed = Signal(float)
    #: a backward seek replaced the replay's session with this fresh one
    session_replaced = Signal(object)
    #: playing (True) or paused (False)
    playing_changed = Signal(bool)
    #: the replay reached the end of the recording
    finished = Signal()

    def __init__(
        self,
        replay: Replay | None = None,
        parent: QWidget | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.replay: Replay | None = None
        self._clock = clock
        self._dragging = False
        self._was_finished = False
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._on_tick)
        self._build()
        self.set_replay(replay)

    def _build(self) -> None:
        self.play_button = QToolButton()
        self.play_button.setIcon(icon("play"))
        self.play_button.setToolTip("Play / pause the replay")
        self.play_button.clicked.connect(self.toggle)

        self.speed_combo = QComboBox()
        for speed in SPEEDS:
            self.speed_combo.addItem(speed_label(speed), speed)
        self.speed_combo.setToolTip(
            "Replay speed; stall and gap watchdogs judge recorded time, so findings are "
            "the same at every speed"
        )
        self.speed_combo.currentIndexChanged.connect(self._on_speed_chosen)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SCRUB_STEPS)
        self.slider.setPageStep(SCRUB_STEPS // 20)
        self.slider.setToolTip("Drag to jump to a moment of the recording")
        self.slider.sliderPressed.connect(self._on_slider_pressed)
        self.slider.sliderReleased.connect(self._on_slider_released)
        self.slider.actionTriggered.connect(self._on_slider_action)

        self.activity = ActivityStrip()
        self.position_label = QLabel()
        self.position_label.setMinimumWidth(220)
        self.problems_label = QLabel()
        self.problems_label.setStyleSheet(f"color: {theme.WARN};")
        self.problems_label.setVisible(False)

        scrubber = QVBoxLayout()
        scrubber.setSpacing(0)
        scrubber.setContentsMargins(0, 0, 0, 0)
        scrubber.addWidget(self.activity)
        scrubber.addWidget(self.slider)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.play_button)
        layout.addWidget(self.speed_combo)
        layout.addLayout(scrubber, 1)
        layout.addWidget(self.position_label)
        layout.addWidget(self.problems_label)

    # --- the replay -------------------------------------------------------------------

    def set_replay(self, replay: Replay | None, problems: list[str] | None = None) -> None:
        """Control ``replay`` (None: nothing); ``problems`` with its input are shown."""
        if self.replay is not None:
            self.replay.pause()
            self.replay.session_listeners.remove(self._on_session_replaced)
        self.replay = replay
        self.timer.stop()
        enabled = replay is not None
        for widget in (self.play_button, self.speed_combo, self.slider):
            widget.setEnabled(enabled)
        self.set_problems(problems or [])
        if replay is None:
            self.activity.set_counts(np.zeros(0, dtype=np.int64))
            self._show()
            return
        replay.session_listeners.append(self._on_session_replaced)
        replay.set_speed(float(self.speed_combo.currentData()))
        self.activity.set_counts(replay.recording.activity(ACTIVITY_BINS))
        self._was_finished = replay.finished
        self._show()

    def set_problems(self, problems: list[str]) -> None:
        """Show that part of the input could not be read (details in the tooltip)."""
        self.problems_label.setVisible(bool(problems))
        self.problems_label.setText(f"⚠ {len(problems)} input problem(s)" if problems else "")
        self.problems_label.setToolTip("\n".join(problems))

    @property
    def playing(self) -> bool:
        return self.replay is not None and self.replay.playing

    def play(self) -> None:
        if self.replay is None:
            return
        self.replay.play()
        self._was_finished = False
        self.timer.start()
        self._show()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.replay is None:
            return
        self.replay.pause()
        self._show()
        self.playing_changed.emit(False)

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def set_speed(self, speed: float) -> None:
        """Choose a speed (one of ``SPEEDS``), as the combo box does."""
        index = self.speed_combo.findData(speed)
        if index < 0:
            raise ValueError(f"not an offered speed: {speed}")
        self.speed_combo.setCurrentIndex(index)

    def seek(self, position: float) -> None:
        """Jump to ``position`` (recording time); fed in over the next timer ticks."""
        if self.replay is None:
            return
        self.replay.seek(position)
        self._was_finished = False
        self.timer.start()
        self._show()

    def seek_fraction(self, fraction: float) -> None:
        if self.replay is not None:
            self.seek(self.replay.start + fraction * self.replay.duration)

    # --- handlers ---------------------------------------------------------------------

    def _on_tick(self) -> None:
        replay = self.replay
        if replay is None:
            self.timer.stop()
            return
        replay.pump(self._clock())
        self._show()
        self.position_changed.emit(replay.position)
        if replay.finished and not self._was_finished:
            self._was_finished = True
            self.timer.stop()
            self.playing_changed.emit(False)
            self.finished.emit()
        elif not replay.playing and not replay.seeking:
            self.timer.stop()  # paused and caught up: nothing to do until the user acts

    def _on_speed_chosen(self, _index: int) -> None:
        if self.replay is not None:
            self.replay.set_speed(float(self.speed_combo.currentData()))

    def _on_slider_pressed(self) -> None:
        self._dragging = True

    def _on_slider_released(self) -> None:
        self._dragging = False
        self.seek_fraction(self.slider.value() / SCRUB_STEPS)

    def _on_slider_action(self, action: int) -> None:
        """Page steps and keys move the scrubber without a drag: seek at once."""
        if action == QAbstractSlider.SliderAction.SliderMove.value or self._dragging:
            return
        self.seek_fraction(self.slider.sliderPosition() / SCRUB_STEPS)

    def _on_session_replaced(self, session: ObservationSession) -> None:
        self.session_replaced.emit(session)

    # --- display ----------------------------------------------------------------------

    def _show(self) -> None:
        replay = self.replay
        self.play_button.setIcon(icon("pause" if self.playing else "play"))
        self.play_button.setText("Pause" if self.playing else "Play")
        if replay is None:
            self.position_label.setText("no recording")
            return
        if not self._dragging:
            self.slider.blockSignals(True)
            self.slider.setValue(round(replay.progress * SCRUB_STEPS))
            self.slider.blockSignals(False)
        self.activity.set_progress(replay.progress)
        where = (
            f"{clock_text(replay.position - replay.start)} / {clock_text(replay.duration)}"
            f" · {replay.frames_fed:,} / {replay.recording.frame_count:,} frames"
        )
        if replay.seeking:
            where += " · seeking…"
        elif replay.finished:
            where += " · end"
        self.position_label.setText(where)
