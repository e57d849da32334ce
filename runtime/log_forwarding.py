"""Warnings and errors logged during a run, sent to observers as ``log`` frames.

A run's task forwards its records (``forwarding_logs``, entered where the run's ids are set):
every WARNING-or-worse record made in that task, or in any task or thread started from it,
becomes a ``RunLog`` with the ids in effect and goes to the run's runtime. Records are caught
as they are made (a log record factory), whatever logger makes them and whatever handlers
the process has. The runtime that runs the run is in the context too, so
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
from dataclasses import dataclass, replace
from typing import Any

from .log_context import Correlation, current
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


def _forwarded(record: logging.LogRecord) -> logging.LogRecord:
    """Hand ``record`` to its run's runtime if it is a warning or worse made during a run;
    return it as made."""
    if record.levelno < logging.WARNING:
        return record
    target = _forwarding.get()
    if target is None or target.forwarded >= MAX_FORWARDED_PER_RUN:
        return record  # outside any run (the log has it, observers do not), or past the cap
    try:
        ids = current()
        run_id = ids.run_id or target.run_id
        target.forwarded += 1
        if target.forwarded == MAX_FORWARDED_PER_RUN:
            entry = _limit_notice(record, ids, run_id)
        else:
            entry = _entry(record, ids, run_id)
    except Exception:  # a record that cannot be formatted: its handlers say so
        return record
    # RuntimeError: the run's loop has closed, nobody is left to observe it.
    with contextlib.suppress(RuntimeError):
        # An empty context: a warning logged while publishing is not forwarded again.
        target.loop.call_soon_threadsafe(target.publish, entry, context=contextvars.Context())
    return record


_tracebacks = logging.Formatter()


def _entry(record: logging.LogRecord, ids: Correlation, run_id: str) -> RunLog:
    exception = None
    if record.exc_info:
        exception = _tracebacks.formatException(record.exc_info)
    return RunLog(
        level=record.levelname,
        logger=record.name,
        message=_clip_start(record.getMessage(), MAX_MESSAGE_CHARS),
        timestamp=record.created,
        user_id=ids.user_id or "",
        run_id=run_id,
        thread_id=ids.thread_id,
        agent_name=ids.agent_name,
        tool_call_id=ids.tool_call_id,
        connection_id=ids.connection_id,
        exception=None if exception is None else _clip_end(exception, MAX_EXCEPTION_CHARS),
    )


def _limit_notice(record: logging.LogRecord, ids: Correlation, run_id: str) -> RunLog:
    """The last record of a run that observers get: says the rest are in the log only."""
    return replace(
        _entry(record, ids, run_id),
        level="WARNING",
        logger=__name__,
        message=(
            f"run {run_id} logged {MAX_FORWARDED_PER_RUN} warnings and errors: the rest are "
            "in the runtime's log only"
        ),
        tool_call_id=None,
        exception=None,
    )


class _ForwardingFactory:
    """The log record factory once forwarding is installed: the previous factory's record,
    passed through ``_forwarded``."""

    def __init__(self, made_by: Callable[..., logging.LogRecord]) -> None:
        self.made_by = made_by

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return _forwarded(self.made_by(*args, **kwargs))


def _install() -> None:
    """Have every log record pass ``_forwarded`` as it is made (once). A record factory,
    not a handler: a handler on the root logger would silence Python's last-resort output
    of warnings in a process that configured no logging (the monitor, a script)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _ForwardingFactory):
        logging.setLogRecordFactory(_ForwardingFactory(factory))
