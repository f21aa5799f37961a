"""The two recipes from the services resilience_kit came from, as one-liners."""

from __future__ import annotations

import pytest

from resilience_kit import CircuitBreaker, CircuitState
from resilience_kit.testing import FakeClock

FRIENDLY = "Sorry, I'm having technical trouble. Try again in a minute!"


def test_redis_guard_returns_none_while_open_and_probes_once(clock: FakeClock) -> None:
    redis_guard = CircuitBreaker(
        "redis", failure_threshold=3, recovery_timeout=30, fallback=lambda *a, **k: None
    )
    calls = []
    up = False

    @redis_guard
    def cache_get(key: str) -> str | None:
        calls.append(key)
        if not up:
            raise ConnectionError("redis down")
        return "value"

    assert [cache_get("k") for _ in range(5)] == [None] * 5
    assert len(calls) == 3  # the last two never reached Redis
    assert redis_guard.state is CircuitState.OPEN
    clock.advance(30)
    up = True
    assert cache_get("k") == "value"  # the one probe
    assert redis_guard.state is CircuitState.CLOSED


async def test_llm_api_closes_after_two_successes_and_answers_kindly(clock: FakeClock) -> None:
    llm = CircuitBreaker(
        "llm",
        failure_threshold=5,
        recovery_timeout=60,
        success_threshold=2,
        fallback=lambda *a, **k: FRIENDLY,
    )
    healthy = False

    @llm
    async def ask(prompt: str) -> str:
        if not healthy:
            raise TimeoutError("upstream timeout")
        return f"answer to {prompt}"

    for _ in range(6):
        assert await ask("hi") == FRIENDLY
    stats = llm.stats()
    assert (stats.total_failures, stats.total_rejected) == (5, 1)
    clock.advance(60)
    healthy = True
    assert await ask("a") == "answer to a"
    assert llm.state is CircuitState.HALF_OPEN
    assert await ask("b") == "answer to b"
    assert llm.state is CircuitState.CLOSED


@pytest.mark.parametrize("threshold", [3, 5])
def test_recipes_open_on_exactly_their_threshold(clock: FakeClock, threshold: int) -> None:
    breaker = CircuitBreaker("t", failure_threshold=threshold, fallback=lambda *a, **k: None)
    for _ in range(threshold - 1):
        breaker.call(int, "x")
    assert breaker.state is CircuitState.CLOSED
    breaker.call(int, "x")
    assert breaker.state is CircuitState.OPEN
