"""Fault injection holds its rate, draws independent decisions and replays a seed exactly.

The statistical checks use 10,000 calls with fixed seeds and a 5-sigma bound: a correct
injector fails one of them with probability below 1e-6, while a rate off by a few percent, or
decisions that are not independent, fail them for certain.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience_kit import chaos

N = 10_000
SIGMAS = 5.0


def decisions(injector: chaos.Injector, calls: int) -> list[bool]:
    """Whether each of ``calls`` checkpoints was injected."""
    outcomes = []
    for _ in range(calls):
        try:
            injector.point()
            outcomes.append(False)
        except LookupError:
            outcomes.append(True)
    return outcomes


@pytest.mark.parametrize("seed", [0, 1, 20240601])
@pytest.mark.parametrize("rate", [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_the_injection_rate_holds_within_a_binomial_bound(rate: float, seed: int) -> None:
    injector = chaos.inject(fault=LookupError, rate=rate, seed=seed, enabled=True)
    injected = sum(decisions(injector, N))
    expected = N * rate
    sigma = math.sqrt(N * rate * (1 - rate))
    assert abs(injected - expected) <= SIGMAS * sigma, (injected, expected, sigma)
    assert injector.stats().injected == injected
    assert injector.stats().calls == N


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_consecutive_decisions_are_independent(rate: float, seed: int) -> None:
    """Pairs of injected neighbours occur as often as independent draws predict."""
    outcomes = decisions(chaos.inject(fault=LookupError, rate=rate, seed=seed, enabled=True), N)
    pairs = sum(a and b for a, b in itertools.pairwise(outcomes))
    p2 = rate * rate
    # Overlapping pairs share a draw, which adds covariance terms to the binomial variance.
    variance = (N - 1) * p2 * (1 - p2) + 2 * (N - 2) * (rate**3 - rate**4)
    assert abs(pairs - (N - 1) * p2) <= SIGMAS * math.sqrt(variance)


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (0.05, 0.25), (2.0, 10.0)])
def test_latency_ranges_are_uniform(low: float, high: float) -> None:
    sleeps: list[float] = []
    injector = chaos.inject(latency=(low, high), seed=17, enabled=True, sleep=sleeps.append)
    for _ in range(N):
        injector.point()
    assert low <= min(sleeps) <= max(sleeps) <= high
    mean_sigma = (high - low) / math.sqrt(12 * N)
    assert abs(sum(sleeps) / N - (low + high) / 2) <= SIGMAS * mean_sigma
    # Each tenth of the range gets its binomial share.
    share_sigma = math.sqrt(N * 0.1 * 0.9)
    for decile in range(10):
        start = low + (high - low) * decile / 10
        end = low + (high - low) * (decile + 1) / 10
        count = sum(start <= s < end for s in sleeps)
        assert abs(count - N / 10) <= SIGMAS * share_sigma


@given(
    seed=st.integers(min_value=-(2**63), max_value=2**63),
    rate=st.floats(min_value=0, max_value=1),
    calls=st.integers(min_value=1, max_value=300),
)
def test_the_same_seed_gives_the_same_sequence(seed: int, rate: float, calls: int) -> None:
    first = chaos.inject(fault=LookupError, rate=rate, seed=seed, enabled=True)
    second = chaos.inject(fault=LookupError, rate=rate, seed=seed, enabled=True)
    sequence = decisions(first, calls)
    assert decisions(second, calls) == sequence
    first.reset()
    assert decisions(first, calls) == sequence


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    low=st.floats(min_value=0, max_value=100),
    width=st.floats(min_value=0, max_value=100),
    rate=st.floats(min_value=0, max_value=1),
)
def test_latency_draws_replay_and_stay_in_range(
    seed: int, low: float, width: float, rate: float
) -> None:
    high = low + width
    runs = []
    for _ in range(2):
        sleeps: list[float] = []
        injector = chaos.inject(
            latency=(low, high), rate=rate, seed=seed, enabled=True, sleep=sleeps.append
        )
        for _ in range(50):
            injector.point()
        assert all(low <= s <= high for s in sleeps)
        if low > 0:  # a zero draw is not slept
            assert injector.stats().injected == len(sleeps)
        runs.append(sleeps)
    assert runs[0] == runs[1]
