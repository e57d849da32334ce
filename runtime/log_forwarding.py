"""Warnings and errors logged during a run, sent to observers as ``log`` frames.

A run's task forwards its records (``forwarding_logs``, entered where the run's ids are set):
``RunLogHandler``, on the root logger, turns every WARNING-or-worse record made in that
task, or in any task or thread started from it, into a ``RunLog`` with the record's ids and
hands it to the run's runtime. The runtime that runs the run is in the context too, so
several runtimes in one process (tests, the monitor's embedded one) each get their own runs'
records, and records made outside any run go nowhere but the log.

Forwarding never publishes from inside the logging call: the frame is published by a
callback on the run's event loop, in an empty context, so a warning logged while an event
is being sent (a slow connection closed …) cannot interleave with that send, and a warning
logged while a ``log`` frame is published is not forwarded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .log_context import CorrelationFilter
from .protocol import RunLog

#: how many records of one run reach observers; the runtime's own log keeps all of them
MAX_FORWARDED_PER_RUN = 100
#: the longest message forwarded, in characters (the start is kept)
MAX_MESSAGE_CHARS = 4000
#: the longest traceback forwarded, in characters (the end is kept: it names the error)
MAX_EXCEPTION_CHARS = 16_000

Publish = Callable[[RunLog], None]


@dataclass(eq=False, slots=True)
class _RunForwarding:
    """Where one run's records go, and how many went."""

    publish: Publish
    loop: asyncio.AbstractEventLoop
    run_id: str
    forwarded: int = 0


_forwarding: contextvars.ContextVar[_RunForwarding | None] = contextvars.ContextVar(
    "aem_run_log_forwarding", default=None
)


@contextlib.contextmanager
def forwarding_logs(run_id: str, publish: Publish) -> Iterator[None]:
    """Forward the warnings and errors of the block (a run's task) to ``publish``, called
    on the running event loop."""
    _install()
    token = _forwarding.set(_RunForwarding(publish, asyncio.get_running_loop(), run_id))
    try:
        yield
    finally:
        _forwarding.reset(token)


def _clip_end(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _clip_start(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RunLogHandler(logging.Handler):
    """Forwards WARNING-or-worse records made during a run to that run's runtime."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._ids = CorrelationFilter()
        # Formats tracebacks only; the message is the record's own.
        self.setFormatter(logging.Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        target = _forwarding.get()
        if target is None:
            return  # outside any run: the log has it, observers do not
        try:
            self._ids.filter(record)
            run_id = getattr(record, "run_id", None) or target.run_id
            if target.forwarded >= MAX_FORWARDED_PER_RUN:
                return
            target.forwarded += 1
            if target.forwarded == MAX_FORWARDED_PER_RUN:
                entry = _limit_notice(record, run_id)
            else:
                entry = self._entry(record, run_id)
        except Exception:  # a record that cannot be formatted: logging's own report
            self.handleError(record)
            return
        # RuntimeError: the run's loop has closed, nobody is left to observe it.
        with contextlib.suppress(RuntimeError):
            # An empty context: a warning logged while publishing is not forwarded again.
            target.loop.call_soon_threadsafe(target.publish, entry, context=contextvars.Context())

    def _entry(self, record: logging.LogRecord, run_id: str) -> RunLog:
        exception = None
        if record.exc_info:
            exception = self.formatter.formatException(record.exc_info)  # type: ignore[union-attr]
        elif record.exc_text:
            exception = record.exc_text
        return RunLog(
            level=record.levelname,
            logger=record.name,
            message=_clip_start(record.getMessage(), MAX_MESSAGE_CHARS),
            timestamp=record.created,
            user_id=getattr(record, "user_id", None) or "",
            run_id=run_id,
            thread_id=getattr(record, "thread_id", None),
            agent_name=getattr(record, "agent_name", None),
            tool_call_id=getattr(record, "tool_call_id", None),
            connection_id=getattr(record, "connection_id", None),
            exception=None if exception is None else _clip_end(exception, MAX_EXCEPTION_CHARS),
        )


def _limit_notice(record: logging.LogRecord, run_id: str) -> RunLog:
    """The last record of a run that observers get: says the rest are in the log only."""
    return RunLog(
        level="WARNING",
        logger=__name__,
        message=(
            f"run {run_id} logged {MAX_FORWARDED_PER_RUN} warnings and errors: the rest are "
            "in the runtime's log only"
        ),
        timestamp=record.created,
        user_id=getattr(record, "user_id", None) or "",
        run_id=run_id,
        thread_id=getattr(record, "thread_id", None),
        agent_name=getattr(record, "agent_name", None),
        connection_id=getattr(record, "connection_id", None),
    )


_handler = RunLogHandler()


def _install() -> None:
    """Put the forwarding handler on the root logger: once, and again after a logging
    setup replaced the root's handlers (``runtime.log_format.configure_logging``)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
