"""record_transitions, assert_transitions and force_state, used directly (no pytest plugin)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from resilience_kit import CircuitBreaker, CircuitState, ConfigurationError
from resilience_kit.testing import (
    FakeClock,
    Transition,
    assert_transitions,
    force_state,
    record_transitions,
)


def fail() -> None:
    raise ConnectionError("refused")


def trip(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(fail)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock, request: pytest.FixtureRequest) -> Iterator[CircuitBreaker]:
    made = CircuitBreaker(request.node.name, failure_threshold=2, recovery_timeout=10, clock=clock)
    yield made
    made.unregister()


def test_a_full_cycle_is_recorded_with_its_causes(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    log = record_transitions(breaker)
    trip(breaker, 2)
    clock.advance(10)
    assert breaker.call(lambda: "ok") == "ok"
    assert log == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert all(isinstance(t, Transition) for t in log)
    assert [t.cause for t in log] == [
        "failure: ConnectionError('refused') (2/2 in a row)",
        "recovery timeout elapsed (10s)",
        "trial succeeded (1/1)",
    ]
    assert (log[0].old, log[0].new) == ("CLOSED", "OPEN")
    assert_transitions(breaker, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])
    assert_transitions(breaker, [CircuitState.CLOSED, "OPEN", "HALF_OPEN", CircuitState.CLOSED])


def test_causes_of_manual_control_and_failed_trials(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    log = record_transitions(breaker)
    force_state(breaker, "HALF_OPEN")
    with pytest.raises(KeyError), breaker:  # the with-form: the error reaches the recorder too
        raise KeyError("k")
    breaker.force_open()
    breaker.disable()
    breaker.reset()
    assert [(t.old, t.new, t.cause) for t in log] == [
        ("CLOSED", "HALF_OPEN", "force_state('HALF_OPEN')"),
        ("HALF_OPEN", "OPEN", "trial failed: KeyError('k')"),
        ("OPEN", "FORCED_OPEN", "force_open()"),
        ("FORCED_OPEN", "DISABLED", "disable()"),
        ("DISABLED", "CLOSED", "reset()"),
    ]


def test_a_failure_without_an_exception_is_named(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "slow-call-cause", failure_threshold=1, slow_call_threshold=1.0, clock=clock
    )
    log = record_transitions(breaker)
    assert breaker.call(lambda: clock.advance(2)) is None
    assert [t.cause for t in log] == ["slow call 2s > 1s (1/1 in a row)"]


async def test_async_calls_are_recorded(breaker: CircuitBreaker) -> None:
    log = record_transitions(breaker)

    @breaker
    async def fetch() -> None:
        await asyncio.sleep(0)
        raise TimeoutError

    for _ in range(2):
        with pytest.raises(TimeoutError):
            await fetch()
    assert log == [("CLOSED", "OPEN")]
    assert log[0].cause == "failure: TimeoutError() (2/2 in a row)"


@pytest.mark.parametrize("state", ["CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED"])
def test_force_state_reaches_every_state(
    breaker: CircuitBreaker, clock: FakeClock, state: str
) -> None:
    trip(breaker, 2)
    force_state(breaker, state)
    assert str(breaker.state) == state
    assert breaker.stats().failure_count == 0


def test_force_state_open_lasts_the_recovery_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    force_state(breaker, CircuitState.OPEN)
    assert breaker.stats().retry_after == 10
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats().total_failures == 0  # forcing is not a failure


def test_force_state_rejects_an_unknown_state(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConfigurationError, match="state must be one of 'CLOSED'") as caught:
        force_state(breaker, "open")
    assert caught.value.parameter == "state"


def test_a_mismatch_explains_itself(breaker: CircuitBreaker) -> None:
    record_transitions(breaker)
    trip(breaker, 2)
    with pytest.raises(AssertionError) as caught:
        assert_transitions(breaker, ["CLOSED"])
    assert str(caught.value) == (
        f"breaker {breaker.name!r} went through other states than expected\n"
        "  expected: CLOSED\n"
        "  actual:   CLOSED -> OPEN\n"
        "  expected stops early; the rest: OPEN\n"
        "  transitions:\n"
        "    1. CLOSED -> OPEN: failure: ConnectionError('refused') (2/2 in a row)"
    )
    with pytest.raises(AssertionError, match="actual stops early; the rest: HALF_OPEN"):
        assert_transitions(breaker, ["CLOSED", "OPEN", "HALF_OPEN"])


def test_a_breaker_that_never_moved(breaker: CircuitBreaker) -> None:
    record_transitions(breaker)
    assert_transitions(breaker, ["CLOSED"])
    with pytest.raises(AssertionError) as caught:
        assert_transitions(breaker, ["OPEN"])
    assert str(caught.value).endswith(
        "  first difference at state 1: expected OPEN, got CLOSED\n"
        "  no transitions: it stayed CLOSED"
    )


def test_expected_must_hold_state_names(breaker: CircuitBreaker) -> None:
    record_transitions(breaker)
    with pytest.raises(ConfigurationError, match="expected must hold state names") as caught:
        assert_transitions(breaker, ["CLOSED", "AJAR"])
    assert caught.value.value == "AJAR"


def test_record_transitions_starts_afresh(breaker: CircuitBreaker) -> None:
    first = record_transitions(breaker)
    trip(breaker, 2)
    second = record_transitions(breaker)
    breaker.reset()
    assert first == [("CLOSED", "OPEN")]
    assert second == [("OPEN", "CLOSED")]
    assert_transitions(breaker, ["OPEN", "CLOSED"])  # the newest recording


def test_transitions_from_many_threads_are_all_recorded(clock: FakeClock) -> None:
    breakers = [
        CircuitBreaker(f"threaded-{i}", failure_threshold=1, recovery_timeout=1, clock=clock)
        for i in range(8)
    ]
    logs = [record_transitions(b) for b in breakers]

    def churn(breaker: CircuitBreaker) -> None:
        for _ in range(200):
            trip(breaker)
            breaker.reset()

    threads = [threading.Thread(target=churn, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for breaker, log in zip(breakers, logs, strict=True):
        assert log == [("CLOSED", "OPEN"), ("OPEN", "CLOSED")] * 200
        breaker.unregister()


def test_outside_pytest_nothing_records_until_asked() -> None:
    code = """
from resilience_kit import CircuitBreaker, ResilienceError
from resilience_kit.testing import assert_transitions
breaker = CircuitBreaker("lonely")
try:
    assert_transitions(breaker, ["CLOSED"])
except ResilienceError as error:
    print(error)
"""
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == (
        "nothing records the transitions of breaker 'lonely': call record_transitions(breaker) "
        "first (the resilience_kit pytest plugin records every breaker inside a test)"
    )
