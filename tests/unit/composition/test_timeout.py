"""The per-attempt timeout against cancellation of the caller, on the running Python.

Timers run on the event loop's clock, so the tests that need a timer to fire freeze that clock
(``LoopTime``) and move it by hand: a timer and a cancellation become due in one loop
iteration deterministically, and no test waits for real time to pass.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from composition_support import FIVE, MakeBreaker

from resilience_kit import ConfigurationError
from resilience_kit._timeout import _time_limited, _within
from resilience_kit.clock import SYSTEM_CLOCK
from resilience_kit.composition import resilient

Limiter = Callable[[Callable[..., Awaitable[Any]], float], Callable[..., Awaitable[Any]]]


def _own_task_limiter(
    fn: Callable[..., Awaitable[Any]], limit: float
) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await _within(
            fn(*args, **kwargs), limit, fn, lambda expire: loop.call_later(limit, expire)
        )

    return timed


# What @resilient uses on this Python on the real clock, and the Python 3.10 one, which runs
# on every version. (The tests' breakers run on a FakeClock, which a timeout would follow.)
LIMITERS = pytest.mark.parametrize(
    "limiter",
    [functools.partial(_time_limited, clock=SYSTEM_CLOCK), _own_task_limiter],
    ids=["running-python", "own-task"],
)


class LoopTime:
    """The running loop's clock, frozen until ``advance``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        monkeypatch.setattr(self.loop, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _cancelling() -> int:
    """How many cancellations the current task has pending (no such count before 3.11)."""
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling() if sys.version_info >= (3, 11) else 0


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@LIMITERS
async def test_a_cancellation_in_the_iteration_the_attempt_ends_wins(
    make_breaker: MakeBreaker, limiter: Limiter
) -> None:
    # asyncio.wait_for (before 3.12) returns the result here and the cancellation is lost.
    breaker = make_breaker()
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    started = asyncio.Event()
    after: list[object] = []

    async def attempt() -> str:
        started.set()
        return await gate

    guarded = resilient(breaker=breaker, retry=FIVE)(limiter(attempt, 60.0))

    async def caller() -> None:
        after.append(await guarded())
        await asyncio.sleep(0)
        after.append("went on")

    task = asyncio.ensure_future(caller())
    await started.wait()
    gate.set_result("data")  # the attempt can finish ...
    task.cancel()  # ... and the caller is cancelled before either runs again
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert after == []
    stats = breaker.stats()
    assert (stats.total_successes, stats.total_failures) == (0, 0)


@LIMITERS
@pytest.mark.parametrize("cancel_at", [-1.0, 0.0, 1.0], ids=["before", "same-time", "after"])
async def test_a_cancellation_due_with_the_timer_wins(
    monkeypatch: pytest.MonkeyPatch, make_breaker: MakeBreaker, limiter: Limiter, cancel_at: float
) -> None:
    breaker = make_breaker(failure_threshold=1)
    time = LoopTime(monkeypatch)
    started = asyncio.Event()
    never = asyncio.Event()
    attempts = 0

    async def hangs() -> str:
        nonlocal attempts
        attempts += 1
        started.set()
        await never.wait()
        return "never"

    guarded = resilient(breaker=breaker, retry=FIVE)(limiter(hangs, 10.0))
    task = asyncio.ensure_future(guarded())
    await started.wait()
    # The timer is due at now + 10; the cancellation a second before, with it, or after it:
    # after an advance of 20 both run in the same loop iteration, in that order.
    time.loop.call_at(time.now + 10.0 + cancel_at, task.cancel)
    time.advance(20.0)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert attempts == 1
    assert breaker.stats().total_failures == 0


@LIMITERS
async def test_a_timed_out_attempt_raises_the_builtin_timeout_error(
    monkeypatch: pytest.MonkeyPatch, make_breaker: MakeBreaker, limiter: Limiter
) -> None:
    # failure_on=(TimeoutError,) must count it on 3.10 too, where asyncio.TimeoutError is
    # another class.
    breaker = make_breaker(failure_on=(TimeoutError,), failure_threshold=5)
    time = LoopTime(monkeypatch)
    started = asyncio.Event()
    never = asyncio.Event()
    attempts = 0
    cancelled = 0

    async def hangs_once() -> str:
        nonlocal attempts, cancelled
        attempts += 1
        if attempts == 1:
            started.set()
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled += 1
                raise
        return "answered"

    policy = FIVE.replace(name="timeouts", retry_on=(TimeoutError,))
    guarded = resilient(breaker=breaker, retry=policy)(limiter(hangs_once, 10.0))
    bare = limiter(hangs_once, 10.0)

    async def caller() -> tuple[str, int]:
        return await guarded(), _cancelling()

    task = asyncio.ensure_future(caller())
    await started.wait()
    time.advance(9.0)
    await _turns()
    assert not task.done()
    time.advance(1.0)
    # The caller's own cancellation count is back at 0: it can still be cancelled later.
    assert await task == ("answered", 0)
    assert (attempts, cancelled) == (2, 1)
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes) == (1, 1)

    attempts = 0
    started.clear()
    bare_task = asyncio.ensure_future(bare())
    await started.wait()
    time.advance(10.0)
    with pytest.raises(TimeoutError) as caught:
        await bare_task
    assert type(caught.value) is TimeoutError
    # The message says which function and what limit: the retry log line shows it.
    assert "did not finish within its timeout of 10s" in str(caught.value)


@LIMITERS
async def test_the_attempts_own_timeout_error_is_not_rewritten(limiter: Limiter) -> None:
    own = TimeoutError("upstream gave up")

    async def times_out_itself() -> str:
        await asyncio.sleep(0)
        raise own

    with pytest.raises(TimeoutError) as caught:
        await limiter(times_out_itself, 60.0)()
    assert caught.value is own
    assert _cancelling() == 0


@LIMITERS
async def test_an_error_of_the_attempt_is_not_a_timeout(limiter: Limiter) -> None:
    async def refuses() -> str:
        await asyncio.sleep(0)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        await limiter(refuses, 60.0)()
    assert _cancelling() == 0


async def test_a_cancelled_caller_waits_for_the_attempt_to_clean_up() -> None:
    started = asyncio.Event()
    never = asyncio.Event()
    steps: list[str] = []

    async def cleans_up() -> str:
        started.set()
        try:
            await never.wait()
        finally:
            await asyncio.sleep(0)  # clean-up that itself awaits
            steps.append("attempt cleaned up")
        return "never"

    async def caller() -> None:
        try:
            loop = asyncio.get_running_loop()
            await _within(cleans_up(), 60.0, cleans_up, lambda expire: loop.call_later(60, expire))
        finally:
            steps.append("caller unwound")

    task = asyncio.ensure_future(caller())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["attempt cleaned up", "caller unwound"]


async def _agen() -> Any:
    yield 1


def _gen() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("fn", "kind"), [(_gen, "generator function"), (_agen, "async generator function")]
)
@pytest.mark.parametrize("options", [{}, {"timeout": 5.0}, {"fallback": lambda: None}])
def test_generator_functions_are_refused_at_decoration(
    fn: Callable[..., Any], kind: str, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match=f"{kind} '{fn.__qualname__}'") as caught:
        resilient(retry=FIVE, **options)(fn)
    assert caught.value.parameter == "fn"
    assert caught.value.value is fn
    assert "calling it only creates the generator" in str(caught.value)
