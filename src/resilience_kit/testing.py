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
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from resilience_kit._retry.sleeps import _NO_WAITS
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

    `monotonic()` starts at `start` and moves only through `advance()` (or the sleeps, which
    advance instead of blocking). `wall()` moves in step, from
    `wall_start`. Safe to read and advance from several threads.

    Timeouts run on it too: a [timeout][resilience_kit.timeout] (or `resilient(timeout=...)`)
    that starts while this clock is in use registers its deadline here, and the
    [advance][resilience_kit.testing.FakeClock.advance] that reaches it ends the attempt with
    `TimeoutError`, whichever thread or task advances.

    Examples:
        ```python
        from resilience_kit.testing import FakeClock

        clock = FakeClock()
        clock.advance(30)
        assert clock.monotonic() == 30.0
        ```
    """

    __slots__ = (
        "_deadlines",
        "_follow",
        "_lock",
        "_now",
        "_serial",
        "_wall_offset",
        "_withdrawals",
    )

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = check_number("start", start)
        self._wall_offset = check_number("wall_start", wall_start) - self._now
        self._lock = threading.Lock()
        # Once handed over (see _hand_over), the clock it follows; _now is then an offset.
        self._follow: Clock | None = None
        # Pending deadlines as a heap of (when, serial, deadline); see _schedule.
        self._deadlines: list[tuple[float, int, _Deadline]] = []
        self._serial = itertools.count()
        # Deadlines withdrawn since the heap was last compacted (see _withdrawn).
        self._withdrawals = 0

    def monotonic(self) -> float:
        """The current fake monotonic time in seconds."""
        follow = self._follow
        return self._now if follow is None else self._now + follow.monotonic()

    def wall(self) -> float:
        """The current fake wall-clock time (seconds since the epoch)."""
        follow = self._follow
        return self._now + self._wall_offset if follow is None else follow.wall()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (>= 0), ending the timeouts whose deadline it reaches."""
        step = check_number("seconds", seconds, minimum=0)
        with self._lock:
            self._now += step
            due = self._pop_due()
        _fire(due)

    def sleep(self, seconds: float) -> None:
        """Advance by `seconds` at once: a drop-in for `time.sleep`."""
        follow = self._follow
        if follow is None:
            self.advance(max(0.0, seconds))
        else:
            (getattr(follow, "sleep", None) or time.sleep)(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Advance by `seconds` without waiting: a drop-in for `asyncio.sleep`.

        It awaits nothing unless the sleep reaches a timeout's deadline: then the clock stops
        there and the sleep yields to the event loop once, so that the timeout cancels its
        attempt in the middle of the sleep as a real one would (the clock then reads the
        deadline, not the end of the sleep). Otherwise it goes on to the end.
        """
        follow = self._follow
        if follow is not None:
            await (getattr(follow, "async_sleep", None) or asyncio.sleep)(seconds)
            return
        remaining = max(0.0, seconds)
        while True:
            with self._lock:
                pending = self._deadlines
                while pending and pending[0][2].cancelled:
                    heapq.heappop(pending)
                if pending and pending[0][0] - self._now < remaining:
                    # Stop at the deadline: the timeout may end this sleep there.
                    remaining -= pending[0][0] - self._now
                    self._now = pending[0][0]
                else:
                    self._now += remaining
                    remaining = 0.0
                due = self._pop_due()
            if due:
                _fire(due)
                # Only a timeout registers deadlines, and timeouts run on asyncio: yield, so
                # that the attempt's cancellation lands here.
                await asyncio.sleep(0)
            if remaining <= 0:
                return

    def _schedule(self, when: float, callback: Callable[[], object]) -> _Deadline | None:
        """Call `callback` once this clock reaches `when` (for timeouts: see `_timeout`).

        The callback runs in the thread that advances the clock, at once if `when` has
        passed already. Returns the registration (`cancel()` withdraws it), or None once the
        clock follows real time (after the test; see `_hand_over`): time then passes by
        itself, and the caller must time itself on the real clock.
        """
        deadline = _Deadline(callback, self)
        with self._lock:
            if self._follow is not None:
                return None
            if when > self._now:
                heapq.heappush(self._deadlines, (when, next(self._serial), deadline))
                return deadline
        _fire([deadline])
        return deadline

    def _withdrawn(self) -> None:
        """A deadline was withdrawn: drop the withdrawn ones once they make up half the heap.

        A call that ends in time withdraws its deadline, which would otherwise stay in the
        heap (holding the call's task) until the clock reached it: a test making many calls
        without advancing time would keep every one of them. Compacting when half the heap
        is withdrawn costs O(1) per withdrawal, amortised.
        """
        with self._lock:
            self._withdrawals += 1
            pending = self._deadlines
            if self._withdrawals < _COMPACT_AFTER or 2 * self._withdrawals < len(pending):
                return
            pending[:] = [entry for entry in pending if not entry[2].cancelled]
            heapq.heapify(pending)
            self._withdrawals = 0

    def _pop_due(self) -> list[_Deadline]:
        """Take the deadlines the clock has reached; the caller holds the lock."""
        pending, now, due = self._deadlines, self._now, []
        while pending and pending[0][0] <= now:
            deadline = heapq.heappop(pending)[2]
            if not deadline.cancelled:
                due.append(deadline)
        return due

    def _hand_over(self, clock: Clock) -> None:
        """From now on, let time run at `clock`'s pace, and really sleep (for the plugin).

        The `fake_clock` fixture's clock stands for the test's time, which ends with the
        test; whatever captured it during the test (a retry decorated then keeps its clock's
        `monotonic` and `sleep`) must go on like the rest of the process afterwards.
        `monotonic()` goes on from where it stands (it never goes backwards), `wall()`
        and sleeping are `clock`'s. Deadlines still pending are left as they are.
        """
        with self._lock:
            if self._follow is None:
                self._now -= clock.monotonic()
                self._follow = clock

    def __repr__(self) -> str:
        if self._follow is not None:
            return f"FakeClock(now={self.monotonic()!r}, following={self._follow!r})"
        return f"FakeClock(now={self._now!r})"


# Withdrawn deadlines a FakeClock tolerates before it first compacts its heap.
_COMPACT_AFTER = 64


class _Deadline:
    """A callback waiting for a [FakeClock][resilience_kit.testing.FakeClock] to reach a time."""

    __slots__ = ("callback", "cancelled", "clock")

    def __init__(self, callback: Callable[[], object], clock: FakeClock) -> None:
        self.callback = callback
        self.cancelled = False
        self.clock = clock

    def cancel(self) -> None:
        """Withdraw it: the callback will not run (if it has not yet)."""
        if not self.cancelled:
            self.cancelled = True
            self.clock._withdrawn()


def _fire(due: list[_Deadline]) -> None:
    for deadline in due:
        if not deadline.cancelled:
            deadline.cancelled = True  # once only
            deadline.callback()


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
