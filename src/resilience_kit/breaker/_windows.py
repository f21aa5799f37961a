"""Failure policies: when do recorded outcomes open the breaker?

Both policies hold a fixed amount of memory whatever the call volume: a counter, or a ring of
time buckets. Both also say when a success needs no judging (``quiet``): then no success can
open the breaker.
"""

from __future__ import annotations

import itertools
import math
from typing import cast

__all__ = ["BUCKETS", "ConsecutiveFailures", "FailureRateWindow"]

BUCKETS = 20
"""Buckets per rate window: the window's edge is exact to within ``window / BUCKETS`` seconds."""


class ConsecutiveFailures:
    """Trips after ``threshold`` failures in a row; any success starts the count again."""

    __slots__ = ("failures", "threshold")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.failures = 0

    def record(self, now: float, *, failed: bool) -> None:
        """Count one outcome."""
        self.failures = self.failures + 1 if failed else 0

    def tripped(self) -> bool:
        """Whether the outcomes so far should open the breaker."""
        return self.failures >= self.threshold

    def quiet(self) -> bool:
        """Whether a success would change nothing: no failure is pending."""
        return self.failures == 0

    def failure_count(self, now: float) -> int:
        """Consecutive failures so far."""
        return self.failures

    def failure_rate(self, now: float) -> float | None:
        """Not a rate policy: ``None``."""
        return None

    def clear(self) -> None:
        """Forget every outcome."""
        self.failures = 0

    def park(self) -> None:
        """Stop counting until the next ``clear`` (a disabled breaker): nothing to do here."""

    def until(self) -> float:
        """Successes are never counted without the lock here: minus infinity."""
        return -math.inf

    def rebase(self, old_now: float, new_now: float) -> None:
        """Move onto another clock (see ``Machine.rebase``): no times are kept here."""


class FailureRateWindow:
    """Trips when the share of failures over the last ``window`` seconds reaches ``rate``.

    Outcomes are counted in `BUCKETS` buckets of ``window / BUCKETS`` seconds, addressed by
    absolute bucket number (``now // width``, for a clock of any origin, negative included), so
    the window slides in bucket steps and a bucket is emptied when time reaches it again.
    Nothing is judged before ``minimum_calls`` outcomes are in the window.

    Successes are counted without the breaker's lock while no number of them could trip the
    window before its newest bucket ends (``until``): the breaker's hot path then only steps
    the lifetime success counter (``successes``, an ``itertools.count``, atomic under the GIL).
    Whoever holds the lock next moves those steps into the newest bucket (``_harvest``), before
    the window turns: every step of the counter since the last harvest, less the successes
    counted under the lock meanwhile (``excluded``), which the window records itself.
    """

    __slots__ = (
        "calls",
        "end",
        "excluded",
        "failed",
        "head",
        "minimum_calls",
        "parked",
        "rate",
        "seen",
        "successes",
        "total",
        "total_failed",
        "width",
    )

    def __init__(
        self, rate: float, window: float, minimum_calls: int, successes: itertools.count[int]
    ) -> None:
        self.rate = rate
        self.minimum_calls = minimum_calls
        self.width = window / BUCKETS
        self.calls = [0] * BUCKETS
        self.failed = [0] * BUCKETS
        # Absolute number of the newest bucket; the first outcome, at any time, sets it.
        self.head: int | None = None
        self.end = -math.inf  # when the newest bucket ends
        self.total = 0
        self.total_failed = 0
        self.successes = successes
        self.seen = _value(successes)  # the counter when last harvested
        self.excluded = 0  # successes counted under the lock since then
        self.parked = False

    def follow(self, successes: itertools.count[int]) -> None:
        """Harvest lock-free successes from ``successes`` from now on."""
        self._harvest()
        self.successes = successes
        self.seen = _value(successes)
        self.excluded = 0

    def count_success(self) -> None:
        """Step the lifetime counter for a success the lock holder records itself."""
        next(self.successes)
        self.excluded += 1

    def _harvest(self) -> None:
        """Move the lock-free successes into the newest bucket."""
        seen = _value(self.successes)
        steps = seen - self.seen - self.excluded
        self.seen = seen
        self.excluded = 0
        if steps and not self.parked and self.head is not None:
            self.calls[self.head % BUCKETS] += steps
            self.total += steps

    def _advance(self, now: float) -> int:
        """Bring the window to ``now``; the slot of the newest bucket."""
        self._harvest()
        head = self.head
        if now >= self.end:
            index = int(now // self.width)
            if head is None or index - head >= BUCKETS:
                self._empty()
            else:
                calls, failed = self.calls, self.failed
                for number in range(head + 1, index + 1):
                    slot = number % BUCKETS
                    self.total -= calls[slot]
                    self.total_failed -= failed[slot]
                    calls[slot] = failed[slot] = 0
            if head is None or index > head:
                self.head = head = index
            self.end = self._end(head)
        # Set by now: ``end`` starts at minus infinity, so the first call turns the window.
        return cast("int", head) % BUCKETS

    def _end(self, index: int) -> float:
        """The first time whose bucket number is past ``index``: ``now < end`` is then
        exactly ``now // width <= index``, whatever ``(index + 1) * width`` rounds to."""
        width = self.width
        end = (index + 1) * width
        while end // width > index:
            end = math.nextafter(end, -math.inf)
        while end // width <= index:
            end = math.nextafter(end, math.inf)
        return end

    def _empty(self) -> None:
        for slot in range(BUCKETS):
            self.calls[slot] = self.failed[slot] = 0
        self.total = self.total_failed = 0

    def record(self, now: float, *, failed: bool) -> None:
        """Count one outcome at time ``now``."""
        slot = self._advance(now)
        self.calls[slot] += 1
        self.total += 1
        if failed:
            self.failed[slot] += 1
            self.total_failed += 1

    def tripped(self) -> bool:
        """Whether the window, as of the last recorded outcome, should open the breaker."""
        total = self.total
        return total >= self.minimum_calls and self.total_failed / total >= self.rate

    def quiet(self) -> bool:
        """Whether no number of further successes could trip the window before it turns.

        Successes only lower the failure share, but one may bring the window up to
        ``minimum_calls``: quiet when even the first count that would be judged stays below
        ``rate``.
        """
        failed = self.total_failed
        return not failed or failed / max(self.total + 1, self.minimum_calls) < self.rate

    def until(self) -> float:
        """Until when successes may be counted without the lock: the end of the newest bucket
        while the window is quiet, else minus infinity."""
        return self.end if self.quiet() else -math.inf

    def failure_count(self, now: float) -> int:
        """Failures in the window at ``now``."""
        self._advance(now)
        return self.total_failed

    def failure_rate(self, now: float) -> float | None:
        """The share of failures in the window at ``now`` (0.0 when it holds no calls)."""
        self._advance(now)
        return self.total_failed / self.total if self.total else 0.0

    def clear(self) -> None:
        """Forget every outcome, lock-free successes not yet harvested included."""
        self._empty()
        self.seen = _value(self.successes)
        self.excluded = 0
        self.parked = False

    def park(self) -> None:
        """Stop counting until ``clear`` (a disabled breaker): successes counted meanwhile
        step the lifetime counter only."""
        self._harvest()
        self.parked = True

    def rebase(self, old_now: float, new_now: float) -> None:
        """Move onto another clock that reads ``new_now`` when the old one reads ``old_now``.

        The ring turns with the bucket numbers, so every outcome keeps its age (to within a
        bucket) and leaves the window when it would have.
        """
        if self.head is None:
            return  # nothing recorded yet: nothing to move
        self._advance(old_now)
        head = int(new_now // self.width)
        turn = (head - self.head) % BUCKETS
        if turn:
            self.calls = self.calls[-turn:] + self.calls[:-turn]
            self.failed = self.failed[-turn:] + self.failed[:-turn]
        self.head = head
        self.end = self._end(head)


def _value(counter: itertools.count[int]) -> int:
    """The next value ``counter`` would yield, without consuming it (its ``repr`` is the only
    public way to read it; ``storage.read_count`` is the same)."""
    return int(repr(counter)[6:-1])
