"""The stream core without sockets: numbering, replay buffers and the answer to a resume.

Table-driven: each row is a stream's state and a resume request, and what the stream must
answer. The same answer serves a user's stream and the observer stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from runtime.context import UserExecutionContext
from runtime.protocol import EventType, decode_server_frame
from runtime.protocol.codec import Delivery, ErrorFrame, delivery_to_dict, dumps, encode_event
from runtime.streams import (
    DeliveryFields,
    MemoryStore,
    ObserverStream,
    StreamConflict,
    UserStream,
    answer_resume,
    delivery_open,
    node_field,
    observer_frame,
)


def _frame(seq: int, entry: bytes) -> bytes:
    return entry


def filled(capacity: int, count: int, dropped: tuple[int, ...] = ()) -> MemoryStore[bytes]:
    store: MemoryStore[bytes] = MemoryStore(capacity)
    for seq in range(1, count + 1):
        store.append(seq, None if seq in dropped else b"%d" % seq)
    return store


def test_a_store_keeps_the_newest_entries_numbered_without_holes() -> None:
    store = filled(3, 5)
    assert (store.first_seq, store.last_seq, len(store)) == (3, 5, 3)
    assert list(store.entries(0, 5)) == [(3, b"3"), (4, b"4"), (5, b"5")]
    assert list(store.entries(3, 4)) == [(4, b"4")]
    assert list(store.entries(5, 9)) == []


def test_an_empty_store_keeps_nothing() -> None:
    store: MemoryStore[bytes] = MemoryStore(3)
    assert (store.first_seq, store.last_seq) == (1, 0)
    assert list(store.entries(0, 10)) == []


def test_an_append_out_of_turn_is_a_conflict_not_a_hole() -> None:
    store = filled(3, 2)
    with pytest.raises(StreamConflict, match="seq 4 appended after 2"):
        store.append(4, b"4")
    with pytest.raises(StreamConflict):
        store.append(2, b"2 again")
    assert store.last_seq == 2


def test_a_number_kept_without_a_frame_is_skipped_on_replay() -> None:
    store = filled(5, 4, dropped=(2,))
    assert [seq for seq, _ in store.entries(0, 4)] == [1, 3, 4]


@dataclass(frozen=True)
class Case:
    name: str
    capacity: int
    emitted: int
    after: int
    upto: int  # the stream's last seq when the connection opened (sent live after it)
    replay: list[int]
    gap: tuple[int, int] | None = None
    refused: bool = False


CASES = [
    Case("all kept", 10, 5, 0, 5, [1, 2, 3, 4, 5]),
    Case("from the middle", 10, 5, 3, 5, [4, 5]),
    Case("nothing missed", 10, 5, 5, 5, []),
    Case("only what was not sent live", 10, 8, 2, 5, [3, 4, 5]),
    Case("the oldest dropped out", 3, 8, 2, 8, [6, 7, 8], gap=(3, 5)),
    Case("every missed one dropped out", 3, 8, 0, 2, [], gap=(1, 2)),
    Case("gap only up to what was not sent live", 3, 8, 0, 4, [], gap=(1, 4)),
    Case("after_seq beyond the stream", 10, 5, 9, 5, [], refused=True),
    Case("after_seq one beyond", 10, 5, 6, 5, [], refused=True),
    Case("a fresh stream, resumed from 0", 10, 0, 0, 0, []),
    Case("a fresh stream, resumed ahead", 10, 0, 1, 0, [], refused=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_resume_is_answered_with_the_frames_the_gap_or_a_refusal(case: Case) -> None:
    answer = answer_resume(filled(case.capacity, case.emitted), case.after, case.upto, _frame)
    assert [int(f) for f in answer.replay] == case.replay
    assert answer.gap == case.gap
    assert (answer.refusal is not None) == case.refused
    notices = [
        decode_server_frame(f) for f in answer.frames()[: len(answer.frames()) - len(answer.replay)]
    ]
    if case.refused:
        assert notices == [answer.refusal]
        assert isinstance(answer.refusal, ErrorFrame)
        assert answer.refusal.code == "resume_ahead"
        assert answer.refusal.ref == str(case.after)
        assert f"last seq is {case.emitted}" in answer.refusal.message
    elif case.gap is not None:
        (notice,) = notices
        assert isinstance(notice, ErrorFrame)
        assert (notice.code, notice.ref) == ("replay_gap", f"{case.gap[0]}..{case.gap[1]}")
    else:
        assert notices == []


CONTEXT = UserExecutionContext.for_message("alice", "calculator", "thread-1")


def test_a_user_stream_numbers_from_1_and_takes_a_number_only_when_recorded() -> None:
    stream = UserStream("alice", MemoryStore(10))
    first = stream.next_event(CONTEXT, EventType.AGENT_STARTED, {"input": "hi"}, 1_800_000_000.0)
    # not recorded (its data could not be encoded, say): the number is not used up
    again = stream.next_event(CONTEXT, EventType.AGENT_STARTED, {"input": "hi"}, 1_800_000_000.0)
    assert first.seq == again.seq == 1
    stream.record(first, encode_event(first))
    second = stream.next_event(
        CONTEXT, EventType.AGENT_THINKING, {"reasoning": "r", "step": 1}, 1_800_000_001.0
    )
    assert second.seq == 2
    assert (second.user_id, second.thread_id, second.run_id) == (
        "alice",
        "thread-1",
        CONTEXT.run_id,
    )


def test_event_ids_are_the_streams_prefix_and_seq_and_differ_between_streams() -> None:
    alice, bob = UserStream("alice", MemoryStore(4)), UserStream("bob", MemoryStore(4))
    a = alice.next_event(CONTEXT, EventType.AGENT_STARTED, {"input": "x"}, 1.0)
    b = bob.next_event(CONTEXT, EventType.AGENT_STARTED, {"input": "x"}, 1.0)
    assert len(a.event_id) == 32 and int(a.event_id, 16) >= 0
    assert a.event_id.endswith(f"{1:016x}")
    assert a.event_id != b.event_id


def test_a_user_stream_replays_its_frames_verbatim() -> None:
    stream = UserStream("alice", MemoryStore(10))
    frames = []
    for step in range(3):
        event = stream.next_event(
            CONTEXT, EventType.AGENT_THINKING, {"reasoning": "r", "step": step + 1}, 1.0 + step
        )
        frames.append(encode_event(event))
        stream.record(event, frames[-1])
    assert stream.resume(1, stream.last_seq).replay == frames[1:]


def test_the_observer_stream_numbers_events_and_delivery_reports_in_one_sequence() -> None:
    observed = ObserverStream(MemoryStore(10))
    event_frame = b'{"type":"agent_started","seq":1}'
    report = ("id", "alice", 1, 1, 0, 0.12345, ("alice",))
    assert observed.publish(event_frame) == 1
    assert observed.publish(report) == 2
    replay = observed.resume(0, 2).replay
    assert orjson.loads(replay[0]) == {"type": "agent_started", "seq": 1, "monitor_seq": 1}
    delivery = orjson.loads(replay[1])
    assert (delivery["type"], delivery["monitor_seq"], delivery["latency_ms"]) == (
        "delivery",
        2,
        0.123,
    )
    assert replay == [observer_frame(1, event_frame), observer_frame(2, report)]


def test_the_observer_streams_refusal_and_gap_speak_of_monitor_seq() -> None:
    observed = ObserverStream(MemoryStore(2))
    for n in range(5):
        observed.publish(b'{"n":%d}' % n)
    gap = observed.resume(0, 5).gap_report
    assert gap is not None and gap.message.startswith("monitor_seq 1..3 are no longer")
    refusal = observed.resume(7, 5).refusal
    assert refusal is not None and "last monitor_seq is 5" in refusal.message


@pytest.mark.parametrize(
    "fields",
    [
        ("e" * 32, "alice", 7, 1, 0, 0.4321, ("alice",)),
        ("e" * 32, "bob@x.io", 1, 0, 0, 0.0, ()),
        ("e" * 32, "u_1:a-b.c", 99, 3, 2, 1234.56789, ("a", "u_1:a-b.c")),
        ("e" * 32, "c", 2**40, 2, 1, 0.0004, ("c", "d")),
    ],
)
def test_a_delivery_report_is_written_as_the_codec_encodes_it(fields: DeliveryFields) -> None:
    """``delivery_open`` writes the report directly (once per event): byte for byte what
    ``delivery_to_dict`` gives, so the frame on the wire is the protocol's."""
    event_id, user_id, seq, connections, failed, latency_ms, recipients = fields
    expected = dumps(
        delivery_to_dict(
            Delivery(
                event_id,
                user_id,
                seq,
                connections,
                failed,
                round(latency_ms, 3),
                5,
                recipients,
                "n",
            )
        )
    )
    node = node_field("n")
    assert observer_frame(5, fields, node) == expected
    assert orjson.loads(delivery_open(fields) + b"}") == {
        k: v for k, v in orjson.loads(expected).items() if k not in ("node", "monitor_seq")
    }
