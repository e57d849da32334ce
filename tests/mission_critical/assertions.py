"""Stream assertions of the deployment gate.

Each failure message says what is missing, duplicated or out of order, for which user and
run, with the sequence rule's id (``AEM005 [error] tool calculate (call_x) of run run_y
never sent tool_completed (user=alice, run=run_y, seq=12)``), so whoever reads the CI log
knows what broke without rerunning anything.

Two independent checks run on every run: the findings of the ``SequenceValidator`` that
``AgentClient`` fed as frames arrived, and a direct structural check of the run's events
written here, so a bug in the shared validator cannot hide a broken runtime.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from runtime.client import AgentClient
from runtime.protocol import (
    LATENCY_BUDGET_MS,
    MANDATORY_EVENT_TYPES,
    RULES_BY_ID,
    Event,
    EventType,
    Finding,
    Ping,
    SequenceValidator,
    Severity,
    ValidatorConfig,
)
from runtime.protocol.rules import Scope, finding
from tests.conftest import seconds
from tests.mission_critical.target import SuiteClient

_E = EventType
#: findings of these severities fail a stream; info (e.g. AEM017 joined-mid-run) does not
FAILING = frozenset({Severity.WARNING, Severity.ERROR})


def outline(events: Sequence[Event], limit: int = 40) -> str:
    """``seq:type(agent)`` of up to ``limit`` events, for failure messages."""
    shown = [f"{e.seq}:{e.type.value}({e.agent_name})" for e in events[:limit]]
    more = f" … and {len(events) - limit} more" if len(events) > limit else ""
    return ", ".join(shown) + more if shown else "(no events)"


def _report(title: str, problems: Iterable[str], events: Sequence[Event] = ()) -> str:
    unique = list(dict.fromkeys(problems))
    lines = [title, *(f"  - {p}" for p in unique)]
    if events:
        lines.append(f"  events received: {outline(events)}")
    return "\n".join(lines)


def failing(findings: Iterable[Finding], allow: Iterable[str] = ()) -> list[Finding]:
    """Findings that fail a stream: warnings and errors whose rule is not in ``allow``."""
    allowed = set(allow)
    return [f for f in findings if f.severity in FAILING and f.rule_id not in allowed]


# --- waiting for what the runtime owes ---------------------------------------------------


async def flush(client: AgentClient, timeout: float) -> None:
    """Round-trip a ``ping``: everything queued for this connection before it has arrived.

    The pong is queued behind every frame already emitted to the connection, so after it a
    duplicate or late event of a finished run is in ``client.events`` if the runtime sent one.
    A monitor of a cluster also waits for what the other nodes made (``settle``): their
    frames come through the broker, not through this node's queue.
    """
    settle = client.settle if isinstance(client, SuiteClient) else None
    if settle is not None:
        await settle(client, timeout)
    pongs = client.pongs
    await client.send(Ping())
    try:
        await client.wait_until(lambda: client.pongs > pongs or client.closed, timeout)
    except TimeoutError:
        raise AssertionError(
            f"{_who(client)}: no pong within {timeout:g}s (the connection stopped answering)"
        ) from None
    if client.pongs <= pongs:
        raise AssertionError(f"{_who(client)}: connection closed while flushing: {client.closed}")
    # Frames on one connection arrive in order, so a seq still missing now was never sent
    # before the pong: report it as lost (AEM009) instead of waiting for the gap grace.
    grace = client.validator.config.gap_grace
    client.findings.extend(client.validator.tick(time.time() + grace))


#: a run whose events stopped for this long without agent_completed is taken as never
#: completing: the runtime's own pace is the signal, so a healthy slow machine that keeps
#: sending is never cut short and a broken runtime is caught in seconds, not at a timeout
RUN_SILENCE = 2.0
#: how often the runtime is asked whether a run is still executing
RUN_STATE_POLL = 0.1
#: how long after its run has ended an event may still arrive (delivery lag)
END_GRACE = 0.5


async def wait_in_run(
    client: AgentClient, run_id: str, goal: Callable[[], object], timeout: float
) -> str | None:
    """Wait until ``goal()`` while run ``run_id`` may still bring it about; None when it
    did, else why not.

    Gives up as soon as the run completes first, the runtime says the run has ended
    (``client.run_active``), the connection has been silent for ``RUN_SILENCE`` (scaled like
    every test timeout) or closed, or after ``timeout`` in all.
    """
    silence = seconds(RUN_SILENCE)
    deadline = time.monotonic() + timeout

    def settled() -> bool:
        return bool(goal()) or client.completion(run_id) is not None or client.closed is not None

    def count() -> int:
        return len(client.run_events(run_id))

    # Any frame on the connection shows the runtime at work (counting the run's own would
    # scan every event); looked at once per poll or silence period, not on every frame.
    poll = RUN_STATE_POLL if client.run_active is not None else silence
    while not goal():
        if client.completion(run_id) is not None:
            return f"the run completed first, after {count()} events"
        if client.closed is not None:
            return f"the connection closed: {client.closed}"
        left = deadline - time.monotonic()
        if left <= 0:
            return f"waited {timeout:g}s"
        if client.run_active is not None and await client.run_active(run_id) is False:
            # The run's task has ended: whatever it sent is queued ahead of the pong, unless
            # delivery itself lags; a late event gets END_GRACE more (then it is late, and
            # the latency checks say so, not this).
            await flush(client, min(silence, left))
            with contextlib.suppress(TimeoutError):
                await client.wait_until(settled, min(seconds(END_GRACE), left))
            if goal():
                break
            return (
                f"the runtime says the run has ended, after {count()} events, and nothing "
                f"more came in {seconds(END_GRACE):g}s"
            )
        quiet = time.time() - client.last_frame_at
        if quiet >= silence:
            return f"nothing arrived for {quiet:.1f}s after the run's {count()} events"
        with contextlib.suppress(TimeoutError):
            await client.wait_until(settled, min(poll, silence - quiet, left))
    return None


async def wait_completed(client: AgentClient, run_id: str, timeout: float) -> str | None:
    """Wait for ``run_id``'s ``agent_completed``; None when it came, else why not
    (``wait_in_run``)."""
    return await wait_in_run(client, run_id, lambda: client.completion(run_id), timeout)


async def reach_in_run(
    client: AgentClient, run_id: str, goal: Callable[[], object], what: str, timeout: float
) -> None:
    """``wait_in_run``, failing with ``what`` the run never got to, and what it sent."""
    why = await wait_in_run(client, run_id, goal, timeout)
    if why is not None:
        raise AssertionError(
            _report(
                f"run {run_id} of user {_user(client)}{_on_node(client)} never got to "
                f"{what} ({why})",
                [],
                client.run_events(run_id),
            )
        )


async def finish_run(client: AgentClient, run_id: str, timeout: float) -> list[Event]:
    """Wait for ``run_id``'s ``agent_completed``, flush, and return the run's events.

    A run that never completes fails with AEM016 naming the run, its user and what it sent,
    as soon as its events stop coming (``wait_completed``).
    """
    why = await wait_completed(client, run_id, timeout)
    if why is not None:
        events = client.run_events(run_id)
        open_tools = _open_tools(events)
        suffix = f"; tools still open: {', '.join(open_tools)}" if open_tools else ""
        errored = any(e.type is _E.AGENT_ERROR for e in events)
        problem = finding(
            "AEM026" if errored else "AEM016",
            f"run {run_id} of {_user(client)} "
            + ("sent agent_error but " if errored else "")
            + f"never sent agent_completed ({why}){suffix}",
            user_id=_user(client),
            run_id=run_id,
        )
        raise AssertionError(
            _report(
                f"run {run_id} of user {_user(client)}{_on_node(client)} did not finish:",
                [str(problem)],
                events,
            )
        ) from None
    await flush(client, timeout)
    return client.run_events(run_id)


async def run_started(client: AgentClient, timeout: float) -> str:
    """The run id of the first event to arrive (for runs started with a raw frame)."""

    def first_run() -> str | None:
        return client.events[0].run_id if client.events else None

    run_id = await client.wait_until(first_run, timeout)
    assert run_id is not None
    return run_id


# --- runs -----------------------------------------------------------------------------


def assert_run_conforms(
    client: AgentClient,
    run_id: str,
    *,
    status: str = "completed",
    mandatory: Sequence[EventType] = MANDATORY_EVENT_TYPES,
) -> list[Event]:
    """The run's events on this connection obey every run rule; returns them.

    Also fails on stream findings (gaps, duplicates, reordering) of the run's user seen so
    far on this connection, since those lose or repeat the run's events.
    """
    user_id = _user(client)
    events = client.run_events(run_id)
    validator_problems = [
        str(f)
        for f in failing(client.findings)
        if f.run_id == run_id or (f.run_id is None and f.user_id == user_id)
    ]
    problems = validator_problems + run_problems(
        events, user_id=user_id, run_id=run_id, status=status, mandatory=mandatory
    )
    if problems:
        raise AssertionError(
            _report(
                f"run {run_id} of user {user_id}{_on_node(client)} broke the event contract:",
                problems,
                events,
            )
        )
    return events


def assert_event_count(client: AgentClient, run_id: str, expected: int) -> list[Event]:
    """The run delivered exactly ``expected`` events to this connection; returns them.

    A shortfall names the seqs missing from the user's stream here (lost or sent elsewhere).
    """
    events = client.run_events(run_id)
    if len(events) != expected:
        user_id = _user(client)
        seqs = sorted({e.seq for e in client.events if e.user_id == user_id})
        missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs)) if seqs else []
        shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
        gap = f"; AEM009 seq {shown} of {user_id} never arrived here" if missing else ""
        raise AssertionError(
            _report(
                f"run {run_id} of user {user_id}{_on_node(client)}: received {len(events)} of "
                f"{expected} events{gap}",
                [],
                events,
            )
        )
    return events


def assert_events_conform(
    events: Sequence[Event],
    *,
    user_id: str,
    run_id: str,
    status: str = "completed",
    mandatory: Sequence[EventType] = MANDATORY_EVENT_TYPES,
) -> None:
    """``events`` (one run, in arrival order, e.g. gathered over a reconnect) obey the rules."""
    problems = run_problems(
        events, user_id=user_id, run_id=run_id, status=status, mandatory=mandatory
    )
    if problems:
        raise AssertionError(
            _report(f"run {run_id} of user {user_id} broke the event contract:", problems, events)
        )


def run_problems(
    events: Sequence[Event],
    *,
    user_id: str,
    run_id: str,
    status: str | None = "completed",
    mandatory: Sequence[EventType] = MANDATORY_EVENT_TYPES,
) -> list[str]:
    """Every way ``events`` break the run rules, each naming its rule id (empty: none)."""
    if not events:
        return [f"run {run_id} of {user_id}: no events received at all"]
    at = _RunLocation(user_id, run_id)
    out: list[str] = []

    # The shared validator, run afresh over just this run (run-scope rules only: a run's
    # seqs are not contiguous when other runs of the user interleave with it).
    validator = SequenceValidator(ValidatorConfig(late_join=True))
    found = [f for e in events for f in validator.feed(e)] + validator.close()
    out += [str(f) for f in failing(found) if RULES_BY_ID[f.rule_id].scope is Scope.RUN]

    # The same rules, checked directly.
    types = [e.type for e in events]
    missing = [t.value for t in mandatory if t not in types]
    if missing:
        got = ", ".join(dict.fromkeys(t.value for t in types))
        out.append(
            f"missing mandatory events: {', '.join(missing)} "
            f"(user={user_id}, run={run_id}, got {got})"
        )
    for e in [e for e in events if e.user_id != user_id or e.run_id != run_id][:5]:
        out.append(
            f"event seq {e.seq} {e.type.value} belongs to user={e.user_id} run={e.run_id}, "
            f"not to user={user_id} run={run_id} (cross-delivery)"
        )
    if events[0].type is not _E.AGENT_STARTED:
        out.append(at.flag("AEM001", f"run began with {events[0].type.value}", events[0].seq))
    counts = Counter(types)
    if counts[_E.AGENT_STARTED] > 1:
        out.append(at.flag("AEM002", f"agent_started sent {counts[_E.AGENT_STARTED]} times"))
    completions = [e for e in events if e.type is _E.AGENT_COMPLETED]
    if not completions:
        out.append(at.flag("AEM016", "no agent_completed"))
    elif len(completions) > 1:
        seqs = ", ".join(str(e.seq) for e in completions)
        out.append(
            at.flag(
                "AEM003",
                f"agent_completed sent {len(completions)} times (seq {seqs})",
                completions[1].seq,
            )
        )
    elif events[-1] is not completions[0]:
        late = events[events.index(completions[0]) + 1]
        out.append(at.flag("AEM004", f"{late.type.value} arrived after agent_completed", late.seq))
    if counts[_E.AGENT_THINKING] == 0:
        out.append(at.flag("AEM007", "no agent_thinking"))
    out += _tool_problems(events, completions[0] if completions else None, at)
    for earlier, later in pairwise(events):
        if later.seq <= earlier.seq:
            rule = "AEM010" if later.seq == earlier.seq else "AEM011"
            message = f"seq {later.seq} ({later.type.value}) arrived after seq {earlier.seq}"
            out.append(at.flag(rule, message, later.seq))
    correlation = {e.data.get("correlation_id") for e in events}
    if len(correlation) != 1 or None in correlation:
        out.append(
            f"run {run_id} of {user_id}: events carry correlation ids "
            f"{sorted(map(str, correlation))}, expected one request id on every event"
        )
    if status is not None and len(completions) == 1:
        got_status = completions[0].data.get("status")
        if got_status != status:
            detail = completions[0].data.get("error") or completions[0].data.get("result")
            out.append(
                f"run {run_id} of {user_id} ended with status {got_status!r}, expected "
                f"{status!r} ({str(detail)[:200]})"
            )
    return out


@dataclass(frozen=True, slots=True)
class _RunLocation:
    """Where a problem was found, so its message names the user and the run."""

    user_id: str
    run_id: str

    def flag(self, rule_id: str, message: str, seq: int | None = None) -> str:
        return str(
            finding(
                rule_id,
                f"run {self.run_id}: {message}",
                user_id=self.user_id,
                run_id=self.run_id,
                seq=seq,
            )
        )


def _tool_problems(
    events: Sequence[Event], completion: Event | None, at: _RunLocation
) -> list[str]:
    out: list[str] = []
    executing: dict[str, Event] = {}
    completed: dict[str, Event] = {}
    for e in events:
        call_id = e.tool_call_id
        if call_id is None:
            continue
        if e.type is _E.TOOL_EXECUTING:
            if call_id in executing:
                out.append(at.flag("AEM014", f"tool call {call_id} announced twice", e.seq))
            executing.setdefault(call_id, e)
        elif e.type is _E.TOOL_COMPLETED:
            if call_id not in executing:
                message = (
                    f"tool_completed for {e.data.get('tool_name')} ({call_id}) has no "
                    "tool_executing before it"
                )
                out.append(at.flag("AEM006", message, e.seq))
            elif call_id in completed:
                out.append(at.flag("AEM006", f"tool call {call_id} completed twice", e.seq))
            completed.setdefault(call_id, e)
    for call_id, start in executing.items():
        done = completed.get(call_id)
        if done is None or (completion is not None and done.seq > completion.seq):
            message = (
                f"tool {start.data.get('tool_name')} ({call_id}) never sent tool_completed "
                "before agent_completed"
            )
            out.append(at.flag("AEM005", message, start.seq))
    return out


def _open_tools(events: Sequence[Event]) -> list[str]:
    opened = {
        e.tool_call_id: e.data.get("tool_name") for e in events if e.type is _E.TOOL_EXECUTING
    }
    for e in events:
        if e.type is _E.TOOL_COMPLETED:
            opened.pop(e.tool_call_id, None)
    return [f"{name} ({call_id})" for call_id, name in opened.items()]


# --- latency and clocks -----------------------------------------------------------------


def assert_latency_within_budget(
    client: AgentClient, who: str, budget_ms: float = LATENCY_BUDGET_MS, share: float = 0.9
) -> None:
    """At least ``share`` of the events on this connection arrived within ``budget_ms`` of
    their timestamp (emit -> receive; needs clocks in step, e.g. the same machine)."""
    latencies = sorted(client.latencies_ms)
    if not latencies:
        return
    at_share = latencies[min(len(latencies) - 1, int(share * len(latencies)))]
    assert at_share < budget_ms, (
        f"{who}: {share:.0%} of {len(latencies)} events should arrive within {budget_ms:g} ms "
        f"of their timestamp; the {share:.0%} mark is {at_share:.0f} ms (median "
        f"{latencies[len(latencies) // 2]:.0f} ms, max {latencies[-1]:.0f} ms): events are "
        "delivered late"
    )


# --- streams --------------------------------------------------------------------------


def assert_stream_clean(client: AgentClient, *, allow: Iterable[str] = ()) -> None:
    """Everything this connection received obeys every rule; call when done with it.

    Runs the validator's end-of-stream checks (unrecovered seq gaps, runs that never
    completed), so it belongs at the end of a test, after ``finish_run``/``flush``.
    """
    client.close_findings()
    problems = [str(f) for f in failing(client.findings, allow)]
    problems += [
        f"AEM018 [error] malformed frame: {m} (user={_user(client)})" for m in client.malformed
    ]
    if problems:
        raise AssertionError(
            _report(
                f"stream of user {_user(client)}{_on_node(client)} is not clean:",
                problems,
                client.events,
            )
        )


def assert_numbered_per_user(streams: Mapping[str, AgentClient]) -> None:
    """Each user's events are numbered on their own: 1, 2, 3 … after the ack's ``last_seq``.

    A stream with gaps is lost events (AEM009) unless the other users' streams hold exactly
    the missing numbers: then nothing was lost, and one counter numbers every user's events
    (AEM027), which this says instead.
    """
    seqs: dict[str, list[int]] = {}
    for user_id, client in streams.items():
        start = client.ack.last_seq if client.ack is not None else 0
        seqs[user_id] = sorted({e.seq for e in client.events if e.user_id == user_id})
        if seqs[user_id] and seqs[user_id][0] != start + 1:
            seqs[user_id].insert(0, start)  # the gap before the first event counts too
    gapped = {u: s for u, s in seqs.items() if s and s != list(range(s[0], s[0] + len(s)))}
    if not gapped:
        return
    everyone = [n for numbers in seqs.values() for n in numbers]
    if len(set(everyone)) == len(everyone):
        shown = "; ".join(
            f"{user}: {', '.join(map(str, numbers[:8]))} …" for user, numbers in seqs.items()
        )
        raise AssertionError(
            f"AEM027: the users' seq numbers never overlap ({shown}): one counter numbers every "
            "user's events, so each user's stream looks full of lost events. seq must count "
            "each user's own events from 1."
        )


def assert_only_own_events(client: AgentClient, user_id: str, run_ids: Iterable[str]) -> None:
    """Every event on this connection is ``user_id``'s and of one of ``run_ids``."""
    runs = set(run_ids)
    foreign = [e for e in client.events if e.user_id != user_id or e.run_id not in runs]
    if foreign:
        lines = [
            f"seq {e.seq} {e.type.value} of user={e.user_id} run={e.run_id}" for e in foreign[:10]
        ]
        raise AssertionError(
            _report(
                f"connection of user {user_id}{_on_node(client)} received {len(foreign)} "
                "event(s) that are not "
                f"its own (cross-delivery between users or runs):",
                lines,
            )
        )


def _user(client: AgentClient) -> str:
    return client.ack.user_id if client.ack is not None else "?"


def _on_node(client: AgentClient) -> str:
    """`` on node a`` for a connection to a cluster's node (its ack names the node)."""
    node = client.ack.extra.get("node_id") if client.ack is not None else None
    return f" on node {node}" if node else ""


def _who(client: AgentClient) -> str:
    return f"connection of user {_user(client)}{_on_node(client)}"
