"""Fault knobs for demos and tests: tool faults, agent crashes and protocol chaos.

All off by default. Server flags set the defaults for every run; a ``user_message`` may
carry ``options.faults`` to override them for that run when the server allows client faults.
Decisions come from a per-run ``random.Random`` so a seeded run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any


class ChaosAction(Enum):
    """What protocol chaos does to one event."""

    DELIVER = "deliver"
    DROP = "drop"  # seq is consumed, the event is never sent nor buffered: a gap
    DUPLICATE = "duplicate"  # sent twice with the same seq and event_id
    REORDER = "reorder"  # held back and sent after the user's next event
    DELAY = "delay"  # held back for ``chaos_delay_ms`` while later events go out
    OMIT = "omit"  # agent_completed only: never emitted, no seq consumed


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Probabilities are per tool call (tool_*), per run (agent_crash_rate, chaos_omit_terminal)
    or per event (the other chaos_* rates)."""

    tool_failure_rate: float = 0.0
    tool_latency_ms: float = 0.0
    tool_hang_rate: float = 0.0
    agent_crash_rate: float = 0.0
    chaos_drop: float = 0.0
    chaos_duplicate: float = 0.0
    chaos_reorder: float = 0.0
    chaos_delay: float = 0.0
    chaos_delay_ms: float = 500.0
    chaos_omit_terminal: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed":
                if value is not None and not isinstance(value, int):
                    raise ValueError("seed must be an integer")
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f.name} must be a number >= 0")
            is_probability = f.name.endswith(("_rate", "_terminal")) or f.name in _PER_EVENT_CHAOS
            if is_probability and value > 1:
                raise ValueError(f"{f.name} is a probability and must be <= 1")

    @property
    def any_enabled(self) -> bool:
        return any(
            getattr(self, f.name) for f in fields(self) if f.name not in ("seed", "chaos_delay_ms")
        )

    @property
    def chaos_enabled(self) -> bool:
        return any(getattr(self, name) for name in (*_PER_EVENT_CHAOS, "chaos_omit_terminal"))

    def merged(self, overrides: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``overrides`` applied; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(unknown)}")
        return replace(self, **dict(overrides))

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """Parse ``"tool_failure_rate=0.2,chaos_drop=0.01"`` (the ``--faults`` flag)."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"expected name=value, got {item!r}")
            name = name.strip()
            values[name] = int(raw) if name == "seed" else float(raw)
        return cls().merged(values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_PER_EVENT_CHAOS = ("chaos_drop", "chaos_duplicate", "chaos_reorder", "chaos_delay")

NO_FAULTS = FaultConfig()


class FaultPlan:
    """The fault decisions of one run."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        # A seed makes the run's decisions repeat exactly (run ids are random, so they are
        # not part of it); without one every run draws its own.
        self._rng = random.Random(config.seed) if config.seed is not None else random.Random()
        self.crash = self._roll(config.agent_crash_rate)
        self.omit_terminal = self._roll(config.chaos_omit_terminal)

    def _roll(self, probability: float) -> bool:
        return probability > 0 and self._rng.random() < probability

    def tool_fails(self) -> bool:
        return self._roll(self.config.tool_failure_rate)

    def tool_hangs(self) -> bool:
        return self._roll(self.config.tool_hang_rate)

    def chaos_for_event(self, is_terminal: bool) -> ChaosAction:
        """What chaos does to the next event of this run."""
        cfg = self.config
        if is_terminal and self.omit_terminal:
            return ChaosAction.OMIT
        if not (cfg.chaos_drop or cfg.chaos_duplicate or cfg.chaos_reorder or cfg.chaos_delay):
            return ChaosAction.DELIVER
        roll = self._rng.random()
        for action, rate in (
            (ChaosAction.DROP, cfg.chaos_drop),
            (ChaosAction.DUPLICATE, cfg.chaos_duplicate),
            (ChaosAction.REORDER, cfg.chaos_reorder),
            (ChaosAction.DELAY, cfg.chaos_delay),
        ):
            if roll < rate:
                return action
            roll -= rate
        return ChaosAction.DELIVER
