"""Exact totals and exact HALF_OPEN admission under real threads and thousands of tasks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock

THREADS = 16
CALLS = 20_000


def run_threads(target: object, count: int) -> None:
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_lock_free_success_counting_is_exact_under_threads() -> None:
    breaker = CircuitBreaker("conc")
    start = threading.Barrier(THREADS)

    @breaker
    def work(x: int) -> int:
        return x

    def hammer(_: int) -> None:
        start.wait()
        for i in range(CALLS):
            work(i)

    run_threads(hammer, THREADS)
    stats = breaker.stats()
    assert stats.total_successes == stats.total_calls == THREADS * CALLS
    assert stats.state is CircuitState.CLOSED


def test_the_rate_window_counts_lock_free_successes_exactly_under_threads() -> None:
    # Successes step the lifetime counter without the lock; whoever takes the lock moves them
    # into the window. Threads read stats() (which harvests) while others count, and the real
    # clock turns the window's buckets (0.25 s each) under them.
    breaker = CircuitBreaker("conc", failure_rate=0.5, window=5.0, minimum_calls=10**9)
    start = threading.Barrier(THREADS)
    calls = 2_000

    @breaker
    def work(x: int) -> int:
        return x

    def hammer(index: int) -> None:
        start.wait()
        for i in range(calls):
            work(i)
            if index == 0 and i % 100 == 0:
                breaker.stats()

    began = time.monotonic()
    breaker.call(int, "1")  # the window starts before the threads
    run_threads(hammer, THREADS)
    # One failure now: the window holds it among every success of the last second.
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    stats = breaker.stats()
    assert stats.total_successes == THREADS * calls + 1
    assert stats.failure_count == 1
    if time.monotonic() - began < 4.5:  # every success is still in the window: exact
        assert stats.failure_rate == 1 / (THREADS * calls + 2)
    else:  # a very slow machine: the oldest buckets have left it
        assert 1 / (THREADS * calls + 2) <= stats.failure_rate <= 1 / 2


def test_the_rate_window_counts_every_success_of_many_tasks_in_one_bucket() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("conc", failure_rate=0.5, window=60, minimum_calls=10**9, clock=clock)

    @breaker
    async def work() -> None:
        await asyncio.sleep(0)

    async def run() -> None:
        await asyncio.gather(*(work() for _ in range(5_000)))

    asyncio.run(run())
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    assert breaker.stats().failure_rate == 1 / 5_001
    clock.advance(60)
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (0, 0.0)


def test_every_total_is_exact_with_failures_openings_and_trials_under_threads() -> None:
    # The real clock and a tiny recovery timeout: the breaker opens, rejects, half-opens and
    # closes many times while 16 threads hammer it.
    breaker = CircuitBreaker(
        "conc", failure_threshold=3, recovery_timeout=0.0005, half_open_max_calls=2
    )
    seen: list[Counter[str]] = [Counter() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    @breaker
    def work(i: int) -> int:
        if i % 11 == 0 or i % 13 == 0:
            raise ValueError(i)
        if i % 4 == 1:  # often enough that a leaked trial slot would soon be all of them
            raise KeyboardInterrupt
        return i

    def hammer(index: int) -> None:
        counts = seen[index]
        start.wait()
        for i in range(index, index + CALLS):
            try:
                work(i)
                counts["success"] += 1
            except ValueError:
                counts["failure"] += 1
            except KeyboardInterrupt:
                counts["uncounted"] += 1
            except CircuitOpenError:
                counts["rejected"] += 1

    run_threads(hammer, THREADS)
    total = sum(seen, Counter())
    stats = breaker.stats()
    assert stats.total_calls == THREADS * CALLS
    assert stats.total_successes == total["success"]
    assert stats.total_failures == total["failure"]
    assert stats.total_rejected == total["rejected"]
    assert total["rejected"] > 0
    counted = stats.total_successes + stats.total_failures + stats.total_rejected
    assert stats.total_calls - counted == total["uncounted"]
    # No trial slot leaked: once the recovery timeout has passed, a trial is admitted and
    # closes it. (A slot lost in the current HALF_OPEN period would reject every call forever;
    # with the hammering over, a fake clock moves time on without sleeping.)
    clock = FakeClock()
    breaker._use_clock(clock)
    clock.advance(1)
    assert work(2) == 2
    assert breaker.state is CircuitState.CLOSED


async def test_every_total_is_exact_under_ten_thousand_tasks() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "conc", failure_threshold=4, recovery_timeout=1.0, half_open_max_calls=3, clock=clock
    )
    outcomes: Counter[str] = Counter()

    @breaker
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        # Tasks finish in runs of i, i + 50, i + 100...: four failures, three successes.
        if i % 7 < 4:
            clock.advance(0.25)  # time moves while tasks are in flight
            raise ValueError(i)
        return i

    async def one(i: int) -> None:
        for _ in range(i % 50):  # staggered: admissions interleave with outcomes
            await asyncio.sleep(0)
        try:
            await work(i)
            outcomes["success"] += 1
        except ValueError:
            outcomes["failure"] += 1
        except CircuitOpenError:
            outcomes["rejected"] += 1

    await asyncio.gather(*(one(i) for i in range(10_000)))
    stats = breaker.stats()
    assert stats.total_calls == 10_000
    assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (
        outcomes["success"],
        outcomes["failure"],
        outcomes["rejected"],
    )
    assert outcomes["rejected"] > 0


def half_open(limit: int) -> CircuitBreaker:
    """A breaker just gone HALF_OPEN that admits ``limit`` trials at once."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "conc",
        failure_threshold=1,
        recovery_timeout=1,
        half_open_max_calls=limit,
        success_threshold=1000,  # stays HALF_OPEN across rounds
        clock=clock,
    )
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    clock.advance(1)
    return breaker


@pytest.mark.parametrize("limit", [1, 3])
def test_half_open_never_admits_more_than_its_limit_among_64_threads(limit: int) -> None:
    breaker = half_open(limit)
    guard = threading.Lock()
    state = {"now": 0, "peak": 0, "admitted": 0, "rejected": 0}
    release = threading.Event()
    for _ in range(5):
        release.clear()
        state.update(admitted=0, rejected=0)
        start = threading.Barrier(64)

        def trial() -> None:
            with guard:
                state["now"] += 1
                state["admitted"] += 1
                state["peak"] = max(state["peak"], state["now"])
            assert release.wait(10)
            with guard:
                state["now"] -= 1

        def caller(_: int, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                breaker.call(trial)
            except CircuitOpenError:
                with guard:
                    state["rejected"] += 1
                    if state["rejected"] == 64 - limit:
                        release.set()

        run_threads(caller, 64)
        assert (state["admitted"], state["rejected"], state["peak"]) == (limit, 64 - limit, limit)
    assert breaker.state is CircuitState.HALF_OPEN


@pytest.mark.parametrize("limit", [1, 3])
async def test_half_open_never_admits_more_than_its_limit_among_64_tasks(limit: int) -> None:
    breaker = half_open(limit)
    for _ in range(5):
        release = asyncio.Event()
        counts = Counter[str]()

        @breaker
        async def trial(counts: Counter[str] = counts, release: asyncio.Event = release) -> None:
            counts["now"] += 1
            counts["admitted"] += 1
            counts["peak"] = max(counts["peak"], counts["now"])
            await release.wait()
            counts["now"] -= 1

        async def caller(counts: Counter[str] = counts, release: asyncio.Event = release) -> None:
            try:
                await trial()
            except CircuitOpenError:
                counts["rejected"] += 1
                if counts["rejected"] == 64 - limit:
                    release.set()

        await asyncio.gather(*(caller() for _ in range(64)))
        assert (counts["admitted"], counts["rejected"], counts["peak"]) == (
            limit,
            64 - limit,
            limit,
        )
    assert breaker.state is CircuitState.HALF_OPEN
