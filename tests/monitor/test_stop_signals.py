"""``StopSignals``: SIGINT and SIGTERM noted and reported on a socket, never raised, in this
(real) process; what the app does with them is ``tests/monitor/qt/test_shutdown.py``."""

from __future__ import annotations

import select
import signal
import sys
from collections.abc import Iterator

import pytest

from monitor.stop_signals import StopSignals, signal_exit_code

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """Whatever a test does to the signals, pytest's own are back afterwards."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    signal.set_wakeup_fd(wakeup)


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.usefixtures("restore_signals")
def test_a_stop_signal_is_noted_and_wakes_the_socket_instead_of_raising() -> None:
    stop = StopSignals().install()
    try:
        assert not _readable(stop.wakeup_fd())
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt
        assert stop.signum == signal.SIGINT
        assert _readable(stop.wakeup_fd()), "the event loop would not wake up"
        assert stop.drain() == [signal.SIGINT]
        assert not _readable(stop.wakeup_fd())

        signal.raise_signal(signal.SIGTERM)  # not the end of the process either
        signal.raise_signal(signal.SIGTERM)
        assert stop.drain() == [signal.SIGTERM, signal.SIGTERM]
        assert stop.signum == signal.SIGINT, "the first stop signal is the one that counts"
    finally:
        stop.uninstall()
    # the process is exiting because of it: the signals stay swallowed from here on
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


@pytest.mark.usefixtures("restore_signals")
def test_without_a_stop_signal_uninstall_gives_everything_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    signal.set_wakeup_fd(-1)  # none, as in the app before it installs its own
    stop = StopSignals().install()
    installed = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(installed)
    assert installed != -1 and signal.getsignal(signal.SIGINT) is not before
    stop.uninstall()
    stop.uninstall()  # twice is harmless
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1, "the wakeup socket was left installed"


@pytest.mark.usefixtures("restore_signals")
def test_a_signal_the_process_was_started_ignoring_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a script's background job
    stop = StopSignals().install()
    try:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)
        assert stop.signum is None and stop.drain() == []
    finally:
        stop.uninstall()


def test_the_exit_code_is_what_a_shell_reports_for_the_signal() -> None:
    assert signal_exit_code(signal.SIGINT) == 130
    assert signal_exit_code(signal.SIGTERM) == 143
