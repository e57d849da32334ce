"""The runtime restarts on the same port while the monitor is connected: the monitor shows
the outage, reconnects on its own, and reports what it cannot recover (AEM019, and the run
the old runtime never finished) instead of hiding it; the new runtime's events all arrive.

The first test kills a real runtime process (SIGKILL) mid-run and starts a new process on
the same port. The second is the restart no heuristic can see: the new runtime is up within
milliseconds and already ahead of what the monitor had received when it reconnects — only
the ``instance_id`` in ``connection_ack`` tells the streams apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from monitor.model.session import ConnectionStatus, ObservationSession
from monitor.services.ingest import MonitorIngest
from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from runtime.streams import ConnectionState
from runtime.streams.backoff import Backoff
from tests.benchmarks.processes import runtime_process
from tests.conftest import seconds, test_config, until
from tests.monitor.model.conftest import run_on, wait_until
from tests.monitor.model.test_ingest import held_pairs, rule_counts

#: stream-integrity rules: a restart must not show up as any of these
SEQ_RULES = {"AEM009", "AEM010", "AEM011"}


class StatusLog(ObservationSession):
    """A session that keeps every connection status it was given, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[ConnectionStatus] = []
        self._history_lock = threading.Lock()

    def set_status(self, state: ConnectionState, target: str, detail: str = "") -> None:
        super().set_status(state, target, detail)
        with self._history_lock:
            self.history.append(self.status)

    def states(self) -> list[ConnectionState]:
        """The states passed through, repeats collapsed."""
        with self._history_lock:
            out: list[ConnectionState] = []
            for status in self.history:
                if not out or out[-1] is not status.state:
                    out.append(status.state)
            return out


@pytest.fixture
def ingests() -> Iterator[list[MonitorIngest]]:
    started: list[MonitorIngest] = []
    yield started
    for ingest in started:
        ingest.stop()


async def test_a_killed_runtime_process_restarted_on_its_port_is_reported(
    ingests: list[MonitorIngest],
) -> None:
    with runtime_process() as old:
        authority = TokenAuthority(old.secret)
        session = StatusLog()
        ingest = MonitorIngest(
            session, old.url, authority.issue("ops", Role.MONITOR), backoff=Backoff(0.05, 0.2)
        )
        ingests.append(ingest.start())
        await until(lambda: session.status.state is ConnectionState.CONNECTED, seconds(5), "ack")
        alice = await AgentClient.connect(old.url, authority.issue("alice"))
        options = {"steps": 5000, "rate": 500, "pace": 0}
        interrupted = await alice.start_run("long job", "load", options=options)
        await until(lambda: session.store.total >= 50, seconds(5), "the run to be watched")
        old.proc.kill()  # no goodbye: no agent_completed, no close frame
        await alice.wait_until(lambda: alice.closed is not None, seconds(5))
        await alice.close()
        await until(
            lambda: session.status.state is ConnectionState.RECONNECTING, seconds(5), "outage"
        )
        # the status comes from the capture at once; its last frames may still be on their
        # way to the session
        await until(lambda: ingest.stats().behind == 0, seconds(5), "the ingest to catch up")
        held_before = session.store.total
        port = old.url.rpartition(":")[2]

    with runtime_process("--port", port, "--secret", old.secret) as new:
        assert new.url == old.url
        await until(lambda: ingest.stats().restarts == 1, seconds(10), "the restart finding")
        await until(lambda: session.status.state is ConnectionState.CONNECTED, seconds(5), "back")
        async with await AgentClient.connect(new.url, authority.issue("alice")) as again:
            events = await again.run("after the restart", "load", options={"steps": 30, "pace": 0})
        assert [e.seq for e in events] == list(range(1, 35))  # a new runtime: seq from 1
        run = events[0].run_id
        await until(
            lambda: (r := session.store.run_by_id("alice", run)) is not None and r.finished,
            seconds(5),
            "the new run in the monitor",
        )

    # The outage was shown, with its reason, and the monitor came back by itself.
    states = session.states()
    assert states[:3] == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.RECONNECTING,
    ]
    assert ConnectionState.CONNECTED in states[3:]
    outage = [s.detail for s in session.history if s.state is ConnectionState.RECONNECTING]
    assert any("retrying in" in detail for detail in outage), outage
    # What was lost is reported, once: the restart, and the run the old runtime never ended.
    counts = rule_counts(session)
    assert counts["AEM019"] == 1, counts
    assert counts["AEM016"] == 1, counts
    assert not SEQ_RULES & set(counts), counts
    restart = next(r.finding for r in session.store.findings if r.finding.rule_id == "AEM019")
    assert restart.message.startswith("runtime restarted: ")
    never_ended = next(r.finding for r in session.store.findings if r.finding.rule_id == "AEM016")
    assert never_ended.run_id == interrupted
    # Everything the new runtime emitted is held exactly once, in order.
    assert held_pairs(session)[held_before:] == [("alice", e.seq) for e in events]


def test_a_restart_already_ahead_within_milliseconds_is_told_by_the_instance_id(
    ingests: list[MonitorIngest],
) -> None:
    """Too quick for the uptime check, and the new observer stream is past what we had
    seen, so its ``last_seq`` can't tell either: without the instance id the monitor would
    resume the new stream at the old position, skipping its first frames unreported."""
    old = EmbeddedRuntime(test_config()).start()
    port, secret = old.server.port, old.config.secret
    try:
        session = StatusLog()
        ingest = MonitorIngest(
            session,
            old.url,
            old.issue_token("ops", Role.MONITOR),
            backoff=Backoff(1.0, 1.0, jitter="none"),  # the new runtime gets ahead meanwhile
        )
        ingests.append(ingest.start())
        wait_until(lambda: session.status.state is ConnectionState.CONNECTED, 5, "the ack")
        run_on(old, "2+2", "calculator")
        wait_until(lambda: session.store.runs and session.store.runs[0].finished, 5, "a run")
        seen = session.last_monitor_seq
        held_before = session.store.total
    finally:
        old.stop()
    new = EmbeddedRuntime(test_config(port=port, secret=secret)).start()
    try:
        events = run_on(new, "long job", "load", options={"steps": 40, "pace": 0})
        assert 2 * len(events) > seen  # the new observer stream is already ahead
        wait_until(lambda: ingest.stats().reconnects >= 1, 5, "the reconnect")
        wait_until(
            lambda: (r := session.store.run_by_id("alice", events[0].run_id)) and r.finished,
            5,
            "the new runtime's run",
        )
    finally:
        new.stop()

    assert ingest.stats().restarts == 1
    counts = rule_counts(session)
    assert counts == Counter({"AEM019": 1}), counts
    restart = next(r.finding for r in session.store.findings)
    assert "instance" in restart.message
    assert held_pairs(session)[held_before:] == [("alice", e.seq) for e in events]
