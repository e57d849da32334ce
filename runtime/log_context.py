"""The ids that tie a log record to a user, a connection, a run and a tool call.

They are set once, where each context starts (a connection's handler, a run's task, a tool
call), in a context variable: asyncio copies it into every task started from there (a
run's task inherits the connection that started it, a connection's writer its connection),
so no call site passes ids by hand and none can forget them. ``CorrelationFilter`` stamps
every record with the ids in effect when it was made; the formatters in
``runtime.log_format`` write them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace

#: the ids a record can carry, in the order the formatters write them
CORRELATION_FIELDS = (
    "user_id",
    "thread_id",
    "run_id",
    "agent_name",
    "tool_call_id",
    "connection_id",
)


@dataclass(frozen=True, slots=True)
class Correlation:
    """The ids in effect; None where there is none (outside any run, no connection …)."""

    user_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    agent_name: str | None = None
    tool_call_id: str | None = None
    connection_id: str | None = None

    @property
    def scope(self) -> str:
        """What the record was made in: ``tool``, ``run``, ``connection`` or ``runtime``
        (outside any run and connection)."""
        if self.tool_call_id is not None:
            return "tool"
        if self.run_id is not None:
            return "run"
        if self.connection_id is not None:
            return "connection"
        return "runtime"


#: outside any connection and run (frozen: safe to share as the default)
NO_CORRELATION = Correlation()
_current: ContextVar[Correlation] = ContextVar("aem_correlation", default=NO_CORRELATION)


def current() -> Correlation:
    return _current.get()


@contextlib.contextmanager
def correlated(**ids: str | None) -> Iterator[Correlation]:
    """Add ``ids`` to the ids in effect for the block (and every task started in it)."""
    unknown = set(ids) - {f.name for f in fields(Correlation)}
    if unknown:
        raise TypeError(f"not a correlation id: {', '.join(sorted(unknown))}")
    merged = replace(_current.get(), **ids)
    token = _current.set(merged)
    try:
        yield merged
    finally:
        _current.reset(token)


class CorrelationFilter(logging.Filter):
    """Puts the ids in effect on each record (``record.user_id`` … and ``record.scope``);
    ids a record already carries (``extra=``) are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _current.get()
        for name in CORRELATION_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(ids, name))
        if not hasattr(record, "scope"):
            record.scope = ids.scope
        return True
