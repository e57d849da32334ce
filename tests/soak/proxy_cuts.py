"""proxy: connections killed mid-stream, clients resume, every event arrives exactly once.

Each user reaches the runtime through a ``CuttingProxy`` of its own and runs the ``load``
agent back to back. During every run the proxy resets the user's connection
``cuts_per_run`` times, at seeded random points of the stream (every other cut mid-frame);
each time the client reconnects with ``?after_seq=<last seq received>``. One
``SequenceValidator`` follows the user's stream across all of its connections, and the
concatenation of what every connection received must be exactly ``1..N``: nothing lost,
nothing twice, nothing out of order.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from websockets.exceptions import InvalidHandshake

from runtime.auth import TokenAuthority
from runtime.client import AgentClient
from runtime.load_generator import events_per_run, percentiles
from runtime.protocol import Event, SequenceValidator, UserMessage
from tests.benchmarks.processes import runtime_process
from tests.benchmarks.results import BenchmarkResult, Figure, Target

from .figures import all_of, none_allowed
from .proxy import CuttingProxy

#: a reconnect that fails (e.g. the runtime is busy) is retried this many times at once
CONNECT_ATTEMPTS = 5
WAIT_TIMEOUT = 20.0
#: a mid-frame cut waits this long for the runtime's next chunk, then cuts at once
MID_FRAME_WAIT = 1.0

TokenFor = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class CutSpec:
    """What each user does: ``runs`` runs (or back to back until ``duration`` s), each of
    ``steps`` thinking steps and ``tools`` tool calls at ``rate`` steps/s, cut
    ``cuts_per_run`` times."""

    users: int = 2
    runs: int = 1
    duration: float = 0.0
    steps: int = 600
    tools: int = 10
    rate: float = 400.0
    cuts_per_run: int = 20
    seed: int = 8
    timeout: float = WAIT_TIMEOUT


@dataclass
class UserLedger:
    """Everything one user's connections received, in arrival order, and how it went."""

    user: str
    runs: int = 0
    cuts: int = 0
    mid_frame_cuts: int = 0
    events_expected: int = 0
    clients: list[AgentClient] = field(default_factory=list)
    reconnect_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        return [e for c in self.clients for e in c.events]


@dataclass
class CutReport:
    """The scenario's figures over every user."""

    users: int
    runs: int = 0
    cuts: int = 0
    mid_frame_cuts: int = 0
    connections: int = 0
    #: events a resumed connection got from the replay buffer: lost in flight in a cut, or
    #: emitted while the user had no connection
    replayed: int = 0
    events_expected: int = 0
    events_received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    findings_by_rule: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reconnect_ms: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.duplicated or self.out_of_order or self.findings_by_rule)
            and not self.errors
        )


class _UserSession:
    """One user's connections through its own proxy, all checked by one validator."""

    def __init__(self, proxy: CuttingProxy, ledger: UserLedger, token: str, timeout: float):
        self.proxy = proxy
        self.ledger = ledger
        self.token = token
        self.timeout = timeout
        self.validator = SequenceValidator()  # a fresh user: its stream must start at seq 1
        self.client: AgentClient | None = None
        self._before = 0  # the last seq received on the connections before this one

    @property
    def last_seq(self) -> int:
        client = self.client
        return client.events[-1].seq if client and client.events else self._before

    async def connect(self, after_seq: int | None) -> AgentClient:
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                client = await AgentClient.connect(
                    self.proxy.url, self.token, after_seq=after_seq, validator=self.validator
                )
            except (OSError, TimeoutError, ConnectionError, InvalidHandshake):
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise
            else:
                self._before = self.last_seq
                self.client = client
                self.ledger.clients.append(client)
                return client
        raise AssertionError("unreachable")

    async def received(self, seq: int) -> None:
        """Wait until ``seq`` was received (on this connection, or before the last cut)."""
        client = self.client
        assert client is not None

        def arrived() -> bool:
            return self.last_seq >= seq

        try:
            await client.wait_until(lambda: arrived() or client.closed is not None, self.timeout)
        except TimeoutError:
            raise TimeoutError(
                f"seq {seq} not received within {self.timeout:g}s (last: {self.last_seq}, "
                f"connection {len(self.ledger.clients)}, {self.ledger.cuts} cuts so far)"
            ) from None
        if not arrived():
            raise ConnectionError(f"connection lost without a cut: {client.closed}")

    async def cut_and_resume(self, mid_frame: bool) -> None:
        """Cut the connection, wait until the client noticed, and reconnect with
        ``after_seq`` = the last seq received."""
        client = self.client
        assert client is not None
        cut_at = time.perf_counter()
        self.proxy.cut(mid_frame=mid_frame)
        try:
            await client.wait_until(
                lambda: client.closed is not None, MID_FRAME_WAIT if mid_frame else self.timeout
            )
        except TimeoutError:
            if not mid_frame:
                raise
            self.proxy.cut()  # the stream went quiet before a chunk came to split
            mid_frame = False
            await client.wait_until(lambda: client.closed is not None, self.timeout)
        self.ledger.cuts += 1
        self.ledger.mid_frame_cuts += mid_frame
        await client.close()
        await self.connect(self.last_seq)
        self.ledger.reconnect_ms.append((time.perf_counter() - cut_at) * 1000)

    async def start_run(self, text: str, options: dict[str, Any]) -> None:
        assert self.client is not None
        await self.client.send(UserMessage(text, None, "load", options))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client.close_findings()


async def _user_session(
    url: str, user: str, token: str, spec: CutSpec, deadline: float
) -> UserLedger:
    ledger = UserLedger(user)
    rng = random.Random(f"{spec.seed}-{user}")
    per_run = events_per_run(spec.steps, spec.tools)
    # Cut points leave room for the run's first events: its agent_started has arrived, so
    # the message that started the run is never in flight during a cut.
    if per_run - 4 < spec.cuts_per_run:
        raise ValueError(f"a run of {per_run} events cannot be cut {spec.cuts_per_run} times")
    options: dict[str, Any] = {
        "steps": spec.steps,
        "tools": spec.tools,
        "rate": spec.rate,
        "pace": 0,
    }
    async with CuttingProxy.to(url) as proxy:
        session = _UserSession(proxy, ledger, token, spec.timeout)
        try:
            await session.connect(None)
            while ledger.runs < spec.runs or time.monotonic() < deadline:
                first = session.last_seq + 1
                await session.start_run(f"{user} run {ledger.runs + 1}", options)
                cuts = rng.sample(range(first + 1, first + per_run - 2), spec.cuts_per_run)
                last = first + per_run - 1
                for k, point in enumerate(sorted(cuts)):
                    await session.received(point)
                    # A cut can find the run already over (the connection before the last
                    # cut received more than asked): then there is no frame left to split.
                    await session.cut_and_resume(mid_frame=k % 2 == 1 and session.last_seq < last)
                await session.received(last)
                ledger.runs += 1
                ledger.events_expected += per_run
        except (TimeoutError, ConnectionError, OSError, InvalidHandshake) as exc:
            ledger.errors.append(f"{user}: {type(exc).__name__}: {exc}")
        finally:
            await session.close()
    return ledger


def _account(report: CutReport, ledger: UserLedger) -> None:
    seqs = [e.seq for e in ledger.events]
    expected = range(1, ledger.events_expected + 1)
    counts = Counter(seqs)
    report.runs += ledger.runs
    report.cuts += ledger.cuts
    report.mid_frame_cuts += ledger.mid_frame_cuts
    report.connections += len(ledger.clients)
    report.replayed += sum(
        sum(1 for e in c.events if c.ack is not None and e.seq <= c.ack.last_seq)
        for c in ledger.clients[1:]
    )
    report.events_expected += ledger.events_expected
    report.events_received += len(seqs)
    report.lost += sum(1 for s in expected if s not in counts)
    report.duplicated += sum(n - 1 for n in counts.values())
    report.out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    rules = Counter(report.findings_by_rule)
    rules.update(f.rule_id for c in ledger.clients for f in c.findings)
    report.findings_by_rule = dict(rules)
    report.errors += ledger.errors
    report.errors += [
        f"{ledger.user}: {e.code}: {e.message}" for c in ledger.clients for e in c.errors
    ]


async def resume_through_cuts(url: str, token_for: TokenFor, spec: CutSpec) -> CutReport:
    """Run ``spec`` against the runtime at ``url`` (``ws://host:port``); ``token_for(user)``
    gives each user's token."""
    prefix = f"cut-{uuid.uuid4().hex[:6]}"
    users = [f"{prefix}-{i}" for i in range(spec.users)]
    started = time.monotonic()
    deadline = started + spec.duration
    ledgers = await asyncio.gather(
        *(_user_session(url, u, token_for(u), spec, deadline) for u in users)
    )
    report = CutReport(users=spec.users)
    for ledger in ledgers:
        _account(report, ledger)
    report.elapsed_s = time.monotonic() - started
    samples = [ms for ledger in ledgers for ms in ledger.reconnect_ms]
    report.reconnect_ms = {k: round(v, 2) for k, v in percentiles(samples).items()}
    return report


# --- the soak -----------------------------------------------------------------------------

#: the soak's users: each through its own proxy, a run of 1.5 s cut 20 times, back to back
SOAK_SPEC = CutSpec(users=8, runs=0, steps=300, tools=5, rate=200, cuts_per_run=20)


def soak(duration: float) -> BenchmarkResult:
    """``SOAK_SPEC`` for ``duration`` seconds against a runtime process of its own."""
    spec = replace(SOAK_SPEC, duration=duration)
    with runtime_process() as runtime:
        authority = TokenAuthority(runtime.secret)
        report = asyncio.run(resume_through_cuts(runtime.url, authority.issue, spec))
    result = BenchmarkResult("proxy")
    result.details.update(asdict(report) | {"spec": asdict(spec)})
    rules = sorted(report.findings_by_rule.items())
    for figure in (
        Figure("proxy.runs", report.runs, "runs", targets=(Target(">=", spec.users),)),
        Figure(
            "proxy.cuts",
            report.cuts,
            "cuts",
            targets=(Target(">=", spec.cuts_per_run * max(1, report.runs)),),
            note=f"{report.mid_frame_cuts:,} of them mid-frame; {spec.users} users, each run "
            f"cut {spec.cuts_per_run} times",
        ),
        all_of("proxy.events", report.events_received, report.events_expected, "events", "sent"),
        Figure("proxy.replayed", report.replayed, "events", note="lost in a cut, resumed"),
        none_allowed("proxy.lost", report.lost, "events"),
        none_allowed("proxy.duplicated", report.duplicated, "events"),
        none_allowed("proxy.out_of_order", report.out_of_order, "events"),
        none_allowed(
            "proxy.findings",
            sum(report.findings_by_rule.values()),
            "findings",
            ", ".join(f"{k} {v}" for k, v in rules),
        ),
        none_allowed("proxy.errors", len(report.errors), note="; ".join(report.errors[:3])),
        Figure(
            "proxy.reconnect_p99",
            report.reconnect_ms.get("p99", math.nan),
            "ms",
            note="cut to connection_ack",
        ),
    ):
        result.add(figure)
    return result
