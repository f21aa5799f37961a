"""Every transition of the state machine, driven through the public API with a FakeClock."""

from __future__ import annotations

import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def ok() -> str:
    return "ok"


def boom() -> str:
    raise ValueError("boom")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ValueError, match="boom"):
            breaker.call(boom)


def test_consecutive_failures_open_it_and_a_success_restarts_the_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=3)
    fail(breaker, 2)
    assert breaker.call(ok) == "ok"
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.stats().failure_count == 2
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.stats().failure_count == 3


def test_open_rejects_without_running_and_reports_the_time_left(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=30)
    fail(breaker)
    ran = []
    clock.advance(12)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(ran.append, 1)
    assert ran == []
    assert (caught.value.breaker, caught.value.retry_after, caught.value.state) == ("b", 18, OPEN)
    assert breaker.stats().total_rejected == 1


def test_open_becomes_half_open_exactly_at_the_recovery_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=30)
    fail(breaker)
    clock.advance(29.999)
    assert breaker.state is OPEN
    clock.advance(0.001)
    assert breaker.state is HALF_OPEN
    assert breaker.stats().retry_after == 0.0


def test_half_open_closes_after_success_threshold_trials(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5, success_threshold=2)
    fail(breaker)
    clock.advance(5)
    assert breaker.call(ok) == "ok"
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
    assert breaker.stats().failure_count == 0


def test_a_failed_trial_reopens_for_the_same_timeout_without_a_ceiling(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5)
    fail(breaker)
    clock.advance(5)
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.stats().retry_after == 5


def test_failed_trials_double_the_timeout_up_to_the_ceiling_and_closing_restores_it(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5, max_recovery_timeout=30)
    fail(breaker)
    waits = []
    for _ in range(4):
        waits.append(breaker.stats().retry_after)
        clock.advance(waits[-1])
        fail(breaker)  # the trial fails
    waits.append(breaker.stats().retry_after)
    assert waits == [5, 10, 20, 30, 30]
    clock.advance(30)
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.stats().retry_after == 5


def test_half_open_admits_only_half_open_max_calls_at_once(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    fail(breaker)
    clock.advance(5)
    seen = []

    def nested() -> str:
        # Two trials are in flight when the third arrives.
        seen.append(breaker.call(inner))
        return "outer"

    def inner() -> str:
        with pytest.raises(CircuitOpenError) as caught:
            breaker.call(ok)
        assert caught.value.state is HALF_OPEN
        assert caught.value.retry_after == 0.0
        return "inner"

    assert breaker.call(nested) == "outer"
    assert seen == ["inner"]
    assert breaker.stats().total_rejected == 1


def test_outcomes_of_calls_admitted_before_a_transition_do_not_count_after_it(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5)
    breaker.__enter__()  # a call admitted while CLOSED...
    fail(breaker)  # ...the breaker opens and recovers meanwhile...
    clock.advance(5)
    assert breaker.state is HALF_OPEN
    breaker.__exit__(ValueError, ValueError("late"), None)  # ...and then it fails.
    # The late failure was not a trial: HALF_OPEN still waits for one.
    assert breaker.state is HALF_OPEN
    assert breaker.stats().total_failures == 2


def test_force_open_rejects_until_reset_whatever_the_time(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", recovery_timeout=1)
    breaker.force_open()
    clock.advance(1000)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(ok)
    assert caught.value.state is CircuitState.FORCED_OPEN
    assert caught.value.retry_after == 0.0
    assert breaker.state is CircuitState.FORCED_OPEN
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.call(ok) == "ok"


def test_disable_lets_everything_through_and_counts_totals_only(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1)
    breaker.disable()
    fail(breaker, 5)
    assert breaker.call(ok) == "ok"
    assert breaker.state is CircuitState.DISABLED
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes, stats.total_rejected) == (5, 1, 0)
    breaker.reset()
    fail(breaker)
    assert breaker.state is OPEN


def test_reset_from_open_restores_closed_and_the_base_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5, max_recovery_timeout=40)
    fail(breaker)
    clock.advance(5)
    fail(breaker)
    assert breaker.stats().retry_after == 10
    breaker.reset()
    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.opened_at) == (CLOSED, 0, None)
    assert stats.total_failures == 2  # lifetime totals survive a reset
    fail(breaker)
    assert breaker.stats().retry_after == 5


def test_reset_in_half_open_invalidates_outstanding_trials(clock: FakeClock) -> None:
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5)
    fail(breaker)
    clock.advance(5)
    with breaker:  # a trial
        breaker.reset()
        fail(breaker)  # CLOSED again, and this failure opens it
        clock.advance(5)
        assert breaker.state is HALF_OPEN
    # The old trial's success belongs to a past period: the new HALF_OPEN still has its slot.
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


class TestFailureRate:
    def test_judged_only_after_minimum_calls(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("r", failure_rate=0.5, minimum_calls=4, window=10)
        fail(breaker, 3)
        assert breaker.state is CLOSED
        assert breaker.stats().failure_rate == 1.0
        fail(breaker)
        assert breaker.state is OPEN

    def test_a_success_can_open_it(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("r", failure_rate=0.5, minimum_calls=4, window=10)
        fail(breaker, 2)
        breaker.call(ok)
        assert breaker.state is CLOSED
        breaker.call(ok)  # 2 of 4 failed: the share reaches the rate on a success
        assert breaker.state is OPEN

    def test_replaces_the_consecutive_policy(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(
            "r", failure_threshold=1, failure_rate=0.9, minimum_calls=10, window=10
        )
        fail(breaker, 5)
        assert breaker.state is CLOSED
        assert breaker.stats().failure_count == 5

    def test_old_outcomes_leave_the_window(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("r", failure_rate=0.5, minimum_calls=4, window=10)
        fail(breaker, 3)
        clock.advance(10)  # a whole window later, those failures are gone
        assert breaker.stats().failure_count == 0
        for _ in range(3):
            breaker.call(ok)
        fail(breaker)
        assert breaker.state is CLOSED
        assert breaker.stats().failure_rate == 0.25

    def test_the_window_slides_in_buckets(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("r", failure_rate=0.5, minimum_calls=100, window=20)
        fail(breaker, 2)  # bucket [0, 1)
        clock.advance(5)
        fail(breaker)  # bucket [5, 6)
        clock.advance(15)  # t=20: the first bucket has left, the second has not
        assert breaker.stats().failure_count == 1
        clock.advance(5)
        assert breaker.stats().failure_count == 0

    def test_closing_starts_a_fresh_window(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(
            "r", failure_rate=0.5, minimum_calls=2, window=100, recovery_timeout=1
        )
        fail(breaker, 2)
        clock.advance(1)
        breaker.call(ok)
        assert breaker.state is CLOSED
        breaker.call(ok)
        assert breaker.stats().failure_count == 0
        assert breaker.state is CLOSED


class TestSlowCalls:
    def test_a_slow_success_counts_as_a_failure_and_still_returns(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("s", failure_threshold=2, slow_call_threshold=1.0)

        def slow() -> str:
            clock.advance(1.5)
            return "late"

        def just_in_time() -> str:
            clock.advance(1.0)
            return "on time"

        assert breaker.call(slow) == "late"
        assert breaker.call(just_in_time) == "on time"
        assert breaker.stats().failure_count == 0
        assert breaker.call(slow) == "late"
        assert breaker.call(slow) == "late"
        assert breaker.state is OPEN
        assert breaker.stats().total_failures == 3

    async def test_async_calls_are_timed_too(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("s", failure_threshold=1, slow_call_threshold=0.5)

        @breaker
        async def slow() -> int:
            await clock.async_sleep(0.6)
            return 1

        assert await slow() == 1
        assert breaker.state is OPEN
