"""What the inspector lists: the store rows that pass an ``EventFilter``, and the one-line
summary and the pretty frame it shows of each.

Filtering by type, user, run and cluster node is vectorised over the store's columns; the
free-text search looks into the raw frame bytes (case-insensitive ``bytes.find``), which the
store keeps only for its newest ``raw_capacity`` rows, so a text search stops at the first
row without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from runtime.protocol import EventType
from runtime.protocol.codec import run_log_to_dict

from .run_logs import LogRecord
from .store import TYPE_CODE, EventStore


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What the inspector shows; ``None`` means "any"."""

    event_type: EventType | None = None
    user_id: str | None = None
    run_index: int | None = None
    #: the runtime cluster node that emitted the event
    node: str | None = None
    text: str = ""


def matching_rows(
    store: EventStore, flt: EventFilter, start: int, stop: int, want: int
) -> list[int]:
    """The newest ``want`` store rows in ``[start, stop)`` that pass ``flt``, oldest first.

    Call with the store lock held.
    """
    start = max(start, store.oldest_row)
    if stop <= start or want <= 0:
        return []
    columns = store.columns(start)
    count = stop - start
    rows = columns["row"][:count]
    mask = np.ones(count, dtype=bool)
    if flt.event_type is not None:
        mask &= columns["etype"][:count] == TYPE_CODE[flt.event_type]
    if flt.run_index is not None:
        mask &= columns["run"][:count] == flt.run_index
    if flt.user_id is not None:
        code = store.user_code(flt.user_id)
        mask &= columns["user"][:count] == (-1 if code is None else code)
    if flt.node is not None:
        node = store.nodes.code_of(flt.node)
        if node is None:
            mask[:] = False  # never seen: nothing matches (not even the rows without a node)
        else:
            mask &= columns["node"][:count] == node
    candidates = rows[mask]
    if not flt.text:
        return [int(r) for r in candidates[-want:]]
    needle = flt.text.lower().encode()
    found: list[int] = []
    for row in candidates[::-1]:  # newest first: stop as soon as we have enough
        raw = store.raw(int(row))
        if raw is None:
            break  # older rows have no raw frame either: nothing left to search
        if raw.lower().find(needle) >= 0:
            found.append(int(row))
            if len(found) == want:
                break
    found.reverse()
    return found


def summarize_event(event: dict[str, Any]) -> str:
    """A one-line description of an event's ``data`` for the table."""
    data = event.get("data") or {}
    kind = event.get("type")
    if kind == EventType.AGENT_STARTED:
        return str(data.get("input", ""))
    if kind == EventType.AGENT_THINKING:
        return f"step {data.get('step')}: {data.get('reasoning', '')}"
    if kind == EventType.TOOL_EXECUTING:
        return f"{data.get('tool_name')} ({data.get('tool_call_id')})"
    if kind == EventType.TOOL_COMPLETED:
        return f"{data.get('tool_name')} → {data.get('status')} in {data.get('duration_ms')} ms"
    if kind == EventType.AGENT_COMPLETED:
        return f"{data.get('status')} in {data.get('duration_ms')} ms"
    if kind == EventType.PARTIAL_RESULT:
        return str(data.get("content", ""))
    if kind == EventType.AGENT_ERROR:
        return f"{data.get('error_type')}: {data.get('message')}"
    return ""


def matching_logs(store: EventStore, flt: EventFilter, want: int) -> list[LogRecord]:
    """The newest ``want`` log records the store holds that pass ``flt``, newest first: its
    user, run, node and text (case-insensitive, in the message, logger and traceback). An
    event type picks events only, so it does not narrow them. Call with the store lock
    held."""
    needle = flt.text.casefold()
    found: list[LogRecord] = []
    for record in reversed(store.logs):
        entry = record.entry
        if flt.run_index is not None and record.run_index != flt.run_index:
            continue
        if flt.user_id is not None and entry.user_id != flt.user_id:
            continue
        if flt.node is not None and entry.node != flt.node:
            continue
        if needle and not any(
            needle in part.casefold()
            for part in (entry.message, entry.logger, entry.exception or "")
        ):
            continue
        found.append(record)
        if len(found) >= want:
            break
    return found


def log_detail(record: LogRecord) -> str:
    """What the inspector shows of a log record: its message, its traceback, then its frame
    (every field, as received)."""
    entry = record.entry
    parts = [entry.message]
    if entry.exception:
        parts.append(entry.exception.rstrip())
    frame = orjson.dumps(run_log_to_dict(entry), option=orjson.OPT_INDENT_2).decode()
    parts.append("— frame —\n" + frame)
    return "\n\n".join(parts)


def pretty_frame(raw: bytes) -> str:
    """A frame as indented JSON; a malformed one as received (decoded leniently)."""
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
