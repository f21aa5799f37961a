"""An outcome counts only in the period (the stretch of one state) its call was admitted in.

A call admitted while CLOSED or DISABLED that ends after a transition (an opening and a recovery,
a reset, a disable, a force_open) counts in the lifetime totals, but in no later period: not in
its failures, its rate window, its run of failures, nor as a trial.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from resilience_kit import BreakerListener, CircuitBreaker, CircuitState
from resilience_kit.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN


def boom() -> None:
    raise ConnectionError("down")


def recover(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Open ``breaker`` with one failure, let it recover and close it with one trial."""
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    assert breaker.state is OPEN
    clock.advance(5)
    assert breaker.call(lambda: "trial") == "trial"
    assert breaker.state is CLOSED


class Timed(BreakerListener):
    """A listener with on_success: the breaker times every call, so no call takes the fast
    path and the general one is tested."""

    def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
        pass


@contextmanager
def held_in_thread(call: Callable[[Callable[[], Any]], Any]) -> Iterator[dict[str, Any]]:
    """Run ``call(body)`` in a thread, blocked inside ``body`` until the block ends; then
    ``body`` raises ``box["raise"]`` if it is set, or returns "late"."""
    entered, release = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def body() -> str:
        entered.set()
        release.wait()
        if "raise" in box:
            raise box["raise"]
        return "late"

    def run() -> None:
        try:
            box["result"] = call(body)
        except BaseException as error:  # handed to the test
            box["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    entered.wait()
    try:
        yield box
    finally:
        release.set()
        thread.join()


# -- the reproduction, and the same through every call form ---------------------------


def test_a_block_admitted_before_an_outage_that_fails_after_recovery_counts_nowhere(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=1, recovery_timeout=5, clock=clock)
    breaker.__enter__()  # call A admitted
    recover(breaker, clock)
    breaker.__exit__(TimeoutError, TimeoutError(), None)  # A fails after the recovery
    assert breaker.state is CLOSED
    stats = breaker.stats()
    assert (stats.failure_count, stats.total_failures) == (0, 2)


@pytest.mark.parametrize("timed", [False, True], ids=["fast-path", "general-path"])
def test_a_decorated_call_in_a_thread_that_fails_after_recovery_counts_nowhere(
    clock: FakeClock, timed: bool
) -> None:
    listeners = [Timed()] if timed else []
    breaker = CircuitBreaker("stale", failure_threshold=1, recovery_timeout=5, listeners=listeners)
    with held_in_thread(lambda body: breaker(body)()) as box:
        recover(breaker, clock)
        box["raise"] = ConnectionError("late")
    assert isinstance(box["error"], ConnectionError)
    assert breaker.state is CLOSED
    assert breaker.stats().failure_count == 0


def test_a_call_through_call_in_a_thread_that_fails_after_recovery_counts_nowhere(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=1, recovery_timeout=5)
    with held_in_thread(breaker.call) as box:
        recover(breaker, clock)
        box["raise"] = ConnectionError("late")
    assert isinstance(box["error"], ConnectionError)
    assert breaker.state is CLOSED


@pytest.mark.parametrize("form", ["decorator", "call_async", "async with"])
async def test_a_task_admitted_before_an_outage_that_fails_after_recovery_counts_nowhere(
    clock: FakeClock, form: str
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=1, recovery_timeout=5)
    gate = asyncio.Event()

    async def late_failure() -> None:
        await gate.wait()
        raise ConnectionError("late")

    async def through_block() -> None:
        async with breaker:
            await late_failure()

    run = {
        "decorator": breaker(late_failure),
        "call_async": lambda: breaker.call_async(late_failure),
        "async with": through_block,
    }[form]
    task = asyncio.create_task(run())
    await asyncio.sleep(0)  # admitted while CLOSED
    recover(breaker, clock)
    gate.set()
    with pytest.raises(ConnectionError, match="late"):
        await task
    assert breaker.state is CLOSED
    assert breaker.stats().failure_count == 0


# -- manual transitions -------------------------------------------------------------------------


@pytest.mark.parametrize("control", ["reset", "disable", "force_open"])
def test_a_call_admitted_before_a_manual_transition_counts_nowhere_after_a_reset(
    clock: FakeClock, control: str
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=1)
    with held_in_thread(lambda body: breaker(body)()) as box:
        getattr(breaker, control)()
        breaker.reset()
        box["raise"] = ConnectionError("late")
    assert breaker.state is CLOSED
    assert breaker.stats().total_failures == 1


def test_a_call_admitted_while_disabled_that_fails_after_reset_counts_nowhere(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=1)
    breaker.disable()
    breaker.__enter__()
    breaker.reset()
    breaker.__exit__(ConnectionError, ConnectionError("late"), None)
    assert breaker.state is CLOSED
    assert breaker.stats().failure_count == 0


def test_a_late_success_does_not_break_the_next_periods_run_of_failures(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("stale", failure_threshold=2)
    with held_in_thread(lambda body: breaker(body)()) as box:
        breaker.reset()
        with pytest.raises(ConnectionError):
            breaker.call(boom)
    assert box["result"] == "late"  # the old period's success: it resets nothing
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    assert breaker.state is OPEN


# -- the rate window ------------------------------------------------------------------------


def test_a_success_that_starts_disabled_and_ends_after_a_reset_stays_out_of_the_window(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("stale", failure_rate=0.5, minimum_calls=2)
    breaker.disable()
    with held_in_thread(lambda body: breaker(body)()) as box:
        breaker.reset()
        with pytest.raises(ValueError, match="invalid literal"):
            breaker.call(int, "x")
    assert box["result"] == "late"
    stats = breaker.stats()
    # Had it counted, the window would hold 1 failure in 2 calls and the breaker be OPEN.
    assert (stats.failure_rate, stats.failure_count, stats.state) == (1.0, 1, CLOSED)
    assert stats.total_successes == 1


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_rate_window_entries_of_an_earlier_closed_period_do_not_leak(
    clock: FakeClock, outcome: str
) -> None:
    breaker = CircuitBreaker("stale", failure_rate=0.5, minimum_calls=2, recovery_timeout=5)
    with held_in_thread(lambda body: breaker(body)()) as box:
        for _ in range(2):
            with pytest.raises(ConnectionError):
                breaker.call(boom)
        assert breaker.state is OPEN
        clock.advance(5)
        assert breaker.call(lambda: "trial") == "trial"
        assert breaker.state is CLOSED
        if outcome == "failure":
            box["raise"] = ConnectionError("late")
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (0, 0.0)
    # One failure in the new period: had the late outcome counted, this would be 2 calls at
    # a 50 % (or 100 %) failure rate, and OPEN.
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.failure_rate) == (CLOSED, 1, 1.0)
