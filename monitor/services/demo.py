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
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed, WebSocketException

from monitor.model.demo_script import (
    OPENING_FAULTS,
    PROMPTS,
    USER_NAMES,
    DemoStats,
    FaultMix,
    choose_faults,
)
from runtime.client import AgentClient
from runtime.protocol import SequenceValidator, UserMessage, ValidatorConfig
from runtime.streams.backoff import Backoff

from .loop_thread import LoopThread

log = logging.getLogger(__name__)

#: users arrive one after another, this far apart, and send their first message at once
JOIN_STAGGER = 0.25
#: a user's connection remembers this many of its newest runs (and latencies, findings,
#: errors), so a demo left running for days doesn't grow without bound
CLIENT_MEMORY_LIMIT = 100


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
