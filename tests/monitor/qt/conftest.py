"""Fixtures for the monitor's widget tests: offscreen Qt, isolated settings and recordings
folder, a themed app, a leak check for top-level windows, and a qasync event loop for
GUI-thread coroutines."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Qt: widget tests never need (or touch) a real display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import qasync
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication

from monitor._qt.theme import apply_theme


@pytest.fixture(scope="session", autouse=True)
def themed_app(qapp: QApplication) -> QApplication:
    """The one QApplication, themed like the real app (pyqtgraph colours included)."""
    apply_theme(qapp)
    return qapp


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path) -> Iterator[Path]:
    """Point every QSettings at a fresh folder: tests never read or write the user's."""
    folder = tmp_path / "settings"
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def isolated_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``recordings_dir()`` at a fresh folder: tests never write the user's data dir."""
    from monitor.services.recording.storage import ENV_DIR

    folder = tmp_path / "recordings"
    monkeypatch.setenv(ENV_DIR, str(folder))
    return folder


@pytest.fixture(autouse=True)
def collected_on_the_gui_thread(themed_app: QApplication) -> Iterator[None]:
    """After each widget test, collect its garbage here, on the GUI thread, and run the
    deletions it queued. Otherwise a window's reference cycles wait for whichever later
    collection comes first, perhaps on a runtime's or a worker's thread in another test,
    and Qt objects destroyed off the GUI thread crash a later ``processEvents``."""
    yield
    gc.collect()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    themed_app.processEvents()
    # What is alive now stays out of later collections: each test's collection then looks
    # only at what that test made (a full one per test cost the suite half a minute).
    gc.freeze()


@pytest.fixture(autouse=True)
def no_leaked_windows(themed_app: QApplication) -> Iterator[None]:
    """Fail a test that leaves a visible top-level window behind (napari's habit).

    Autouse fixtures are set up before ``qtbot``, so this check runs after ``qtbot`` has
    closed the widgets registered with ``qtbot.addWidget``.
    """
    before = {id(w) for w in themed_app.topLevelWidgets()}
    yield
    themed_app.processEvents()
    leaked = [w for w in themed_app.topLevelWidgets() if w.isVisible() and id(w) not in before]
    for widget in leaked:
        widget.close()
    assert not leaked, f"test left top-level windows open: {leaked}"


@pytest.fixture
def qasync_loop(themed_app: QApplication) -> Iterator[qasync.QEventLoop]:
    """An asyncio loop that *is* the Qt event loop, as in the app (``run_app``).

    ``loop.run_until_complete(coro)`` runs Qt's loop (so timers fire and widgets repaint)
    until ``coro`` is done. pytest-qt has no qasync fixture; this is ours.
    """
    loop = qasync.QEventLoop(themed_app)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)
