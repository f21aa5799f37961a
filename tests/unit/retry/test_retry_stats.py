"""retry_stats(): exact figures per policy name, under threads and thousands of tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest
from retry_support import Sleeps

from doubles import AsyncFlaky, Flaky
from resilience_kit import RetryPolicy, RetryStats, reset_retry_stats, retry, retry_stats
from resilience_kit.testing import no_waits

QUICK = RetryPolicy(name="quick", attempts=3, min_wait=0.0, max_wait=0.0, retry_on=(OSError,))


def test_figures_for_success_retry_and_exhaustion(sleeps: Sleeps) -> None:
    ok = retry(QUICK, sleep=sleeps.sleep)(Flaky(result=1))
    recovers = retry(QUICK, sleep=sleeps.sleep)(Flaky(OSError(), OSError(), result=2))
    fails = retry(QUICK, sleep=sleeps.sleep)(Flaky(*[OSError("down")] * 3))
    bug = retry(QUICK, sleep=sleeps.sleep)(Flaky(ValueError()))
    ok()
    recovers()
    with pytest.raises(OSError, match="down"):
        fails()
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: only the figures matter
        bug()
    assert retry_stats()["quick"] == RetryStats(
        calls=4, attempts=4 + 2 + 2, retries=4, successes_after_retry=1, exhausted=1
    )


def test_stats_are_frozen_and_keyed_by_policy_name(sleeps: Sleeps) -> None:
    retry(QUICK.replace(name="other"), sleep=sleeps.sleep)(Flaky(result=1))()
    stats = retry_stats()
    assert stats["other"] == RetryStats(1, 1, 0, 0, 0)
    with pytest.raises(AttributeError):
        stats["other"].calls = 5  # type: ignore[misc]


def test_reset_starts_from_zero_and_keeps_counting(sleeps: Sleeps) -> None:
    fn = retry(QUICK, sleep=sleeps.sleep)(Flaky(OSError(), result=1))
    fn()
    assert retry_stats()["quick"].retries == 1
    reset_retry_stats()
    assert retry_stats()["quick"] == RetryStats(0, 0, 0, 0, 0)
    fn()
    assert retry_stats()["quick"] == RetryStats(1, 1, 0, 0, 0)


def test_exact_totals_from_16_threads() -> None:
    threads_n, calls_n = 16, 5_000
    policy = QUICK.replace(name="threads")

    def make() -> object:
        state = threading.local()

        def work(i: int) -> int:
            # Every tenth call fails once before succeeding.
            if i % 10 == 0 and getattr(state, "failed", None) != i:
                state.failed = i
                raise OSError("blip")
            return i

        return retry(policy)(work)

    barrier = threading.Barrier(threads_n)

    def run() -> None:
        fn = make()
        barrier.wait()
        for i in range(calls_n):
            fn(i)  # type: ignore[operator]

    with no_waits():
        threads = [threading.Thread(target=run) for _ in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    total = threads_n * calls_n
    retried = threads_n * (calls_n // 10)
    assert retry_stats()["threads"] == RetryStats(
        calls=total,
        attempts=total + retried,
        retries=retried,
        successes_after_retry=retried,
        exhausted=0,
    )


async def test_exact_totals_from_10k_tasks() -> None:
    policy = QUICK.replace(name="tasks", on_exhausted="return_default")
    flakies = [
        AsyncFlaky(*[OSError()] * (i % 4), result=i)  # 0..3 failures: 3 exhaust attempts=3
        for i in range(10_000)
    ]

    async def one(flaky: AsyncFlaky) -> object:
        await asyncio.sleep(0)
        return await retry(policy)(flaky.run)()

    with no_waits():
        results = await asyncio.gather(*(one(f) for f in flakies))
    per_kind = 10_000 // 4
    assert results.count(None) == per_kind
    assert retry_stats()["tasks"] == RetryStats(
        calls=10_000,
        attempts=per_kind * (1 + 2 + 3 + 3),
        retries=per_kind * (0 + 1 + 2 + 2),
        successes_after_retry=per_kind * 2,
        exhausted=per_kind,
    )
