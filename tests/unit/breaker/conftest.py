"""Fixtures for the breaker's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import resilience_kit
from resilience_kit.testing import FakeClock, use_clock


@pytest.fixture(autouse=True)
def _release_breaker_names() -> Iterator[None]:
    """Free every breaker name a test registered, so tests can reuse names."""
    before = {name: id(breaker) for name, breaker in resilience_kit.breakers().items()}
    yield
    for _ in range(100):
        leftovers = [
            breaker
            for name, breaker in resilience_kit.breakers().items()
            if before.get(name) != id(breaker)
        ]
        if not leftovers:
            break
        for breaker in leftovers:
            breaker.unregister()


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A FakeClock that every breaker created in the test uses."""
    fake = FakeClock()
    with use_clock(fake):
        yield fake
