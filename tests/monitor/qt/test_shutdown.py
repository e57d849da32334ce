"""Ctrl+C and SIGTERM close the monitor the way File › Quit does.

The real app runs as a subprocess (``python -m monitor``, offscreen, with demo traffic and a
recording in a temporary folder); once its recording has frames it gets the signal, and must
exit promptly with 128 + the signal's number, print no traceback, and leave its recording
closed: no ``-wal``/``-shm`` beside it, its end time written, readable with
``Recording.open``. In-process, the same path closes a window that has a modal dialog open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from monitor._qt.app import close_on_stop_signal
from monitor._qt.main_window import MainWindow
from monitor.services.recording import Recording, RecordingError
from monitor.stop_signals import StopSignals
from tests.conftest import ROOT, seconds

from .test_main_window import ScriptedWorkspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: Signal to exit, in seconds. The promise to users is 2 s (measured: 0.2-0.4 s); a test on a
#: slow, shared 2-core machine allows three times that.
EXIT_BOUND = 6.0
#: how long the app may take to start and record its first frames
START_TIMEOUT = 60.0


@dataclass
class RunningApp:
    process: subprocess.Popen[bytes]
    recordings: Path
    stderr: Path

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RunningApp]:
    """The monitor with its demo traffic, in a process group of its own (as a terminal
    runs a job, so a signal to the group reaches the app and its child processes)."""
    recordings = tmp_path / "recordings"
    drop = {"DISPLAY", "WAYLAND_DISPLAY"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AGENT_")}
    env |= {
        "QT_QPA_PLATFORM": "offscreen",
        "AGENT_MONITOR_RECORDINGS_DIR": str(recordings),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    running = RunningApp(process, recordings, stderr)
    try:
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _poll(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + seconds(timeout)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds(timeout):g}s waiting for {what}")
        time.sleep(0.05)


def _recording_with_frames(folder: Path) -> Path | None:
    for path in folder.glob("recording-*.sqlite"):
        try:
            with Recording.open(path) as recording:  # closed again at once: see below
                if recording.frame_count > 0:
                    return path
        except RecordingError:
            pass  # not created or initialised yet
    return None


def _wait_until_recording(app: RunningApp) -> Path:
    def recording() -> Path | None:
        if app.process.poll() is not None:
            raise AssertionError(f"the app exited early: {app.errors()[-3000:]}")
        return _recording_with_frames(app.recordings)

    _poll(recording, START_TIMEOUT, "the app to record demo traffic")
    path = recording()
    assert path is not None
    return path


def _exits_within(app: RunningApp, bound: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        code = app.process.wait(timeout=seconds(bound))
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"still running {seconds(bound):g}s after the signal; stderr: {app.errors()[-3000:]}"
        ) from None
    return code, time.monotonic() - started


def _assert_closed_cleanly(app: RunningApp, path: Path) -> None:
    errors = app.errors()
    assert "Traceback" not in errors, f"a traceback on stderr:\n{errors[-5000:]}"
    leftovers = sorted(p.name for p in app.recordings.iterdir() if p.name != path.name)
    assert not leftovers, f"the recording was not closed, these are left beside it: {leftovers}"
    with Recording.open(path) as recording:
        assert recording.frame_count > 0
        assert recording.meta.ended_at is not None, "the recording's end was never written"
    # and nothing of the app is left running (its child processes end with it)
    _poll(lambda: not _group_alive(app.process.pid), 5, "the app's child processes to exit")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-in-its-terminal", "sigterm-to-the-app"],
)
def test_a_stop_signal_closes_the_app_and_its_recording(
    app: RunningApp, signum: int, to_group: bool
) -> None:
    path = _wait_until_recording(app)
    if to_group:  # Ctrl+C: the terminal signals the whole job, child processes too
        os.killpg(app.process.pid, signum)
    else:  # kill PID, a service manager
        os.kill(app.process.pid, signum)
    code, took = _exits_within(app, EXIT_BOUND)
    assert code == 128 + signum, f"exit code {code} after {signal.Signals(signum).name}"
    _assert_closed_cleanly(app, path)
    print(f"{signal.Signals(signum).name}: exited {took:.2f}s after the signal")


@pytest.mark.slow
def test_ctrl_c_again_and_again_while_closing_changes_nothing(app: RunningApp) -> None:
    path = _wait_until_recording(app)
    started = time.monotonic()
    presses = 0
    # an impatient user: Ctrl+C every 10 ms until the app is gone, through all of its close
    while app.process.poll() is None and time.monotonic() - started < seconds(EXIT_BOUND):
        os.killpg(app.process.pid, signal.SIGINT)
        presses += 1
        time.sleep(0.01)
    code, _took = _exits_within(app, EXIT_BOUND)
    assert presses > 1, "the app was gone before a second Ctrl+C"
    assert code == 130, f"exit code {code} after {presses} Ctrl+C"
    _assert_closed_cleanly(app, path)


# --- in-process: the path a signal takes through the window ----------------------------


@pytest.fixture
def stop_signals() -> Iterator[StopSignals]:
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stop = StopSignals().install()
    try:
        yield stop
    finally:
        stop.uninstall()
        # a stop signal leaves the signals ignored (the app is exiting): pytest's are back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_sigterm_closes_the_window_even_with_a_modal_dialog_open(
    qtbot: QtBot, stop_signals: StopSignals
) -> None:
    workspace = ScriptedWorkspace()
    window = MainWindow(workspace)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    notifier = close_on_stop_signal(window, stop_signals)
    dialog = QDialog(window)
    dialog.setModal(True)
    # if the signal did not end the dialog, the test must not hang in it
    rescue = QTimer(singleShot=True, interval=int(seconds(10) * 1000))
    rescue.timeout.connect(lambda: dialog.done(QDialog.DialogCode.Accepted))
    try:
        QTimer.singleShot(0, lambda: os.kill(os.getpid(), signal.SIGTERM))  # inside exec()
        rescue.start()
        result = dialog.exec()  # a nested event loop, as File › Connect… runs one
        rescue.stop()

        assert result == QDialog.DialogCode.Rejected, "the dialog was still open 10 s after SIGTERM"
        qtbot.waitUntil(lambda: not window.isVisible())
        assert stop_signals.signum == signal.SIGTERM
        assert workspace.stops >= 1, "the window closed without stopping its workspace"
    finally:
        notifier.setEnabled(False)  # before the fixture closes the socket it watches
