"""A runtime cluster's observer stream through ``ObservationSession.feed`` (what the ingest
and a replay call): each event keeps its node in the store's node column, ``node`` frames
are taken (not malformed, and counted in monitor_seq's contiguity), and a node that left or
was lost is that node's outage — never the monitor's."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from monitor.model.event_filter import EventFilter, matching_rows
from monitor.model.nodes import NO_NODE, NODE_COLOURS, NodePresence, NodeTable, short_labels
from monitor.model.session import ObservationSession
from monitor.model.store import EventStore
from monitor.services.recording import Recorder, Recording, RecordingPager, Replay
from monitor.services.recording.export import export_csv
from monitor.services.run_archive import RunArchive
from runtime.protocol import NodeState, RuleId
from runtime.streams import ConnectionState
from tests.monitor.model.cluster_frames import (
    LOST_DETAIL,
    NODE_A,
    NODE_B,
    NODE_C,
    ClusterStream,
)
from tests.monitor.model.recording.frames import run_events


def fed(stream: ClusterStream, session: ObservationSession | None = None) -> ObservationSession:
    session = session or ObservationSession()
    for at, raw in stream.frames:
        session.feed(raw, at)
    return session


def rules(session: ObservationSession) -> list[str]:
    return [record.finding.rule_id for record in session.store.findings]


def node_names(store: EventStore, rows: list[int]) -> list[str | None]:
    return [store.nodes.name_of(int(store.row(r)["node"])) for r in rows]  # type: ignore[index]


def test_each_event_keeps_its_node_in_the_node_column() -> None:
    session = fed(ClusterStream.three_nodes())
    store = session.store
    assert store.nodes.names == [NODE_A, NODE_B, NODE_C]  # codes in the order first seen
    columns = store.columns()
    assert columns["node"].dtype == np.int32
    by_user: dict[str, set[str | None]] = {}
    for row in columns["row"].tolist():
        user = store.users[int(store.row(row)["user"])]  # type: ignore[index]
        by_user.setdefault(user, set()).update(node_names(store, [row]))
    assert by_user == {
        "alice": {NODE_A},
        "bob": {NODE_B},
        "carol": {NODE_C},
        "dave": {NODE_B, NODE_A},  # started on b; a ended it after b was lost
        "erin": {NODE_C},
    }
    # a run is the node's that started it
    dave = store.run_by_id("dave", "run_dave")
    assert dave is not None and dave.node == NODE_B and dave.status == "failed"
    assert store.nodes.get(NODE_A).events == 6  # type: ignore[union-attr]


def test_node_frames_are_taken_and_count_in_monitor_seq() -> None:
    stream = ClusterStream.three_nodes()
    session = fed(stream)
    assert session.malformed == 0
    assert rules(session) == []  # no AEM018 (unknown frame), no AEM019 (monitor_seq gap)
    assert session.last_monitor_seq == stream.monitor_seq == len(stream.frames)

    # a node frame that never arrived is a gap in the observer stream like any other frame
    lost = next(i for i, (_, raw) in enumerate(stream.frames) if b'"state":"lost"' in raw)
    without = ObservationSession()
    for at, raw in stream.frames[:lost] + stream.frames[lost + 1 :]:
        without.feed(raw, at)
    assert rules(without) == [RuleId.MONITOR_SEQ_GAP]
    assert f"frames {lost + 1}..{lost + 1} missing" in without.store.findings[0].finding.message


def test_a_lost_node_is_an_outage_of_that_node_not_of_the_runtime() -> None:
    stream = ClusterStream.three_nodes()
    lost_at = next(at for at, raw in stream.frames if b'"state":"lost"' in raw)
    session = ObservationSession()
    session.set_status(ConnectionState.CONNECTED, "ws://staging-a:8765")
    connected = session.status
    fed(stream, session)

    assert session.status == connected  # the monitor's connection is not the node's
    assert session.outages == []
    nodes = {node.name: node for node in session.store.nodes.snapshot()}
    lost = nodes[NODE_B]
    assert lost.presence is NodePresence.LOST and not lost.up
    assert lost.since == lost_at and lost.detail == LOST_DETAIL
    assert [(o.start, o.end, o.presence, o.detail) for o in lost.outages] == [
        (lost_at, None, NodePresence.LOST, LOST_DETAIL)
    ]
    assert nodes[NODE_A].up and nodes[NODE_C].up
    assert not nodes[NODE_A].outages and not nodes[NODE_C].outages
    assert session.store.nodes.cluster and session.store.nodes.several


def test_a_node_that_joins_again_ends_its_outage() -> None:
    stream = ClusterStream.three_nodes()
    back_at = stream.node(NODE_B, NodeState.JOINED, "started")
    stream.run(NODE_B, "frank", "run_frank")
    left_at = stream.node(NODE_C, NodeState.LEFT, "stopped")
    found_lost_at = stream.node(NODE_C, NodeState.LOST, "lease expired")  # said twice
    session = fed(stream)

    nodes = {node.name: node for node in session.store.nodes.snapshot()}
    b = nodes[NODE_B]
    assert b.up and b.since == back_at
    assert [(o.end, o.presence) for o in b.outages] == [(back_at, NodePresence.LOST)]
    c = nodes[NODE_C]
    # one outage, from when it left, as it was last said to be gone
    assert c.presence is NodePresence.LOST and c.since == left_at
    assert [(o.start, o.end, o.presence, o.detail) for o in c.outages] == [
        (left_at, None, NodePresence.LOST, "lease expired")
    ]
    assert found_lost_at > left_at


def test_events_and_delivery_reports_are_counted_per_node() -> None:
    session = fed(ClusterStream.three_nodes())
    nodes = {node.name: node for node in session.store.nodes.snapshot()}
    # alice's run: 5 events from a, each reported delivered by a and by c (alice has
    # connections on both nodes); dave's run ended by a: one more event and report for a
    assert (nodes[NODE_A].events, nodes[NODE_A].deliveries) == (6, 6)
    assert (nodes[NODE_B].events, nodes[NODE_B].deliveries) == (9, 9)
    assert (nodes[NODE_C].events, nodes[NODE_C].deliveries) == (10, 15)
    assert session.deliveries == 30


def test_the_inspector_filter_narrows_to_one_node() -> None:
    store = fed(ClusterStream.three_nodes()).store

    def rows(flt: EventFilter) -> list[int]:
        with store.lock:
            return matching_rows(store, flt, 0, store.total, 1_000)

    b_rows = rows(EventFilter(node=NODE_B))
    assert len(b_rows) == 9 and set(node_names(store, b_rows)) == {NODE_B}
    dave = rows(EventFilter(node=NODE_A, user_id="dave"))
    assert len(dave) == 1 and store.row(dave[0])["etype"] == 4  # type: ignore[index]
    assert rows(EventFilter(node="staging-z-1")) == []  # never seen: nothing
    assert len(rows(EventFilter())) == store.total


def test_a_stream_without_nodes_makes_none() -> None:
    """A single runtime, or a recording from before cluster mode: no node anywhere."""
    session = ObservationSession()
    for at, raw in run_events("alice", 1, 1_795_000_000.0):
        session.feed(raw, at)
    store = session.store
    assert set(store.columns()["node"].tolist()) == {NO_NODE}
    assert len(store.nodes) == 0 and not store.nodes.cluster and not store.nodes.several
    run = next(iter(store.runs))
    assert run.node is None


def test_a_single_node_is_no_cluster_until_it_says_so() -> None:
    stream = ClusterStream()
    stream.run(NODE_A, "alice", "run_a")
    session = fed(stream)
    nodes = session.store.nodes
    assert len(nodes) == 1 and not nodes.several and not nodes.cluster
    stream.node(NODE_A, NodeState.LEFT, "stopped")
    session.feed(stream.frames[-1][1], stream.frames[-1][0])
    assert nodes.cluster and not nodes.several


def test_nodes_get_different_colours_that_follow_their_names() -> None:
    def colours(names: list[str]) -> dict[str, int]:
        table = NodeTable()
        for name in names:
            table.event(name, 0.0)
        return {node.name: node.colour for node in table.snapshot()}

    seen = colours([NODE_A, NODE_B, NODE_C])
    assert len(set(seen.values())) == 3
    # another monitor, which saw them in another order, colours them alike
    assert colours([NODE_C, NODE_B, NODE_A]) == seen
    # as many nodes as colours: each its own, however their names hash
    many = colours([f"node-{n}" for n in range(NODE_COLOURS)])
    assert sorted(many.values()) == list(range(NODE_COLOURS))


def test_labels_leave_out_the_parts_every_nodes_id_starts_with() -> None:
    assert short_labels([NODE_A, NODE_B, NODE_C]) == {
        NODE_A: "a-4121",
        NODE_B: "b-4123",
        NODE_C: "c-4127",
    }
    assert short_labels([NODE_A]) == {NODE_A: NODE_A}  # one alone is named in full
    assert short_labels(["node1", "node2"]) == {"node1": "node1", "node2": "node2"}
    # whole parts only, and never all of a name
    assert short_labels(["eu.web-1", "eu.web-12"]) == {"eu.web-1": "1", "eu.web-12": "12"}
    assert short_labels(["eu-a", "eu-a-2"]) == {"eu-a": "a", "eu-a-2": "a-2"}
    assert short_labels(["prod-x", "staging-a"]) == {"prod-x": "prod-x", "staging-a": "staging-a"}
    table = NodeTable()
    table.event(NODE_A, 0.0)
    assert table.label(NODE_A) == NODE_A
    table.event(NODE_B, 0.0)  # a second node: now the shared prefix goes
    assert table.label(NODE_A) == "a-4121" and table.get(NODE_B).label == "b-4123"  # type: ignore[union-attr]


@dataclass(frozen=True)
class Recorded:
    path: Path
    stream: ClusterStream


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    """A recording of the three-node stream, written as the live monitor writes one (now:
    a replay plays from the recording's creation to its last frame)."""
    stream = ClusterStream.three_nodes(t=time.time())
    session = ObservationSession()
    recorder = Recorder.create("ws://staging-a", "remote", late_join=True, directory=tmp_path)
    recorder.start().attach(session)
    fed(stream, session)
    assert recorder.flush()
    return Recorded(recorder.stop().path, stream)


def test_a_replay_shows_the_nodes_as_they_were(recorded: Recorded) -> None:
    live = fed(recorded.stream).store
    with Recording.open(recorded.path) as recording:
        replay = Replay(recording)
        replay.run_to_end()
        store = replay.session.store
        assert store.nodes.names == live.nodes.names
        assert np.array_equal(store.columns()["node"], live.columns()["node"])
        assert store.nodes.snapshot() == live.nodes.snapshot()
        lost = store.nodes.get(NODE_B)
        assert lost is not None and lost.presence is NodePresence.LOST
        assert lost.detail == LOST_DETAIL and len(lost.outages) == 1
        assert replay.session.malformed == 0
        assert not [r for r in store.findings if r.finding.rule_id == RuleId.MONITOR_SEQ_GAP]


def test_a_csv_export_has_each_frames_node(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    with Recording.open(recorded.path) as recording:
        export_csv(recording, out)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    node_frames = [row for row in rows if row["type"] == "node"]
    assert [(row["node"], row["monitor_seq"]) for row in node_frames[:3]] == [
        (NODE_A, "1"),
        (NODE_B, "2"),
        (NODE_C, "3"),
    ]
    started = next(row for row in rows if row["type"] == "agent_started")
    assert started["node"] == NODE_A and started["user_id"] == "alice"
    deliveries = {row["node"] for row in rows if row["type"] == "delivery"}
    assert deliveries == {NODE_A, NODE_B, NODE_C}


def test_events_paged_back_from_the_recording_keep_their_node(tmp_path: Path) -> None:
    session = ObservationSession(EventStore(capacity=10))
    recorder = Recorder.create("ws://staging-a", "remote", late_join=True, directory=tmp_path)
    recorder.start().attach(session)
    fed(ClusterStream.three_nodes(), session)
    assert recorder.flush()
    path = recorder.stop().path
    store = session.store
    assert store.oldest_row > 0
    pager = RecordingPager(store, path)
    try:
        window = pager.window(0.0, 2e9)
        paged = window["row"] == -1
        assert paged.sum() == store.oldest_row
        names = [store.nodes.name_of(int(code)) for code in window["node"][paged]]
        assert names[:5] == [NODE_A] * 5  # alice's run, on a
        assert set(names) == {NODE_A, NODE_B, NODE_C}
    finally:
        pager.close()


def test_a_run_that_left_memory_keeps_its_node() -> None:
    store = EventStore(max_finished_runs=1, archive_factory=RunArchive)
    try:
        fed(ClusterStream.three_nodes(), ObservationSession(store))
        assert store.evicted_runs > 0
        bob = store.archived_run("bob", "run_bob")
        assert bob is not None and bob.node == NODE_B
    finally:
        store.close()


def test_a_single_runtime_restarted_under_a_new_node_id_is_one_node_up() -> None:
    """A runtime of one process names itself by host and pid: after a restart its events
    come from a new node id. The old one is gone with the old instance, not a second node
    up beside the new one."""
    stream = ClusterStream()
    stream.run("host-4121", "alice", "run_1")
    session = fed(stream)
    session.report_runtime_restart("instance_id changed", at=stream.frames[-1][0] + 1)
    restarted = ClusterStream()
    restarted.run("host-5230", "alice", "run_2")
    fed(restarted, session)
    nodes = {info.name: info for info in session.store.nodes.snapshot()}
    assert nodes["host-4121"].presence is NodePresence.LEFT
    assert nodes["host-4121"].detail == "the runtime restarted"
    assert nodes["host-5230"].up
    # A node heard from again after the restart (a cluster node keeps its id) is back up.
    again = ClusterStream()
    again.run("host-4121", "bob", "run_3")
    fed(again, session)
    back = session.store.nodes.get("host-4121")
    assert back is not None and back.up and back.outages[-1].end is not None
