"""JSON Lines: export → import gives back the same frames; frames captured elsewhere
(DevTools, HAR, bare frames) import; bad lines are reported by line number while the good
ones load; a newer format is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from monitor.services.recording import (
    FutureFormatError,
    Recording,
    RecordingError,
    RecordingMeta,
    Replay,
    export_jsonl,
    import_jsonl,
    open_any,
)
from monitor.services.recording.jsonl import BadLine, parse_line
from tests.monitor.model.recording.frames import T0, run_events, traffic, write_recording


def frames_of(path: Path) -> list[tuple[float, str, bytes]]:
    with Recording.open(path) as recording:
        return [(f.received_at, f.source, f.raw) for f in recording.frames()]


def test_export_then_import_gives_back_the_same_frames(tmp_path: Path) -> None:
    frames = list(traffic(40))
    frames.insert(7, (frames[6][0], b"not json at all {"))  # a malformed frame, as received
    frames.insert(9, (frames[8][0], b'{"type": "agent_started",\n "pretty": true}'))
    meta = RecordingMeta(created_at=T0, target="ws://staging:8765", kind="remote", late_join=True)
    original = write_recording(tmp_path / "original.sqlite", frames, meta=meta, ended_at=T0 + 9)
    exported = tmp_path / "export.jsonl"
    with Recording.open(original) as recording:
        assert export_jsonl(recording, exported) == len(frames)
    lines = exported.read_bytes().splitlines()
    assert len(lines) == len(frames) + 1  # the metadata line, then one frame per line
    assert orjson.loads(lines[1])["frame"]["type"] == "agent_started"

    report = import_jsonl(exported, tmp_path / "imported.sqlite")
    assert (report.frames, report.bad, report.skipped) == (len(frames), 0, 0)
    assert frames_of(tmp_path / "imported.sqlite") == frames_of(original)
    with Recording.open(tmp_path / "imported.sqlite") as imported:
        assert imported.meta == dataclasses.replace(meta, ended_at=T0 + 9)
        assert imported.meta.target == "ws://staging:8765" and imported.meta.late_join
        assert imported.meta.ended_at == T0 + 9


def test_frames_captured_elsewhere_import(tmp_path: Path) -> None:
    (_, e1), (_, e2), (_, e3), *_ = run_events("alice", 1, T0)
    lines = [
        e1.decode(),  # a bare frame: its own timestamp is the receive time
        # Chrome DevTools Protocol: received frames in, sent frames and other events skipped
        orjson.dumps(
            {
                "method": "Network.webSocketFrameReceived",
                "params": {
                    "timestamp": 5.25,
                    "response": {"opcode": 1, "payloadData": e2.decode()},
                },
            }
        ).decode(),
        orjson.dumps(
            {"method": "Network.webSocketFrameSent", "params": {"response": {"payloadData": "{}"}}}
        ).decode(),
        # a HAR _webSocketMessages entry, time in Unix seconds
        orjson.dumps(
            {"type": "receive", "time": T0 + 1, "opcode": 1, "data": e3.decode()}
        ).decode(),
        orjson.dumps({"type": "send", "time": T0 + 1, "opcode": 1, "data": "{}"}).decode(),
        "",
        '{"type": "connection_ack", "user_id": "alice", "last_seq": 0, "server_version": "1"}',
    ]
    source = tmp_path / "browser.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = import_jsonl(source, tmp_path / "browser.sqlite")
    assert (report.frames, report.skipped, report.bad) == (4, 2, 0)
    stored = frames_of(tmp_path / "browser.sqlite")
    assert [raw for _, _, raw in stored] == [e1, e2, e3, lines[-1].encode()]
    times = [t for t, _, _ in stored]
    assert times[0] == pytest.approx(T0)
    # CDP's 5.25 is monotonic, not Unix time; with no wallTime in the file to convert it,
    # the frame is timed by its event's own timestamp (test_import_devtools.py has more)
    assert times[1] == pytest.approx(T0 + 0.001) and report.event_timed == 1
    assert times == sorted(times) and report.moved_forward == 0


def test_bad_lines_are_reported_by_number_and_the_rest_loads(tmp_path: Path) -> None:
    good = [raw.decode() for _, raw in run_events("alice", 1, T0)]
    lines = [
        good[0],
        "this is not json",
        good[1],
        "[1, 2, 3]",
        '{"hello": "world"}',
        good[2],
        '{"received_at": "yesterday", "frame": {}}',
        '{"type": "receive", "opcode": 2, "data": "AAEC"}',
        *good[3:],
        good[-1][: len(good[-1]) // 2],  # the last line, cut off mid-way
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines))
    report = import_jsonl(source, tmp_path / "mixed.sqlite")
    assert report.frames == len(good)
    numbers = [n for n, _ in report.bad_lines]
    assert numbers == [2, 4, 5, 7, 8, len(lines)]
    reasons = dict(report.bad_lines)
    assert "not valid JSON" in reasons[2] and "not an object" in reasons[4]
    assert "no frame" in reasons[5] and "received_at" in reasons[7] and "binary" in reasons[8]
    problems = report.problems()
    assert problems[0].startswith("mixed.jsonl line 2: not valid JSON")
    # the valid part opens and replays clean
    opened = open_any(source)
    try:
        assert len(opened.problems) == 6
        replay = Replay(opened.recording)
        replay.run_to_end()
        assert replay.session.store.total == len(good) and not replay.rule_counts
    finally:
        opened.close()


def test_a_newer_format_header_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "future.jsonl"
    source.write_text(
        '{"agent_event_monitor_recording": {"format_version": 9}}\n{"type": "pong"}\n'
    )
    with pytest.raises(FutureFormatError, match=r"format version 9.*format version 2"):
        open_any(source)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "it is empty"), (b"\x00\x01binary\xff\n", "no frames"), (b"[]\n{}\n", "no frames")],
    ids=["empty", "binary", "no-frames"],
)
def test_files_without_frames_are_refused_clearly(
    tmp_path: Path, content: bytes, match: str
) -> None:
    source = tmp_path / "x.jsonl"
    source.write_bytes(content)
    with pytest.raises(RecordingError, match=match):
        open_any(source)


def test_a_kept_import_lands_in_the_import_folder(tmp_path: Path) -> None:
    source = tmp_path / "capture.jsonl"
    source.write_text("\n".join(raw.decode() for _, raw in run_events("a", 1, T0)))
    folder = tmp_path / "recordings"
    folder.mkdir()
    opened = open_any(source, import_dir=folder)
    opened.close()
    (kept,) = folder.iterdir()
    assert kept.name.startswith("import-capture-") and kept.suffix == ".sqlite"


def test_parse_line_rejects_what_holds_no_frame() -> None:
    with pytest.raises(BadLine):
        parse_line(b'{"frame": 5, "received_at": 1}')
    assert parse_line(b'{"type": "error", "code": "x", "message": "m"}').raw.startswith(
        b'{"type": "error"'
    )
