"""What @retry does with outcomes: retry, give up, propagate, defaults, signatures."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
import traceback
from collections.abc import Callable

import pytest
import tenacity
from retry_support import Sleeps

from doubles import AsyncFlaky, Flaky
from resilience_kit import (
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    RetryPolicy,
    retry,
    retry_stats,
)

FAST = RetryPolicy(name="fast", attempts=3, min_wait=0.0, max_wait=0.0, retry_on=(OSError,))


def test_success_on_the_first_attempt_never_sleeps(sleeps: Sleeps) -> None:
    flaky = Flaky(result=42)
    assert retry(FAST, sleep=sleeps.sleep)(flaky)() == 42
    assert flaky.calls == 1
    assert sleeps.recorded == []


def test_arguments_reach_every_attempt(sleeps: Sleeps) -> None:
    seen: list[tuple[object, ...]] = []

    @retry(FAST, sleep=sleeps.sleep)
    def fn(a: int, *, b: str) -> str:
        seen.append((a, b))
        if len(seen) < 3:
            raise OSError("again")
        return f"{a}{b}"

    assert fn(1, b="x") == "1x"
    assert seen == [(1, "x")] * 3


def test_raise_reraises_the_last_attempts_exception_unchanged(sleeps: Sleeps) -> None:
    errors = [OSError("first"), OSError("second"), OSError("last")]
    fn = retry(FAST, sleep=sleeps.sleep)(Flaky(*errors))
    with pytest.raises(OSError, match="last") as caught:
        fn()
    assert caught.value is errors[2]
    assert not isinstance(caught.value, tenacity.RetryError)
    # The earlier attempts' errors are not chained onto the one the caller sees.
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_later_attempts_do_not_run_inside_the_first_failures_handler(sleeps: Sleeps) -> None:
    handled: list[object] = []

    def fn() -> str:
        handled.append(sys.exc_info()[1])
        if len(handled) == 1:
            raise OSError("first")
        return "ok"

    assert retry(FAST, sleep=sleeps.sleep)(fn)() == "ok"
    assert handled == [None, None]


def test_return_default_returns_the_default_when_exhausted(sleeps: Sleeps) -> None:
    policy = FAST.replace(on_exhausted="return_default", default=[])
    flaky = Flaky(OSError(), OSError(), OSError())
    assert retry(policy, sleep=sleeps.sleep)(flaky)() == []
    assert flaky.calls == 3


def test_errors_outside_retry_on_propagate_after_one_attempt(sleeps: Sleeps) -> None:
    error = ValueError("bad input")
    flaky = Flaky(error)
    policy = FAST.replace(on_exhausted="return_default")
    with pytest.raises(ValueError, match="bad input") as caught:
        retry(policy, sleep=sleeps.sleep)(flaky)()
    assert caught.value is error
    assert flaky.calls == 1
    assert sleeps.recorded == []


def test_an_unretryable_error_on_a_later_attempt_propagates(sleeps: Sleeps) -> None:
    error = ValueError("now it is a bug")
    flaky = Flaky(OSError(), error)
    with pytest.raises(ValueError, match="now it is a bug") as caught:
        retry(FAST, sleep=sleeps.sleep)(flaky)()
    assert caught.value is error
    assert flaky.calls == 2


def test_give_up_on_wins_over_retry_on(sleeps: Sleeps) -> None:
    policy = FAST.replace(give_up_on=(FileNotFoundError,))
    flaky = Flaky(FileNotFoundError("gone"))
    with pytest.raises(FileNotFoundError):
        retry(policy, sleep=sleeps.sleep)(flaky)()
    assert flaky.calls == 1


def test_an_open_breaker_is_never_retried(sleeps: Sleeps) -> None:
    error = CircuitOpenError("payments", 30.0, CircuitState.OPEN)
    flaky = Flaky(error)
    with pytest.raises(CircuitOpenError) as caught:
        retry(RetryPolicy(retry_on=(Exception,)), sleep=sleeps.sleep)(flaky)()
    assert caught.value is error
    assert flaky.calls == 1


def test_return_default_policies_also_absorb_an_open_breaker(sleeps: Sleeps) -> None:
    # REDIS and BEST_EFFORT must never fail the caller: an open breaker yields the default too,
    # on the first attempt or a later one, without retrying it.
    error = CircuitOpenError("redis", 5.0, CircuitState.OPEN)
    first = Flaky(error)
    assert retry("redis", sleep=sleeps.sleep)(first)() is None
    later = Flaky(ConnectionError(), error)
    assert retry("redis", sleep=sleeps.sleep)(later)() is None
    assert (first.calls, later.calls) == (1, 2)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_base_exceptions_are_never_retried_nor_swallowed(
    error: BaseException, sleeps: Sleeps
) -> None:
    policy = RetryPolicy(retry_on=(Exception,), on_exhausted="return_default")
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        retry(policy, sleep=sleeps.sleep)(flaky)()
    assert flaky.calls == 1


def test_a_keyboard_interrupt_on_a_later_attempt_propagates(sleeps: Sleeps) -> None:
    interrupt = KeyboardInterrupt()
    flaky = Flaky(OSError(), interrupt)
    policy = FAST.replace(on_exhausted="return_default")
    with pytest.raises(KeyboardInterrupt) as caught:
        retry(policy, sleep=sleeps.sleep)(flaky)()
    assert caught.value is interrupt
    assert flaky.calls == 2
    assert retry_stats()["fast"].exhausted == 0


async def test_cancelled_error_from_the_call_is_not_retried(sleeps: Sleeps) -> None:
    flaky = AsyncFlaky(asyncio.CancelledError())
    policy = RetryPolicy(retry_on=(Exception,), on_exhausted="return_default")
    with pytest.raises(asyncio.CancelledError):
        await retry(policy, sleep=sleeps.async_sleep)(flaky.run)()
    assert flaky.calls == 1


async def test_cancelling_during_a_wait_propagates_and_stops_the_retries() -> None:
    failed = asyncio.Event()

    async def fails() -> None:
        failed.set()
        raise ConnectionError("down")

    calls = Flaky()

    async def counted() -> None:
        calls()
        await fails()

    fn = retry(RetryPolicy(name="cancel", attempts=5, min_wait=60, max_wait=60))(counted)
    task = asyncio.ensure_future(fn())
    await failed.wait()
    await asyncio.sleep(0.01)  # the task is now in its 60 s wait (a real asyncio.sleep)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.calls == 1
    stats = retry_stats()["cancel"]
    assert (stats.calls, stats.retries, stats.exhausted) == (1, 0, 0)


async def test_async_raise_and_default_behave_like_sync(sleeps: Sleeps) -> None:
    errors = [OSError("a"), OSError("b"), OSError("c")]
    flaky = AsyncFlaky(*errors)
    with pytest.raises(OSError, match="c") as caught:
        await retry(FAST, sleep=sleeps.async_sleep)(flaky.run)()
    assert caught.value is errors[-1]
    assert caught.value.__context__ is None
    flaky = AsyncFlaky(OSError(), OSError(), OSError())
    policy = FAST.replace(on_exhausted="return_default", default="cached")
    assert await retry(policy, sleep=sleeps.async_sleep)(flaky.run)() == "cached"


def test_retry_if_recognises_errors_by_attributes(sleeps: Sleeps) -> None:
    class ApiError(Exception):
        def __init__(self, code: int) -> None:
            self.code = code

    policy = RetryPolicy(retry_on=(), retry_if=lambda e: getattr(e, "code", 0) == 503, min_wait=0)
    flaky = Flaky(ApiError(503), result="up")
    assert retry(policy, sleep=sleeps.sleep)(flaky)() == "up"
    with pytest.raises(ApiError):
        retry(policy, sleep=sleeps.sleep)(Flaky(ApiError(400)))()


def test_a_failing_retry_if_means_no_retry(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(error: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    error = OSError("original")
    with pytest.raises(OSError, match="original") as caught:
        retry(RetryPolicy(retry_on=(), retry_if=broken), sleep=sleeps.sleep)(Flaky(error))()
    assert caught.value is error
    assert "retry_if of policy 'custom' failed" in caplog.text


def test_decorated_functions_keep_their_metadata_and_signature() -> None:
    @retry("database")
    def load(user_id: int, *, fresh: bool = False) -> dict[str, int]:
        """Load a user."""
        return {"id": user_id}

    @retry("redis")
    async def fetch(key: str) -> bytes | None:
        return None

    assert load.__name__ == "load"
    assert load.__doc__ == "Load a user."
    assert str(inspect.signature(load)) == str(inspect.signature(load.__wrapped__))  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(fetch)
    assert not inspect.iscoroutinefunction(load)


def test_bare_decorator_uses_the_external_api_preset() -> None:
    @retry
    def ping() -> str:
        return "pong"

    assert ping() == "pong"
    assert retry_stats()["external_api"].calls == 1


def test_overrides_are_validated_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="attempts must be an int >= 1"):
        retry("database", attempts=0)
    with pytest.raises(ConfigurationError, match="tries is not a RetryPolicy field"):
        retry("database", tries=2)
    with pytest.raises(
        ConfigurationError, match="policy_or_preset must be a RetryPolicy or one of"
    ):
        retry("databse")


def test_generator_functions_are_refused() -> None:
    def numbers() -> object:
        yield 1

    async def stream() -> object:
        yield 1

    for fn in (numbers, stream):
        with pytest.raises(ConfigurationError, match="cannot retry a generator"):
            retry("database")(fn)


def test_deadline_stops_retrying_and_shortens_the_last_wait(sleeps: Sleeps) -> None:
    policy = RetryPolicy(attempts=10, wait="fixed", min_wait=4.0, deadline=9.0)
    starts: list[float] = []

    def slow_failure() -> None:
        starts.append(sleeps.clock.monotonic())
        sleeps.clock.advance(1.0)  # each attempt takes 1 s
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(slow_failure)()
    # t=1 fail, wait 4; t=6 fail, 3 s left: the wait is shortened so that the last attempt
    # still has 1% of the deadline (0.09 s) when it starts; it fails at 9.91 and is the last.
    assert sleeps.recorded == [4.0, pytest.approx(2.91)]
    assert starts == [0.0, 5.0, pytest.approx(8.91)]


def test_no_attempt_starts_without_budget_left(sleeps: Sleeps) -> None:
    # Instant failures, fixed 3 s waits, a 10 s deadline: waits at 0, 3, 6; at t=9 one second
    # is left, so the wait is cut to 0.9 and the attempt at 9.9 is the last one: no attempt
    # starts at the deadline itself, and none with ~0 s left after a cut wait.
    policy = RetryPolicy(attempts=100, wait="fixed", min_wait=3.0, max_wait=3.0, deadline=10.0)
    starts: list[float] = []

    def fails() -> None:
        starts.append(sleeps.clock.monotonic())
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(fails)()
    assert starts == [0.0, 3.0, 6.0, 9.0, pytest.approx(9.9)]
    assert sleeps.recorded == [3.0, 3.0, 3.0, pytest.approx(0.9)]
    assert retry_stats()["custom"].exhausted == 1


def test_retries_stop_when_less_than_the_reserve_remains(sleeps: Sleeps) -> None:
    policy = RetryPolicy(attempts=10, wait="fixed", min_wait=0.0, max_wait=0.0, deadline=10.0)
    starts: list[float] = []

    def slow() -> None:
        starts.append(sleeps.clock.monotonic())
        sleeps.clock.advance(4.96)
        raise OSError("slow")

    with pytest.raises(OSError, match="slow"):
        retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(slow)()
    # After two attempts 0.08 s is left, less than the 1% reserve: not worth an attempt.
    assert starts == [0.0, 4.96]


def test_deadline_counts_the_first_attempt(sleeps: Sleeps) -> None:
    policy = RetryPolicy(attempts=5, wait="fixed", min_wait=1.0, deadline=2.0)

    def very_slow() -> None:
        sleeps.clock.advance(2.5)
        raise OSError("slow and failing")

    flaky_calls = Flaky()

    def fn() -> None:
        flaky_calls()
        very_slow()

    with pytest.raises(OSError, match="slow and failing"):
        retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(fn)()
    assert flaky_calls.calls == 1
    assert sleeps.recorded == []
    assert retry_stats()["custom"].exhausted == 1


async def test_async_deadline_uses_the_decoration_time_clock(sleeps: Sleeps) -> None:
    from resilience_kit.testing import use_clock

    policy = RetryPolicy(attempts=10, wait="fixed", min_wait=3.0, deadline=7.0)
    with use_clock(sleeps.clock):
        fn = retry(policy, sleep=sleeps.async_sleep)(AsyncFlaky(*[OSError("out")] * 10).run)
    with pytest.raises(OSError, match="out"):
        await fn()
    assert sleeps.recorded == [3.0, 3.0, pytest.approx(0.93)]


@pytest.mark.parametrize("outcome", ["succeeds", "exhausted", "bug"])
def test_retry_if_runs_once_per_error(outcome: str, sleeps: Sleeps) -> None:
    judged: list[str] = []

    def is_transient(error: BaseException) -> bool:
        judged.append(str(error))
        return isinstance(error, OSError)

    errors: list[BaseException] = [OSError("a"), OSError("b")]
    if outcome == "exhausted":
        errors.append(OSError("c"))
    elif outcome == "bug":
        errors.append(ValueError("c"))
    policy = RetryPolicy(name="once", attempts=3, retry_on=(), retry_if=is_transient, min_wait=0)
    fn = retry(policy, sleep=sleeps.sleep)(Flaky(*errors))
    if outcome == "succeeds":
        fn()
    else:
        with pytest.raises((OSError, ValueError)):
            fn()
    assert judged == [str(e) for e in errors]


async def test_async_retry_if_runs_once_per_error(sleeps: Sleeps) -> None:
    judged: list[BaseException] = []

    def is_transient(error: BaseException) -> bool:
        judged.append(error)
        return True

    errors = [OSError("a"), OSError("b")]
    policy = RetryPolicy(name="once", attempts=3, retry_on=(), retry_if=is_transient, min_wait=0)
    assert await retry(policy, sleep=sleeps.async_sleep)(AsyncFlaky(*errors).run)() == "ok"
    assert judged == errors


def _frames(error: BaseException) -> list[str]:
    return [frame.filename for frame in traceback.extract_tb(error.__traceback__)]


def _raise_from_attempts(*errors: BaseException) -> Callable[[], None]:
    remaining = list(errors)

    def call() -> None:
        raise remaining.pop(0)

    return call


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param([OSError("1"), ValueError("bug on attempt 2")], id="unretryable-later"),
        pytest.param([OSError("1"), OSError("2"), OSError("3")], id="exhausted"),
        pytest.param([OSError("only")], id="exhausted-first"),
        pytest.param(
            [OSError("1"), CircuitOpenError("b", 1.0, CircuitState.OPEN)], id="give-up-later"
        ),
    ],
)
def test_the_raised_traceback_has_no_tenacity_frames(
    errors: list[BaseException], sleeps: Sleeps
) -> None:
    policy = FAST.replace(attempts=len(errors) if len(errors) > 1 else 1)
    fn = retry(policy, sleep=sleeps.sleep)(_raise_from_attempts(*errors))
    with pytest.raises(type(errors[-1])) as caught:
        fn()
    assert caught.value is errors[-1]
    files = _frames(caught.value)
    assert not [f for f in files if "tenacity" in f or "concurrent" in f], files
    # From the test through the wrapper and the retry loop straight into the call.
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert names[-1] == "call"
    assert names.count("call") == 1
    assert caught.value.__context__ is None


async def test_the_async_traceback_has_no_tenacity_frames(sleeps: Sleeps) -> None:
    errors = [OSError("1"), ValueError("bug on attempt 2")]
    flaky = AsyncFlaky(*errors)
    with pytest.raises(ValueError, match="bug on attempt 2") as caught:
        await retry(FAST, sleep=sleeps.async_sleep)(flaky.run)()
    files = _frames(caught.value)
    assert not [f for f in files if "tenacity" in f or "concurrent" in f], files
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert names[-2:] == ["run", "__call__"]


# Calls of one decorated function share its policy and wait strategy but never a retry's
# state: each call's attempts, waits and outcome are its own while others interleave with it.
SHARED = RetryPolicy(
    name="shared",
    attempts=3,
    wait="exponential",
    multiplier=1.0,
    min_wait=1.0,
    max_wait=10.0,
    retry_on=(OSError,),
    on_exhausted="return_default",
    default="exhausted",
)


def _expected_waits(failures: int) -> list[float]:
    # Exponential 1, 2 after attempts 1 and 2; three failures exhaust the three attempts.
    return [1.0, 2.0][: min(failures, 2)]


def _expected_result(key: int) -> object:
    return "exhausted" if key % 4 == 3 else key


async def test_interleaved_tasks_sharing_one_function_keep_their_own_retries() -> None:
    waits: dict[int, list[float]] = {}
    failures: dict[int, int] = {}
    current: dict[asyncio.Task[object] | None, int] = {}

    async def sleep(seconds: float) -> None:
        waits[current[asyncio.current_task()]].append(seconds)
        await asyncio.sleep(0)  # let the other tasks run their attempts in between

    @retry(SHARED, sleep=sleep)
    async def fetch(key: int) -> object:
        await asyncio.sleep(0)
        if failures[key] < key % 4:
            failures[key] += 1
            raise OSError(f"attempt failed for {key}")
        return key

    async def one(key: int) -> object:
        current[asyncio.current_task()] = key
        waits[key], failures[key] = [], 0
        return await fetch(key)

    keys = range(2_000)
    results = await asyncio.gather(*(one(key) for key in keys))
    assert results == [_expected_result(key) for key in keys]
    assert waits == {key: _expected_waits(key % 4) for key in keys}
    stats = retry_stats()["shared"]
    assert (stats.calls, stats.retries, stats.exhausted) == (2_000, 500 * (1 + 2 + 2), 500)


def test_threads_sharing_one_function_keep_their_own_retries() -> None:
    waits: dict[int, list[float]] = {}
    failures: dict[int, int] = {}
    local = threading.local()

    def sleep(seconds: float) -> None:
        waits[local.key].append(seconds)
        time.sleep(0)  # hand the GIL to another thread between attempts

    @retry(SHARED, sleep=sleep)
    def fetch(key: int) -> object:
        if failures[key] < key % 4:
            failures[key] += 1
            raise OSError(f"attempt failed for {key}")
        return key

    results: dict[int, object] = {}
    barrier = threading.Barrier(8)

    def run(first: int) -> None:
        barrier.wait()
        for key in range(first, 4_000, 8):
            local.key = key
            waits[key], failures[key] = [], 0
            results[key] = fetch(key)

    threads = [threading.Thread(target=run, args=(first,)) for first in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {key: _expected_result(key) for key in range(4_000)}
    assert waits == {key: _expected_waits(key % 4) for key in range(4_000)}


def test_a_call_nested_in_the_same_function_keeps_its_own_retries(sleeps: Sleeps) -> None:
    attempts = {0: 0, 1: 0}
    inner_results: list[object] = []

    @retry(SHARED.replace(name="nested"), sleep=sleeps.sleep)
    def work(level: int) -> object:
        attempts[level] += 1
        if level == 1:
            if attempts[1] == 1:
                raise OSError("inner, attempt 1")
            return "inner"
        if attempts[0] == 2:
            # The outer call's second attempt runs the same function, which retries on its own.
            inner_results.append(work(1))
        if attempts[0] < 3:
            raise OSError(f"outer, attempt {attempts[0]}")
        return "outer"

    assert work(0) == "outer"
    assert inner_results == ["inner"]
    assert attempts == {0: 3, 1: 2}
    # Outer after its attempt 1, inner after its attempt 1, outer after its attempt 2.
    assert sleeps.recorded == [1.0, 1.0, 2.0]
    stats = retry_stats()["nested"]
    assert (stats.calls, stats.retries, stats.successes_after_retry) == (2, 3, 2)
