"""@resilient around a real Redis server that goes down and comes back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from resilience_kit import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RetryPolicy,
    reset_retry_stats,
    resilient,
    retry_stats,
)
from resilience_kit.testing import FakeClock, no_waits, use_clock


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    reset_retry_stats()
    with use_clock(fake), no_waits():
        yield fake


def test_breaker_and_retries_through_a_redis_outage(private_redis: Any, clock: FakeClock) -> None:
    # The client must not retry by itself: @resilient's policy is what is being tested.
    client = redis.Redis.from_url(
        private_redis.url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    client.set("greeting", "cached")
    breaker = CircuitBreaker("composition-redis", failure_threshold=3, recovery_timeout=30)
    fallbacks: list[BaseException] = []
    commands = 0

    def fallback(key: str, *, error: BaseException) -> str:
        fallbacks.append(error)
        return f"fallback for {key}"

    @resilient(
        breaker=breaker,
        retry=RetryPolicy(name="composition-redis", attempts=5, retry_on=(redis.ConnectionError,)),
        fallback=fallback,
    )
    def read(key: str) -> str:
        nonlocal commands
        commands += 1
        value = client.get(key)
        return value.decode() if isinstance(value, bytes) else str(value)

    try:
        assert read("greeting") == "cached"
        private_redis.stop()

        # Three refused attempts open the breaker; the fourth is rejected, the fifth never runs.
        assert read("greeting") == "fallback for greeting"
        assert commands == 4
        assert breaker.state is CircuitState.OPEN
        assert [type(error) for error in fallbacks] == [CircuitOpenError]
        # While it is open, calls are answered at once without touching the network.
        assert read("greeting") == "fallback for greeting"
        assert commands == 4
        stats = breaker.stats()
        assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (1, 3, 2)
        assert retry_stats()["composition-redis"].attempts == 1 + 4 + 1

        private_redis.start()
        clock.advance(29)
        assert read("greeting") == "fallback for greeting"  # not yet: still OPEN
        assert commands == 4
        clock.advance(1)
        # The server is new and empty: the trial call succeeds (with no value) and closes it.
        assert read("greeting") == "None"
        assert commands == 5
        assert breaker.state is CircuitState.CLOSED
        client.set("greeting", "back")
        assert read("greeting") == "back"
    finally:
        breaker.unregister()
        client.close()
