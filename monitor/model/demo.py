"""``DemoTraffic``: simulated users chatting with a runtime, so a demo has something to show.

Each user holds one ``/ws`` connection and sends a message every ``interval`` seconds (1–4 s
by default): questions the bundled agents answer well — the supervisor routing to its
specialists, arithmetic for the calculator, the knowledge base for the researcher, the
sales and latency datasets for the data analyst. Some messages ask the runtime for faults
through ``options.faults`` (it must run with ``allow_client_faults``): failing tools and
crashing agents, which a healthy runtime handles cleanly, and now and then protocol chaos
(a dropped, duplicated or reordered event, a missing ``agent_completed``) — the findings
panel then has real problems to show.

Users send without waiting for answers, like people who type their next question while
the last one is still being worked on; the runtime's per-user run limit bounds the overlap.
Nothing a runtime does (errors, refusals, restarts, closed connections) stops the traffic:
it is logged and the user reconnects after a backoff delay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException

from runtime.client import AgentClient
from runtime.protocol import SequenceValidator, UserMessage, ValidatorConfig

from .backoff import Backoff
from .loop_thread import LoopThread

log = logging.getLogger(__name__)

USER_NAMES = (
    "ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana",
    "ivan", "jo", "kofi", "lena", "mo", "nadia", "omar", "pia",
)  # fmt: skip
#: users arrive one after another, this far apart, and send their first message at once
JOIN_STAGGER = 0.25
#: a user's connection remembers this many of its newest runs (and latencies, findings,
#: errors), so a demo left running for days doesn't grow without bound
CLIENT_MEMORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Prompt:
    """One chat message; ``agent`` None lets the runtime's default agent (supervisor) route."""

    text: str
    agent: str | None = None


#: Each checked against the bundled agents, documents and datasets for a sensible answer.
PROMPTS: tuple[Prompt, ...] = (
    # supervisor: routes to one or more specialists
    Prompt("What is the refund policy for annual plans?"),
    Prompt("What was the total revenue by region in the sales data?"),
    Prompt("Calculate 79 * 12 for a year of one Team seat"),
    Prompt("Why did chats get stuck without agent_completed in March 2024?"),
    Prompt("What is the median p99 latency per deployment?"),
    Prompt(
        "Our p99 latency looks high — what is the average p99 by service, and what does "
        "the on-call runbook say to do first when paged?"
    ),
    # calculator
    Prompt("12 times (3 + 4)", "calculator"),
    Prompt("What is 15% of 240?", "calculator"),
    Prompt("5 km in miles", "calculator"),
    Prompt("(1250 + 830) / 4", "calculator"),
    Prompt("2^10 minus 24", "calculator"),
    # researcher: the knowledge base
    Prompt("How do we rotate the signing key?", "researcher"),
    Prompt("What are the API rate limits per minute?", "researcher"),
    Prompt("Why did chats get stuck in March 2024?", "researcher"),
    Prompt("When are deploys not allowed?", "researcher"),
    Prompt("How long do we keep chat transcripts?", "researcher"),
    Prompt("What does agent_completed mean?", "researcher"),
    Prompt("How much does the Team plan cost per seat?", "researcher"),
    Prompt("Can a customer get money back on a monthly plan?", "researcher"),
    # data analyst: the sales and latency datasets
    Prompt("revenue by region", "data_analyst"),
    Prompt("average p99_ms by service", "data_analyst"),
    Prompt("units sold per product", "data_analyst"),
    Prompt("requests by endpoint in the latency dataset", "data_analyst"),
    Prompt("average p50 latency by deployment", "data_analyst"),
)

#: protocol chaos, one kind per message so each finding has one clear cause
CHAOS_FAULTS: tuple[Mapping[str, float], ...] = (
    {"chaos_drop": 0.2},
    {"chaos_duplicate": 0.2},
    {"chaos_reorder": 0.2},
    {"chaos_omit_terminal": 1.0},
)


@dataclass(frozen=True, slots=True)
class FaultMix:
    """The share of messages that ask for each kind of fault (the rest ask for none)."""

    chaos: float = 0.04  # one of CHAOS_FAULTS
    agent_crash: float = 0.05  # agent_crash_rate 1.0: agent_error, then agent_completed(failed)
    tool_failure: float = 0.15  # tool_failure_rate 0.5: about half its tool calls fail

    def __post_init__(self) -> None:
        if min(self.chaos, self.agent_crash, self.tool_failure) < 0 or (
            self.chaos + self.agent_crash + self.tool_failure > 1
        ):
            raise ValueError("fault shares must be >= 0 and add up to at most 1")


NO_FAULTS = FaultMix(0.0, 0.0, 0.0)

#: Faults asked for by the demo's first messages (by message number), so someone who has
#: just opened the monitor sees a failed tool, a crash and flagged protocol faults within
#: seconds instead of waiting for the random mix to produce them.
OPENING_FAULTS: dict[int, tuple[str, dict[str, Any]]] = {
    2: ("chaos_duplicate", {"chaos_duplicate": 0.3, "seed": 2}),
    4: ("tool_failure", {"tool_failure_rate": 0.5, "seed": 4}),
    7: ("chaos_drop", {"chaos_drop": 0.3, "seed": 7}),
    11: ("agent_crash", {"agent_crash_rate": 1.0, "seed": 11}),
    15: ("chaos_reorder", {"chaos_reorder": 0.3, "seed": 15}),
}


def choose_faults(rng: random.Random, mix: FaultMix) -> tuple[str, dict[str, Any] | None]:
    """The fault a message asks for: ``(kind, options.faults)``; kind ``"none"`` for none.

    Each fault carries its own seed, so the runtime's decisions for a seeded demo repeat.
    """
    roll = rng.random()
    faults: dict[str, Any]
    if roll < mix.chaos:
        faults = dict(rng.choice(CHAOS_FAULTS))
        kind = next(iter(faults))
    elif roll < mix.chaos + mix.agent_crash:
        kind, faults = "agent_crash", {"agent_crash_rate": 1.0}
    elif roll < mix.chaos + mix.agent_crash + mix.tool_failure:
        kind, faults = "tool_failure", {"tool_failure_rate": 0.5}
    else:
        return "none", None
    faults["seed"] = rng.randrange(2**31)
    return kind, faults


@dataclass(frozen=True, slots=True)
class DemoStats:
    """What the demo has done so far."""

    users_connected: int
    messages_sent: int
    faults: dict[str, int]  # messages per fault kind asked for ("none" included)
    refused: int  # error frames the runtime answered with (too_many_runs, …)
    connection_errors: int  # failed connects and lost connections
    last_error: str


class DemoTraffic(LoopThread):
    """``users`` simulated users chatting with the runtime at ``url`` until ``stop()``."""

    def __init__(
        self,
        url: str,
        token_for: Callable[[str], str],
        *,
        users: int = 6,
        seed: int | None = None,
        interval: tuple[float, float] = (1.0, 4.0),
        fault_mix: FaultMix | None = None,
        opening: bool = True,
        name: str = "demo-traffic",
    ) -> None:
        """``token_for(user)`` returns a user token (called on every connect);
        ``interval`` bounds each user's pause between messages, in seconds; ``opening``
        puts ``OPENING_FAULTS`` on the first messages."""
        super().__init__(name)
        if not 1 <= users <= len(USER_NAMES):
            raise ValueError(f"users must be 1..{len(USER_NAMES)}")
        if not 0 <= interval[0] <= interval[1]:
            raise ValueError("interval must be (low, high) with 0 <= low <= high")
        self.url = url.rstrip("/")
        self.token_for = token_for
        self.users = USER_NAMES[:users]
        self.seed = seed
        self.interval = interval
        self.fault_mix = fault_mix or FaultMix()
        self.opening = opening
        self._connected = 0
        self._sent = 0
        self._faults: Counter[str] = Counter()
        self._refused = 0
        self._connection_errors = 0
        self._last_error = ""
        self._faults_allowed = True

    def stats(self) -> DemoStats:
        return DemoStats(
            users_connected=self._connected,
            messages_sent=self._sent,
            faults=dict(self._faults),
            refused=self._refused,
            connection_errors=self._connection_errors,
            last_error=self._last_error,
        )

    # --- the demo thread --------------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as users:
            for index, user in enumerate(self.users):
                users.create_task(self._user(index, user), name=f"{self.name}-{user}")

    def _rng(self, user: str) -> random.Random:
        # One stream per user: a seeded demo asks the same things whatever the timing.
        return random.Random(f"{self.seed}:{user}") if self.seed is not None else random.Random()

    async def _user(self, index: int, user: str) -> None:
        rng = self._rng(user)
        backoff = Backoff(rng=rng)
        await asyncio.sleep(index * JOIN_STAGGER)
        while True:
            try:
                client = await AgentClient.connect(
                    self.url,
                    self.token_for(user),
                    keep_events=False,
                    validator=SequenceValidator(
                        ValidatorConfig(late_join=True, max_runs=CLIENT_MEMORY_LIMIT)
                    ),
                    close_timeout=2.0,
                )
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._note_connection_error(user, f"cannot connect: {exc}")
                await asyncio.sleep(next(backoff))
                continue
            except Exception as exc:  # e.g. token_for failing: log it loudly, keep going
                log.exception("demo user %s: unexpected error while connecting", user)
                self._note_connection_error(user, f"unexpected: {exc!r}")
                await asyncio.sleep(next(backoff))
                continue
            backoff.reset()
            self._connected += 1
            try:
                await self._chat(client, user, rng)
            except (ConnectionClosed, OSError) as exc:
                self._note_connection_error(user, f"connection lost: {exc}")
            except Exception as exc:  # never let one user's surprise end the demo
                log.exception("demo user %s: unexpected error", user)
                self._note_connection_error(user, f"unexpected: {exc!r}")
            finally:
                self._connected -= 1
                await _close_quietly(client)
            await asyncio.sleep(next(backoff))

    async def _chat(self, client: AgentClient, user: str, rng: random.Random) -> None:
        """Send messages until the connection fails (that raises)."""
        thread_id = f"th_demo_{user}_{rng.randrange(16**8):08x}"  # one conversation each
        while True:
            if client.closed is not None:
                raise client.closed
            prompt = rng.choice(PROMPTS)
            scripted = OPENING_FAULTS.get(self._sent) if self.opening else None
            kind, faults = (
                (scripted[0], dict(scripted[1])) if scripted else choose_faults(rng, self.fault_mix)
            )
            if not self._faults_allowed:
                kind, faults = "none", None
            options = {"faults": faults} if faults else {}
            await client.send(UserMessage(prompt.text, thread_id, prompt.agent, options))
            self._sent += 1
            self._faults[kind] += 1
            await asyncio.sleep(rng.uniform(*self.interval))
            self._note_refusals(client, user)
            client.forget_old(CLIENT_MEMORY_LIMIT)

    def _note_refusals(self, client: AgentClient, user: str) -> None:
        """Count and log the errors that arrived since the last call (and forget them)."""
        for error in client.errors:
            self._refused += 1
            self._last_error = f"{user}: {error.code}: {error.message}"
            if error.code == "faults_disabled" and self._faults_allowed:
                self._faults_allowed = False
                log.warning(
                    "demo: the runtime does not accept options.faults; sending without faults"
                )
            else:
                log.info("demo user %s: runtime refused a message: %s", user, error.message)
        client.errors.clear()

    def _note_connection_error(self, user: str, message: str) -> None:
        self._connection_errors += 1
        self._last_error = f"{user}: {message}"
        log.warning("demo user %s: %s", user, message)


async def _close_quietly(client: AgentClient) -> None:
    try:
        await client.close()
    except (ConnectionClosed, OSError) as exc:
        log.info("closing a demo connection failed: %s", exc)
