"""How the runtime writes its log: ``text`` for people, ``json`` (JSON Lines) for log
shippers and ``jq``.

Both carry the correlation ids of ``runtime.log_context``. A JSON line always has the same
fields, in the same order, ``null`` where a record has none, so a query like
``jq 'select(.run_id == "run_…")'`` finds a run's whole story and nothing else:

``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``, ``scope``
(``tool``, ``run``, ``connection`` or ``runtime``: outside any run), the ids, and
``exception`` (the traceback as one string, or ``null``).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from .log_context import CORRELATION_FIELDS, CorrelationFilter

LOG_FORMATS = ("text", "json")
#: the environment variable the CLI reads when ``--log-format`` is not given
LOG_FORMAT_ENV = "AGENT_RUNTIME_LOG_FORMAT"
#: how the text format names each id (short: they precede every message)
_TEXT_NAMES = {
    "user_id": "user",
    "thread_id": "thread",
    "run_id": "run",
    "agent_name": "agent",
    "tool_call_id": "tool",
    "connection_id": "conn",
}


def rfc3339(created: float) -> str:
    """A record's time as RFC 3339 in UTC with milliseconds, e.g.
    ``2026-12-06T15:40:01.123Z``."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, with a stable set of fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "scope": getattr(record, "scope", "runtime"),
        }
        for name in CORRELATION_FIELDS:
            line[name] = getattr(record, name, None)
        exception = None
        if record.exc_info:
            exception = self.formatException(record.exc_info)
        elif record.exc_text:
            exception = record.exc_text
        line["exception"] = exception
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger [run=… user=…]: message``; records outside any run and
    connection say ``[runtime]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        shown = [
            f"{_TEXT_NAMES[name]}={value}"
            for name in CORRELATION_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        record.ids = f"[{' '.join(shown)}]" if shown else "[runtime]"
        return super().format(record)


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """The root logger writes ``log_format`` to ``stream`` (stderr), every record stamped
    with the correlation ids in effect."""
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"--log-format / {LOG_FORMAT_ENV}: {log_format!r} is no log format: use "
            f"{' or '.join(LOG_FORMATS)}"
        )
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
