"""``agent-runtime load``: drive a runtime with many users and account for every event.

Each simulated user holds one or more ``/ws`` connections and runs the ``load`` agent back
to back. Every connection checks its stream with ``SequenceValidator``; the report counts
events expected, received, lost, duplicated and out of order, and emit->receive latency
(server timestamp to client receive time, so only meaningful on one machine or with
synchronised clocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from .auth import TokenAuthority
from .client import AgentClient
from .protocol import CLOCK_TOLERANCE, Finding, SequenceValidator, ValidatorConfig
from .protocol.rules import RuleId
from .reconnect import Reconnector, RetryNow, describe_failure
from .streams import AckKind, Backoff, ResumeCursor

#: thinking steps + tool calls -> events per run of the load agent
TOOLS_PER_RUN = 1
#: reconnect delays (base, cap): a load test wants a dropped connection back at once
RECONNECT_BACKOFF = (0.05, 1.0)


def events_per_run(steps: int, tools: int = TOOLS_PER_RUN) -> int:
    return steps + 2 * tools + 2


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str
    users: int = 10
    rate: float = 1000.0  # events/s in total; 0 = as fast as the runtime goes
    duration: float = 10.0
    connections_per_user: int = 1
    secret: str = ""
    tokens: dict[str, str] | None = None  # user -> token, instead of a secret
    user_prefix: str = ""
    run_seconds: float = 1.0  # how long one run lasts at the target rate
    drain_timeout: float = 15.0


@dataclass
class LoadReport:
    users: int
    connections: int
    runs_started: int = 0
    runs_completed: int = 0
    events_expected: int = 0
    events_received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    #: events of another user received on a user's connection
    cross_delivered: int = 0
    other_findings: int = 0
    #: connections the runtime closed and the load generator opened again (resumed)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    throughput_eps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    findings_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.duplicated or self.out_of_order or self.cross_delivered or self.errors
        )

    def table(self) -> str:
        lat = self.latency_ms
        rows = [
            ("users / connections", f"{self.users} / {self.connections}"),
            ("runs started / completed", f"{self.runs_started} / {self.runs_completed}"),
            ("events expected (x conns)", f"{self.events_expected}"),
            ("events received", f"{self.events_received}"),
            ("lost", f"{self.lost}"),
            ("duplicated", f"{self.duplicated}"),
            ("out of order", f"{self.out_of_order}"),
            ("other users' events", f"{self.cross_delivered}"),
            ("other findings", f"{self.other_findings}"),
            ("reconnects (resumed)", f"{self.reconnects}"),
            ("elapsed", f"{self.elapsed_s:.2f} s"),
            ("throughput", f"{self.throughput_eps:,.0f} events/s"),
            (
                "latency p50 / p95 / p99 / max",
                " / ".join(f"{lat.get(k, math.nan):.2f}" for k in ("p50", "p95", "p99", "max"))
                + " ms",
            ),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        lines += [f"error: {e}" for e in self.errors[:20]]
        lines.append(f"verdict: {'OK' if self.ok else 'FAILED'}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self) | {"ok": self.ok}, indent=2))


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``samples`` (nearest-rank), empty dict for no samples."""
    if not samples:
        return {}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(p: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1]}


class _Link:
    """One of a user's connections, held for the whole load: when the runtime closes it (a
    slow-consumer close, a network cut), it is opened again and resumed where it left off
    (``ResumeCursor``), so a dropped connection costs a reconnect, not the events sent
    meanwhile. Every connection it made shares one validator: the stream is checked whole."""

    def __init__(self, spec: LoadSpec, user_id: str, token: str) -> None:
        self.spec = spec
        self.user_id = user_id
        self.token = token
        self.validator = SequenceValidator(
            ValidatorConfig(late_join=True, clock_tolerance=CLOCK_TOLERANCE)
        )
        self.cursor = ResumeCursor()
        self.clients: list[AgentClient] = []
        self.current: AgentClient | None = None
        self.failure = ""
        self.restarts: list[str] = []
        self.reconnector = Reconnector(
            f"load {user_id}",
            Backoff(*RECONNECT_BACKOFF),
            auth_hint="check the load generator's token secret",
        )
        #: set when a connection opens or the link fails for good
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._hold())

    async def _hold(self) -> None:
        self.failure = await self.reconnector.run(self._attempt)
        self._changed.set()  # wake whoever waits for a connection: there will be none

    async def _attempt(self) -> str:
        client = await AgentClient.connect(
            self.spec.url,
            self.token,
            cursor=self.cursor,
            validator=self.validator,
            keep_events=False,
            max_queue=None,  # never stall the reader: we measure the server, not our queue
        )
        self.clients.append(client)
        verdict = client.ack_verdict
        assert verdict is not None  # connect() returns only after the ack
        if verdict.kind is AckKind.RESTARTED:
            self.restarts.append(verdict.detail)
            await client.close()
            raise RetryNow
        self.current = client
        self.reconnector.connected(f"as {self.user_id}")
        self._changed.set()
        try:
            closed = await client.wait_closed()
        finally:
            self.current = None
        return describe_failure(closed) if closed is not None else "connection lost"

    async def connection(self, timeout: float) -> AgentClient:
        """The open connection, waiting up to ``timeout`` for one."""
        async with asyncio.timeout(timeout):
            while True:
                client = self.current
                if client is not None and client.closed is None:
                    return client
                if self.failure:
                    raise ConnectionError(self.failure)
                self._changed.clear()
                await self._changed.wait()

    @property
    def received(self) -> int:
        return sum(client.received for client in self.clients)

    def completed(self, run_id: str) -> bool:
        return any(client.completion(run_id) is not None for client in self.clients)

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait until ``condition()`` holds, across reconnects."""
        async with asyncio.timeout(timeout):
            while not condition():
                client = await self.connection(timeout)
                await client.wait_until(
                    functools.partial(_met_or_closed, condition, client), timeout
                )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in self.clients:
            with contextlib.suppress(ConnectionClosed, OSError):
                await client.close()

    def findings(self) -> list[Finding]:
        """Everything found on this connection's stream, the end-of-stream checks included."""
        found = [f for client in self.clients for f in client.findings]
        return found + self.validator.close(time.time())


def _met_or_closed(condition: Callable[[], bool], client: AgentClient) -> bool:
    return condition() or client.closed is not None


def _reached(link: _Link, received: int) -> bool:
    return link.received >= received


async def _user(
    spec: LoadSpec, user_id: str, token: str, deadline: float, report: LoadReport
) -> list[_Link]:
    links = [_Link(spec, user_id, token) for _ in range(spec.connections_per_user)]
    for link in links:
        link.start()
    try:
        await asyncio.gather(*(link.connection(spec.drain_timeout) for link in links))
    except (ConnectionError, TimeoutError) as exc:
        report.errors.append(f"{user_id}: {str(exc) or 'no connection within the drain timeout'}")
        await asyncio.gather(*(link.close() for link in links))
        return links
    per_user_rate = spec.rate / spec.users if spec.rate > 0 else 0.0
    steps = max(1, round(per_user_rate * spec.run_seconds)) if per_user_rate else 200
    primary = links[0]
    while time.monotonic() < deadline:
        options = {"steps": steps, "tools": TOOLS_PER_RUN, "rate": per_user_rate, "pace": 0}
        report.runs_started += 1
        report.events_expected += events_per_run(steps) * len(links)
        try:
            client = await primary.connection(spec.drain_timeout)
            run_id = await client.start_run(
                f"load run {report.runs_started}",
                "load",
                options=options,
                timeout=spec.drain_timeout,
            )
            await primary.wait_until(
                functools.partial(primary.completed, run_id), spec.drain_timeout
            )
            report.runs_completed += 1
        except (TimeoutError, RuntimeError, ConnectionError, ConnectionClosed) as exc:
            report.errors.append(f"{user_id}: {str(exc) or type(exc).__name__}")
            break
    # The user's other connections receive the same events; let them catch up.
    target = primary.received
    try:
        await asyncio.gather(
            *(
                link.wait_until(functools.partial(_reached, link, target), spec.drain_timeout)
                for link in links
            )
        )
    except (TimeoutError, ConnectionError):
        report.errors.append(f"{user_id}: secondary connections did not catch up")
    await asyncio.gather(*(link.close() for link in links))
    return links


async def run_load(spec: LoadSpec) -> LoadReport:
    """Run the load described by ``spec`` and account for every event."""
    prefix = spec.user_prefix or f"load-{uuid.uuid4().hex[:6]}"
    users = [f"{prefix}-{i}" for i in range(spec.users)]
    if spec.tokens:
        tokens = spec.tokens
    else:
        authority = TokenAuthority(spec.secret)
        tokens = {u: authority.issue(u) for u in users}
    report = LoadReport(users=spec.users, connections=spec.users * spec.connections_per_user)
    started = time.monotonic()
    deadline = started + spec.duration
    results = await asyncio.gather(
        *(_user(spec, u, tokens[u], deadline, report) for u in users), return_exceptions=True
    )
    report.elapsed_s = time.monotonic() - started
    latencies: list[float] = []
    findings: Counter[str] = Counter()
    for user, result in zip(users, results, strict=True):
        if isinstance(result, BaseException):
            report.errors.append(f"{user}: {type(result).__name__}: {result}")
            continue
        for link in result:
            findings.update(f.rule_id for f in link.findings())
            report.events_received += link.received
            report.reconnects += max(0, link.reconnector.stats().connects - 1)
            report.errors.extend(f"{user}: runtime restarted: {r}" for r in link.restarts)
            for client in link.clients:
                report.cross_delivered += client.foreign
                latencies.extend(client.latencies_ms)
                report.errors.extend(f"{user}: {e.code}: {e.message}" for e in client.errors)
    report.findings_by_rule = dict(findings)
    report.duplicated = findings.pop(RuleId.SEQ_DUPLICATE, 0)
    report.out_of_order = findings.pop(RuleId.SEQ_OUT_OF_ORDER, 0)
    findings.pop(RuleId.SEQ_GAP, 0)
    report.lost = max(0, report.events_expected - report.events_received + report.duplicated)
    report.other_findings = sum(findings.values())
    report.throughput_eps = report.events_received / report.elapsed_s if report.elapsed_s else 0
    report.latency_ms = {k: round(v, 3) for k, v in percentiles(latencies).items()}
    return report
