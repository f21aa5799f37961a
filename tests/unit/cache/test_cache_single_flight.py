"""Single flight: many callers on a cold key run the function once (threads and tasks)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from doubles import run_together
from resilience_kit.cache import cache_stats, cached


def test_a_thousand_threads_on_a_cold_key_compute_once() -> None:
    calls = []

    @cached("threads")
    def slow(n: int) -> int:
        calls.append(n)
        time.sleep(0.2)
        return n * 2

    assert run_together(1000, lambda _: slow(21)) == [42] * 1000
    assert calls == [21]
    stats = cache_stats().prefixes["threads"]
    assert stats.hits + stats.misses == 1000
    assert stats.lock_waits == stats.misses - 1


async def test_a_thousand_tasks_on_a_cold_key_compute_once() -> None:
    calls = []

    @cached("tasks")
    async def slow(n: int) -> int:
        calls.append(n)
        await asyncio.sleep(0.05)
        return n * 2

    results = await asyncio.gather(*(slow(21) for _ in range(1000)))
    assert calls == [21]
    assert results == [42] * 1000
    assert cache_stats().prefixes["tasks"].lock_waits == 999


def test_waiting_threads_get_the_leaders_error() -> None:
    calls = []

    @cached("thread-errors")
    def failing() -> int:
        calls.append(1)
        time.sleep(0.1)
        raise ValueError("boom")

    def caller(_: int) -> BaseException | None:
        try:
            failing()
        except ValueError as error:
            return error
        return None

    assert all(isinstance(error, ValueError) for error in run_together(50, caller))
    assert len(calls) < 50  # the waiters shared the leader's failure


async def test_waiting_tasks_get_the_leaders_error() -> None:
    calls = []

    @cached("task-errors")
    async def failing() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    outcomes = await asyncio.gather(*(failing() for _ in range(100)), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert calls == [1]


async def test_a_cancelled_leader_hands_over_to_a_waiter() -> None:
    calls = []
    started = asyncio.Event()

    @cached("task-cancel")
    async def slow() -> int:
        calls.append(1)
        started.set()
        await asyncio.sleep(0.05)
        return 7

    leader = asyncio.ensure_future(slow())
    await started.wait()
    waiter = asyncio.ensure_future(slow())
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await waiter == 7
    assert len(calls) == 2


async def test_a_cancelled_waiter_leaves_the_leader_alone() -> None:
    @cached("waiter-cancel")
    async def slow() -> int:
        await asyncio.sleep(0.05)
        return 7

    leader = asyncio.ensure_future(slow())
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(slow())
    await asyncio.sleep(0.01)
    waiter.cancel()
    assert await leader == 7


def test_without_lock_every_caller_computes() -> None:
    calls = []

    @cached("no-lock", lock=False)
    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 1

    assert run_together(10, lambda _: slow()) == [1] * 10
    assert len(calls) == 10


def test_a_stale_value_is_served_to_others_while_one_thread_refreshes() -> None:
    from resilience_kit.testing import FakeClock

    clock = FakeClock()
    calls = []
    refreshing = threading.Event()
    release = threading.Event()

    @cached("stale-threads", ttl=10, stale_ttl=100, clock=clock)
    def get() -> int:
        calls.append(1)
        if len(calls) == 2:
            refreshing.set()
            release.wait(5)
        return len(calls)

    assert get() == 1
    clock.advance(11)
    refresher = threading.Thread(target=get)
    refresher.start()
    refreshing.wait(5)
    assert [get() for _ in range(5)] == [1] * 5  # stale, at once
    release.set()
    refresher.join()
    assert get() == 2
    assert cache_stats().prefixes["stale-threads"].stale == 5
