"""cluster_soak: three nodes, clients hopping between them, a node SIGKILLed every 20 s.

Three ``agent-runtime serve --broker`` subprocesses (nodes ``a``, ``b``, ``c``, a private
``redis-server``, fixed ports). Users each hold two clients; every client runs ``load``
runs back to back (about 1 s each) and, every few seconds, closes its connection and opens
one to a node picked at random, resuming with ``after_seq`` = the highest ``seq`` it has
received. Every ``KILL_EVERY_S`` one node (a, b, c in turn) is SIGKILLed and started again
under the same node id and port, at once or 5 s later (in turn: a new incarnation at once,
or after its lease expired); clients connected to it reconnect elsewhere the same way.
After the last run the clients connect once more and read up to the last ``seq`` their
user's stream has.

What is counted, per client (every connection it made, taken together):

- **lost**: a ``seq`` from 1 to the user's last that the client never received (the client
  never asks for one again once past it, so a hole is never filled);
- **duplicated**: a ``seq`` received more than once (it resumed after the highest it had,
  so the runtime must never send one again);
- **inconsistent**: a ``seq`` not above the one before it on the same connection, one
  whose event differs between two clients of a user, or an event of a run after its
  ``agent_completed``;

and per run (of a user's stream, deduplicated by ``seq``): exactly one, none, or two or
more ``agent_completed``. A run whose node was killed must end ``failed`` with an error
naming that node (sent by another node once the lease of the killed one expired); those
are counted, with how long after the kill they ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed

from runtime.auth import TokenAuthority
from runtime.client import AgentClient
from runtime.protocol import Event, EventType, UserMessage
from runtime.streams import AckKind
from tests.redis_server import free_port

from .processes import RuntimeProcess, broker_args, start_runtime
from .redis_stats import private_redis
from .results import BenchmarkResult, Figure, Target

NODE_IDS = ("a", "b", "c")
KILL_EVERY_S = 20.0
#: a client stays on one node this long (uniform) before it hops to another
STAY_S = (2.0, 5.0)
#: a run: ``STEPS`` thinking steps at ``RATE`` a second, one tool call (STEPS + 4 events)
STEPS = 40
RATE = 40.0
#: how long a client waits for its run's ``agent_started`` / ``agent_completed``
START_WAIT_S = 8.0
#: a lost node's runs end LEASE_S (3 s) + one sweep (1 s) after it stopped: well within this
END_WAIT_S = 20.0
#: the final catch-up: every client reads up to its user's last seq within this
CATCH_UP_S = 15.0
#: how long a killed node stays down, in turn: started again at once (its new incarnation
#: tells the sweep the old one is gone), or after its lease (3 s) has expired
RESTART_DELAYS_S = (0.0, 5.0)
#: a killed node's runs end within this (lease 3 s + a sweep every 1 s + a batch)
END_AFTER_KILL_TARGET_S = 5.0
#: what the error of a run ended for its lost node says (``runtime.cluster.leases``)
LOST_NODE_ERROR = "node {node} was lost during the run"


@dataclass
class Node:
    """One node of the cluster: a runtime subprocess, started again under the same id and
    port after each kill."""

    node_id: str
    port: int
    secret: str
    broker: str
    namespace: str
    process: RuntimeProcess | None = None
    starts: int = 0
    #: log lines of processes of this node that ended (their last lines)
    logs: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_runtime(
            *broker_args(self.broker, self.namespace, self.node_id),
            port=self.port,
            secret=self.secret,
        )
        self.starts += 1

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.logs.append(self.process.log_tail())
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.logs.append(self.process.log_tail())
            self.process = None


class _Recording(AgentClient):
    """An ``AgentClient`` that hands every event to a sink as it arrives and keeps none."""

    sink: Callable[[Event], None] | None = None

    def attach(self, sink: Callable[[Event], None]) -> None:
        """From now on every event goes to ``sink`` (those already received first)."""
        self.sink = sink
        self._flush()

    def _on_frame(self, raw: str | bytes) -> None:
        super()._on_frame(raw)
        self._flush()

    def _flush(self) -> None:
        if self.sink is not None and self.events:
            events, self.events = self.events, []
            for event in events:
                self.sink(event)


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a client keeps of an event: enough to compare and to count runs."""

    event_id: str
    type: EventType
    run_id: str
    timestamp: float
    status: str
    error: str
    text: str


@dataclass
class _Kill:
    node_id: str
    at: float  # wall clock, as event timestamps
    #: how long the node stayed down before it was started again
    restart_delay_s: float = 0.0
    restarted_after_s: float = 0.0
    #: for each of its runs that was in progress: kill -> the run's agent_completed, s
    ended_s: list[float] = field(default_factory=list)


class SoakClient:
    """One connection at a time to a random node; all of them one stream, checked."""

    def __init__(
        self,
        name: str,
        user_id: str,
        token: str,
        *,
        nodes: list[Node],
        rng: random.Random,
        stay_s: tuple[float, float],
    ) -> None:
        self.name = name
        self.user_id = user_id
        self.token = token
        self.nodes = nodes
        self.rng = rng
        self.stay_s = stay_s
        #: seq -> times received, over every connection
        self.received: Counter[int] = Counter()
        self.seen: dict[int, _Seen] = {}
        #: the highest seq received: the next connection resumes after it
        self.position = 0
        self.out_of_order = 0
        self.order_examples: list[str] = []
        self._resumed_after = 0
        #: seqs skipped on one connection (a hole at the time; ``lost`` says if it stayed)
        self.holes_seen = 0
        self.connections = 0
        self.connect_failures = 0
        self.dropped = 0  # connections the runtime side ended (a kill)
        self.restarted_acks = 0
        self.errors: Counter[str] = Counter()
        self.findings: Counter[str] = Counter()
        #: run text -> (node it was sent to, when)
        self.sent: dict[str, tuple[str, float]] = {}
        self.run_of_text: dict[str, str] = {}
        self.completed: set[str] = set()
        self.unstarted = 0  # messages sent that started no run seen within START_WAIT_S
        self.unfinished = 0  # runs whose agent_completed did not come within END_WAIT_S
        self.conn: _Recording | None = None
        self.conn_node = ""
        self.stopping = False
        self._changed = asyncio.Event()
        self._last_on_conn = 0

    # --- events -----------------------------------------------------------------------

    def _sink(self, event: Event) -> None:
        seq = event.seq
        if seq <= self._last_on_conn:
            self.out_of_order += 1
            if len(self.order_examples) < 5:
                self.order_examples.append(
                    f"{self.name}: connection {self.connections} to node {self.conn_node} "
                    f"(after_seq {self._resumed_after}) sent seq {seq} {event.type} after "
                    f"seq {self._last_on_conn}"
                )
        elif seq > self._last_on_conn + 1:
            self.holes_seen += seq - self._last_on_conn - 1
        self._last_on_conn = max(self._last_on_conn, seq)
        self.received[seq] += 1
        self.position = max(self.position, seq)
        if seq not in self.seen:
            data = event.data
            self.seen[seq] = _Seen(
                event.event_id,
                event.type,
                event.run_id,
                event.timestamp,
                str(data.get("status", "")),
                str(data.get("error", "") or ""),
                str(data.get("input", "")) if event.type is EventType.AGENT_STARTED else "",
            )
        if event.type is EventType.AGENT_STARTED:
            self.run_of_text.setdefault(str(event.data.get("input", "")), event.run_id)
        elif event.type is EventType.AGENT_COMPLETED:
            self.completed.add(event.run_id)
        self._changed.set()

    async def _wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    # --- connections ------------------------------------------------------------------

    async def _connect(self, node: Node, ack_timeout: float = 5.0) -> _Recording:
        self.conn_node = node.node_id
        conn = await _Recording.connect(
            node.url,
            self.token,
            after_seq=self.position,
            ack_timeout=ack_timeout,
            open_timeout=ack_timeout,
        )
        assert isinstance(conn, _Recording)  # ``connect`` makes one of its ``cls``
        self.connections += 1
        verdict = conn.ack_verdict
        if verdict is not None and verdict.kind is AckKind.RESTARTED:
            self.restarted_acks += 1
        self._last_on_conn = self._resumed_after = self.position
        conn.attach(self._sink)
        return conn

    def _ended(self, conn: _Recording) -> None:
        for error in conn.errors:
            self.errors[error.code] += 1
        self.findings.update(str(f.rule_id) for f in conn.findings)

    async def hold(self) -> None:
        """Stay connected to a random node, hopping to another every ``stay_s``."""
        while not self.stopping:
            node = self.rng.choice(self.nodes)
            try:
                conn = await self._connect(node)
            except Exception:  # refused (a killed node), a timeout, a 503: try another
                self.connect_failures += 1
                await asyncio.sleep(0.1)
                continue
            self.conn, self.conn_node = conn, node.node_id
            self._changed.set()
            try:
                async with asyncio.timeout(self.rng.uniform(*self.stay_s)):
                    await conn.wait_closed()
                self.dropped += 1
            except TimeoutError:
                pass
            finally:
                self.conn = None
                with contextlib.suppress(ConnectionClosed, OSError):
                    await conn.close()
                self._ended(conn)

    async def run_loop(self, end: float) -> None:
        """Runs back to back until ``end`` (monotonic), each on the connection of the moment."""
        number = 0
        while time.monotonic() < end:
            try:
                await self._wait_for(lambda: self.conn is not None, START_WAIT_S)
            except TimeoutError:
                continue
            conn, node_id = self.conn, self.conn_node
            assert conn is not None
            number += 1
            text = f"{self.name} run {number}"
            options = {"steps": STEPS, "tools": 1, "rate": RATE}
            try:
                await conn.send(UserMessage(text, None, "load", options))
            except (ConnectionClosed, OSError):
                # not sent, no run: wait for the next connection (``hold`` clears this one)
                await asyncio.sleep(0.05)
                continue
            self.sent[text] = (node_id, time.time())
            try:
                await self._wait_for(
                    functools.partial(self.run_of_text.__contains__, text), START_WAIT_S
                )
            except TimeoutError:
                self.unstarted += 1
                continue
            run_id = self.run_of_text[text]
            try:
                await self._wait_for(
                    functools.partial(self.completed.__contains__, run_id), END_WAIT_S
                )
            except TimeoutError:
                self.unfinished += 1

    def _reached_or_closed(self, conn: AgentClient, target: int) -> bool:
        return self.position >= target or conn.closed is not None

    async def catch_up(self, last: dict[str, int]) -> None:
        """Connect once more and read up to the user's last seq (``last`` keeps the highest
        any client of the user was told)."""
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline:
            node = self.rng.choice([n for n in self.nodes if n.process is not None])
            try:
                conn = await self._connect(node)
            except Exception:
                await asyncio.sleep(0.1)
                continue
            try:
                assert conn.ack is not None
                last[self.user_id] = max(last.get(self.user_id, 0), conn.ack.last_seq)
                target = last[self.user_id]
                with contextlib.suppress(TimeoutError):
                    await self._wait_for(
                        functools.partial(self._reached_or_closed, conn, target),
                        max(0.1, deadline - time.monotonic()),
                    )
                if self.position >= target:
                    return
            finally:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await conn.close()
                self._ended(conn)


@dataclass
class SoakCounts:
    """Everything the soak counted."""

    events_received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    conflicting: int = 0
    after_terminal: int = 0
    holes_seen: int = 0
    runs: int = 0
    one_terminal: int = 0
    no_terminal: int = 0
    two_or_more: int = 0
    interrupted: int = 0
    interrupted_wrong: int = 0
    end_after_kill_s: list[float] = field(default_factory=list)
    runs_sent: int = 0
    unstarted: int = 0
    unfinished: int = 0
    connections: int = 0
    connect_failures: int = 0
    dropped: int = 0
    restarted_acks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def example(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)


def account(clients: list[SoakClient], last: dict[str, int], kills: list[_Kill]) -> SoakCounts:
    """Count what the clients received against their users' streams (see the module doc)."""
    counts = SoakCounts()
    errors: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    streams: dict[str, dict[int, _Seen]] = {}
    sent: dict[str, tuple[str, float]] = {}
    for client in clients:
        end = last.get(client.user_id, client.position)
        missing = [s for s in range(1, end + 1) if s not in client.received]
        counts.lost += len(missing)
        if missing:
            counts.example(f"{client.name}: never received seq {missing[:10]} (last {end})")
        twice = {s: n for s, n in client.received.items() if n > 1}
        counts.duplicated += sum(n - 1 for n in twice.values())
        if twice:
            counts.example(f"{client.name}: received more than once: {sorted(twice)[:10]}")
        counts.events_received += sum(client.received.values())
        counts.out_of_order += client.out_of_order
        for text in client.order_examples:
            counts.example(text)
        counts.holes_seen += client.holes_seen
        counts.runs_sent += len(client.sent)
        counts.unstarted += client.unstarted
        counts.unfinished += client.unfinished
        counts.connections += client.connections
        counts.connect_failures += client.connect_failures
        counts.dropped += client.dropped
        counts.restarted_acks += client.restarted_acks
        errors.update(client.errors)
        findings.update(client.findings)
        sent.update(client.sent)
        stream = streams.setdefault(client.user_id, {})
        for seq, seen in client.seen.items():
            other = stream.setdefault(seq, seen)
            if other.event_id != seen.event_id:
                counts.conflicting += 1
                counts.example(f"{client.name}: seq {seq} is {seen} here, {other} elsewhere")
    counts.errors, counts.findings = dict(errors), dict(findings)

    for user_id, stream in streams.items():
        runs: dict[str, list[_Seen]] = {}
        text_of: dict[str, str] = {}
        for seq in sorted(stream):
            seen = stream[seq]
            events = runs.setdefault(seen.run_id, [])
            if any(e.type is EventType.AGENT_COMPLETED for e in events):
                counts.after_terminal += 1
                counts.example(f"{user_id}: seq {seq} {seen.type} after run {seen.run_id} ended")
            events.append(seen)
            if seen.type is EventType.AGENT_STARTED:
                text_of[seen.run_id] = seen.text
        for run_id, events in runs.items():
            counts.runs += 1
            terminals = [e for e in events if e.type is EventType.AGENT_COMPLETED]
            if not terminals:
                counts.no_terminal += 1
                counts.example(f"{user_id}: run {run_id} has no agent_completed")
                continue
            if len(terminals) > 1:
                counts.two_or_more += 1
                counts.example(f"{user_id}: run {run_id} has {len(terminals)} agent_completed")
            else:
                counts.one_terminal += 1
            _check_interrupted(
                counts, run_id, terminals[0], sent.get(text_of.get(run_id, "")), kills
            )
    return counts


def _check_interrupted(
    counts: SoakCounts,
    run_id: str,
    terminal: _Seen,
    sent: tuple[str, float] | None,
    kills: list[_Kill],
) -> None:
    """A run whose node was killed before it ended must end failed, naming that node; no
    other run may."""
    node = sent[0] if sent else "?"
    started = sent[1] if sent else 0.0
    kill = next((k for k in kills if k.node_id == node and started <= k.at), None)
    killed_first = kill is not None and terminal.timestamp >= kill.at
    names_lost = "was lost during the run" in terminal.error
    if names_lost:
        counts.interrupted += 1
    if killed_first and kill is not None:
        kill.ended_s.append(round(terminal.timestamp - kill.at, 3))
        counts.end_after_kill_s.append(round(terminal.timestamp - kill.at, 3))
        if terminal.status != "failed" or LOST_NODE_ERROR.format(node=node) not in terminal.error:
            counts.interrupted_wrong += 1
            counts.example(
                f"run {run_id} of killed node {node} ended {terminal.status}: {terminal.error!r}"
            )
    elif names_lost:
        counts.interrupted_wrong += 1
        counts.example(f"run {run_id} (node {node}, not killed) ended: {terminal.error!r}")


async def _killer(
    nodes: list[Node], start: float, duration: float, every: float, kills: list[_Kill]
) -> None:
    number = 0
    while True:
        at = start + every / 2 + number * every
        if at >= start + duration:
            return
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        node = nodes[number % len(nodes)]
        delay = RESTART_DELAYS_S[number % len(RESTART_DELAYS_S)]
        kill = _Kill(node.node_id, time.time(), delay)
        await asyncio.to_thread(node.kill)
        kills.append(kill)
        await asyncio.sleep(delay)
        await asyncio.to_thread(node.start)
        kill.restarted_after_s = round(time.time() - kill.at, 3)
        number += 1


async def _soak(
    nodes: list[Node],
    secret: str,
    *,
    duration: float,
    users: int,
    clients_per_user: int,
    kill_every: float,
    stay_s: tuple[float, float],
    seed: int,
) -> tuple[list[SoakClient], dict[str, int], list[_Kill]]:
    rng = random.Random(seed)
    authority = TokenAuthority(secret)
    prefix = "soak-" + secrets.token_hex(3)
    clients = []
    for u in range(users):
        user_id = f"{prefix}-{u}"
        token = authority.issue(user_id)
        for c in range(clients_per_user):
            clients.append(
                SoakClient(
                    f"{user_id}/{c}",
                    user_id,
                    token,
                    nodes=nodes,
                    rng=random.Random(rng.random()),
                    stay_s=stay_s,
                )
            )
    kills: list[_Kill] = []
    start = time.monotonic()
    holders = [asyncio.create_task(c.hold()) for c in clients]
    killer = asyncio.create_task(_killer(nodes, start, duration, kill_every, kills))
    try:
        await asyncio.gather(*(c.run_loop(start + duration) for c in clients), killer)
    finally:
        for client in clients:
            client.stopping = True
        killer.cancel()
        for task in holders:
            task.cancel()
        for task in [*holders, killer]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in clients:  # a hold cancelled mid-connection leaves it open
            if client.conn is not None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await client.conn.close()
                client._ended(client.conn)
                client.conn = None
    last: dict[str, int] = {}
    await asyncio.gather(*(c.catch_up(last) for c in clients))
    # a second pass: a client that caught up before another learned a higher last seq
    await asyncio.gather(
        *(c.catch_up(last) for c in clients if c.position < last.get(c.user_id, 0))
    )
    return clients, last, kills


def soak(
    duration: float = 60.0,
    *,
    users: int = 6,
    clients_per_user: int = 2,
    kill_every: float = KILL_EVERY_S,
    stay_s: tuple[float, float] = STAY_S,
    seed: int | None = None,
    name: str = "cluster_soak",
) -> BenchmarkResult:
    """Run the soak for ``duration`` seconds (a kill every ``kill_every``); its figures."""
    seed = secrets.randbelow(2**31) if seed is None else seed
    result = BenchmarkResult(name)
    namespace = "soak" + secrets.token_hex(4)
    secret = secrets.token_hex(32)
    with private_redis() as server:
        nodes = [Node(node_id, free_port(), secret, server.url, namespace) for node_id in NODE_IDS]
        try:
            for node in nodes:
                node.start()
            started = time.perf_counter()
            clients, last, kills = asyncio.run(
                _soak(
                    nodes,
                    secret,
                    duration=duration,
                    users=users,
                    clients_per_user=clients_per_user,
                    kill_every=kill_every,
                    stay_s=stay_s,
                    seed=seed,
                )
            )
            elapsed = time.perf_counter() - started
        finally:
            for node in nodes:
                node.stop()
    counts = account(clients, last, kills)
    result.details.update(
        duration_s=duration,
        elapsed_s=round(elapsed, 1),
        seed=seed,
        users=users,
        clients=len(clients),
        kill_every_s=kill_every,
        stay_s=list(stay_s),
        run={"agent": "load", "steps": STEPS, "tools": 1, "rate": RATE},
        kills=[vars(k) for k in kills],
        last_seq=last,
        counts=vars(counts),
        node_log_tails={n.node_id: n.logs[-2:] for n in nodes},
    )
    _figures(result, counts, kills)
    print(_summary(counts, kills), file=sys.stderr, flush=True)
    return result


def _figures(result: BenchmarkResult, counts: SoakCounts, kills: list[_Kill]) -> None:
    name = result.name
    zero = (Target("<=", 0),)
    result.add(
        Figure(
            f"{name}.lost",
            float(counts.lost),
            "events",
            targets=zero,
            note=f"of {counts.events_received:,} received by {result.details['clients']} "
            f"clients over {counts.connections} connections",
        )
    )
    result.add(Figure(f"{name}.duplicated", float(counts.duplicated), "events", targets=zero))
    result.add(
        Figure(
            f"{name}.inconsistent",
            float(counts.out_of_order + counts.conflicting + counts.after_terminal),
            "events",
            targets=zero,
            note=f"out of order {counts.out_of_order}, differing between clients "
            f"{counts.conflicting}, after the run's end {counts.after_terminal}",
        )
    )
    result.add(
        Figure(
            f"{name}.runs",
            float(counts.runs),
            "runs",
            note=f"{counts.runs_sent} messages sent, {counts.unstarted} started no run "
            f"(sent to a node as it was killed)",
        )
    )
    result.add(
        Figure(
            f"{name}.runs_one_terminal",
            float(counts.one_terminal),
            "runs",
            targets=(Target(">=", counts.runs),),
            note="exactly one agent_completed: every run",
        )
    )
    result.add(Figure(f"{name}.runs_no_terminal", float(counts.no_terminal), "runs", targets=zero))
    result.add(
        Figure(f"{name}.runs_two_terminals", float(counts.two_or_more), "runs", targets=zero)
    )
    ends = counts.end_after_kill_s
    result.add(
        Figure(
            f"{name}.runs_ended_for_lost_node",
            float(counts.interrupted),
            "runs",
            note=f"failed, naming the killed node; {len(kills)} kills",
        )
    )
    result.add(
        Figure(
            f"{name}.runs_ended_wrongly",
            float(counts.interrupted_wrong),
            "runs",
            targets=zero,
            note="a killed node's run not ended failed naming it, or another run ended so",
        )
    )
    per_kill = "; ".join(
        f"{k.node_id} down {k.restart_delay_s:g} s: {len(k.ended_s)} runs, "
        f"max {max(k.ended_s, default=float('nan')):.2f} s"
        for k in kills
    )
    result.add(
        Figure(
            f"{name}.end_after_kill_max",
            max(ends) if ends else float("nan"),
            "s",
            # no run was in progress on a killed node: nothing to hold to the target
            targets=(Target("<=", END_AFTER_KILL_TARGET_S),) if ends else (),
            note=f"kill -> the run's agent_completed, median "
            f"{statistics.median(ends) if ends else float('nan'):.2f} s; {per_kill}",
        )
    )


def _summary(counts: SoakCounts, kills: list[_Kill]) -> str:
    lines = [
        f"# cluster soak: {len(kills)} kills ({', '.join(k.node_id for k in kills)}), "
        f"{counts.connections} connections, {counts.events_received:,} events received",
        f"#   lost {counts.lost}, duplicated {counts.duplicated}, out of order "
        f"{counts.out_of_order}, differing {counts.conflicting}, after end "
        f"{counts.after_terminal}",
        f"#   runs {counts.runs}: one terminal {counts.one_terminal}, none "
        f"{counts.no_terminal}, two or more {counts.two_or_more}; ended for a lost node "
        f"{counts.interrupted} (wrongly {counts.interrupted_wrong})",
    ]
    lines += [f"#   {example}" for example in counts.examples[:10]]
    return "\n".join(lines)


def measure(quick: bool) -> BenchmarkResult:
    if quick:
        return soak(12.0, users=2, clients_per_user=2, kill_every=8.0, stay_s=(1.0, 2.5))
    return soak(60.0)
