"""Retry statistics: exact counters per policy name, read as frozen snapshots."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class RetryStats:
    """A snapshot of one policy name's figures since start-up (or the last reset).

    Attributes:
        calls: Calls of decorated functions.
        attempts: Attempts made, first attempts included (``calls + retries``).
        retries: Attempts after the first.
        successes_after_retry: Calls that failed at first and then succeeded.
        exhausted: Calls that ended on a retryable error with no attempt or time left.
    """

    calls: int
    attempts: int
    retries: int
    successes_after_retry: int
    exhausted: int


def _read(counter: itertools.count[int]) -> int:
    # The next value of a count without taking it: its repr is "count(N)". (__reduce__ would
    # do too, but is deprecated for itertools objects from Python 3.12.)
    return int(repr(counter)[6:-1])


class _PolicyCounters:
    """Counters of one policy name, exact under threads and tasks.

    ``next()`` on an ``itertools.count`` is a single C call that holds the GIL, so concurrent
    increments are never lost, and the success path pays one of them. Resetting records a
    baseline instead of swapping counters, because wrappers hold the counters directly.
    """

    __slots__ = ("_baseline", "calls", "exhausted", "retries", "successes")

    def __init__(self) -> None:
        self.calls = itertools.count()
        self.retries = itertools.count()
        self.successes = itertools.count()
        self.exhausted = itertools.count()
        self._baseline = (0, 0, 0, 0)

    def _values(self) -> tuple[int, int, int, int]:
        return (
            _read(self.calls),
            _read(self.retries),
            _read(self.successes),
            _read(self.exhausted),
        )

    def snapshot(self) -> RetryStats:
        calls, retries, successes, exhausted = (
            now - then for now, then in zip(self._values(), self._baseline, strict=True)
        )
        return RetryStats(calls, calls + retries, retries, successes, exhausted)

    def reset(self) -> None:
        self._baseline = self._values()


_COUNTERS: dict[str, _PolicyCounters] = {}
_COUNTERS_LOCK = threading.Lock()


def _counters_for(name: str) -> _PolicyCounters:
    with _COUNTERS_LOCK:
        counters = _COUNTERS.get(name)
        if counters is None:
            counters = _COUNTERS[name] = _PolicyCounters()
        return counters


def retry_stats() -> Mapping[str, RetryStats]:
    """Figures per policy name, for every policy that has decorated a function.

    Each figure is exact under threads and concurrent tasks. While calls are in flight the
    figures of one policy may be read a few increments apart from each other.
    """
    with _COUNTERS_LOCK:
        counters = dict(_COUNTERS)
    return {name: c.snapshot() for name, c in counters.items()}


def reset_retry_stats() -> None:
    """Start every policy's figures again from zero (for tests; calls in flight still count)."""
    with _COUNTERS_LOCK:
        for counters in _COUNTERS.values():
            counters.reset()
