"""Listeners see every event; a broken listener never breaks a call."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from resilience_kit import BreakerListener, CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.breaker import add_global_listener, remove_global_listener
from resilience_kit.testing import FakeClock


class Recorder(BreakerListener):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
    ) -> None:
        self.events.append(("change", breaker.name, str(old), str(new)))

    def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
        self.events.append(("success", duration))

    def on_failure(
        self, breaker: CircuitBreaker, error: BaseException | None, duration: float
    ) -> None:
        self.events.append(("failure", type(error).__name__, duration))

    def on_rejected(self, breaker: CircuitBreaker) -> None:
        self.events.append(("rejected",))


def test_every_event_reaches_the_listener_with_durations_by_the_breaker_clock(
    clock: FakeClock,
) -> None:
    recorder = Recorder()
    breaker = CircuitBreaker("l", failure_threshold=1, recovery_timeout=5, listeners=[recorder])

    def slow_ok() -> None:
        clock.advance(0.25)

    def slow_fail() -> None:
        clock.advance(0.5)
        raise ValueError("slow")

    breaker.call(slow_ok)
    with pytest.raises(ValueError, match="slow"):
        breaker.call(slow_fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(slow_ok)
    clock.advance(5)
    breaker.call(slow_ok)
    assert recorder.events == [
        ("success", 0.25),
        ("failure", "ValueError", 0.5),
        ("change", "l", "CLOSED", "OPEN"),
        ("rejected",),
        ("change", "l", "OPEN", "HALF_OPEN"),
        ("success", 0.25),
        ("change", "l", "HALF_OPEN", "CLOSED"),
    ]


def test_a_listener_may_implement_only_some_methods(clock: FakeClock) -> None:
    changes = []

    class OnlyChanges:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            changes.append(str(new))

    breaker = CircuitBreaker("l", failure_threshold=1, listeners=[OnlyChanges()])  # type: ignore[list-item]
    breaker.force_open()
    breaker.disable()
    breaker.reset()
    assert changes == ["FORCED_OPEN", "DISABLED", "CLOSED"]


def test_a_raising_listener_is_logged_and_the_call_goes_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(BreakerListener):
        def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
            raise RuntimeError("listener bug")

        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            raise RuntimeError("listener bug")

    recorder = Recorder()
    breaker = CircuitBreaker("l", failure_threshold=1, listeners=[Broken(), recorder])
    with caplog.at_level(logging.ERROR, logger="resilience_kit.breaker"):
        assert breaker.call(lambda: 42) == 42
        breaker.force_open()
    assert breaker.state is CircuitState.FORCED_OPEN
    failures = [r for r in caplog.records if r.name == "resilience_kit.breaker"]
    assert len(failures) == 2
    assert "on_success" in failures[0].getMessage()
    # The listener after the broken one still heard everything.
    assert [event[0] for event in recorder.events] == ["success", "change"]


def test_global_listeners_hear_every_breakers_transitions_only(clock: FakeClock) -> None:
    heard: list[tuple[str, str, str]] = []

    class Hook:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            heard.append((breaker.name, str(old), str(new)))

        def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
            raise AssertionError("global listeners get transitions only")

    hook = Hook()
    add_global_listener(hook)
    try:
        first = CircuitBreaker("g1", failure_threshold=1)
        second = CircuitBreaker("g2")
        first.call(lambda: None)
        with pytest.raises(ValueError, match="invalid literal"):
            first.call(int, "x")
        second.force_open()
    finally:
        remove_global_listener(hook)
    second.reset()
    assert heard == [("g1", "CLOSED", "OPEN"), ("g2", "CLOSED", "FORCED_OPEN")]
    remove_global_listener(hook)  # removing twice is harmless
