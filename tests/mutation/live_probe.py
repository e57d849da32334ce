"""What the live monitor's rules flag on a runtime: run a small chat workload against an
embedded runtime of *this* checkout and print the observer-stream findings as JSON lines.

The harness runs it inside a mutated copy. The workload covers the paths the rules watch:
two users (one on two connections), tools, a failing tool, a crashing agent, a cancel and
a run that times out; the validator is the monitor's own (``LIVE_VALIDATOR``), ticked as the window
would be once the grace and stall times have passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import time

from monitor.model.session import LIVE_VALIDATOR
from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.config import RuntimeConfig
from runtime.embedded import EmbeddedRuntime
from runtime.protocol import (
    Cancel,
    EventType,
    Finding,
    SequenceValidator,
    Severity,
    UserMessage,
)

#: a run that sends nothing for this long is done (or never will be)
SILENCE = 1.5
#: the probe's runtime times runs out this soon, so one of them takes that path
RUN_TIMEOUT = 1.0


async def workload(url: str, secret: str) -> list[Finding]:
    authority = TokenAuthority(secret)
    monitor = await AgentClient.connect(
        url,
        authority.issue("probe-monitor", Role.MONITOR),
        endpoint="/monitor",
        validator=SequenceValidator(LIVE_VALIDATOR),
        max_queue=None,
    )
    alice = await AgentClient.connect(url, authority.issue("alice"))
    alice_phone = await AgentClient.connect(url, authority.issue("alice"))
    bob = await AgentClient.connect(url, authority.issue("bob"))
    fast = {"pace": 0}
    # Sent without waiting for each run to start: a broken runtime may never start one,
    # and the probe reports what the monitor saw, whatever that is.
    for client, text, agent, options in (
        (alice, "What is 12*(3+4)?", None, fast),
        (bob, "average revenue by region?", None, fast),
        (alice, "work", "load", {"steps": 40, "tools": 4, **fast}),
        (bob, "2+3", "calculator", {**fast, "faults": {"tool_failure_rate": 1.0}}),
        (bob, "4+5", "calculator", {**fast, "faults": {"agent_crash_rate": 1.0}}),
        (alice, "long", "load", {"steps": 400, "rate": 400, **fast}),
        (bob, "slow", "load", {"steps": 100, "rate": 20, **fast}),  # outlives RUN_TIMEOUT
    ):
        await client.send(UserMessage(text, None, agent, options))

    def long_run() -> str | None:
        for event in monitor.events:
            if event.type is EventType.AGENT_STARTED and event.data.get("input") == "long":
                return event.run_id
        return None

    with contextlib.suppress(TimeoutError):
        run_id = await monitor.wait_until(long_run, SILENCE) or ""
        await monitor.wait_until(lambda: len(monitor.run_events(run_id)) > 10, SILENCE)
        await alice.send(Cancel(run_id))
    await quiet(monitor)
    config = monitor.validator.config
    later = time.time() + max(config.gap_grace, config.error_grace, config.run_stall_after) + 1
    found = [*monitor.findings, *monitor.validator.tick(later)]
    found += [Finding("AEM018", Severity.ERROR, f"malformed frame: {m}") for m in monitor.malformed]
    for client in (alice, alice_phone, bob, monitor):
        await client.close()
    return found


async def quiet(monitor: AgentClient) -> None:
    """Until the observer stream has been silent for ``SILENCE``."""

    def frames() -> int:
        return monitor.received + len(monitor.deliveries) + len(monitor.malformed)

    while True:
        before = frames()

        def more(n: int = before) -> bool:
            return frames() > n

        try:
            await monitor.wait_until(more, SILENCE)
        except TimeoutError:
            return


def main() -> int:
    secret = secrets.token_hex(32)
    config = RuntimeConfig(
        host="127.0.0.1",
        port=0,
        secret=secret,
        pace=0.005,
        allow_client_faults=True,
        run_timeout=RUN_TIMEOUT,
    )
    with EmbeddedRuntime(config) as runtime:
        found = asyncio.run(workload(runtime.url, secret))
    for f in found:
        print(json.dumps({"rule_id": f.rule_id, "message": f.message}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
