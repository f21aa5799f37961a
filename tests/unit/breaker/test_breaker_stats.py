"""stats() and to_dict(): what they report, and that to_dict is JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from resilience_kit import BreakerStats, CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock

FIELDS = [
    "name",
    "state",
    "failure_count",
    "consecutive_successes",
    "total_calls",
    "total_successes",
    "total_failures",
    "total_rejected",
    "failure_rate",
    "success_rate",
    "opened_at",
    "retry_after",
    "last_failure",
    "store_errors",
]


def test_stats_has_exactly_the_documented_fields_and_is_frozen() -> None:
    assert [field.name for field in dataclasses.fields(BreakerStats)] == FIELDS
    stats = CircuitBreaker("st").stats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.total_calls = 3  # type: ignore[misc]


def test_a_fresh_breaker_reports_zeroes(clock: FakeClock) -> None:
    stats = CircuitBreaker("st").stats()
    assert stats == BreakerStats(
        name="st",
        state=CircuitState.CLOSED,
        failure_count=0,
        consecutive_successes=0,
        total_calls=0,
        total_successes=0,
        total_failures=0,
        total_rejected=0,
        failure_rate=0.0,
        success_rate=1.0,
        opened_at=None,
        retry_after=0.0,
        last_failure=None,
    )


def test_stats_after_a_mixed_history(clock: FakeClock) -> None:
    breaker = CircuitBreaker("st", failure_threshold=2, recovery_timeout=60, ignore=(KeyError,))
    for _ in range(3):
        breaker.call(lambda: None)
    with pytest.raises(KeyError):
        breaker.call({}.__getitem__, "k")
    clock.advance(10)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "a")
    breaker.call(lambda: None)
    clock.advance(5)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "b")
    clock.advance(1)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "c")  # opens at t=16
    clock.advance(4)
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    stats = breaker.stats()
    assert stats.state is CircuitState.OPEN
    assert stats.failure_count == 2
    assert stats.consecutive_successes == 0
    assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (4, 3, 2)
    assert stats.total_calls == 10  # including the ignored KeyError
    assert stats.failure_rate == pytest.approx(3 / 7)
    assert stats.success_rate == pytest.approx(4 / 7)
    wall_now = clock.wall()
    assert stats.opened_at == pytest.approx(wall_now - 4)
    assert stats.last_failure == pytest.approx(wall_now - 4)
    assert stats.retry_after == 56


def test_consecutive_successes_count_since_the_last_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker("st")
    breaker.call(lambda: None)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    for _ in range(3):
        breaker.call(lambda: None)
    assert breaker.stats().consecutive_successes == 3
    breaker.reset()
    assert breaker.stats().consecutive_successes == 0


def test_rate_policy_reports_the_window(clock: FakeClock) -> None:
    breaker = CircuitBreaker("st", failure_rate=0.9, window=10, minimum_calls=100)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    breaker.call(lambda: None)
    stats = breaker.stats()
    assert (stats.failure_count, stats.failure_rate) == (1, 0.5)
    clock.advance(10)
    stats = breaker.stats()
    assert (stats.failure_count, stats.failure_rate) == (0, 0.0)
    assert stats.success_rate == 0.5  # lifetime


def test_an_open_rate_breaker_keeps_reporting_the_failures_that_opened_it(
    clock: FakeClock,
) -> None:
    # The window ages while nothing is recorded; a health page must not show OPEN with 0
    # failures. The figures hold until the breaker closes.
    breaker = CircuitBreaker(
        "st", failure_rate=0.5, window=10, minimum_calls=4, recovery_timeout=30
    )
    breaker.call(lambda: None)
    for _ in range(3):
        with pytest.raises(ValueError, match="invalid literal"):
            breaker.call(int, "x")
    assert breaker.state is CircuitState.OPEN
    clock.advance(20)  # two windows: every outcome has aged out
    for figures in (breaker.stats(), breaker.to_dict()):
        held = dataclasses.asdict(figures) if isinstance(figures, BreakerStats) else figures
        assert (held["failure_count"], held["failure_rate"]) == (3, 0.75)
    clock.advance(10)  # HALF_OPEN: still the figures it opened with
    assert breaker.stats().state is CircuitState.HALF_OPEN
    assert breaker.stats().failure_count == 3
    breaker.call(lambda: None)  # the trial closes it: a fresh window
    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.failure_rate) == (CircuitState.CLOSED, 0, 0.0)


@pytest.mark.parametrize("control", ["force_open", "disable"])
def test_a_rate_breaker_held_by_hand_keeps_the_figures_it_had(
    clock: FakeClock, control: str
) -> None:
    breaker = CircuitBreaker("st", failure_rate=0.9, window=10, minimum_calls=100)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    getattr(breaker, control)()
    clock.advance(60)
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (1, 1.0)


@pytest.mark.parametrize("start", [-100.0, -5.0, -1e9])
def test_the_rate_window_slides_on_a_clock_that_reads_negative(start: float) -> None:
    clock = FakeClock(start=start)
    breaker = CircuitBreaker("st", failure_rate=0.9, window=10, minimum_calls=100, clock=clock)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    breaker.call(lambda: None)
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (1, 0.5)
    clock.advance(5)
    breaker.call(lambda: None)
    assert breaker.stats().failure_rate == pytest.approx(1 / 3)
    clock.advance(5)  # the first two are 10 s old: out of the window
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (0, 0.0)
    clock.advance(5)
    assert breaker.stats().failure_rate == 0.0
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    assert (breaker.stats().failure_count, breaker.stats().failure_rate) == (1, 1.0)


def test_to_dict_is_json_with_the_original_endpoint_names(clock: FakeClock) -> None:
    breaker = CircuitBreaker("Gemini API", failure_threshold=1)
    breaker.call(lambda: None)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    data = json.loads(json.dumps(breaker.to_dict()))
    assert data["state"] == "OPEN"
    assert data["failure_count"] == 1
    assert data["total_calls"] == 3
    assert data["total_blocked"] == data["total_rejected"] == 1
    assert data["success_rate"] == 0.5
    assert set(data) == {*FIELDS, "total_blocked"}


def test_repr_names_the_breaker_and_its_state() -> None:
    assert repr(CircuitBreaker("st")) == "CircuitBreaker('st', state=CLOSED)"
