"""HAR files: the WebSocket messages a browser saved with a page's network log.

A HAR (HTTP Archive, what DevTools' "Save all as HAR" writes) is one JSON document, usually
pretty-printed over many lines, so the line by line import (``jsonl``) cannot read it::

    {"log": {"version": "1.2", "creator": {…}, "pages": […], "entries": [
        {"startedDateTime": "…", "request": {"method": "GET", "url": "wss://…/ws", …},
         "response": {"status": 101, …}, "_resourceType": "websocket",
         "_webSocketMessages": [
             {"type": "send", "time": 1795000000.1234, "opcode": 1, "data": "{…}"},
             {"type": "receive", "time": 1795000000.2345, "opcode": 1, "data": "{…}"}]},
        {"request": {"url": "https://…/app.js", …}, …}]}}

A file is a HAR by its content, whatever its name: it starts with ``{`` and holds one JSON
object whose ``log.entries`` is a list (``read_har``). ``import_har`` imports the messages
of every entry that has ``_webSocketMessages`` (Chrome and Edge write them; other entries
are no WebSocket), all entries' messages merged in time order (``time``: Unix seconds), each
with its entry's request URL as the frame's source. As in JSON Lines, messages the page
*sent* (``send``) and connection errors (``error``) are skipped and counted; a binary
message (opcode 2: base64 ``data``) is bad, reported with its number in the file (messages
counted entry by entry, in the file's order) and its entry; everything else still loads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from monitor.model.recording.format import RecordingError, RecordingMeta

from .jsonl import BadLine, FrameSink, ImportReport, ParsedLine, _is_time, _seconds

#: how a HAR begins whatever its layout: its one top-level key, "log"
HAR_START = re.compile(rb'\A\s*\{\s*"log"\s*:')
#: bytes read to tell a pretty-printed HAR from JSON Lines
HEAD = 4096
UTF8_BOM = b"\xef\xbb\xbf"


def read_har(path: Path) -> dict[str, Any] | None:
    """The HAR document in ``path``, or None when it is none (it may be JSON Lines).

    Reads the whole file only when it may be one: its first line starts a JSON object that
    line does not end (a document over many lines, beginning with ``"log"``), or is one
    object with a ``log`` and nothing after it. Raises ``RecordingError`` for a file that
    begins like a HAR but is no valid one (cut short, say), or can't be read.
    """
    try:
        with path.open("rb") as f:
            first = f.readline()
            while first and not first.strip():  # leading blank lines
                first = f.readline()
            first = first.removeprefix(UTF8_BOM)
            if not first.lstrip().startswith(b"{"):
                return None
            try:
                one_line: object = orjson.loads(first)
            except orjson.JSONDecodeError:
                one_line = None
            if one_line is not None:
                if not (isinstance(one_line, dict) and "log" in one_line) or _more(f):
                    return None  # JSON Lines (one of its frames may have a "log")
                document: object = one_line
            else:
                head = first + f.read(HEAD)
                if not HAR_START.match(head):
                    return None
                text = head + f.read()
                try:
                    document = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise RecordingError(
                        f"{path} begins like a HAR file but is no valid JSON ({exc})"
                    ) from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc
    if isinstance(document, dict):
        log = document.get("log")
        if isinstance(log, dict) and isinstance(log.get("entries"), list):
            return document
    if one_line is not None:
        return None
    raise RecordingError(f"{path} is one JSON document but no HAR file: it has no log.entries")


def _more(f: IO[bytes]) -> bool:
    """Whether anything but white space is left in ``f``."""
    while chunk := f.read(1 << 16):
        if chunk.strip():
            return True
    return False


@dataclass(frozen=True, slots=True)
class HarMessage:
    """One ``_webSocketMessages`` item and where it is."""

    number: int  # 1, 2, 3 … over all the entries' messages, in the file's order
    entry: int  # the entry's number in ``log.entries`` (1 = the first)
    url: str | None  # the entry's ``request.url``
    started: float | None  # the entry's ``startedDateTime`` as Unix seconds
    message: object


def har_messages(document: dict[str, Any]) -> Iterator[HarMessage]:
    """The WebSocket messages of every entry of ``document`` that has any, in file order."""
    number = 0
    for entry_number, entry in enumerate(document["log"]["entries"], 1):
        if not isinstance(entry, dict):
            continue
        messages = entry.get("_webSocketMessages")
        if not isinstance(messages, list):
            continue  # not a WebSocket
        request = entry.get("request")
        url = request.get("url") if isinstance(request, dict) else None
        started = _iso_time(entry.get("startedDateTime"))
        for message in messages:
            number += 1
            yield HarMessage(
                number, entry_number, url if isinstance(url, str) else None, started, message
            )


def _iso_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_message(item: HarMessage) -> ParsedLine:
    """One message understood, as a line of JSON Lines would be; raises ``BadLine``."""
    message = item.message
    if not isinstance(message, dict):
        raise BadLine(f"a JSON {type(message).__name__}, not a message object")
    kind = message.get("type")
    if kind == "send":
        return ParsedLine("skip", reason="sent by the page")
    if kind == "error":  # Chrome logs a connection's errors among its messages
        return ParsedLine("skip", reason="a WebSocket error")
    if kind != "receive":
        raise BadLine(f"message type {kind!r}, not 'receive' or 'send'")
    data = message.get("data")
    if not isinstance(data, str):
        raise BadLine("a received message without 'data' text")
    opcode = message.get("opcode", 1)
    if opcode != 1:
        raise BadLine(f"binary message (opcode {opcode}), not protocol v1 text")
    stamp = message.get("time")
    return ParsedLine(
        "frame",
        raw=data.encode(),
        received_at=_seconds(stamp) if _is_time(stamp) else None,
        source=item.url,
    )


def import_har(
    path: Path, destination: Path, document: dict[str, Any] | None = None
) -> ImportReport:
    """Read the received WebSocket messages of the HAR ``path`` (``document``, if already
    read) into a new recording at ``destination``, in time order.

    Raises ``RecordingError`` if ``path`` is no HAR or can't be read, or ``destination``
    can't be written; bad messages are only reported (numbered as ``har_messages`` counts).
    """
    if document is None:
        document = read_har(path)
        if document is None:
            raise RecordingError(f"{path} is no HAR file (no JSON object with log.entries)")
    meta = RecordingMeta(kind="import", target=str(path), late_join=True)
    report = ImportReport(path, meta, unit="message")
    frames: list[tuple[float, ParsedLine]] = []
    entry, order = 0, -math.inf  # the time a message sorts by
    for item in har_messages(document):
        report.lines += 1
        if item.entry != entry:  # untimed first messages sort by their entry's start
            entry, order = item.entry, item.started if item.started is not None else -math.inf
        try:
            parsed = parse_message(item)
        except BadLine as exc:
            where = f"entry {item.entry}" + (f", {item.url}" if item.url else "")
            report.bad_line(item.number, f"{exc} ({where})")
            continue
        if parsed.kind == "skip":
            report.skipped += 1
            continue
        if parsed.received_at is not None:
            order = parsed.received_at
        frames.append((order, parsed))  # untimed: after the message before it
    frames.sort(key=lambda pair: pair[0])  # stable: one connection's order is kept
    with FrameSink(path, destination, report).importing() as sink:
        for _, parsed in frames:
            sink.add(parsed.raw, parsed.received_at, parsed.source)
    return report
