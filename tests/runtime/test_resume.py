"""Resume over real sockets: a user who drops off mid-run reconnects and gets every missed
event exactly once — by a ``resume`` message or the ``after_seq`` handshake parameter — is
told precisely what fell out of the replay buffer, and the observer stream resumes by
``monitor_seq`` the same way.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from runtime.auth import Role
from runtime.client import AgentClient
from runtime.protocol import (
    Delivery,
    ErrorFrame,
    Event,
    Finding,
    Resume,
    SequenceValidator,
    Severity,
)
from runtime.server import RuntimeServer
from tests.conftest import DialFactory, RuntimeFactory, seconds, until

#: About 0.8 s of events at 100 thinking steps per second: long enough to drop off mid-run.
SLOW_RUN = {"steps": 80, "tools": 5, "rate": 100, "pace": 0}
FAST_RUN = {"steps": 10, "tools": 2, "pace": 0}


class RecordingClient(AgentClient):
    """An ``AgentClient`` that also keeps every frame in arrival order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[Any] = []

    def _on_frame(self, raw: str | bytes) -> None:
        before = (len(self.events), len(self.errors), len(self.deliveries))
        super()._on_frame(raw)
        if len(self.events) > before[0]:
            self.frames.append(self.events[-1])
        elif len(self.errors) > before[1]:
            self.frames.append(self.errors[-1])
        elif len(self.deliveries) > before[2]:
            self.frames.append(self.deliveries[-1])


@pytest.fixture
def dial(dial: DialFactory) -> DialFactory:
    """The shared ``dial``, connecting ``RecordingClient``s."""
    return functools.partial(dial, client_class=RecordingClient)


def errors_only(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def validate_fresh(events: Iterable[Event]) -> list[Finding]:
    """Feed ``events`` (in seq order, duplicates kept) to a fresh validator, then close it."""
    validator = SequenceValidator()
    found: list[Finding] = []
    for event in sorted(events, key=lambda e: e.seq):
        found.extend(validator.feed(event))
    found.extend(validator.close())
    return found


def seqs_of(events: Iterable[Event], user: str = "alice") -> list[int]:
    return [e.seq for e in events if e.user_id == user]


def repeated(values: Iterable[int]) -> list[int]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


async def drop_mid_run(
    server: RuntimeServer, dial: Callable[..., Any], *, options: dict[str, Any] = SLOW_RUN
) -> tuple[RecordingClient, str, int]:
    """Start a slow run, receive a few events, disconnect; returns (client, run, last seq)."""
    first = await dial(server, "alice")
    run_id = await first.start_run("long job", "load", options=options)
    await first.wait_until(lambda: len(first.events) >= 5, seconds(5))
    connected = server.manager.connection_count("alice")
    await first.close()
    await until(
        lambda: server.manager.connection_count("alice") == connected - 1,
        seconds(5),
        "the server to notice the disconnect",
    )
    last = first.last_seq
    assert seqs_of(first.events) == list(range(1, last + 1))
    return first, run_id, last


async def wait_all_seqs(client: AgentClient, upto: int, timeout: float) -> None:
    await client.wait_until(lambda: max(seqs_of(client.events), default=0) >= upto, timeout)


# --- resume of a user's stream ----------------------------------------------------------


async def test_resume_message_after_reconnect_delivers_every_missed_event_once(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    monitor = await dial(server, "ops", role=Role.MONITOR)
    first, run_id, last = await drop_mid_run(server, dial)

    # The run goes on without a connection: the monitor sees its events, seq keeps growing.
    await until(lambda: server.manager.last_seq("alice") >= last + 10, seconds(5), "progress")
    await monitor.wait_until(lambda: max(seqs_of(monitor.events), default=0) > last + 5, seconds(5))

    second = await dial(server, "alice")
    assert second.ack is not None and second.ack.last_seq >= last + 10
    await second.send(Resume(after_seq=last))
    await second.wait_run(run_id, seconds(15))
    total = server.manager.last_seq("alice")
    await wait_all_seqs(second, total, seconds(5))

    got = seqs_of(second.events)
    assert repeated(got) == [], "an event arrived twice on the resumed connection"
    assert sorted(got) == list(range(last + 1, total + 1))
    combined = first.events + second.events  # no dedup
    assert sorted(seqs_of(combined)) == list(range(1, total + 1))
    assert validate_fresh(combined) == []
    assert seqs_of(monitor.events) == list(range(1, total + 1))


async def test_client_resume_checks_the_replay_as_the_continuation(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    _, run_id, last = await drop_mid_run(server, dial)
    await until(lambda: server.manager.last_seq("alice") >= last + 5, seconds(5), "progress")
    second = await dial(server, "alice")
    await second.resume(last)
    await second.wait_run(run_id, seconds(15))
    # Its own validator saw the replay as the stream continuing after ``last``: no findings.
    assert errors_only(second.findings) == []
    assert seqs_of(second.events)[0] == last + 1


async def test_resume_after_live_events_does_not_resend_them(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    """A resume that arrives after some live events only fills the hole before them."""
    server = await make_runtime()
    first, run_id, last = await drop_mid_run(server, dial)
    await until(lambda: server.manager.last_seq("alice") >= last + 10, seconds(5), "progress")

    second = await dial(server, "alice")
    assert second.ack is not None
    reconnected_at = second.ack.last_seq
    await second.wait_until(lambda: len(second.events) >= 3, seconds(5))  # live ones
    assert min(seqs_of(second.events)) == reconnected_at + 1
    await second.send(Resume(after_seq=last))
    await second.wait_run(run_id, seconds(15))
    total = server.manager.last_seq("alice")
    await wait_all_seqs(second, total, seconds(5))
    await second.wait_until(
        lambda: set(range(last + 1, total + 1)) <= set(seqs_of(second.events)), seconds(5)
    )

    got = seqs_of(second.events)
    assert repeated(got) == [], "live events were sent again by the resume"
    assert sorted(got) == list(range(last + 1, total + 1))
    assert validate_fresh(first.events + second.events) == []


async def test_resume_by_handshake_parameter(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    first, run_id, last = await drop_mid_run(server, dial)
    await until(lambda: server.manager.last_seq("alice") >= last + 10, seconds(5), "progress")

    second = await dial(server, "alice", after_seq=last)
    await second.wait_run(run_id, seconds(15))
    total = server.manager.last_seq("alice")
    await wait_all_seqs(second, total, seconds(5))

    got = seqs_of(second.events)
    # Replayed events first, then live ones: the resumed connection is in order by itself.
    assert got == list(range(last + 1, total + 1))
    combined = first.events + second.events
    assert [e.seq for e in combined] == list(range(1, total + 1))
    assert validate_fresh(combined) == []
    # The client's own validator knows where the resumed stream continues.
    assert errors_only(second.findings) == []
    assert errors_only(second.close_findings()) == []


async def test_resume_with_nothing_missed_sends_nothing(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    client = await dial(server, "alice")
    events = await client.run("quick", "load", options=FAST_RUN, timeout=seconds(10))
    await client.send(Resume(after_seq=events[-1].seq))
    await client.send_raw('{"type":"ping"}')
    await client.wait_until(lambda: client.pongs == 1, seconds(5))
    assert client.errors == []
    assert len(client.events) == len(events)


async def test_resume_from_zero_on_a_fresh_connection_replays_history(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    first = await dial(server, "alice")
    events = await first.run("history", "load", options=FAST_RUN, timeout=seconds(10))
    later = await dial(server, "alice", after_seq=0)
    await later.wait_until(lambda: len(later.events) == len(events), seconds(5))
    assert [e.event_id for e in later.events] == [e.event_id for e in events]
    assert later.errors == []
    assert later.close_findings() == [] and errors_only(later.findings) == []


# --- replay buffer overflow -------------------------------------------------------------


@pytest.mark.parametrize("how", ["message", "handshake"])
async def test_resume_past_the_replay_buffer_reports_the_gap_first(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], how: str
) -> None:
    server = await make_runtime(replay_buffer=20)
    first, run_id, last = await drop_mid_run(server, dial, options={**SLOW_RUN, "steps": 60})
    await until(lambda: server.factory.active_runs() == 0, seconds(10), "the run to finish")
    total = server.manager.last_seq("alice")
    oldest = total - 20 + 1
    assert oldest > last + 1, "the test needs events to have fallen out of the buffer"

    if how == "message":
        second = await dial(server, "alice")
        await second.send(Resume(after_seq=last))
    else:
        second = await dial(server, "alice", after_seq=last)
    await second.wait_until(
        lambda: second.errors and max(seqs_of(second.events), default=0) >= total, seconds(5)
    )

    (gap,) = second.errors
    assert gap.code == "replay_gap"
    assert gap.ref == f"{last + 1}..{oldest - 1}"
    assert f"{last + 1}..{oldest - 1}" in gap.message
    # The error comes before the still-buffered events, which follow in order, once each.
    assert isinstance(second.frames[0], ErrorFrame)
    assert [f.seq for f in second.frames[1:]] == list(range(oldest, total + 1))
    assert second.completion(run_id) is not None
    # What was lost is exactly the reported range.
    received = set(seqs_of(first.events + second.events))
    assert set(range(1, total + 1)) - received == set(range(last + 1, oldest))


async def test_replay_gap_counts_in_metrics(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime(replay_buffer=5)
    client = await dial(server, "alice")
    await client.run("fill", "load", options=FAST_RUN, timeout=seconds(10))
    later = await dial(server, "alice", after_seq=0)
    await later.wait_until(lambda: later.errors and len(later.events) == 5, seconds(5))
    assert later.errors[0].code == "replay_gap"
    assert server.metrics.replay_gaps._value.get() == 1


# --- several connections of one user ----------------------------------------------------


async def test_two_connections_of_one_user_both_receive_all_events(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    one = await dial(server, "alice")
    two = await dial(server, "alice")
    run_a = await one.start_run("from one", "load", options=FAST_RUN)
    run_b = await two.start_run("from two", "load", options=FAST_RUN)
    for client in (one, two):
        await client.wait_run(run_a, seconds(10))
        await client.wait_run(run_b, seconds(10))
    total = server.manager.last_seq("alice")
    assert total == 2 * (FAST_RUN["steps"] + 2 * FAST_RUN["tools"] + 2)
    for client in (one, two):
        assert seqs_of(client.events) == list(range(1, total + 1))
        assert client.close_findings() == [] and client.findings == []
    assert [e.event_id for e in one.events] == [e.event_id for e in two.events]


async def test_one_connection_resuming_does_not_disturb_the_other(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    steady = await dial(server, "alice")
    _, run_id, last = await drop_mid_run(server, dial)
    resumed = await dial(server, "alice", after_seq=last)
    await steady.wait_run(run_id, seconds(15))
    await resumed.wait_run(run_id, seconds(15))
    total = server.manager.last_seq("alice")
    await wait_all_seqs(resumed, total, seconds(5))
    assert seqs_of(steady.events) == list(range(1, total + 1))
    assert seqs_of(resumed.events) == list(range(last + 1, total + 1))
    assert steady.close_findings() == [] and steady.findings == []


# --- the observer stream ----------------------------------------------------------------


def monitor_seqs(client: RecordingClient) -> list[int]:
    out = []
    for frame in client.frames:
        if isinstance(frame, Event | Delivery):
            assert frame.monitor_seq is not None
            out.append(frame.monitor_seq)
    return out


@pytest.mark.parametrize("how", ["message", "handshake"])
async def test_monitor_resumes_by_monitor_seq(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], how: str
) -> None:
    server = await make_runtime()
    first = await dial(server, "ops", role=Role.MONITOR)
    user = await dial(server, "alice")
    await user.run("seen live", "load", options=FAST_RUN, timeout=seconds(10))
    await first.wait_until(lambda: len(first.deliveries) == len(user.events), seconds(5))
    seen = monitor_seqs(first)
    assert seen == list(range(1, len(seen) + 1))
    last = seen[-1]
    await first.close()

    # While no observer is connected, another run happens (and one keeps going).
    missed_run = await user.start_run("missed", "load", options=FAST_RUN)
    await user.wait_run(missed_run, seconds(10))
    live_run = await user.start_run("spans the resume", "load", options=SLOW_RUN)

    if how == "message":
        second = await dial(server, "ops", role=Role.MONITOR)
        await second.wait_until(lambda: len(second.frames) >= 2, seconds(5))  # live frames
        await second.send(Resume(after_seq=last))
    else:
        second = await dial(server, "ops", role=Role.MONITOR, after_seq=last)
    await second.wait_run(live_run, seconds(15))
    await user.wait_run(live_run, seconds(15))
    end = 2 * server.manager.last_seq("alice")  # one event frame + one delivery per event
    await second.wait_until(lambda: max(monitor_seqs(second), default=0) >= end, seconds(5))

    got = monitor_seqs(second)
    assert repeated(got) == [], "an observer frame arrived twice"
    assert sorted(seen + got) == list(range(1, end + 1))
    missed = [e for e in second.events if e.run_id == missed_run]
    assert [e.event_id for e in missed] == [e.event_id for e in user.run_events(missed_run)]
    assert second.errors == []


# --- a resume beyond the stream (a client counting a restarted runtime's stream) ---------


@pytest.mark.parametrize("how", ["message", "handshake"])
@pytest.mark.parametrize("role", [Role.USER, Role.MONITOR], ids=["user", "monitor"])
async def test_a_resume_beyond_the_stream_is_refused_and_live_frames_still_flow(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], how: str, role: Role
) -> None:
    server = await make_runtime()
    ahead = 500
    if how == "message":
        client = await dial(server, "alice", role=role)
        await client.send(Resume(after_seq=ahead))
    else:
        client = await dial(server, "alice", role=role, after_seq=ahead)
    with contextlib.suppress(TimeoutError):
        await client.wait_until(lambda: client.errors, seconds(5))
    assert client.errors, (
        f"nothing answered a resume after_seq {ahead} of a stream that is at 0: the runtime "
        "must refuse it with a resume_ahead error frame"
    )
    (refusal,) = client.errors
    assert (refusal.code, refusal.ref) == ("resume_ahead", str(ahead))
    assert f"after_seq {ahead} is beyond this stream" in refusal.message
    # The client's cursor takes it as a restart: its next connection asks from the start.
    assert client.cursor.request() == 0
    # Nothing was replayed, and the connection goes on with live frames.
    user = client if role is Role.USER else await dial(server, "alice")
    events = await user.run("after the refusal", "load", options=FAST_RUN, timeout=seconds(10))
    await client.wait_until(lambda: len(client.events) >= len(events), seconds(5))
    assert [e.event_id for e in client.events] == [e.event_id for e in events]
    assert errors_only(client.findings) == []


async def test_a_client_resuming_from_a_restarted_runtime_is_told_by_its_ack(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    old = await make_runtime()
    first = await dial(old, "alice")
    await first.run("before", "load", options=FAST_RUN, timeout=seconds(10))
    await first.close()
    new = await make_runtime(secret=old.config.secret)  # same users, a new instance
    second = await dial(new, "alice", cursor=first.cursor)
    assert second.ack_verdict is not None
    assert second.ack_verdict.kind == "restarted"
    assert "seq 0, but" in second.ack_verdict.detail
    assert second.cursor.request() == 0


async def test_a_second_resume_sends_only_what_the_first_did_not(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    first = await dial(server, "alice")
    events = await first.run("history", "load", options=FAST_RUN, timeout=seconds(10))
    total = len(events)
    later = await dial(server, "alice", after_seq=total - 3)
    await later.wait_until(lambda: len(later.events) == 3, seconds(5))
    await later.send(Resume(after_seq=total - 5))  # further back: two more
    await later.send(Resume(after_seq=total - 4))  # all of it sent already
    await later.send_raw('{"type":"ping"}')
    await later.wait_until(lambda: later.pongs == 1, seconds(5))
    got = seqs_of(later.events)
    assert repeated(got) == [], f"a resume re-sent seq {repeated(got)} to the same connection"
    assert sorted(got) == list(range(total - 4, total + 1))
