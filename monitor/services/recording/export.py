"""Export: frames of a recording as JSON Lines or CSV, and findings as CSV.

What is exported is a ``Selection``: every frame, the frames of a time range, and/or the
events of chosen sessions (runs). Choosing runs keeps only their events: control frames
(``connection_ack``, ``delivery``, ``node``, ``error``) belong to no run. Files are written to a
temporary name and renamed when complete, so a failed export (a full disk) never leaves a
truncated file that looks finished.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from monitor.model.recording.format import RecordingError
from monitor.model.store import FindingRecord
from runtime.protocol import Finding, ProtocolError, decode_object
from runtime.protocol.codec import ENVELOPE_FIELDS

from .jsonl import frame_line, header_line
from .reader import CHUNK, RecordedFrame, Recording

#: the envelope fields as CSV columns ("data" goes last, as JSON), with the observer stream's
#: own: the cluster node that emitted the frame (a node frame's: the node it is about)
ENVELOPE = (*(f for f in ENVELOPE_FIELDS if f != "data"), "node", "monitor_seq")
CSV_COLUMNS = ("frame_id", "received_at", "source", *ENVELOPE, "data", "raw")
FINDING_COLUMNS = (
    "received_at",
    "rule_id",
    "rule",
    "severity",
    "user_id",
    "run_id",
    "seq",
    "event_id",
    "message",
)


@dataclass(frozen=True, slots=True)
class Selection:
    """What to export: ``runs`` as ``(user_id, run_id)`` (None: all frames), and a receive
    time range ``[t0, t1]`` (None: unbounded)."""

    runs: frozenset[tuple[str, str]] | None = None
    t0: float | None = None
    t1: float | None = None

    def describe(self) -> str:
        parts = []
        if self.runs is not None:
            parts.append(f"{len(self.runs)} session{'s' * (len(self.runs) != 1)}")
        if self.t0 is not None or self.t1 is not None:
            parts.append("a time range")
        return " in ".join(parts) or "everything"


def selected_frames(recording: Recording, selection: Selection) -> Iterator[RecordedFrame]:
    """The frames ``selection`` picks, in receive order, read ``CHUNK`` at a time."""
    frames: Iterable[RecordedFrame]
    if selection.t0 is None and selection.t1 is None:
        frames = recording.frames()
    else:
        frames = _frames_in_range(
            recording,
            -float("inf") if selection.t0 is None else selection.t0,
            float("inf") if selection.t1 is None else selection.t1,
        )
    runs = selection.runs
    for frame in frames:
        if runs is not None:
            fields = _decoded(frame.raw)
            if fields is None or (fields.get("user_id"), fields.get("run_id")) not in runs:
                continue
        yield frame


def _frames_in_range(recording: Recording, t0: float, t1: float) -> Iterator[RecordedFrame]:
    after = 0
    while True:
        chunk = recording.frames_between(t0, t1, CHUNK, after_id=after)
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].id


def _decoded(raw: bytes) -> dict[str, Any] | None:
    try:
        return decode_object(raw)
    except ProtocolError:
        return None


@contextlib.contextmanager
def _atomic(destination: Path, mode: str) -> Iterator[IO[Any]]:
    """A file that appears at ``destination`` only once completely written."""
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        kwargs: dict[str, Any] = {} if "b" in mode else {"newline": "", "encoding": "utf-8"}
        with partial.open(mode, **kwargs) as f:
            yield f
        os.replace(partial, destination)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise RecordingError(f"cannot write {destination}: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def export_jsonl(
    recording: Recording, destination: Path, selection: Selection | None = None
) -> int:
    """Write the selected frames as JSON Lines (with a metadata first line); returns how
    many frames. The file imports back as the same frames (``jsonl.import_jsonl``)."""
    count = 0
    with _atomic(destination, "wb") as f:
        f.write(header_line(recording.meta))
        buffer = io.BytesIO()
        for frame in selected_frames(recording, selection or Selection()):
            buffer.write(frame_line(frame))
            count += 1
            if buffer.tell() > 1 << 20:
                f.write(buffer.getvalue())
                buffer = io.BytesIO()
        f.write(buffer.getvalue())
    return count


def csv_row(frame: RecordedFrame) -> list[Any]:
    """One frame as a CSV row: envelope columns, the rest as JSON in ``data``.

    For an event ``data`` is its ``data`` object; for a control frame, every field but
    ``type``; a frame that is not a JSON object has only ``raw``.
    """
    fields = _decoded(frame.raw)
    row: list[Any] = [frame.id, repr(frame.received_at), frame.source]
    if fields is None:
        return [*row, *([""] * len(ENVELOPE)), "", frame.raw.decode("utf-8", "replace")]
    row.extend(_cell(fields.get(name)) for name in ENVELOPE)
    if "data" in fields and "seq" in fields:
        data = fields["data"]
    else:
        data = {k: v for k, v in fields.items() if k not in ENVELOPE}
    row.append(orjson.dumps(data).decode())
    row.append("")
    return row


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def export_csv(recording: Recording, destination: Path, selection: Selection | None = None) -> int:
    """Write the selected frames as CSV (``CSV_COLUMNS``); returns how many frames."""
    count = 0
    with _atomic(destination, "w") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for frame in selected_frames(recording, selection or Selection()):
            writer.writerow(csv_row(frame))
            count += 1
    return count


def export_findings_csv(findings: Iterable[FindingRecord | Finding], destination: Path) -> int:
    """Write findings as CSV (``FINDING_COLUMNS``), in the order given; returns how many."""
    count = 0
    with _atomic(destination, "w") as f:
        writer = csv.writer(f)
        writer.writerow(FINDING_COLUMNS)
        for item in findings:
            received_at: float | None
            if isinstance(item, FindingRecord):
                found, received_at = item.finding, item.received_at
            else:
                found, received_at = item, item.at
            writer.writerow(
                [
                    "" if received_at is None else repr(received_at),
                    found.rule_id,
                    found.rule.name,
                    found.severity.value,
                    found.user_id or "",
                    found.run_id or "",
                    "" if found.seq is None else found.seq,
                    found.event_id or "",
                    found.message,
                ]
            )
            count += 1
    return count
