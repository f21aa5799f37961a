"""The timeout follows the clock in use: a FakeClock's time, or the event loop's real one.

Under a FakeClock (``use_clock``: the ``clock`` fixture here; the plugin's ``fake_clock`` fixture
in the pytester test at the end, since this suite's conftest shadows it) advancing time past
the limit during a call ends it with TimeoutError: a chaos latency, a fake sleep, a test's own
``advance()`` from another task or thread. On the real clock the event loop times it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

import pytest

import resilience_kit
from resilience_kit import ConfigurationError, RetryPolicy, chaos, resilient, retry_stats
from resilience_kit._timeout import _within
from resilience_kit.testing import FakeClock, use_clock

ONCE = RetryPolicy(name="timeout-clock", attempts=2, min_wait=0.0, max_wait=0.0)


def pending(clock: FakeClock) -> int:
    """Deadlines still registered on ``clock`` (withdrawn ones do not count)."""
    return sum(not deadline.cancelled for _, _, deadline in clock._deadlines)


async def start_waiting(clock: FakeClock, limit: float) -> asyncio.Task[str]:
    """A task running a call limited to ``limit`` on ``clock`` that waits for ever, once started."""
    started = asyncio.Event()

    @resilience_kit.timeout(limit, clock=clock)
    async def waits() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.ensure_future(waits())
    await started.wait()
    return task


async def test_chaos_latency_beyond_the_limit_times_out_on_the_fake_clock(
    clock: FakeClock,
) -> None:
    ran: list[str] = []

    @resilience_kit.timeout(2.0)
    @chaos.inject(latency=5.0, enabled=True)
    async def fetch_rates() -> dict[str, float]:
        ran.append("body")
        return {"EUR": 1.0}

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"fetch_rates did not finish within its timeout of 2s"):
        await fetch_rates()
    assert time.monotonic() - started < 1.0  # no real waiting
    # Cancelled in the middle of the latency, as on the real clock: the body never ran and the
    # clock stopped at the limit.
    assert ran == []
    assert clock.monotonic() == 2.0
    assert pending(clock) == 0


async def test_chaos_latency_within_the_limit_returns_the_result(clock: FakeClock) -> None:
    @resilient(timeout=2.0)
    @chaos.inject(latency=1.5, enabled=True)
    async def fetch_rates() -> dict[str, float]:
        return {"EUR": 1.0}

    assert await fetch_rates() == {"EUR": 1.0}
    assert clock.monotonic() == 1.5
    assert pending(clock) == 0  # the deadline was withdrawn when the call ended


async def test_resilient_retries_an_attempt_the_fake_clock_timed_out(
    clock: FakeClock,
) -> None:
    calls = 0

    async def slow_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await clock.async_sleep(10)
        return "answered"

    fn = resilient(retry=ONCE, timeout=3.0)(slow_once)
    assert await fn() == "answered"
    assert calls == 2
    assert clock.monotonic() == 3.0
    assert retry_stats()["timeout-clock"].successes_after_retry == 1


async def test_advancing_from_another_task_ends_a_waiting_call() -> None:
    clock = FakeClock()
    never = asyncio.Event()
    cancelled = asyncio.Event()

    @resilience_kit.timeout(2.0, clock=clock)
    async def waits() -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    task = asyncio.ensure_future(waits())
    await asyncio.sleep(0)
    clock.advance(1.5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # 1.5 s of 2: still waiting
    clock.advance(0.5)  # exactly the limit
    with pytest.raises(TimeoutError):
        await task
    assert cancelled.is_set()


async def test_advancing_from_another_thread_ends_a_waiting_call() -> None:
    clock = FakeClock()
    waiting = threading.Event()

    @resilience_kit.timeout(5.0, clock=clock)
    async def waits() -> str:
        waiting.set()
        await asyncio.Event().wait()
        return "never"

    thread = threading.Thread(target=lambda: (waiting.wait(5), clock.advance(6)))
    thread.start()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(waits(), 10)  # the safety net never fires: real 10 s
    thread.join()


async def test_time_advanced_without_awaiting_ends_the_call_all_the_same() -> None:
    # The attempt advances the clock itself and returns without awaiting: no cancellation can
    # land, but under a fake clock a call that took longer than its limit has timed out.
    clock = FakeClock()

    @resilience_kit.timeout(1.0, clock=clock)
    async def busy() -> str:
        clock.advance(1.5)
        return "late"

    with pytest.raises(TimeoutError, match="busy did not finish within its timeout of 1s"):
        await busy()

    @resilience_kit.timeout(1.0, clock=clock)
    async def busy_then_fails() -> str:
        clock.advance(1.5)
        raise ConnectionError("refused")

    with pytest.raises(TimeoutError) as failed:
        await busy_then_fails()
    assert isinstance(failed.value.__cause__, ConnectionError)


async def test_the_calls_own_timeout_error_passes_through_on_the_fake_clock() -> None:
    clock = FakeClock()
    own = TimeoutError("upstream gave up")

    @resilience_kit.timeout(1.0, clock=clock)
    async def gives_up() -> str:
        await clock.async_sleep(0.5)
        raise own

    with pytest.raises(TimeoutError) as caught:
        await gives_up()
    assert caught.value is own


async def test_cancelling_the_caller_is_never_a_timeout_on_the_fake_clock() -> None:
    clock = FakeClock()
    task = await start_waiting(clock, 1.0)
    # Both in one loop iteration: the caller's cancellation and the deadline.
    task.cancel()
    clock.advance(5)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert pending(clock) == 0


async def test_calls_that_finish_in_time_leave_no_deadlines_behind() -> None:
    # A test making many calls without advancing time: each call withdraws its deadline, and
    # a withdrawn deadline must not stay on the clock (it holds the call's task) until time
    # reaches it: 100k calls would keep 100k tasks alive.
    clock = FakeClock()

    @resilience_kit.timeout(5.0, clock=clock)
    async def quick() -> int:
        return 1

    for _ in range(2_000):
        assert await quick() == 1
    assert pending(clock) == 0
    assert len(clock._deadlines) <= 128
    # A live deadline among them still fires.
    task = await start_waiting(clock, 1.0)
    for _ in range(500):
        await quick()
    clock.advance(1.0)
    with pytest.raises(TimeoutError):
        await task


async def _outcome(call: Any) -> BaseException | object:
    """Run ``call()`` with a generous safety net: what it ended with, or ``hung`` if it never
    ended (a net of the test's own, so a hang fails the test instead of passing as a
    ``TimeoutError``)."""
    task = asyncio.ensure_future(call())
    done, _ = await asyncio.wait({task}, timeout=10)
    if task not in done:
        task.cancel()
        return "hung"
    return task.exception() or task.result()


async def test_under_a_fake_clock_a_call_that_really_waits_still_ends_at_the_limit() -> None:
    # The fake clock drives the limit, but does not switch off real time: a dependency stub
    # that really hangs (an Event nobody sets, a socket that never answers) ends at the limit
    # as in production, instead of hanging the test.
    clock = FakeClock()

    @resilience_kit.timeout(0.05)
    async def waits() -> str:
        await asyncio.Event().wait()
        return "never"

    with use_clock(clock):
        ended = await _outcome(waits)
    assert isinstance(ended, TimeoutError), ended
    assert "within its timeout of 0.05s" in str(ended)
    assert clock.monotonic() == 0.0  # the fake clock was not moved
    assert pending(clock) == 0


async def test_the_fake_and_the_real_limit_both_reached_end_the_call_once() -> None:
    # The fake clock ends the attempt; its clean-up then awaits past the real limit too, so the
    # loop's timer fires while the first expiry is under way: nothing may go wrong in the loop.
    clock = FakeClock()
    loop = asyncio.get_running_loop()
    problems: list[object] = []
    loop.set_exception_handler(lambda _, context: problems.append(context))

    @resilience_kit.timeout(0.05)
    async def waits() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # a clean-up that awaits (closing a connection)
            raise
        return "never"

    try:
        with use_clock(clock):
            task = asyncio.ensure_future(waits())
            await asyncio.sleep(0)
            clock.advance(1)
            with pytest.raises(TimeoutError, match="within its timeout"):
                await task
        await asyncio.sleep(0.1)  # any late timer has fired by now
    finally:
        loop.set_exception_handler(None)
    assert problems == []


async def test_under_a_fake_clock_resilient_retries_an_attempt_that_really_hung() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    @resilient(retry=ONCE, timeout=0.05)
    async def hangs_once() -> str:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            await asyncio.Event().wait()
        return "second"

    with use_clock(clock):
        ended = await _outcome(hangs_once)
    assert (ended, attempts) == ("second", [0, 1])


async def test_the_own_task_form_follows_a_driven_clock_too() -> None:
    # Python 3.10's form (_within), armed by the fake clock instead of the loop: tested on
    # every version.
    clock = FakeClock()

    async def sleeps() -> str:
        await clock.async_sleep(30)
        return "late"

    def arm(expire: Any) -> Any:
        return clock._schedule(clock.monotonic() + 2.0, expire)

    with pytest.raises(TimeoutError):
        await _within(sleeps(), 2.0, sleeps, arm)
    assert clock.monotonic() == 2.0


async def test_a_clock_handed_back_to_real_time_times_on_the_loop() -> None:
    clock = FakeClock()
    clock._hand_over(resilience_kit.clock.SYSTEM_CLOCK)

    @resilience_kit.timeout(0.05, clock=clock)
    async def waits() -> str:
        await asyncio.Event().wait()
        return "never"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await waits()
    assert 0.04 <= time.monotonic() - started < 5.0
    assert pending(clock) == 0


async def test_the_real_clock_still_times_calls() -> None:
    # No fake clock in use: the event loop's real time.
    @resilience_kit.timeout(0.05)
    async def waits() -> str:
        await asyncio.Event().wait()
        return "never"

    @resilience_kit.timeout(5.0)
    async def quick(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within its timeout of 0\.05s"):
        await waits()
    assert 0.04 <= time.monotonic() - started < 5.0
    assert await quick(21) == 42


async def test_the_clock_is_read_at_each_call() -> None:
    # A function decorated at import (no fake clock yet) follows the fake clock of a test.
    @resilience_kit.timeout(2.0)
    @chaos.inject(latency=3.0, enabled=True)
    async def decorated_at_import() -> str:
        return "late"

    clock = FakeClock()
    with use_clock(clock), pytest.raises(TimeoutError):
        await decorated_at_import()
    assert clock.monotonic() == 2.0


def test_the_decorator_keeps_the_signature_and_refuses_what_it_cannot_limit() -> None:
    async def fetch(url: str, *, retries: int = 1) -> bytes:
        return b""

    limited = resilience_kit.timeout(1.0)(fetch)
    assert inspect.signature(limited) == inspect.signature(fetch)
    assert limited.__name__ == "fetch"
    assert limited.__wrapped__ is fetch  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(limited)

    def plain() -> None: ...

    with pytest.raises(ConfigurationError, match="async callables only") as caught:
        resilience_kit.timeout(1.0)(plain)  # type: ignore[arg-type]
    assert caught.value.parameter == "fn"

    async def agen() -> Any:
        yield 1

    with pytest.raises(ConfigurationError, match="async generator function"):
        resilience_kit.timeout(1.0)(agen)

    for bad in (0, -1, float("nan"), "1"):
        with pytest.raises(ConfigurationError) as refused:
            resilience_kit.timeout(bad)  # type: ignore[arg-type]
        assert refused.value.parameter == "seconds"
    with pytest.raises(ConfigurationError, match="clock"):
        resilience_kit.timeout(1.0, clock=object())  # type: ignore[arg-type]


async def test_the_decorator_goes_inside_staticmethod() -> None:
    class Client:
        @resilience_kit.timeout(1.0)
        @staticmethod
        async def ping() -> str:
            return "pong"

    assert await Client.ping() == "pong"
    assert await Client().ping() == "pong"


def test_timeout_is_exported() -> None:
    from resilience_kit._timeout import timeout

    assert resilience_kit.timeout is timeout
    assert "timeout" in resilience_kit.__all__


PLUGIN_USER_TEST = """
import asyncio

import pytest

import resilience_kit
from resilience_kit import chaos, resilient


@resilient(timeout=2.0)  # decorated at import, before any fake clock
@chaos.inject(latency=5.0, enabled=True)
async def fetch_rates():
    return {"EUR": 1.0}


async def test_my_timeout_holds(fake_clock):
    with pytest.raises(TimeoutError):
        await fetch_rates()
    assert fake_clock.monotonic() == 2.0


async def test_a_waiting_call_ends_when_the_test_advances_time(fake_clock):
    @resilience_kit.timeout(30)
    async def waits():
        await asyncio.Event().wait()

    task = asyncio.ensure_future(waits())
    await asyncio.sleep(0)
    fake_clock.advance(30)
    with pytest.raises(TimeoutError):
        await task


async def test_without_fake_clock_time_is_real():
    @resilience_kit.timeout(0.05)
    async def waits():
        await asyncio.Event().wait()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await waits()
    assert loop.time() - started >= 0.04
"""


def test_the_plugins_fake_clock_drives_timeouts(pytester: pytest.Pytester) -> None:
    from importlib.metadata import entry_points

    installed = any(
        entry.value == "resilience_kit.pytest_plugin" for entry in entry_points(group="pytest11")
    )
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_user_timeouts=PLUGIN_USER_TEST)
    args = ("-p", "no:cacheprovider") + (
        () if installed else ("-p", "resilience_kit.pytest_plugin")
    )
    started = time.monotonic()
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    assert time.monotonic() - started < 5.0  # the 2 s and 30 s limits were never waited for


def test_a_fake_sleep_awaits_nothing_unless_it_reaches_a_deadline() -> None:
    # So it still works under any async library (trio included) when no timeout is running.
    clock = FakeClock()
    sleep = clock.async_sleep(5)
    with pytest.raises(StopIteration):
        sleep.send(None)
    assert clock.monotonic() == 5.0

    fired: list[float] = []
    clock._schedule(7.0, lambda: fired.append(clock.monotonic()))
    withdrawn = clock._schedule(6.0, lambda: fired.append(-1.0))
    assert withdrawn is not None
    withdrawn.cancel()
    sleep = clock.async_sleep(10)
    sleep.send(None)  # stopped at the deadline and yielded once
    assert (fired, clock.monotonic()) == ([7.0], 7.0)
    with pytest.raises(StopIteration):
        sleep.send(None)  # then on to the end
    assert clock.monotonic() == 15.0
    # A deadline already passed fires at once; sync sleeps and advance() fire the rest.
    clock._schedule(1.0, lambda: fired.append(0.0))
    clock._schedule(16.0, lambda: fired.append(clock.monotonic()))
    clock.sleep(2)
    assert fired == [7.0, 0.0, 17.0]
