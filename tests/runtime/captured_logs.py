"""``CapturedLogs``: every record of the runtime's loggers from DEBUG up, stamped with its
ids as the real handlers stamp them, for tests that ask what was logged and with which ids.

Caught from DEBUG up, so a record demoted below WARNING is named in a failure rather than
just missing (the ``runtime_logs`` fixture, ``tests/conftest.py``, installs one).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from runtime.log_context import CorrelationFilter


class CapturedLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(CorrelationFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of_run(self, run_id: str) -> list[logging.LogRecord]:
        """The records a search by ``run_id`` finds."""
        return [r for r in self.records if getattr(r, "run_id", None) == run_id]

    def find(self, logger: str, *words: str) -> list[logging.LogRecord]:
        """The records of ``logger`` whose message has every one of ``words``."""
        return [
            r
            for r in self.records
            if r.name == logger and all(word in r.getMessage() for word in words)
        ]

    def described(self, logger: str, most: int = 10) -> list[str]:
        """The first ``most`` records of ``logger``, described."""
        return [describe(r) for r in self.records if r.name == logger][:most]


def describe(record: logging.LogRecord) -> str:
    """A record as a failure message shows it: level, logger, message and its ids."""
    ids = ", ".join(
        f"{name}={getattr(record, name, None)}" for name in ("user_id", "run_id", "connection_id")
    )
    return f"{record.levelname} {record.name}: {record.getMessage()} [{ids}]"


@contextlib.contextmanager
def capturing(logger_name: str = "runtime") -> Iterator[CapturedLogs]:
    """Capture ``logger_name``'s records (and its children's) from DEBUG up for the block."""
    handler = CapturedLogs()
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
