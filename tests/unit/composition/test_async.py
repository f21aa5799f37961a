"""@resilient on async def: per-attempt timeouts, cancellation, concurrency."""

from __future__ import annotations

import asyncio
import threading

import pytest
from composition_support import FIVE, MakeBreaker

from resilience_kit import (
    CircuitOpenError,
    CircuitState,
    RetryStats,
    retry_stats,
)
from resilience_kit.composition import resilient
from resilience_kit.testing import FakeClock

# Seconds: on the test's FakeClock where a test uses it, else real seconds (the attempts that
# time out then wait on an event that never fires, so only this much real time passes).
TIMEOUT = 0.02


async def test_a_timed_out_attempt_is_cancelled_counted_and_retried(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    # On the test's FakeClock: the attempt's 60 s sleep reaches the timeout, which cancels it
    # there (and the clock reads the limit, not the end of the sleep).
    breaker = make_breaker(failure_threshold=10)
    attempts = 0
    cancelled = 0

    async def hangs_once() -> str:
        nonlocal attempts, cancelled
        attempts += 1
        if attempts == 1:
            try:
                await clock.async_sleep(60)
            except asyncio.CancelledError:
                cancelled += 1
                raise
        return "answered"

    fn = resilient(breaker=breaker, retry=FIVE, timeout=TIMEOUT)(hangs_once)
    assert await fn() == "answered"
    assert (attempts, cancelled) == (2, 1)
    assert clock.monotonic() == TIMEOUT
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes) == (1, 1)
    assert retry_stats()["composed"].successes_after_retry == 1


async def test_timeouts_open_the_breaker_and_the_fallback_gets_the_rejection(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(failure_threshold=2)
    attempts = 0
    errors: list[BaseException] = []

    async def hangs() -> str:
        nonlocal attempts
        attempts += 1
        await clock.async_sleep(3600)
        return "never"

    def fallback(*, error: BaseException) -> str:
        errors.append(error)
        return "fallback"

    fn = resilient(breaker=breaker, retry=FIVE, timeout=TIMEOUT, fallback=fallback)(hangs)
    assert await fn() == "fallback"
    assert attempts == 2
    assert [type(error) for error in errors] == [CircuitOpenError]
    assert breaker.stats().total_failures == 2


async def test_the_last_timeout_reaches_the_fallback_as_a_timeout_error() -> None:
    never = asyncio.Event()

    async def hangs() -> str:
        await never.wait()
        return "never"

    fn = resilient(
        retry=FIVE.replace(attempts=2),
        timeout=TIMEOUT,
        fallback=lambda *, error: type(error).__name__,
    )(hangs)
    assert await fn() == "TimeoutError"


async def test_a_fast_attempt_is_not_touched_by_the_timeout(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker()

    async def fast(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert await resilient(breaker=breaker, retry=FIVE, timeout=60)(fast)(41) == 42
    assert breaker.stats().total_successes == 1


async def test_async_open_breaker_and_async_fallback(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(failure_threshold=1)
    calls = 0

    async def down() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("refused")

    async def fallback(*, error: BaseException) -> str:
        await asyncio.sleep(0)
        return f"fallback after {type(error).__name__}"

    fn = resilient(breaker=breaker, retry=FIVE, fallback=fallback)(down)
    assert await fn() == "fallback after CircuitOpenError"
    assert calls == 1
    assert breaker.stats().total_rejected == 1


@pytest.mark.parametrize("timeout", [None, 60.0])
async def test_cancelling_the_caller_is_neither_retried_nor_counted(
    make_breaker: MakeBreaker, timeout: float | None
) -> None:
    breaker = make_breaker(failure_threshold=1)
    started = asyncio.Event()
    never = asyncio.Event()
    fallbacks: list[object] = []
    attempts = 0

    async def hangs() -> str:
        nonlocal attempts
        attempts += 1
        started.set()
        await never.wait()
        return "never"

    fn = resilient(
        breaker=breaker, retry=FIVE, timeout=timeout, fallback=lambda: fallbacks.append(1)
    )(hangs)
    task = asyncio.ensure_future(fn())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert attempts == 1
    assert fallbacks == []
    stats = breaker.stats()
    assert (stats.total_failures, stats.state) == (0, CircuitState.CLOSED)
    assert retry_stats()["composed"].retries == 0


async def test_a_cancelled_trial_frees_its_slot_for_the_next_call(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(failure_threshold=1, recovery_timeout=5, half_open_max_calls=1)
    started = asyncio.Event()
    never = asyncio.Event()
    hang = True

    async def call() -> str:
        if hang:
            started.set()
            await never.wait()
        return "ok"

    fn = resilient(breaker=breaker, retry=FIVE)(call)
    with pytest.raises(ConnectionError):  # opens it
        breaker.call(_raise_connection_error)
    clock.advance(5)
    task = asyncio.ensure_future(fn())  # the one trial HALF_OPEN admits
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hang = False
    assert await fn() == "ok"
    assert breaker.state is CircuitState.CLOSED


def _raise_connection_error() -> None:
    raise ConnectionError("refused")


async def test_ten_thousand_tasks_give_exact_stats(make_breaker: MakeBreaker) -> None:
    n = 10_000
    breaker = make_breaker(failure_threshold=n * 10)
    policy = FIVE.replace(name="ten-thousand")
    failed_once: set[int] = set()
    calls = 0

    async def first_attempt_fails(i: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # every attempt yields, so the tasks interleave
        if i not in failed_once:
            failed_once.add(i)
            raise ConnectionError(f"blip {i}")
        return i

    fn = resilient(breaker=breaker, retry=policy, timeout=60, fallback=lambda i: -1)(
        first_attempt_fails
    )
    results = await asyncio.gather(*(fn(i) for i in range(n)))
    assert sorted(results) == list(range(n))
    assert calls == 2 * n
    stats = breaker.stats()
    assert (stats.total_calls, stats.total_successes, stats.total_failures) == (2 * n, n, n)
    assert retry_stats()["ten-thousand"] == RetryStats(
        calls=n, attempts=2 * n, retries=n, successes_after_retry=n, exhausted=0
    )

    breaker.force_open()
    answers = await asyncio.gather(*(fn(i) for i in range(n)))
    assert answers == [-1] * n
    assert calls == 2 * n  # not one attempt reached the function
    assert breaker.stats().total_rejected == n
    assert retry_stats()["ten-thousand"].attempts == 3 * n


def test_threads_give_exact_stats(make_breaker: MakeBreaker) -> None:
    threads, per_thread = 8, 500
    breaker = make_breaker(failure_threshold=10**6)
    policy = FIVE.replace(name="threads")
    local = threading.local()

    def first_attempt_fails(i: int) -> int:
        if getattr(local, "last", None) != i:
            local.last = i
            raise ConnectionError(f"blip {i}")
        return i

    fn = resilient(breaker=breaker, retry=policy)(first_attempt_fails)
    results: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = [fn(index * per_thread + i) for i in range(per_thread)]

    pool = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    total = threads * per_thread
    assert sorted(value for chunk in results for value in chunk) == list(range(total))
    stats = breaker.stats()
    assert (stats.total_successes, stats.total_failures) == (total, total)
    assert retry_stats()["threads"] == RetryStats(
        calls=total, attempts=2 * total, retries=total, successes_after_retry=total, exhausted=0
    )


async def test_an_async_callable_instance_is_composed_as_async() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, question: str) -> str:
            self.calls += 1
            raise ConnectionError("down")

    client = Client()

    async def fallback(question: str, error: Exception) -> str:
        return f"later ({type(error).__name__})"

    # A timeout is refused on a plain def: accepting it proves the instance counts as async.
    ask = resilient(retry=FIVE, timeout=1.0, fallback=fallback)(client)
    assert await ask("why?") == "later (ConnectionError)"
    assert client.calls == 5
