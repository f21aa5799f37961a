"""Cancelling the caller while @resilient sleeps between attempts, with real asyncio sleeps."""

from __future__ import annotations

import asyncio

import pytest
from composition_support import MakeBreaker

from resilience_kit import (
    CircuitState,
    RetryPolicy,
    reset_retry_stats,
    retry_stats,
)
from resilience_kit.clock import SYSTEM_CLOCK
from resilience_kit.composition import resilient
from resilience_kit.testing import FakeClock, use_clock

WAIT = 10.0
SLOW = RetryPolicy(name="slow-waits", attempts=3, wait="fixed", min_wait=WAIT, max_wait=WAIT)


@pytest.fixture(autouse=True)
def _no_sleeping() -> None:
    """Replaces the package's fixture of this name: these tests need the retries' real sleeps."""
    reset_retry_stats()


@pytest.mark.parametrize("state", [CircuitState.CLOSED, CircuitState.HALF_OPEN])
async def test_cancelling_the_caller_during_a_retry_wait(
    make_breaker: MakeBreaker, clock: FakeClock, state: CircuitState
) -> None:
    # The breaker runs on the fake clock (to reach HALF_OPEN); the retries on the real one, so
    # they sleep with asyncio.sleep. In HALF_OPEN the failed first attempt is an error the
    # breaker ignores: its trial slot is given back and the breaker stays HALF_OPEN.
    breaker = make_breaker(
        failure_threshold=2, recovery_timeout=5, half_open_max_calls=1, ignore=(LookupError,)
    )
    if state is CircuitState.HALF_OPEN:
        for _ in range(2):
            with pytest.raises(ConnectionError):
                breaker.call(_refuse)
        clock.advance(5)
    before = breaker.stats()
    error: Exception = ConnectionError("refused") if state is CircuitState.CLOSED else KeyError("k")
    attempts = 0

    async def fails() -> str:
        nonlocal attempts
        attempts += 1
        raise error

    with use_clock(SYSTEM_CLOCK):
        guarded = resilient(breaker=breaker, retry=SLOW, fallback=lambda: "fallback")(fails)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(guarded())
    # The first attempt fails without awaiting, so the caller's next suspension after it is
    # the retry's sleep: a few loop iterations later it is still there.
    for _ in range(5):
        await asyncio.sleep(0)
    assert (attempts, task.done()) == (1, False)
    started = loop.time()
    task.cancel()
    done, _ = await asyncio.wait((task,), timeout=WAIT / 2)
    assert task in done, "the cancellation waited for the retry's sleep to end"
    assert loop.time() - started < WAIT / 2
    assert task.cancelled()
    assert attempts == 1

    stats = retry_stats()["slow-waits"]
    assert (stats.calls, stats.retries) == (1, 0)
    assert (stats.successes_after_retry, stats.exhausted) == (0, 0)
    after = breaker.stats()
    counted = 1 if state is CircuitState.CLOSED else 0
    assert after.total_calls - before.total_calls == 1
    assert after.total_failures - before.total_failures == counted
    assert after.total_successes == before.total_successes == 0
    assert breaker.state is state
    # No trial slot was kept: the next call is let through (and closes a HALF_OPEN breaker).
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def _refuse() -> None:
    raise ConnectionError("refused")
