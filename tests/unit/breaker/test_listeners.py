"""Listeners see every event; a broken listener never breaks a call."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
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


# -- state changes are told after the lock is released, in order ----------------------------


def test_a_slow_state_listener_does_not_hold_other_threads_up() -> None:
    inside, release = threading.Event(), threading.Event()

    class Slow:
        def on_state_change(self, *args: Any) -> None:
            inside.set()
            release.wait()

    breaker = CircuitBreaker("l", listeners=[Slow()])
    opener = threading.Thread(target=breaker.force_open)
    opener.start()
    inside.wait()
    # Another thread (an event loop serving /health, say) reads the breaker meanwhile.
    reader_done = threading.Event()
    reader = threading.Thread(target=lambda: (breaker.stats(), reader_done.set()))
    reader.start()
    finished_while_listener_ran = reader_done.wait(timeout=10)
    release.set()
    opener.join()
    reader.join()
    assert finished_while_listener_ran
    assert breaker.state is CircuitState.FORCED_OPEN


def test_a_transition_made_by_a_listener_is_told_after_the_one_it_heard() -> None:
    heard: list[tuple[str, str]] = []

    class Resetter:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            heard.append((str(old), str(new)))
            if new is CircuitState.OPEN:
                breaker.reset()

    breaker = CircuitBreaker("l", failure_threshold=1, listeners=[Resetter()])
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    assert heard == [("CLOSED", "OPEN"), ("OPEN", "CLOSED")]
    assert breaker.state is CircuitState.CLOSED


def test_transitions_reach_listeners_in_order_one_at_a_time_under_threads() -> None:
    heard: list[tuple[CircuitState, CircuitState]] = []
    busy = threading.Lock()
    overlaps: list[int] = []

    class Checker:
        def on_state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
            if not busy.acquire(blocking=False):
                overlaps.append(1)
                return
            try:
                heard.append((old, new))
                time.sleep(0)  # let other threads run while this delivery is in progress
            finally:
                busy.release()

    breaker = CircuitBreaker(
        "l", failure_threshold=2, recovery_timeout=0.0001, listeners=[Checker()]
    )
    start = threading.Barrier(8)

    def hammer(index: int) -> None:
        start.wait()
        for i in range(2000):
            with contextlib.suppress(ValueError, CircuitOpenError):
                breaker.call(int, "x" if (i + index) % 3 else "1")
            if i % 97 == 0:
                breaker.reset()

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert len(heard) > 10
    # Each transition leaves the state the previous one entered: none lost, none reordered.
    assert all(new == old for (_, new), (old, _) in itertools.pairwise(heard))


def test_a_listener_raising_system_exit_does_not_stop_later_deliveries() -> None:
    recorder = Recorder()

    class Exits:
        def __init__(self) -> None:
            self.first = True

        def on_state_change(self, *args: Any) -> None:
            if self.first:
                self.first = False
                raise SystemExit(1)

    breaker = CircuitBreaker("l", failure_threshold=1, listeners=[Exits(), recorder])
    with pytest.raises(SystemExit):
        breaker.call(int, "x")
    breaker.reset()
    assert recorder.events[-1] == ("change", "l", "OPEN", "CLOSED")
