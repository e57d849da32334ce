"""Export: the selected sessions or a time range as JSON Lines and CSV, findings as CSV;
a failed export leaves no half-written file behind."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from monitor.services.recording import (
    Recording,
    RecordingError,
    Replay,
    Selection,
    export_csv,
    export_findings_csv,
    export_jsonl,
    import_jsonl,
)
from monitor.services.recording.export import CSV_COLUMNS, FINDING_COLUMNS
from runtime.protocol.codec import dumps
from tests.monitor.model.recording.frames import T0, run_events, write_recording


@pytest.fixture
def recording(tmp_path: Path) -> Recording:
    frames = [
        (
            T0,
            dumps(
                {"type": "connection_ack", "user_id": "ops", "last_seq": 0, "server_version": "1"}
            ),
        )
    ]
    frames += run_events("alice", 1, T0 + 1, run_id="run_a")
    frames += run_events("bob", 1, T0 + 2, run_id="run_b")
    frames += run_events("alice", 6, T0 + 3, run_id="run_c")
    with Recording.open(write_recording(tmp_path / "r.sqlite", frames)) as opened:
        yield opened


def test_selected_sessions_as_json_lines(recording: Recording, tmp_path: Path) -> None:
    out = tmp_path / "sessions.jsonl"
    selection = Selection(runs=frozenset({("alice", "run_a"), ("bob", "run_b")}))
    assert export_jsonl(recording, out, selection) == 10
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert "agent_event_monitor_recording" in lines[0]
    assert {(line["frame"]["user_id"], line["frame"]["run_id"]) for line in lines[1:]} == {
        ("alice", "run_a"),
        ("bob", "run_b"),
    }
    assert import_jsonl(out, tmp_path / "back.sqlite").frames == 10


def test_a_time_range_as_csv(recording: Recording, tmp_path: Path) -> None:
    out = tmp_path / "range.csv"
    assert export_csv(recording, out, Selection(t0=T0 + 1.5, t1=T0 + 3.5)) == 10
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {row["run_id"] for row in rows} == {"run_b", "run_c"}
    first = rows[0]
    assert first["type"] == "agent_started" and first["seq"] == "1" and first["user_id"] == "bob"
    assert orjson.loads(first["data"]) == {"input": "hello"}
    assert float(first["received_at"]) == T0 + 2


def test_everything_as_csv_keeps_control_frames(recording: Recording, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert export_csv(recording, out) == 16
    with out.open(newline="", encoding="utf-8") as f:
        ack = next(csv.DictReader(f))
    assert ack["type"] == "connection_ack" and ack["seq"] == ""
    assert ack["user_id"] == "ops"  # envelope fields have their columns; the rest is data
    assert orjson.loads(ack["data"]) == {"last_seq": 0, "server_version": "1"}


def test_findings_as_csv(tmp_path: Path) -> None:
    frames = run_events("alice", 1, T0)
    frames = [*frames, (frames[-1][0] + 0.001, frames[2][1])]  # a duplicate: AEM010
    with Recording.open(write_recording(tmp_path / "dup.sqlite", frames)) as recording:
        replay = Replay(recording)
        replay.run_to_end()
        out = tmp_path / "findings.csv"
        assert export_findings_csv(replay.session.store.findings, out) >= 1
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FINDING_COLUMNS
    assert rows[0]["rule_id"] == "AEM010" and rows[0]["rule"] == "seq-duplicate"
    assert rows[0]["severity"] == "error" and rows[0]["user_id"] == "alice"


def test_a_failed_export_leaves_nothing_behind(recording: Recording, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "out.jsonl"
    with pytest.raises(RecordingError, match="cannot write"):
        export_jsonl(recording, missing)
    assert not missing.parent.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r.sqlite"]
