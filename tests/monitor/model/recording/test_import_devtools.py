"""Browser captures import with real receive times: Chrome DevTools Protocol (CDP) events
dated through their ``wallTime`` anchors (CDP's ``timestamp`` is a monotonic clock, not Unix
time), and a HAR file — one pretty-printed JSON document — opened directly, its WebSocket
messages merged in time order."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.services.recording import Recording, RecordingError, Replay, import_jsonl, open_any
from monitor.services.recording.har import import_har, read_har
from tests.monitor.model.recording.frames import T0, run_events

HAR = Path(__file__).parents[2] / "fixtures" / "devtools" / "agent-console.har"
ALICE = "wss://agents.example.com/ws?user=alice"
BOB = "wss://agents.example.com/ws?user=bob"
#: what the HAR holds, received messages only, in time order: (seconds after T0, source,
#: type, user, seq); the messages of the two sockets' entries interleave
HAR_FRAMES = [
    (0.050, ALICE, "connection_ack", "alice", None),
    (0.120, ALICE, "agent_started", "alice", 1),
    (0.260, BOB, "connection_ack", "bob", None),
    (0.320, BOB, "agent_started", "bob", 1),
    (0.400, ALICE, "agent_thinking", "alice", 2),
    (0.650, BOB, "agent_thinking", "bob", 2),
    (0.700, ALICE, "tool_executing", "alice", 3),
    (0.900, BOB, "agent_completed", "bob", 3),
    (1.000, ALICE, "tool_completed", "alice", 4),
    (1.300, ALICE, "agent_completed", "alice", 5),
]
#: a Chrome MonotonicTime: seconds since the browser started
M = 84_210.0


def stored(path: Path) -> list[tuple[float, str, bytes]]:
    with Recording.open(path) as recording:
        return [(f.received_at, f.source, f.raw) for f in recording.frames()]


def dates(times: list[float]) -> list[str]:
    """Receive times as dates, so that a failure shows a 1970 one for what it is."""
    return [datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds") for t in times]


def assert_times(actual: list[float], expected: list[float]) -> None:
    assert actual == pytest.approx(expected, abs=1e-6), (
        f"receive times {dates(actual)}, expected {dates(expected)}"
    )


def cdp(method: str, **params: Any) -> str:
    return orjson.dumps({"method": method, "params": params}).decode()


def received(request_id: str, timestamp: float, payload: bytes) -> str:
    """A ``Network.webSocketFrameReceived`` event as Chrome sends it."""
    response = {"opcode": 1, "mask": False, "payloadData": payload.decode()}
    return cdp(
        "Network.webSocketFrameReceived",
        requestId=request_id,
        timestamp=timestamp,
        response=response,
    )


def handshake(request_id: str, timestamp: float, wall_time: float) -> str:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    return cdp(
        "Network.webSocketWillSendHandshakeRequest",
        requestId=request_id,
        timestamp=timestamp,
        wallTime=wall_time,
        request={"headers": headers},
    )


def created(request_id: str, url: str) -> str:
    return cdp(
        "Network.webSocketCreated", requestId=request_id, url=url, initiator={"type": "script"}
    )


# --- Chrome DevTools Protocol ---------------------------------------------------------


def test_devtools_frames_are_dated_by_wall_time_anchors(tmp_path: Path) -> None:
    alice = [raw for _, raw in run_events("alice", 1, T0)]
    bob = [raw for _, raw in run_events("bob", 1, T0)]
    carol = [raw for _, raw in run_events("carol", 1, T0)]
    lines = [
        # a socket opened before the capture started: no handshake, no URL; an anchor
        # further down the file still dates it (the nearest one: alice's handshake)
        received("28474.5", M + 0.2, carol[0]),
        created("28474.11", ALICE),
        handshake("28474.11", M, T0),
        cdp(
            "Network.webSocketHandshakeResponseReceived",
            requestId="28474.11",
            timestamp=M + 0.03,
            response={"status": 101, "statusText": "Switching Protocols", "headers": {}},
        ),
        received("28474.11", M + 0.5, alice[0]),
        cdp(
            "Network.webSocketFrameSent",
            requestId="28474.11",
            timestamp=M + 0.55,
            response={"opcode": 1, "mask": True, "payloadData": '{"type":"user_message"}'},
        ),
        created("28474.12", BOB),
        # bob's handshake says the wall clock moved 50 ms against the monotonic one (an NTP
        # step): bob's frames are dated by bob's anchor, not alice's
        handshake("28474.12", M + 0.6, T0 + 0.65),
        received("28474.12", M + 0.7, bob[0]),
        received("28474.11", M + 0.8, alice[1]),
        cdp(
            "Network.requestWillBeSent",
            requestId="28474.20",
            loaderId="8C1A5E0F3B2D4A69",
            documentURL="https://agents.example.com/",
            request={"url": "https://agents.example.com/healthz", "method": "GET", "headers": {}},
            timestamp=M + 1.0,
            wallTime=T0 + 1.02,
            initiator={"type": "script"},
            type="Fetch",
        ),
        received("28474.5", M + 1.1, carol[1]),  # nearest anchor now: the fetch's
        cdp("Network.webSocketClosed", requestId="28474.11", timestamp=M + 1.2),
    ]
    source = tmp_path / "cdp.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = import_jsonl(source, tmp_path / "cdp.sqlite")
    assert (report.frames, report.skipped, report.bad) == (5, 8, 0), report.summary()
    frames = stored(tmp_path / "cdp.sqlite")
    assert [raw for _, _, raw in frames] == [carol[0], alice[0], bob[0], alice[1], carol[1]]
    assert_times([t for t, _, _ in frames], [T0 + 0.2, T0 + 0.5, T0 + 0.75, T0 + 0.8, T0 + 1.12])
    assert [s for _, s, _ in frames] == [str(source), ALICE, BOB, ALICE, str(source)]
    assert (report.moved_forward, report.event_timed, report.untimed) == (0, 0, 0)
    assert report.problems() == []


def test_without_wall_time_devtools_frames_take_their_events_own_time(tmp_path: Path) -> None:
    (_, e1), (_, e2), (_, e3), *_ = run_events("alice", 1, T0 + 10)
    ack = b'{"type":"connection_ack","user_id":"alice","last_seq":0,"server_version":"1"}'
    lines = [
        received("7.1", M, ack),  # no timestamp of its own and none before: the next one's
        received("7.1", M + 0.1, e1),
        received("7.1", M + 0.2, e2),
        received("7.1", M + 0.3, b'{"type":"pong"}'),  # none of its own: the one before's
        received("7.1", M + 0.4, e3),
    ]
    source = tmp_path / "no-anchor.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = import_jsonl(source, tmp_path / "no-anchor.sqlite")
    frames = stored(tmp_path / "no-anchor.sqlite")
    assert [raw for _, _, raw in frames] == [ack, e1, e2, b'{"type":"pong"}', e3]
    assert_times(
        [t for t, _, _ in frames], [T0 + 10, T0 + 10, T0 + 10.001, T0 + 10.001, T0 + 10.002]
    )
    assert (report.event_timed, report.untimed, report.file_timed) == (3, 2, 0)
    assert "3 DevTools frames timed by their events' own timestamps" in report.summary()
    (problem,) = report.problems()
    assert problem.startswith("no-anchor.jsonl: 2 DevTools frames have no wall-clock time")
    assert "wallTime" in problem


def test_a_capture_that_says_no_time_at_all_is_dated_by_the_file(tmp_path: Path) -> None:
    ack = b'{"type":"connection_ack","user_id":"alice","last_seq":0,"server_version":"1"}'
    source = tmp_path / "timeless.jsonl"
    source.write_text(f"{received('7.1', M, ack)}\n{received('7.1', M + 1, ack)}\n")
    os.utime(source, (T0 + 60, T0 + 60))
    report = import_jsonl(source, tmp_path / "timeless.sqlite")
    assert_times([t for t, _, _ in stored(tmp_path / "timeless.sqlite")], [T0 + 60, T0 + 60])
    assert (report.untimed, report.file_timed) == (2, 2)
    assert any("modification time" in p for p in report.problems()), report.problems()


# --- HAR --------------------------------------------------------------------------------


def har_frames(path: Path) -> list[tuple[float, str, str, str | None, int | None]]:
    out = []
    for at, source, raw in stored(path):
        frame = orjson.loads(raw)
        out.append((round(at - T0, 6), source, frame["type"], frame["user_id"], frame.get("seq")))
    return out


def test_a_har_file_opens_with_its_received_messages_in_time_order(tmp_path: Path) -> None:
    assert HAR.read_text().count("\n") > 300  # pretty-printed, as browsers save it
    opened = open_any(HAR, import_dir=tmp_path)
    try:
        assert har_frames(opened.recording.path) == HAR_FRAMES
        report = opened.imported
        assert report is not None
        # 3 entries (a page, two sockets); 13 messages: 2 sent, 1 binary, 10 received
        assert (report.lines, report.frames, report.skipped, report.bad) == (13, 10, 2, 1)
        assert report.moved_forward == 0
        assert opened.problems == [
            f"{HAR.name} message 5: binary message (opcode 2), not protocol v1 text "
            f"(entry 2, {ALICE})"
        ]
        assert report.summary().startswith("10 frames from 13 messages")
        replay = Replay(opened.recording)
        replay.run_to_end()
        assert replay.session.store.total == 8 and not replay.rule_counts
    finally:
        opened.close()


def test_a_har_is_known_by_its_content_not_its_name(tmp_path: Path) -> None:
    document = orjson.loads(HAR.read_bytes())
    renamed = tmp_path / "capture.json"
    shutil.copy(HAR, renamed)
    one_line = tmp_path / "capture.jsonl"  # minified: the whole document on one line
    one_line.write_bytes(orjson.dumps(document) + b"\n")
    for path in (renamed, one_line):
        assert read_har(path) == document, path.name
        report = import_har(path, tmp_path / f"{path.name}.sqlite")
        assert har_frames(tmp_path / f"{path.name}.sqlite") == HAR_FRAMES, path.name
        assert (report.frames, report.skipped, report.bad) == (10, 2, 1)
    # JSON Lines whose first frame happens to have a "log" stays JSON Lines
    lines = tmp_path / "frames.jsonl"
    lines.write_text('{"type": "pong", "log": {"entries": []}}\n{"type": "pong"}\n')
    assert read_har(lines) is None
    assert import_jsonl(lines, tmp_path / "frames.sqlite").frames == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (HAR.read_text()[:5000], "begins like a HAR file but is no valid JSON"),
        ('{\n  "log": {"version": "1.2"}\n}\n', "no HAR file: it has no log.entries"),
        (
            orjson.dumps(
                {"log": {"entries": [{"request": {"url": "https://x/"}, "response": {}}]}},
                option=orjson.OPT_INDENT_2,
            ).decode(),
            "a HAR file without received WebSocket messages",
        ),
    ],
    ids=["cut-short", "no-entries", "no-websocket"],
)
def test_a_har_that_cannot_be_opened_says_why(tmp_path: Path, content: str, match: str) -> None:
    source = tmp_path / "broken.har"
    source.write_text(content)
    with pytest.raises(RecordingError, match=match):
        open_any(source)
