"""A client left connected for hours (the demo's users) keeps only its newest runs in memory,
and goes on starting and finishing runs after it forgot the old ones."""

from __future__ import annotations

from runtime.client import AgentClient
from runtime.protocol import SequenceValidator, ValidatorConfig
from tests.conftest import ClientFactory, seconds

QUICK_RUN = {"steps": 2, "tools": 1, "pace": 0}
KEEP = 3


def remembered(client: AgentClient) -> dict[str, int]:
    """How much of each record the client holds."""
    return {
        "latencies": len(client.latencies_ms),
        "starts": len(client._started),
        "completions": len(client._completions),
        "claimed runs": len(client._claimed_runs),
        "validator runs": len(client.validator._runs),
    }


async def test_a_long_lived_client_remembers_only_its_newest_runs(
    connect: ClientFactory,
) -> None:
    client = await connect(
        "alice",
        keep_events=False,
        validator=SequenceValidator(ValidatorConfig(late_join=True, max_runs=KEEP)),
    )
    for n in range(12):
        events = await client.run(f"job {n}", "load", options=QUICK_RUN, timeout=seconds(10))
        assert not events  # keep_events=False: nothing kept per event …
        client.forget_old(KEEP)
        held = remembered(client)
        # … and at most KEEP of everything kept per run or per latency sample
        assert max(held.values()) <= KEEP, f"after {n + 1} runs the client holds {held}"
    assert client.received >= 12 * 4
    assert not client.findings, client.findings  # forgetting reported nothing as broken
    # the newest run is still there to be looked up, the oldest is gone
    newest = client._started[-1][0]
    assert client.completion(newest) is not None
    assert len(client._completions) == KEEP
