"""``Backoff``: how long to wait before each reconnect attempt — a pure policy, no sleeping.

Delays grow exponentially from ``base`` up to ``cap`` and are jittered so that many clients
dropped by the same runtime restart don't all come back in the same instant. The reconnect
loop (``runtime.reconnect``) asks for ``next(backoff)`` after each failed attempt and calls
``reset()`` once a connection is established, like the reconnect loop of the websockets
library (whose backoff is also a generator of delays). Tests drive it with a seeded
``random.Random`` and never sleep.

Jitter (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015):

- ``"full"``: attempt ``n`` waits ``uniform(0, min(cap, base * factor**n))``.
- ``"decorrelated"``: each wait is ``min(cap, uniform(base, previous * 3))``, starting from
  ``base``; it never drops below ``base``, so even an unlucky draw is not a tight loop.
- ``"none"``: exactly ``min(cap, base * factor**n)`` (for deterministic callers and tests).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

Jitter = Literal["full", "decorrelated", "none"]

DEFAULT_BASE = 0.25
DEFAULT_CAP = 10.0
DEFAULT_FACTOR = 2.0


class Backoff(Iterator[float]):
    """An endless iterator of reconnect delays in seconds; ``reset()`` after a success."""

    def __init__(
        self,
        base: float = DEFAULT_BASE,
        cap: float = DEFAULT_CAP,
        *,
        factor: float = DEFAULT_FACTOR,
        jitter: Jitter = "decorrelated",
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"need 0 < base <= cap, got base={base}, cap={cap}")
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        if jitter not in ("full", "decorrelated", "none"):
            raise ValueError(f"unknown jitter {jitter!r}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter: Jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0  # delays handed out since the last reset
        self._previous = base

    def __next__(self) -> float:
        # the exponent is bounded so a monitor retrying for days never overflows a float
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 64))
        if self.jitter == "full":
            delay = self._rng.uniform(0.0, ceiling)
        elif self.jitter == "decorrelated":
            delay = min(self.cap, self._rng.uniform(self.base, self._previous * 3))
        else:
            delay = ceiling
        self.attempt += 1
        self._previous = delay
        return delay

    def reset(self) -> None:
        """Start again from ``base``: the last attempt succeeded."""
        self.attempt = 0
        self._previous = self.base
