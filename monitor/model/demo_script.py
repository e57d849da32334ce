"""What the demo's simulated users say: their names, the prompts they send, the faults they
ask the runtime for, and what the demo reports of itself.

Pure data and choices; ``monitor.services.demo.DemoTraffic`` sends them over ``/ws``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

USER_NAMES = (
    "ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana",
    "ivan", "jo", "kofi", "lena", "mo", "nadia", "omar", "pia",
)  # fmt: skip


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
