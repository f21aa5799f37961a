"""Helpers for testing code that uses resilience_kit.

[`FakeClock`][resilience_kit.testing.FakeClock] is a clock that moves only when told to, accepted
everywhere a clock is. [`use_clock()`][resilience_kit.testing.use_clock] makes it the default for
every primitive created inside a block, so a test can drive a breaker's recovery timeout without
sleeping. [`no_waits()`][resilience_kit.testing.no_waits] makes retries run their attempts back to
back. [`record_transitions()`][resilience_kit.testing.record_transitions] and
[`assert_transitions()`][resilience_kit.testing.assert_transitions] check the states a breaker went
through, and [`force_state()`][resilience_kit.testing.force_state] puts one into a state. The pytest
plugin (``resilience_kit.pytest_plugin``) builds its fixtures on these; nothing here imports pytest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from resilience_kit._retry import _NO_WAITS
from resilience_kit._transitions import (
    Transition,
    TransitionLog,
    assert_transitions,
    record_transitions,
)
from resilience_kit._validation import check_choice, check_number
from resilience_kit.breaker import CircuitBreaker, CircuitState
from resilience_kit.clock import Clock, _set_default_clock

__all__ = [
    "FakeClock",
    "Transition",
    "TransitionLog",
    "assert_transitions",
    "force_state",
    "no_waits",
    "record_transitions",
    "use_clock",
]


class FakeClock:
    """A deterministic clock for tests.

    ``monotonic()`` starts at ``start`` and moves only through
    [`advance()`][resilience_kit.testing.FakeClock.advance] (or
    [`sleep()`][resilience_kit.testing.FakeClock.sleep], which advances instead of blocking).
    ``wall()`` moves in step, from ``wall_start``. Safe to read and advance from several threads.

    Examples:
        ```python
        from resilience_kit.testing import FakeClock

        clock = FakeClock()
        clock.advance(30)
        assert clock.monotonic() == 30.0
        ```
    """

    __slots__ = ("_follow", "_lock", "_now", "_wall_offset")

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = check_number("start", start)
        self._wall_offset = check_number("wall_start", wall_start) - self._now
        self._lock = threading.Lock()
        # Once handed over (see _hand_over), the clock it follows; _now is then an offset.
        self._follow: Clock | None = None

    def monotonic(self) -> float:
        """The current fake monotonic time in seconds."""
        follow = self._follow
        return self._now if follow is None else self._now + follow.monotonic()

    def wall(self) -> float:
        """The current fake wall-clock time (seconds since the epoch)."""
        follow = self._follow
        return self._now + self._wall_offset if follow is None else follow.wall()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        step = check_number("seconds", seconds, minimum=0)
        with self._lock:
            self._now += step

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once: a drop-in for `time.sleep()`."""
        follow = self._follow
        if follow is None:
            self.advance(max(0.0, seconds))
        else:
            (getattr(follow, "sleep", None) or time.sleep)(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once: a drop-in for `asyncio.sleep()`."""
        follow = self._follow
        if follow is None:
            self.advance(max(0.0, seconds))
        else:
            await (getattr(follow, "async_sleep", None) or asyncio.sleep)(seconds)

    def _hand_over(self, clock: Clock) -> None:
        """From now on, let time run at ``clock``'s pace, and really sleep (for the plugin).

        The ``fake_clock`` fixture's clock stands for the test's time, which ends with the
        test; whatever captured it during the test (a retry decorated then keeps its clock's
        ``monotonic`` and ``sleep``) must go on like the rest of the process afterwards.
        ``monotonic()`` goes on from where it stands (it never goes backwards), ``wall()``
        and sleeping are ``clock``'s.
        """
        with self._lock:
            if self._follow is None:
                self._now -= clock.monotonic()
                self._follow = clock

    def __repr__(self) -> str:
        if self._follow is not None:
            return f"FakeClock(now={self.monotonic()!r}, following={self._follow!r})"
        return f"FakeClock(now={self._now!r})"


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the default clock for primitives created inside the block.

    Primitives keep the clock they were created with, so a breaker made inside the block goes on
    using ``clock`` after it ends.
    """
    previous = _set_default_clock(clock)
    try:
        yield clock
    finally:
        _set_default_clock(previous)


@contextmanager
def no_waits() -> Iterator[None]:
    """Make every retry skip its sleeps while the block runs, in every thread and task.

    Attempts, stop conditions, statistics and logs stay as they are (the log still shows the
    wait that was skipped); only the sleeping goes. Blocks may nest and overlap across threads:
    sleeps resume when the last one ends.

    Examples:
        ```python
        from resilience_kit.testing import no_waits

        from resilience_kit import retry

        with no_waits():
            pass  # a @retry("database") function here retries without sleeping
        ```
    """
    _NO_WAITS.enter()
    try:
        yield
    finally:
        _NO_WAITS.exit()


def force_state(breaker: CircuitBreaker, state: str | CircuitState) -> None:
    """Put ``breaker`` into ``state`` from a fresh start, as if it had got there itself.

    ``"OPEN"`` has just opened, for its base recovery timeout by its own clock; ``"HALF_OPEN"``
    has just let that timeout pass, so the next call is a trial. ``"CLOSED"``,
    ``"FORCED_OPEN"`` and ``"DISABLED"`` are [`reset()`][resilience_kit.CircuitBreaker.reset],
    [`force_open()`][resilience_kit.CircuitBreaker.force_open] and
    [`disable()`][resilience_kit.CircuitBreaker.disable] from a fresh start. Listeners hear one
    transition, caused by ``"force_state('OPEN')"`` (say); no failure is counted and the totals are
    kept.

    Raises:
        ConfigurationError: ``state`` is not a state name.
    """
    names = tuple(s.value for s in CircuitState)
    breaker._force_state(CircuitState(check_choice("state", str(state), names)))
