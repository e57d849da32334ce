"""``agent-runtime serve`` as a service: run until SIGTERM or SIGINT, then drain.

systemd, Docker and Kubernetes stop a service with SIGTERM; a person at a terminal sends
SIGINT (Ctrl-C). Both start the same drain (``RuntimeServer.stop``): no new connections,
every run cancelled and its ``agent_completed`` written, every connection closed with 1001
(going away), exit status 0. The drain is bounded by ``DRAIN_TIMEOUT_S``; a second signal
during it ends the process at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from .config import RuntimeConfig
from .server import RuntimeServer

log = logging.getLogger(__name__)

#: how long runs get to end and their last frames to be written once a stop signal came;
#: after it, connections are closed anyway (which takes at most twice the config's
#: ``close_timeout`` more). Kubernetes waits 30 s after SIGTERM before SIGKILL by default.
DRAIN_TIMEOUT_S = 10.0
#: how long the process may take to exit after the drain and the closing before it is ended
#: with ``os._exit``: a task that ignores cancellation must not keep a stopped service alive
EXIT_GRACE_S = 5.0
#: exit status when that happens (a stop that had to be forced)
EXIT_STUCK = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_server(config: RuntimeConfig, drain_timeout: float = DRAIN_TIMEOUT_S) -> bool:
    """Serve until SIGTERM or SIGINT, then drain within ``drain_timeout`` seconds; return
    whether everything drained in time.

    Meant as the main coroutine of a process: once a signal came, the process is ended if it
    has not exited ``EXIT_GRACE_S`` after the drain's bound.
    """
    loop = asyncio.get_running_loop()
    stop_signal: asyncio.Future[signal.Signals] = loop.create_future()
    # after the drain, closing takes two close_timeouts at most: the connections' close
    # handshakes, then the server's own closing
    exit_bound = drain_timeout + 2 * config.close_timeout + EXIT_GRACE_S

    def on_signal(signum: signal.Signals) -> None:
        if stop_signal.done():
            log.warning("%s during the drain: exiting at once", signum.name)
            _exit_now(128 + signum.value)
        log.info(
            "%s received: draining (no new connections; runs cancelled and given %gs to "
            "end, then every connection closed)",
            signum.name,
            drain_timeout,
        )
        stop_signal.set_result(signum)
        _exit_after(exit_bound)

    restore = _handle_stop_signals(loop, on_signal)
    server = RuntimeServer(config)
    try:
        await server.start()
        await stop_signal
    finally:
        drained = await server.stop(drain_timeout)
        restore()
    if drained:
        log.info("drained: every run ended and every connection closed")
    return drained


def _handle_stop_signals(
    loop: asyncio.AbstractEventLoop, handler: Callable[[signal.Signals], None]
) -> Callable[[], None]:
    """Call ``handler`` on the loop for each stop signal; return what undoes it."""
    try:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, handler, signum)
    except NotImplementedError:  # Windows' event loops: plain handlers hand over instead
        return _handle_stop_signals_portably(loop, handler)

    def restore() -> None:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)

    return restore


def _handle_stop_signals_portably(
    loop: asyncio.AbstractEventLoop, handler: Callable[[signal.Signals], None]
) -> Callable[[], None]:
    previous = {
        signum: signal.signal(
            signum,
            lambda number, _frame: loop.call_soon_threadsafe(handler, signal.Signals(number)),
        )
        for signum in STOP_SIGNALS
    }

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def _exit_after(seconds: float) -> None:
    """End the process ``seconds`` from now unless it has exited by then."""
    timer = threading.Timer(seconds, _stuck, args=(seconds,))
    timer.daemon = True  # never what keeps the process alive
    timer.start()


def _stuck(seconds: float) -> NoReturn:
    log.error("still running %gs after the stop signal: exiting now", seconds)
    _exit_now(EXIT_STUCK)


def _exit_now(status: int) -> NoReturn:
    """Exit without unwinding (a stuck task cannot hold it), the log flushed first."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(status)
