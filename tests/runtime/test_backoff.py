"""``Backoff``: the reconnect delays, checked without sleeping."""

from __future__ import annotations

import itertools
import random

import pytest

from runtime.streams.backoff import Backoff, Jitter


def take(backoff: Backoff, n: int) -> list[float]:
    return list(itertools.islice(backoff, n))


def test_without_jitter_delays_double_from_base_up_to_cap() -> None:
    delays = take(Backoff(0.25, 10.0, jitter="none"), 10)
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("jitter", ["full", "decorrelated", "none"])
def test_every_delay_stays_within_bounds(jitter: Jitter) -> None:
    backoff = Backoff(0.25, 10.0, jitter=jitter, rng=random.Random(1))
    delays = take(backoff, 2000)
    assert all(0.0 <= d <= 10.0 for d in delays)
    if jitter != "full":
        # never below base: a bad draw can't turn reconnecting into a tight loop
        assert min(delays) >= 0.25


def test_full_jitter_draws_below_a_growing_ceiling() -> None:
    rngs = [random.Random(seed) for seed in range(200)]
    runs = [take(Backoff(0.25, 10.0, jitter="full", rng=r), 8) for r in rngs]
    by_attempt = list(zip(*runs, strict=True))
    for attempt, delays in enumerate(by_attempt):
        ceiling = min(10.0, 0.25 * 2**attempt)
        assert max(delays) <= ceiling
        # spread over the whole range, not stuck at one end
        assert min(delays) < ceiling * 0.2
        assert max(delays) > ceiling * 0.8


def test_decorrelated_jitter_grows_then_hovers_under_the_cap() -> None:
    delays = take(Backoff(0.25, 10.0, jitter="decorrelated", rng=random.Random(3)), 400)
    early = sum(delays[:3]) / 3
    late = sum(delays[-100:]) / 100
    assert early < 2.0
    assert late > 4.0  # settles well above base once retries keep failing
    assert len(set(delays[-100:])) > 10  # still jittered, not pinned to the cap


def test_reset_starts_again_from_base() -> None:
    backoff = Backoff(0.25, 10.0, jitter="none")
    take(backoff, 6)
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.attempt == 0
    assert next(backoff) == 0.25

    decorrelated = Backoff(0.25, 10.0, rng=random.Random(5))
    take(decorrelated, 50)
    decorrelated.reset()
    assert next(decorrelated) <= 0.75  # uniform(base, 3 * base) again


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_same_seed_same_delays(jitter: Jitter) -> None:
    first = take(Backoff(jitter=jitter, rng=random.Random(42)), 50)
    second = take(Backoff(jitter=jitter, rng=random.Random(42)), 50)
    other = take(Backoff(jitter=jitter, rng=random.Random(43)), 50)
    assert first == second
    assert first != other


def test_retrying_for_days_does_not_overflow() -> None:
    backoff = Backoff(0.25, 10.0, jitter="none")
    assert take(backoff, 5000)[-1] == 10.0


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0}, {"base": 2, "cap": 1}, {"factor": 0.5}, {"jitter": "sometimes"}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]
