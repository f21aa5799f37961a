"""Redis-backed breakers on an asyncio client: trials, failures and a store that goes away."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage
from resilience_kit.testing import FakeClock


def _process(server, prefix: str, clock: FakeClock, **config) -> CircuitBreaker:
    storage = RedisStorage(
        fakeredis.FakeAsyncRedis(server=server), prefix=prefix, clock=clock, trial_lease=5
    )
    breaker = CircuitBreaker("dep", storage=storage, clock=clock, **config)
    breaker.unregister()
    return breaker


async def _boom() -> None:
    raise ValueError("down")


async def _ok() -> str:
    return "ok"


def test_the_trial_budget_holds_across_asyncio_processes(server, prefix) -> None:
    clock = FakeClock(100.0)
    config = {"failure_threshold": 1, "recovery_timeout": 10, "half_open_max_calls": 1}

    async def scenario() -> list[str]:
        first, second = (_process(server, prefix, clock, **config) for _ in range(2))
        with pytest.raises(ValueError, match="down"):
            await first.call_async(_boom)
        clock.advance(10)
        release = asyncio.Event()

        async def held() -> str:
            await release.wait()
            return "trial"

        trial = asyncio.create_task(first.call_async(held))
        await asyncio.sleep(0.05)  # the trial holds the only lease
        results = []
        try:
            await second.call_async(_ok)
        except CircuitOpenError:
            results.append("rejected")
        release.set()
        results.append(await trial)
        results.append(str(first.state))
        results.append(await second.call_async(_ok))  # closed by first's trial, via Redis
        return results

    assert asyncio.run(scenario()) == ["rejected", "trial", "CLOSED", "ok"]


def test_an_async_breaker_decides_locally_while_redis_is_down(server, prefix) -> None:
    clock = FakeClock(100.0)

    async def scenario() -> tuple[CircuitState, bool, CircuitState]:
        breaker = _process(server, prefix, clock, failure_threshold=2, recovery_timeout=30)
        assert await breaker.call_async(_ok) == "ok"
        server.connected = False
        for _ in range(2):
            with pytest.raises(ValueError, match="down"):
                await breaker.call_async(_boom)
        opened, down = breaker.state, breaker.storage.guard.down
        server.connected = True
        await asyncio.sleep(0.6)  # past the guard's probe interval
        clock.advance(0.0)
        assert await breaker.call_async(_ok) == "ok"  # the probe reads the shared state
        return opened, down, breaker.state

    assert asyncio.run(scenario()) == (CircuitState.OPEN, True, CircuitState.CLOSED)
