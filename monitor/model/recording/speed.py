"""A replay's speeds: the ones offered, how they read, and parsing one a user typed."""

from __future__ import annotations

import math

MAX_SPEED = math.inf
#: the speeds a replay offers (any positive speed works)
SPEEDS: tuple[float, ...] = (1.0, 10.0, 100.0, MAX_SPEED)


def speed_label(speed: float) -> str:
    return "max" if math.isinf(speed) else f"{speed:g}×"


def parse_speed(text: str) -> float:
    """``1``, ``10x``, ``100×``, ``max`` → a speed; raises ``ValueError``."""
    cleaned = text.strip().lower()
    if cleaned in ("max", "inf", "0"):
        return MAX_SPEED
    speed = float(cleaned.removesuffix("x").removesuffix("×"))
    if not speed > 0 or math.isnan(speed):
        raise ValueError(f"speed must be > 0 or 'max', not {text!r}")
    return speed
