"""``StopSignals``: SIGINT (Ctrl+C) and SIGTERM recorded as a request to stop, never raised.

Python runs a signal handler only when the interpreter next runs Python code in the main
thread, and there the default SIGINT handler raises ``KeyboardInterrupt`` wherever that
happens to be: in the GUI, inside whichever Qt slot ran next (printed and lost there, so the
app kept running), and SIGTERM's default ends the process before the recording is closed.
Here the handler only notes the signal, and ``signal.set_wakeup_fd`` makes the interpreter's
C-level handler write the signal's number to a socket at once: an event loop watches
``wakeup_fd`` (the GUI: a ``QSocketNotifier``) and stops the app the normal way from there.

Qt-free, so that ``agent-monitor`` installs it before loading Qt: a Ctrl+C while the app
starts is not raised inside some library's import either (where one may swallow it).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Self

log = logging.getLogger(__name__)

#: what asks the app to stop: Ctrl+C in its terminal, and ``kill``, logout, service managers
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def signal_exit_code(signum: int) -> int:
    """The exit code after ``signum`` stopped the app: 128 + its number (130 for SIGINT,
    143 for SIGTERM), what a shell reports for a process that signal ended."""
    return 128 + signum


class StopSignals:
    """Notes SIGINT and SIGTERM instead of letting them raise or kill.

    ``signum`` is the first one received. ``install()`` takes the signals over (one this
    process was started with ignored, as a shell does for a script's background jobs, stays
    ignored); ``uninstall()`` gives them back, except after a stop signal came: then they
    stay ignored while the process finishes exiting, since it is already doing what they
    ask. Use it from the main thread, which owns signals.
    """

    def __init__(self) -> None:
        #: the first stop signal received (None: none yet)
        self.signum: int | None = None
        self._previous: dict[int, _Handler] = {}
        self._previous_wakeup = -1
        self._installed = False
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)  # set_wakeup_fd needs it; drain() reads until empty

    @property
    def installed(self) -> bool:
        return self._installed

    def wakeup_fd(self) -> int:
        """Readable once a stop signal arrived: watch it, then call ``drain()``."""
        return self._reader.fileno()

    def install(self) -> Self:
        if self._installed:
            return self
        self._previous_wakeup = signal.set_wakeup_fd(
            self._writer.fileno(), warn_on_full_buffer=False
        )
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._on_signal)
        self._installed = True
        return self

    def uninstall(self) -> None:
        """Give the signals back (see the class); safe to call twice."""
        if not self._installed:
            return
        self._installed = False
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self.signum is not None else previous)
        self._previous.clear()
        signal.set_wakeup_fd(self._previous_wakeup)
        self._reader.close()
        self._writer.close()

    def drain(self) -> list[int]:
        """Empty the wakeup socket; returns the stop signals it reported, oldest first.

        The socket's bytes are taken as signals too, not only what the handler noted: the
        handler runs only when Python next runs in the main thread, maybe after this.
        """
        data = b""
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := self._reader.recv(64):
                data += chunk
        received = [signum for signum in data if signum in self._previous]
        for signum in received:
            self._note(signum)
        return received

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # It may run in the middle of any code of the main thread: note the signal, no more.
        self._note(signum)

    def _note(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
