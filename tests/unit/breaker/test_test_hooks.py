"""The hooks tests build on: transition causes, _force_state, _reset_totals, _use_clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resilience_kit import BreakerListener, CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.breaker import (
    MemoryStorage,
    _listeners,
    add_global_listener,
    remove_global_listener,
)
from resilience_kit.breaker._clocks import use_clock_everywhere
from resilience_kit.testing import FakeClock


class Causes(BreakerListener):
    def __init__(self) -> None:
        self.heard: list[tuple[str, str, str]] = []

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState, cause: str = ""
    ) -> None:
        self.heard.append((str(old), str(new), cause))


def fail(error: BaseException) -> None:
    raise error


# -- causes -------------------------------------------------------------------------------------


def test_each_kind_of_event_names_its_cause(clock: FakeClock) -> None:
    causes = Causes()
    breaker = CircuitBreaker(
        "causes",
        failure_threshold=2,
        recovery_timeout=10,
        max_recovery_timeout=40,
        success_threshold=2,
        half_open_max_calls=2,
        listeners=[causes],
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(fail, ConnectionError("refused"))
    clock.advance(10)
    with pytest.raises(KeyError), breaker:  # the with-form reports its error too
        raise KeyError("k")
    clock.advance(20)  # the timeout doubled
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    breaker.force_open()
    breaker.disable()
    breaker.reset()
    breaker._force_state(CircuitState.HALF_OPEN)
    assert causes.heard == [
        ("CLOSED", "OPEN", "failure: ConnectionError('refused') (2/2 in a row)"),
        ("OPEN", "HALF_OPEN", "recovery timeout elapsed (10s)"),
        ("HALF_OPEN", "OPEN", "trial failed: KeyError('k')"),
        ("OPEN", "HALF_OPEN", "recovery timeout elapsed (20s)"),
        ("HALF_OPEN", "CLOSED", "trial succeeded (2/2)"),
        ("CLOSED", "FORCED_OPEN", "force_open()"),
        ("FORCED_OPEN", "DISABLED", "disable()"),
        ("DISABLED", "CLOSED", "reset()"),
        ("CLOSED", "HALF_OPEN", "force_state('HALF_OPEN')"),
    ]


def test_slow_calls_and_flagged_results_are_named(clock: FakeClock) -> None:
    causes = Causes()
    breaker = CircuitBreaker(
        "causes-results",
        failure_threshold=1,
        recovery_timeout=5,
        slow_call_threshold=1.0,
        failure_if=lambda status: status >= 500,
        listeners=[causes],
    )

    def status(code: int, took: float = 0.0) -> int:
        clock.advance(took)
        return code

    assert breaker.call(status, 200, 1.25) == 200
    clock.advance(5)
    assert breaker.call(status, 503) == 503
    assert [cause for _, _, cause in causes.heard] == [
        "slow call 1.25s > 1s (1/1 in a row)",
        "recovery timeout elapsed (5s)",
        "trial failed: failure_if result 503",
    ]


def test_the_rate_policy_names_the_rate(clock: FakeClock) -> None:
    causes = Causes()
    breaker = CircuitBreaker(
        "causes-rate", failure_rate=0.5, minimum_calls=4, window=60, listeners=[causes]
    )
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    breaker.call(lambda: None)
    breaker.call(lambda: None)  # the fourth outcome, a success, opens it: 2 of 4 failed
    assert causes.heard == [
        ("CLOSED", "OPEN", "failure rate 50% >= 50% over 4 calls after a success")
    ]
    breaker.reset()
    for _ in range(3):
        breaker.call(lambda: None)
    with pytest.raises(ValueError, match="y"):
        breaker.call(fail, ValueError("y"))
    for _ in range(2):
        with pytest.raises(ValueError, match="y"):
            breaker.call(fail, ValueError("y"))
    assert causes.heard[-1] == (
        "CLOSED",
        "OPEN",
        "failure: ValueError('y') (failure rate 50% >= 50% over 6 calls)",
    )


def test_a_huge_or_unprintable_error_still_makes_a_short_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    causes = Causes()
    breaker = CircuitBreaker("causes-repr", failure_threshold=1, listeners=[causes])

    class Unprintable(Exception):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(ValueError, match="xxx"):
        breaker.call(fail, ValueError("x" * 10_000))
    breaker.reset()
    with pytest.raises(Unprintable):
        breaker.call(fail, Unprintable())
    breaker.reset()

    def broken(*args: Any) -> str:
        raise RuntimeError("describing failed")

    monkeypatch.setattr(_listeners, "describe", broken)
    breaker.force_open()
    huge, _, unprintable, _, undescribed = (cause for _, _, cause in causes.heard)
    assert huge.startswith("failure: ValueError('xxx")
    assert "..." in huge
    assert len(huge) < 300
    assert unprintable.startswith("failure: <Unprintable instance at ")
    assert undescribed == "CLOSED -> FORCED_OPEN"


def test_listeners_without_a_cause_parameter_are_called_as_before() -> None:
    heard: list[tuple[Any, ...]] = []

    class Plain:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            heard.append(("plain", str(old), str(new)))

    class Global:
        def on_state_change(
            self, breaker: CircuitBreaker, old: Any, new: Any, *, cause: str
        ) -> None:
            heard.append(("global", breaker.name, cause))

    hook = Global()
    add_global_listener(hook)
    try:
        breaker = CircuitBreaker("causes-mixed", listeners=[Plain()])
        breaker.force_open()
    finally:
        remove_global_listener(hook)
    breaker.reset()
    assert heard == [
        ("plain", "CLOSED", "FORCED_OPEN"),
        ("global", "causes-mixed", "force_open()"),
        ("plain", "FORCED_OPEN", "CLOSED"),
    ]


def test_no_cause_is_made_when_nobody_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[str] = []

    class Plain:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            heard.append(str(new))

    # The plugin's recorder asks for causes; this test is about a process where nobody does.
    monkeypatch.setattr(_listeners, "global_listeners", [])
    breaker = CircuitBreaker("causes-unasked", failure_threshold=1, listeners=[Plain()])

    def refuse(*args: Any) -> str:
        raise AssertionError("a cause was made")

    monkeypatch.setattr(_listeners, "describe", refuse)
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    assert heard == ["OPEN"]


# -- _force_state -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(CircuitState))
def test_force_state_is_one_transition_from_anywhere(clock: FakeClock, state: CircuitState) -> None:
    causes = Causes()
    breaker = CircuitBreaker("forced", failure_threshold=1, recovery_timeout=7, listeners=[causes])
    breaker.force_open()
    causes.heard.clear()
    breaker._force_state(state)
    assert breaker.state is state
    if state is not CircuitState.FORCED_OPEN:
        assert causes.heard == [("FORCED_OPEN", str(state), f"force_state('{state}')")]
    stats = breaker.stats()
    assert (stats.failure_count, stats.total_failures, stats.last_failure) == (0, 0, None)
    assert stats.retry_after == (7 if state is CircuitState.OPEN else 0)


async def test_forced_half_open_admits_exactly_the_trial_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forced-trials", half_open_max_calls=2, success_threshold=2)
    breaker._force_state(CircuitState.HALF_OPEN)
    gate = asyncio.Event()

    async def trial() -> str:
        await gate.wait()
        return "ok"

    calls = [asyncio.ensure_future(breaker.call_async(trial)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[:2] == ["ok", "ok"]
    assert isinstance(outcomes[2], CircuitOpenError)
    assert breaker.state is CircuitState.CLOSED


# -- _reset_totals ------------------------------------------------------------------------------


def test_reset_totals_zeroes_the_totals_and_counting_goes_on(clock: FakeClock) -> None:
    breaker = CircuitBreaker("totals", failure_threshold=2)

    @breaker
    def ok() -> None:  # decorated before the zeroing: it holds the counters
        pass

    ok()
    ok()
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    with pytest.raises(KeyboardInterrupt):
        breaker.call(fail, KeyboardInterrupt())
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        ok()
    breaker.reset()
    assert breaker.stats().total_calls == 5  # reset() keeps them
    breaker._reset_totals()
    fresh = breaker.stats()
    assert (fresh.total_calls, fresh.total_successes, fresh.total_failures) == (0, 0, 0)
    assert (fresh.total_rejected, fresh.success_rate, fresh.failure_rate) == (0, 1.0, 0.0)
    ok()
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    ok()
    after = breaker.stats()
    assert (after.total_calls, after.total_successes, after.total_failures) == (3, 2, 1)
    assert after.consecutive_successes == 1
    assert breaker.to_dict()["total_blocked"] == 0


# -- failure_on and ignore ----------------------------------------------------------------------


def test_failure_on_and_ignore_are_readable_as_tuples() -> None:
    default = CircuitBreaker("rules-default")
    assert (default.failure_on, default.ignore) == ((Exception,), ())
    custom = CircuitBreaker("rules", failure_on=OSError, ignore=(FileNotFoundError,))
    assert (custom.failure_on, custom.ignore) == ((OSError,), (FileNotFoundError,))
    with pytest.raises(AttributeError):
        custom.failure_on = (ValueError,)  # type: ignore[misc]


# -- _use_clock ---------------------------------------------------------------------------------


def test_a_new_clock_keeps_what_is_left_of_the_recovery_timeout() -> None:
    before = FakeClock(1000.0)
    breaker = CircuitBreaker("reclock", failure_threshold=1, recovery_timeout=30, clock=before)

    @breaker
    def call(ok: bool) -> str:  # decorated first: its closure holds the old clock
        if not ok:
            raise ConnectionError
        return "ok"

    with pytest.raises(ConnectionError):
        call(False)
    before.advance(10)
    after = FakeClock()
    assert breaker._use_clock(after) is before
    with pytest.raises(CircuitOpenError) as rejected:
        call(True)
    assert rejected.value.retry_after == 20
    after.advance(19)
    with pytest.raises(CircuitOpenError):
        call(True)
    before.advance(1000)  # the old clock no longer matters, in the decorated function too
    with pytest.raises(CircuitOpenError):
        call(True)
    after.advance(1)
    assert call(True) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats().last_failure == pytest.approx(after.wall() - 30)


async def test_async_decorated_functions_follow_the_new_clock() -> None:
    breaker = CircuitBreaker("reclock-async", failure_threshold=1, recovery_timeout=5)

    @breaker
    async def call() -> str:
        return "ok"

    fake = FakeClock()
    previous = breaker._use_clock(fake)
    breaker._force_state(CircuitState.OPEN)
    with pytest.raises(CircuitOpenError):
        await call()
    fake.advance(5)
    assert await call() == "ok"
    breaker._use_clock(previous)


def test_the_rate_window_keeps_the_ages_of_outcomes() -> None:
    before = FakeClock(123.4)
    breaker = CircuitBreaker(
        "reclock-rate", failure_rate=0.5, window=20, minimum_calls=2, clock=before
    )
    with pytest.raises(ValueError, match="x"):
        breaker.call(fail, ValueError("x"))
    before.advance(15)
    after = FakeClock(7.0)
    breaker._use_clock(after)
    assert breaker.stats().failure_count == 1
    after.advance(6)  # 21 s after the failure: out of the 20 s window
    assert breaker.stats().failure_count == 0
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED


def test_use_clock_everywhere_reaches_shared_breakers_once_and_restores() -> None:
    storage = MemoryStorage()
    system_like = FakeClock(5000.0)
    one = CircuitBreaker.shared(
        "everywhere", storage=storage, failure_threshold=1, recovery_timeout=30, clock=system_like
    )
    two = CircuitBreaker.shared(
        "everywhere", storage=storage, failure_threshold=1, recovery_timeout=30, clock=system_like
    )
    with pytest.raises(ConnectionError):
        one.call(fail, ConnectionError())
    fake = FakeClock()
    restore = use_clock_everywhere(fake)
    try:
        # Rebased once: a second shift would have moved the deadline by another 5000 s.
        assert one.stats().retry_after == two.stats().retry_after == 30
        fake.advance(12)
        assert two.stats().retry_after == 18
        created = CircuitBreaker("everywhere-new", clock=fake)
    finally:
        restore()
    assert one._clock is system_like
    assert two._clock is system_like
    assert created._clock is fake
    assert one.stats().retry_after == 18  # what was left when the fake clock went
    system_like.advance(18)
    assert two.state is CircuitState.HALF_OPEN
