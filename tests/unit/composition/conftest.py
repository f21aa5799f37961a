"""Fixtures for @resilient's tests: real breakers on a FakeClock, retries without sleeping."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resilience_kit import CircuitBreaker, reset_retry_stats
from resilience_kit.testing import FakeClock, no_waits, use_clock

_serial = itertools.count()


@pytest.fixture(autouse=True)
def _no_sleeping() -> Iterator[None]:
    reset_retry_stats()
    with no_waits():
        yield


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A FakeClock wired into every breaker and retry created in the test."""
    fake = FakeClock()
    with use_clock(fake):
        yield fake


@pytest.fixture
def make_breaker(clock: FakeClock) -> Iterator[Callable[..., CircuitBreaker]]:
    """Create real breakers on ``clock`` with names no other test uses; free them afterwards."""
    made: list[CircuitBreaker] = []

    def make(**options: Any) -> CircuitBreaker:
        breaker = CircuitBreaker(f"composition-{next(_serial)}", **options)
        made.append(breaker)
        return breaker

    yield make
    for breaker in made:
        breaker.unregister()
