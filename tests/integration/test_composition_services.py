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


def _dead_port() -> int:
    """A loopback port nothing listens on: every connection is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_recipes_client_tries_once_where_the_default_client_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/composition.md, "The client settings it needs": redis-py 6+ retries connection
    # errors by itself (about 4.5 s per call on a dead port, measured with redis-py 8.1), so the
    # recipe's client turns that off. Counted in connection attempts, with redis-py's backoff
    # sleeps skipped so that the test does not wait.
    import redis.connection
    import redis.retry

    port = _dead_port()
    attempts = 0
    real_connect = redis.connection.Connection._connect

    def counting_connect(self: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return real_connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting_connect)
    monkeypatch.setattr(redis.retry, "sleep", lambda seconds: None)

    default = redis.Redis(port=port)
    with pytest.raises(redis.ConnectionError):
        default.get("k")
    assert attempts > 3  # retried by the client itself

    attempts = 0
    recipe = redis.Redis(
        port=port, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(redis.ConnectionError):
        recipe.get("k")
    assert attempts == 1


async def test_the_recipes_asyncio_client_tries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import redis.asyncio
    import redis.asyncio.connection
    import redis.asyncio.retry

    attempts = 0
    real_connect = redis.asyncio.connection.Connection._connect

    async def counting_connect(self: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await real_connect(self)

    monkeypatch.setattr(redis.asyncio.connection.Connection, "_connect", counting_connect)
    client = redis.asyncio.Redis(
        port=_dead_port(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
    )
    try:
        with pytest.raises(redis.ConnectionError):
            await client.get("k")
    finally:
        await client.aclose()
    assert attempts == 1  # one refused connection, no retries of the client's own
