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
   DevTools' WebSocket log, a HAR file's ``_webSocketMessages`` entries one per line
   (``type`` ``receive``/``send``, ``time``, ``opcode``, ``data``), or a Chrome DevTools
   Protocol (CDP) ``Network.webSocketFrameReceived`` event (``params.response.payloadData``).
   Frames the client *sent* (``type: send``, ``webSocketFrameSent``) and other DevTools
   events are skipped and counted, not errors; binary frames (opcode 2) are bad lines.

A whole HAR file (one JSON document, usually over many lines) is no JSON Lines: ``har``
reads it, through the same ``FrameSink`` as here.

The receive time comes from ``received_at``, ``time``, ``timestamp`` or ``ts`` (seconds;
values that look like milliseconds or microseconds are scaled); failing those, from an
event's own ``timestamp``; failing that, the previous frame's (frames before the first time
in the file take that one; a file with no time at all is dated by its modification time,
and the report says so). Times that go backwards are moved forward to the previous one (the
display searches by time) and counted. Every bad line is counted and reported with its line
number; all the good lines still load.

CDP's ``params.timestamp`` is no such time: it is ``MonotonicTime``, seconds since an
arbitrary point (the browser's start), not since 1970. Only ``Network.requestWillBeSent`` and
``Network.webSocketWillSendHandshakeRequest`` also carry a ``wallTime`` (Unix seconds) for
the same instant: ``DevToolsClock`` turns such a pair into wall time for every other
timestamp (wall = wallTime + (timestamp − the pair's timestamp)), the frame's own
connection's handshake first, else the nearest pair anywhere in the file. A capture with no
``wallTime`` at all times its frames by the events' own ``timestamp``; frames that are no
protocol events then get a neighbour's time, and the report says how many.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

import orjson

from monitor.model.recording.format import (
    FORMAT_VERSION,
    FutureFormatError,
    RecordingError,
    RecordingMeta,
)
from runtime.protocol import ControlType, EventType

from .reader import RecordedFrame
from .writer import FrameRow, RecordingWriter

HEADER_KEY = "agent_event_monitor_recording"
#: keys that may hold a frame's text, in the order they are tried
SERVER_FRAME_TYPES = frozenset(t.value for t in (*EventType, *ControlType))
TEXT_KEYS = ("payloadData", "data", "payload", "message")
TIME_KEYS = ("received_at", "time", "timestamp", "ts")
#: the CDP events that carry a ``wallTime`` next to their monotonic ``timestamp``
DEVTOOLS_ANCHORS = frozenset(
    {"Network.requestWillBeSent", "Network.webSocketWillSendHandshakeRequest"}
)
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
    # CDP events: the frame's connection, its ``params.timestamp`` (``MonotonicTime``: not a
    # receive time, see ``DevToolsClock``) and, for the events that have one, ``wallTime``
    devtools: bool = False
    request_id: str | None = None
    monotonic: float | None = None
    wall_time: float | None = None


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
    request_id = params.get("requestId")
    request_id = request_id if isinstance(request_id, str) else None
    stamp = params.get("timestamp")
    monotonic = float(stamp) if _is_time(stamp) else None
    if method != "Network.webSocketFrameReceived":
        url = params.get("url")  # Network.webSocketCreated: the connection's URL
        wall = params.get("wallTime")
        anchored = method in DEVTOOLS_ANCHORS and monotonic is not None and _is_time(wall)
        return ParsedLine(
            "skip",
            reason=f"DevTools {method}",
            source=url if method == "Network.webSocketCreated" and isinstance(url, str) else None,
            devtools=True,
            request_id=request_id,
            monotonic=monotonic if anchored else None,
            wall_time=float(wall) if anchored and _is_time(wall) else None,
        )
    response = params.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("payloadData"), str):
        raise BadLine("webSocketFrameReceived without response.payloadData")
    if response.get("opcode", 1) != 1:
        raise BadLine(f"binary frame (opcode {response.get('opcode')}), not protocol v1 text")
    return ParsedLine(
        "frame",
        raw=response["payloadData"].encode(),
        devtools=True,
        request_id=request_id,
        monotonic=monotonic,
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


def event_time(raw: bytes) -> float | None:
    """The own ``timestamp`` of the protocol frame ``raw``; None if it is none, or has none."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(frame, dict) or frame.get("type") not in SERVER_FRAME_TYPES:
        return None
    return _frame_time(frame)


class DevToolsClock:
    """CDP's ``MonotonicTime`` (seconds since an arbitrary point) as wall time (Unix seconds).

    An anchor is one instant on both clocks: the ``timestamp`` and ``wallTime`` of a
    ``Network.webSocketWillSendHandshakeRequest`` or ``Network.requestWillBeSent``. A
    timestamp is converted with its own request's anchor (a socket's frames with its
    handshake), else with the anchor nearest to it: the monotonic clock is the browser's,
    one for all its requests, and the nearest anchor has drifted least from the wall clock.
    """

    def __init__(self) -> None:
        self._by_request: dict[str, tuple[float, float]] = {}
        self._stamps: list[float] = []  # every anchor's timestamp, sorted
        self._walls: list[float] = []  # ... and its wallTime, in the same order

    def __len__(self) -> int:
        return len(self._stamps)

    def anchor(self, request_id: str | None, timestamp: float, wall_time: float) -> None:
        """Note that ``timestamp`` was ``wall_time``; a request keeps its first anchor."""
        if request_id is not None:
            self._by_request.setdefault(request_id, (timestamp, wall_time))
        at = bisect.bisect(self._stamps, timestamp)
        self._stamps.insert(at, timestamp)
        self._walls.insert(at, wall_time)

    def wall(self, request_id: str | None, timestamp: float) -> float | None:
        """``timestamp`` as Unix seconds; None without any anchor."""
        anchor = self._by_request.get(request_id) if request_id is not None else None
        if anchor is None:
            if not self._stamps:
                return None
            at = bisect.bisect(self._stamps, timestamp)
            nearest = min(
                (i for i in (at - 1, at) if 0 <= i < len(self._stamps)),
                key=lambda i: abs(self._stamps[i] - timestamp),
            )
            anchor = (self._stamps[nearest], self._walls[nearest])
        stamp, wall = anchor
        return wall + (timestamp - stamp)


# --- importing ------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What an import read, kept and refused."""

    path: Path
    meta: RecordingMeta
    lines: int = 0  # read: lines of JSON Lines, messages of a HAR (``unit``)
    frames: int = 0
    skipped: int = 0  # lines that are not received frames (sent frames, other events)
    bad: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # first MAX_LISTED
    moved_forward: int = 0  # receive times moved forward to keep them in order
    unit: str = "line"  # what ``lines`` counts and ``bad_lines`` numbers
    # CDP frames with no wallTime in the capture to convert their monotonic timestamps:
    event_timed: int = 0  # ... timed by their events' own timestamps instead
    untimed: int = 0  # ... not protocol events with a timestamp: given a neighbour's time
    file_timed: int = 0  # frames dated by the file's modification time: it holds no time

    def bad_line(self, number: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_lines) < MAX_LISTED:
            self.bad_lines.append((number, reason))

    def problems(self) -> list[str]:
        """One line per problem, for the user."""
        name = self.path.name
        out = [f"{name} {self.unit} {n}: {reason}" for n, reason in self.bad_lines]
        if self.bad > len(self.bad_lines):
            out.append(f"… and {self.bad - len(self.bad_lines):,} more bad {self.unit}s")
        if self.moved_forward:
            out.append(
                f"{name}: {self.moved_forward:,} frames had a receive time before "
                f"the previous {self.unit}'s; moved forward to it"
            )
        if self.untimed:
            out.append(
                f"{name}: {self.untimed:,} DevTools frames have no wall-clock time: the capture "
                "has no wallTime (Network.webSocketWillSendHandshakeRequest or "
                "requestWillBeSent) to convert CDP's monotonic timestamps, and they are no "
                "protocol events with a timestamp of their own; they got the time of a "
                "neighbouring frame"
            )
        if self.file_timed:
            out.append(
                f"{name}: nothing in it says when its {self.file_timed:,} frames were "
                "received; they are dated by the file's modification time"
            )
        return out

    def summary(self) -> str:
        parts = [f"{self.frames:,} frames from {self.lines:,} {self.unit}s"]
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped (not received frames)")
        if self.bad:
            parts.append(f"{self.bad:,} bad {self.unit}s")
        if self.event_timed:
            parts.append(
                f"{self.event_timed:,} DevTools frames timed by their events' own timestamps "
                "(no wallTime in the capture)"
            )
        return ", ".join(parts)


class FrameSink:
    """Frames into a new recording at ``destination``, numbered in the order given.

    A frame without a time takes the previous frame's; the frames before the first time
    take that one (they wait for it), or the file's modification time when none comes.
    Times that go backwards are moved forward (``report.moved_forward``). The recording is
    created with the first frame. ``finish`` writes what waits; ``close`` closes the file.
    Raises ``sqlite3.Error`` (and ``OSError`` from ``finish``).
    """

    def __init__(self, path: Path, destination: Path, report: ImportReport) -> None:
        self.path = path
        self.destination = destination
        self.report = report
        self._writer: RecordingWriter | None = None
        self._batch: list[FrameRow] = []
        self._waiting: list[tuple[int, int, bytes]] = []  # (id, source, raw): no time yet
        self._last = -math.inf

    @contextlib.contextmanager
    def importing(self) -> Iterator[FrameSink]:
        """Add frames inside; then what waits is written and the file closed, and a file
        that can't be read or written is a ``RecordingError`` saying which."""
        try:
            yield self
            self.finish()
        except OSError as exc:
            raise RecordingError(f"cannot read {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise RecordingError(
                f"cannot write the imported recording {self.destination}: {exc}"
            ) from exc
        finally:
            self.close()

    def add(self, raw: bytes, received_at: float | None, source: str | None) -> None:
        report = self.report
        if self._writer is None:
            self._writer = RecordingWriter(self.destination, report.meta)
        source_id = self._writer.source_id(source or report.meta.target or str(self.path))
        report.frames += 1
        if received_at is None:
            if self._last == -math.inf:
                self._waiting.append((report.frames, source_id, raw))
                return
            received_at = self._last
        elif received_at < self._last:
            report.moved_forward += 1
            received_at = self._last
        if self._waiting:
            self._release(received_at)
        self._last = received_at
        self._batch.append((report.frames, received_at, source_id, raw))
        if len(self._batch) >= BATCH:
            self._flush()

    def _release(self, received_at: float) -> None:
        self._batch.extend((n, received_at, source, raw) for n, source, raw in self._waiting)
        self._waiting.clear()

    def _flush(self) -> None:
        if self._writer is not None and self._batch:
            self._writer.append(self._batch)
        self._batch = []

    def finish(self) -> None:
        if self._waiting:
            self.report.file_timed = len(self._waiting)
            self._release(self.path.stat().st_mtime)
        self._flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, 1)


def devtools_clock(path: Path) -> DevToolsClock:
    """The anchors of CDP's monotonic clock in the JSON Lines file ``path``, wherever they
    are in it (a capture attached to an open socket has no handshake for it, but maybe
    anchors after its first frames). Raises ``OSError``."""
    clock = DevToolsClock()
    for _, line in _lines(path):
        if b'"wallTime"' not in line:
            continue
        try:
            parsed = parse_line(line)
        except (BadLine, FutureFormatError):
            continue  # the import reports it
        if parsed.monotonic is not None and parsed.wall_time is not None:
            clock.anchor(parsed.request_id, parsed.monotonic, parsed.wall_time)
    return clock


def import_jsonl(path: Path, destination: Path) -> ImportReport:
    """Read the JSON Lines file ``path`` into a new recording at ``destination``.

    Raises ``RecordingError`` if ``path`` can't be read or ``destination`` can't be written,
    ``FutureFormatError`` for a header from a newer format; bad lines are only reported.
    """
    meta = RecordingMeta(kind="import", target=str(path), late_join=True)
    report = ImportReport(path, meta)
    with FrameSink(path, destination, report).importing() as sink:
        clock = devtools_clock(path)
        urls: dict[str, str] = {}  # CDP requestId -> the socket's URL (webSocketCreated)
        for number, line in _lines(path):
            if not line.strip():
                continue
            report.lines += 1
            try:
                parsed = parse_line(line)
            except BadLine as exc:
                report.bad_line(number, str(exc))
                continue
            except FutureFormatError as exc:
                raise FutureFormatError(path, exc.version) from None
            if parsed.kind == "header":
                if report.frames or number != 1:
                    report.bad_line(number, "a recording header after the first line")
                elif parsed.meta is not None:
                    report.meta = parsed.meta
                continue
            if parsed.kind == "skip":
                report.skipped += 1
                if parsed.request_id is not None and parsed.source is not None:
                    urls.setdefault(parsed.request_id, parsed.source)
                continue
            received_at, source = parsed.received_at, parsed.source
            if parsed.devtools:
                received_at = _devtools_time(parsed, clock, report)
                if parsed.request_id is not None:
                    source = urls.get(parsed.request_id)
            sink.add(parsed.raw, received_at, source)
    return report


def _devtools_time(parsed: ParsedLine, clock: DevToolsClock, report: ImportReport) -> float | None:
    """A CDP frame's receive time: its monotonic timestamp as wall time, else (no wallTime
    in the capture) its event's own timestamp, else None (counted)."""
    if parsed.monotonic is not None:
        wall = clock.wall(parsed.request_id, parsed.monotonic)
        if wall is not None:
            return wall
    emitted = event_time(parsed.raw)
    if emitted is not None:
        report.event_timed += 1
    else:
        report.untimed += 1
    return emitted
