"""JSON Lines: frames in and out of recordings, one per line.

What this module **writes** (``export_jsonl`` in ``export.py`` uses it)::

    {"agent_event_monitor_recording": {"format_version": 1, "target": …, "late_join": false, …}}
    {"received_at": 1795000000.123456, "source": "ws://127.0.0.1:8765", "frame": {…as received…}}
    {"received_at": 1795000000.125, "source": "…", "frame_text": "not json{"}

The first line is optional metadata; every other line is one frame: the received bytes are
spliced in verbatim as ``frame`` (or kept as the string ``frame_text`` when they are not one
JSON object on one line), so export → import gives back the same bytes.

What it **reads**, line by line (blank lines are ignored):

1. its own lines, above;
2. a bare frame: a JSON object with a string ``type`` (``{"type": "agent_started", …}``);
3. a frame as text under ``payloadData``, ``data``, ``payload`` or ``message`` — Chrome
   DevTools' WebSocket log, a HAR file's ``_webSocketMessages`` entries (``type``
   ``receive``/``send``, ``time``, ``opcode``, ``data``), or a CDP
   ``Network.webSocketFrameReceived`` event (``params.response.payloadData``). Frames the
   client *sent* (``type: send``, ``webSocketFrameSent``) and other DevTools events are
   skipped and counted, not errors; binary frames (opcode 2) are bad lines.

The receive time comes from ``received_at``, ``time``, ``timestamp`` or ``ts`` (seconds;
values that look like milliseconds or microseconds are scaled), or CDP's
``params.timestamp``; failing those, from an event's own ``timestamp``; failing that, the
previous line's. Times that go backwards are moved forward to the previous one (the display
searches by time) and counted. Every bad line is counted and reported with its line number;
all the good lines still load.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

import orjson

from runtime.protocol import ControlType, EventType

from .format import FORMAT_VERSION, FutureFormatError, RecordingError, RecordingMeta
from .reader import RecordedFrame
from .writer import FrameRow, RecordingWriter

HEADER_KEY = "agent_event_monitor_recording"
#: keys that may hold a frame's text, in the order they are tried
SERVER_FRAME_TYPES = frozenset(t.value for t in (*EventType, *ControlType))
TEXT_KEYS = ("payloadData", "data", "payload", "message")
TIME_KEYS = ("received_at", "time", "timestamp", "ts")
#: bad lines listed one by one; more are only counted
MAX_LISTED = 50
BATCH = 5_000


class BadLine(ValueError):
    """A line that holds no frame; the message says why."""


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One line, understood."""

    kind: Literal["frame", "header", "skip"]
    raw: bytes = b""
    received_at: float | None = None
    source: str | None = None
    meta: RecordingMeta | None = None
    reason: str = ""  # for "skip": what the line was


# --- writing --------------------------------------------------------------------------


def header_line(meta: RecordingMeta) -> bytes:
    """The optional first line: the recording's metadata."""
    values: dict[str, Any] = {
        name: (value == "1" if name == "late_join" else _number_or_text(value))
        for name, value in meta.to_rows()
    }
    return orjson.dumps({HEADER_KEY: values}) + b"\n"


def _number_or_text(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def frame_line(frame: RecordedFrame) -> bytes:
    """One frame's line; its bytes spliced in verbatim when they are one JSON object."""
    prefix = _prefix(frame.received_at, frame.source)
    raw = frame.raw
    if b"\n" not in raw and b"\r" not in raw and raw.lstrip().startswith(b"{"):
        try:
            if isinstance(orjson.loads(raw), dict):
                return prefix + b',"frame":' + raw + b"}\n"
        except orjson.JSONDecodeError:
            pass  # not JSON: kept as text below
    text = raw.decode("utf-8", "surrogateescape")
    return prefix + b',"frame_text":' + _dumps_text(text) + b"}\n"


def _prefix(received_at: float, source: str) -> bytes:
    return b'{"received_at":' + orjson.dumps(received_at) + b',"source":' + orjson.dumps(source)


def _dumps_text(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except TypeError:  # lone surrogates from undecodable bytes: escape them
        return orjson.dumps(text.encode("utf-8", "surrogateescape").decode("latin-1"))


# --- reading --------------------------------------------------------------------------


def parse_line(line: bytes) -> ParsedLine:
    """Understand one non-blank line; raises ``BadLine`` (or ``FutureFormatError``)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadLine(f"a JSON {type(obj).__name__}, not an object")
    if HEADER_KEY in obj:
        return ParsedLine("header", meta=_header_meta(obj[HEADER_KEY]))
    if "frame" in obj or "frame_text" in obj:
        return _own_line(line, obj)
    kind = obj.get("type")
    if kind in SERVER_FRAME_TYPES:  # before the text keys: an error frame has a "message"
        return ParsedLine("frame", raw=line.strip(), received_at=_frame_time(obj))
    params = obj.get("params")
    if isinstance(params, dict) and isinstance(obj.get("method"), str):
        return _devtools_event(obj["method"], params)
    for key in TEXT_KEYS:
        if isinstance(obj.get(key), str):
            return _text_frame(obj, key)
    if isinstance(kind, str):  # a type this monitor doesn't know: replay flags it (AEM018)
        return ParsedLine("frame", raw=line.strip(), received_at=_frame_time(obj))
    raise BadLine("holds no frame (no 'type', 'frame' or frame text)")


def _header_meta(values: object) -> RecordingMeta:
    if not isinstance(values, dict):
        raise BadLine("recording header is not an object")
    version = values.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadLine("recording header has no format_version")
    if version > FORMAT_VERSION:
        raise FutureFormatError("this file", version)
    rows = {k: ("1" if v is True else "0" if v is False else str(v)) for k, v in values.items()}
    return RecordingMeta.from_rows(rows)


def _own_line(line: bytes, obj: dict[str, Any]) -> ParsedLine:
    received_at = obj.get("received_at")
    if not _is_time(received_at):
        raise BadLine("'received_at' must be a number")
    source = obj.get("source")
    source = source if isinstance(source, str) else None
    if "frame_text" in obj:
        if not isinstance(obj["frame_text"], str):
            raise BadLine("'frame_text' must be a string")
        raw = obj["frame_text"].encode("utf-8", "surrogateescape")
        return ParsedLine("frame", raw=raw, received_at=float(received_at), source=source)
    frame = obj["frame"]
    if isinstance(frame, str):
        raw = frame.encode()
    elif isinstance(frame, dict):
        # Our own layout: the bytes after the prefix are the frame exactly as received.
        prefix = _prefix(float(received_at), source or "") + b',"frame":'
        body = line.rstrip()
        if source is not None and body.startswith(prefix) and body.endswith(b"}"):
            raw = body[len(prefix) : -1]
        else:
            raw = orjson.dumps(frame)
    else:
        raise BadLine("'frame' must be an object or a string")
    return ParsedLine("frame", raw=raw, received_at=float(received_at), source=source)


def _devtools_event(method: str, params: dict[str, Any]) -> ParsedLine:
    if method != "Network.webSocketFrameReceived":
        return ParsedLine("skip", reason=f"DevTools {method}")
    response = params.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("payloadData"), str):
        raise BadLine("webSocketFrameReceived without response.payloadData")
    if response.get("opcode", 1) != 1:
        raise BadLine(f"binary frame (opcode {response.get('opcode')}), not protocol v1 text")
    stamp = params.get("timestamp")
    return ParsedLine(
        "frame",
        raw=response["payloadData"].encode(),
        received_at=_seconds(stamp) if _is_time(stamp) else None,
    )


def _text_frame(obj: dict[str, Any], key: str) -> ParsedLine:
    direction = obj.get("type")
    if direction == "send" or obj.get("direction") in ("send", "sent", "outgoing"):
        return ParsedLine("skip", reason="sent by the client")
    if obj.get("opcode", 1) != 1:
        raise BadLine(f"binary frame (opcode {obj.get('opcode')}), not protocol v1 text")
    raw = str(obj[key]).encode()
    return ParsedLine("frame", raw=raw, received_at=_line_time(obj), source=None)


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(value: float) -> float:
    """Seconds from seconds, milliseconds or microseconds since the epoch."""
    if value > 1e14:
        return value / 1e6
    if value > 1e11:
        return value / 1e3
    return float(value)


def _line_time(obj: dict[str, Any]) -> float | None:
    for key in TIME_KEYS:
        if _is_time(obj.get(key)):
            return _seconds(obj[key])
    return None


def _frame_time(frame: dict[str, Any]) -> float | None:
    """An event's own emit time (for lines that carry no receive time)."""
    stamp = frame.get("timestamp")
    return _seconds(stamp) if _is_time(stamp) else None


# --- importing ------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What an import read, kept and refused."""

    path: Path
    meta: RecordingMeta
    lines: int = 0
    frames: int = 0
    skipped: int = 0  # lines that are not received frames (sent frames, other events)
    bad: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # first MAX_LISTED
    moved_forward: int = 0  # receive times moved forward to keep them in order

    def problems(self) -> list[str]:
        """One line per problem, for the user."""
        out = [f"{self.path.name} line {n}: {reason}" for n, reason in self.bad_lines]
        if self.bad > len(self.bad_lines):
            out.append(f"… and {self.bad - len(self.bad_lines):,} more bad lines")
        if self.moved_forward:
            out.append(
                f"{self.path.name}: {self.moved_forward:,} frames had a receive time before "
                "the previous line's; moved forward to it"
            )
        return out

    def summary(self) -> str:
        parts = [f"{self.frames:,} frames from {self.lines:,} lines"]
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped (not received frames)")
        if self.bad:
            parts.append(f"{self.bad:,} bad lines")
        return ", ".join(parts)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, 1)


def import_jsonl(path: Path, destination: Path) -> ImportReport:
    """Read the JSON Lines file ``path`` into a new recording at ``destination``.

    Raises ``RecordingError`` if ``path`` can't be read or ``destination`` can't be written,
    ``FutureFormatError`` for a header from a newer format; bad lines are only reported.
    """
    meta = RecordingMeta(kind="import", target=str(path), late_join=True)
    report = ImportReport(path, meta)
    writer: RecordingWriter | None = None
    try:
        lines = _lines(path)
        batch: list[FrameRow] = []
        last = -math.inf
        for number, line in lines:
            if not line.strip():
                continue
            report.lines += 1
            try:
                parsed = parse_line(line)
            except BadLine as exc:
                report.bad += 1
                if len(report.bad_lines) < MAX_LISTED:
                    report.bad_lines.append((number, str(exc)))
                continue
            except FutureFormatError as exc:
                raise FutureFormatError(path, exc.version) from None
            if parsed.kind == "header":
                if report.frames or number != 1:
                    report.bad += 1
                    report.bad_lines.append((number, "a recording header after the first line"))
                elif parsed.meta is not None:
                    report.meta = parsed.meta
                continue
            if parsed.kind == "skip":
                report.skipped += 1
                continue
            if writer is None:
                writer = RecordingWriter(destination, report.meta)
            received_at = parsed.received_at
            if received_at is None:
                received_at = last if last > -math.inf else 0.0
            if received_at < last:
                report.moved_forward += 1
                received_at = last
            last = received_at
            source = writer.source_id(parsed.source or report.meta.target or str(path))
            report.frames += 1
            batch.append((report.frames, received_at, source, parsed.raw))
            if len(batch) >= BATCH:
                writer.append(batch)
                batch = []
        if writer is not None and batch:
            writer.append(batch)
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise RecordingError(f"cannot write the imported recording {destination}: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()
    return report
