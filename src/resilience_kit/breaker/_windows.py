"""Failure policies: when do recorded outcomes open the breaker?

Both policies hold a fixed amount of memory whatever the call volume: a counter, or a ring of
time buckets.
"""

from __future__ import annotations

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

    def failure_count(self, now: float) -> int:
        """Consecutive failures so far."""
        return self.failures

    def failure_rate(self, now: float) -> float | None:
        """Not a rate policy: ``None``."""
        return None

    def clear(self) -> None:
        """Forget every outcome."""
        self.failures = 0

    def rebase(self, old_now: float, new_now: float) -> None:
        """Move onto another clock (see ``Machine.rebase``): no times are kept here."""


class FailureRateWindow:
    """Trips when the share of failures over the last ``window`` seconds reaches ``rate``.

    Outcomes are counted in `BUCKETS` buckets of ``window / BUCKETS`` seconds, addressed by
    absolute bucket number (``int(now // width)``), so the window slides in bucket steps and a
    bucket is emptied when time reaches it again. Nothing is judged before ``minimum_calls``
    outcomes are in the window.
    """

    __slots__ = (
        "calls",
        "failed",
        "head",
        "minimum_calls",
        "rate",
        "total",
        "total_failed",
        "width",
    )

    def __init__(self, rate: float, window: float, minimum_calls: int) -> None:
        self.rate = rate
        self.minimum_calls = minimum_calls
        self.width = window / BUCKETS
        self.calls = [0] * BUCKETS
        self.failed = [0] * BUCKETS
        self.head = 0  # absolute number of the newest bucket
        self.total = 0
        self.total_failed = 0

    def _advance(self, now: float) -> int:
        index = int(now // self.width)
        gap = index - self.head
        if gap > 0:
            calls, failed = self.calls, self.failed
            if gap >= BUCKETS:
                self._empty()
            else:
                for step in range(1, gap + 1):
                    slot = (self.head + step) % BUCKETS
                    self.total -= calls[slot]
                    self.total_failed -= failed[slot]
                    calls[slot] = failed[slot] = 0
            self.head = index
        return self.head % BUCKETS

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

    def failure_count(self, now: float) -> int:
        """Failures in the window at ``now``."""
        self._advance(now)
        return self.total_failed

    def failure_rate(self, now: float) -> float | None:
        """The share of failures in the window at ``now`` (0.0 when it holds no calls)."""
        self._advance(now)
        return self.total_failed / self.total if self.total else 0.0

    def clear(self) -> None:
        """Forget every outcome."""
        self._empty()

    def rebase(self, old_now: float, new_now: float) -> None:
        """Move onto another clock that reads ``new_now`` when the old one reads ``old_now``.

        The ring turns with the bucket numbers, so every outcome keeps its age (to within a
        bucket) and leaves the window when it would have.
        """
        self._advance(old_now)
        head = int(new_now // self.width)
        turn = (head - self.head) % BUCKETS
        if turn:
            self.calls = self.calls[-turn:] + self.calls[:-turn]
            self.failed = self.failed[-turn:] + self.failed[:-turn]
        self.head = head
