"""What counts as a failure, what passes through, and when the fallback answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock


class Flaky(Exception):
    pass


def raiser(error: BaseException) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise error

    return run


def test_failure_on_limits_what_counts(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, failure_on=(ConnectionError,))
    with pytest.raises(KeyError):
        breaker.call(raiser(KeyError("k")))
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(ConnectionError):
        breaker.call(raiser(ConnectionError()))
    assert breaker.state is CircuitState.OPEN


def test_ignore_wins_over_failure_on(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "o", failure_threshold=1, failure_on=OSError, ignore=(FileNotFoundError,)
    )
    with pytest.raises(FileNotFoundError):
        breaker.call(raiser(FileNotFoundError()))
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_calls) == (CircuitState.CLOSED, 0, 1)


def test_failure_if_counts_a_result_but_still_returns_it(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=2, failure_if=lambda result: result is None)
    assert breaker.call(lambda: None) is None
    assert breaker.call(lambda: 0) == 0
    assert breaker.call(lambda: None) is None
    assert breaker.call(lambda: None) is None
    assert breaker.state is CircuitState.OPEN


def test_a_raising_failure_if_is_logged_and_counts_a_success(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, failure_if=lambda result: 1 / 0)
    assert breaker.call(lambda: 5) == 5
    assert breaker.stats().total_successes == 1
    assert "failure_if of breaker 'o' failed" in caplog.text


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3), asyncio.CancelledError()])
def test_base_exceptions_are_never_counted_nor_swallowed(
    clock: FakeClock, error: BaseException
) -> None:
    fallback_calls: list[Any] = []
    breaker = CircuitBreaker(
        "o",
        failure_threshold=1,
        failure_on=BaseException,
        fallback=lambda *a, **k: fallback_calls.append(a),
    )
    with pytest.raises(type(error)):
        breaker.call(raiser(error))
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_calls) == (CircuitState.CLOSED, 0, 1)
    assert fallback_calls == []


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError(), KeyError()])
def test_an_uncounted_end_gives_the_trial_slot_back(clock: FakeClock, error: BaseException) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, recovery_timeout=5, failure_on=ValueError)
    with pytest.raises(ValueError, match="down"):
        breaker.call(raiser(ValueError("down")))
    clock.advance(5)
    with pytest.raises(type(error)):
        breaker.call(raiser(error))
    # The slot is free again: the next trial runs and closes the breaker.
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


async def test_a_cancelled_async_trial_gives_its_slot_back(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, recovery_timeout=5)
    with pytest.raises(ValueError, match="down"):
        breaker.call(raiser(ValueError("down")))
    clock.advance(5)
    started = asyncio.Event()

    @breaker
    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is CircuitState.HALF_OPEN

    @breaker
    async def fine() -> str:
        return "fine"

    assert await fine() == "fine"
    assert breaker.state is CircuitState.CLOSED


class TestFallback:
    def test_answers_a_recorded_failure_with_the_call_arguments(self, clock: FakeClock) -> None:
        seen = []

        def fallback(user: str, *, lang: str = "en") -> str:
            seen.append((user, lang))
            return "sorry"

        breaker = CircuitBreaker("f", failure_threshold=5, fallback=fallback)

        @breaker
        def greet(user: str, *, lang: str = "en") -> str:
            raise Flaky(user)

        assert greet("ann", lang="fr") == "sorry"
        assert seen == [("ann", "fr")]
        assert breaker.stats().total_failures == 1

    def test_gets_the_error_when_it_declares_an_error_parameter(self, clock: FakeClock) -> None:
        errors: list[BaseException] = []

        def fallback(x: int, error: BaseException) -> int:
            errors.append(error)
            return -x

        breaker = CircuitBreaker("f", failure_threshold=1, fallback=fallback)
        problem = Flaky("first")
        assert breaker.call(raiser(problem), 4) == -4
        assert breaker.call(lambda x: x, 7) == -7  # rejected now
        assert errors[0] is problem
        assert isinstance(errors[1], CircuitOpenError)
        assert errors[1].retry_after == 60

    def test_never_sees_ignored_or_unlisted_errors(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(
            "f", failure_on=(Flaky,), ignore=(KeyError,), fallback=lambda *a, **k: "fallback"
        )
        with pytest.raises(KeyError):
            breaker.call(raiser(KeyError()))
        with pytest.raises(TypeError):
            breaker.call(raiser(TypeError()))
        assert breaker.call(raiser(Flaky())) == "fallback"

    def test_not_used_for_results_that_count_as_failures(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("f", failure_if=bool, fallback=lambda *a, **k: "fallback")
        assert breaker.call(lambda: "truthy") == "truthy"

    async def test_async_fallbacks_are_awaited(self, clock: FakeClock) -> None:
        async def fallback(x: int) -> int:
            return x * 10

        breaker = CircuitBreaker("f", failure_threshold=1, fallback=fallback)

        @breaker
        async def work(x: int) -> int:
            raise Flaky

        assert await work(2) == 20  # failure
        assert await work(3) == 30  # rejection
        assert await breaker.call_async(work, 4) == 40

    async def test_a_sync_fallback_serves_an_async_function(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("f", failure_threshold=1, fallback=lambda x: x + 1)

        @breaker
        async def work(x: int) -> int:
            raise Flaky

        assert await work(1) == 2
        assert await work(2) == 3
